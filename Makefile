# The two commands a newcomer needs are `make run` and `make test`;
# each sets up everything it needs on a fresh machine.
UV := ./scripts/uv.sh

.PHONY: run test test-unit lint bench

run:  ## start the ledger service on the embedded default (SQLite file, in-process broker)
	$(UV) run keel serve

test: lint  ## everything: ruff, mypy --strict, unit, integration and e2e tests
	./scripts/services.sh
	$(UV) run pytest

test-unit:  ## the fast loop: in-memory tests only
	$(UV) run pytest -m unit -q

lint:
	$(UV) run ruff check .
	$(UV) run ruff format --check .
	$(UV) run mypy

bench:  ## performance ratios against hand-written SQLAlchemy and raw asyncpg
	./scripts/services.sh
	$(UV) run python -m bench.kernel
	$(UV) run python -m bench.http
	$(UV) run python -m bench.messaging
