# The two commands a newcomer needs are `make run` and `make test`;
# each sets up everything it needs on a fresh machine.
UV := ./scripts/uv.sh

.PHONY: run test test-unit lint bench mutate

run:  ## start the service on the embedded default (SQLite file ./keel.db, in-process broker); ARGS="--port 8001"
	$(UV) run keel serve $(ARGS)

# The test runs keep compiled bytecode even where PYTHONDONTWRITEBYTECODE is set:
# without it every run, and every process a test starts (the CLI, the scaffold, the
# consumers killed mid-message), compiles ~2,000 modules (the kernel's dependencies, and
# the tests' assertion rewriting) from source again. The .pyc files go under
# .venv/pycache (PYTHONPYCACHEPREFIX), not beside the sources, and only these targets
# read them.
BYTECODE := PYTHONDONTWRITEBYTECODE= PYTHONPYCACHEPREFIX=$(CURDIR)/.venv/pycache

# One pytest-xdist worker per core (four at the most: the fault tests' throwaway servers
# compete for the same cores), a test module's tests on one worker so that its fixtures
# are set up once. Every test makes its own databases, streams and servers.
test: lint  ## everything: ruff, mypy --strict, unit, integration and e2e tests
	./scripts/services.sh
	$(BYTECODE) $(UV) run pytest --numprocesses auto --maxprocesses 4 --dist loadfile

# No unit test uses hypothesis, whose plugin would import all of it for its end-of-run
# summary; `make test` keeps the plugin for the fuzz test. Nor does the fast loop keep
# the cap per test (pytest-timeout's timer thread per test costs a tenth of its time,
# and in-memory tests wait on no server); `make test` caps these tests too.
test-unit:  ## the fast loop: in-memory tests only
	$(BYTECODE) $(UV) run pytest -m "unit and not integration and not e2e" -q -p no:hypothesispytest -o timeout=0

lint:
	$(UV) run ruff check .
	$(UV) run ruff format --check .
	$(UV) run mypy

# Each bench writes its --json into BENCH_OUT (a `.command` file beside it when the bench
# does not record its own command); bench.publish renders them. matplotlib is in the
# `bench` dependency group, which `run --group bench` adds for that one step.
BENCH_OUT := out/bench

bench:  ## performance ratios against hand-written twins; publishes docs/benchmarks.md and its chart
	./scripts/services.sh
	./scripts/bench-tools.sh
	rm -rf $(BENCH_OUT) && mkdir -p $(BENCH_OUT)
	$(UV) run python -m bench.machine $(BENCH_OUT)/machine.json
	$(UV) run python -m bench.kernel --json $(BENCH_OUT)/kernel.json
	echo "python -m bench.messaging --json $(BENCH_OUT)/messaging.json" > $(BENCH_OUT)/messaging.command
	$(UV) run python -m bench.messaging --json $(BENCH_OUT)/messaging.json
	set -e; for context in $$(ls -d bench/*/ | xargs -n1 basename | grep -v __pycache__); do \
		for kind in http messaging; do \
			[ -f bench/$$context/$$kind.py ] || continue; \
			command="python -m bench.$$context.$$kind --json $(BENCH_OUT)/$$context-$$kind.json"; \
			echo "$$command" > $(BENCH_OUT)/$$context-$$kind.command; \
			$(UV) run $$command; \
		done; \
	done
	$(UV) run --group bench python -m bench.publish $(BENCH_OUT) docs/benchmarks.md
	set -e; for scaling in $$(ls bench/*/scaling.py 2>/dev/null); do \
		$(UV) run python -m $$(echo $${scaling%.py} | tr / .); \
	done

mutate:  ## mutation testing (mutmut) of the kernel's in-memory paths and the ledger's aggregates against the unit tests; not part of `make test`. MUTANTS="service_layer.retry*" runs some only
	rm -rf mutants
	$(UV) run mutmut run --max-children 2 $(MUTANTS) > mutmut.log 2>&1 || (tail -40 mutmut.log; exit 1)
	$(UV) run python scripts/mutation_report.py
