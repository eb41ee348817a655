# The two commands a newcomer needs are `make run` and `make test`;
# each sets up everything it needs on a fresh machine.
UV := ./scripts/uv.sh

.PHONY: run test test-unit lint bench mutate

run:  ## start the service on the embedded default (SQLite file ./keel.db, in-process broker); ARGS="--port 8001"
	$(UV) run keel serve $(ARGS)

test: lint  ## everything: ruff, mypy --strict, unit, integration and e2e tests
	./scripts/services.sh
	$(UV) run pytest

test-unit:  ## the fast loop: in-memory tests only
	$(UV) run pytest -m "unit and not integration and not e2e" -q

lint:
	$(UV) run ruff check .
	$(UV) run ruff format --check .
	$(UV) run mypy

bench:  ## performance ratios against hand-written SQLAlchemy and raw asyncpg
	./scripts/services.sh
	$(UV) run python -m bench.kernel
	$(UV) run python -m bench.messaging
	for context in $$(ls -d bench/*/ | xargs -n1 basename | grep -v __pycache__); do \
		for module in bench/$$context/http.py bench/$$context/messaging.py bench/$$context/scaling.py; do \
			[ -f $$module ] && $(UV) run python -m $$(echo $${module%.py} | tr / .) || true; \
		done; \
	done

mutate:  ## mutation testing (mutmut) of the kernel's in-memory paths and the ledger's aggregates against the unit tests; not part of `make test`. MUTANTS="service_layer.retry*" runs some only
	rm -rf mutants
	$(UV) run mutmut run --max-children 2 $(MUTANTS) > mutmut.log 2>&1 || (tail -40 mutmut.log; exit 1)
	$(UV) run python scripts/mutation_report.py
