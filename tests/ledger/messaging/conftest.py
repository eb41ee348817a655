"""Fixtures of the ledger messaging tests.

- ``memory``: the ledger's bus, outbox and inbox on the in-memory fakes
  (:class:`~tests.ledger.messaging.support.MemoryLedger`).
- ``ledger_database_url``: a PostgreSQL database of these tests' own, made by
  the real migrations (the relay publishes *every* pending outbox row, so it
  must not share an outbox with other suites). It has one extra: a trigger
  that refuses any entry whose reference starts with ``poison`` — a database
  that fails a command however often it is retried. ``database_url`` hands
  it to one test and empties every table afterwards.
- ``redis_url``, ``redis_client``, ``stream_prefix``: the Redis at
  127.0.0.1:6379 (or ``KEEL_TEST_REDIS_URL``) and a stream prefix per test,
  whose streams are deleted afterwards. Without Redis these tests skip;
  under CI they fail.
- ``settings`` and ``container``: ``bootstrap`` on that database and Redis,
  with a short claim timeout and 3 deliveries before a dead letter.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from adapters.database import DatabaseSessionManager
from adapters.migrate import upgrade_to_head_async
from adapters.relay import asyncpg_dsn
from adapters.settings import Settings
from entrypoints.bootstrap import Container, bootstrap
from tests.ledger.messaging.support import MemoryLedger
from tests.ledger.wiring import LEDGER_MIGRATIONS
from tests.support import postgres

CLAIM_IDLE_MS = 200
"""How long an unacknowledged entry waits before it is delivered again, in these tests."""
MAX_DELIVERIES = 3
POISON_PREFIX = "poison"

POISON_TRIGGER = f"""
CREATE FUNCTION msgledger_refuse_poison() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.reference LIKE '{POISON_PREFIX}%' THEN
        RAISE EXCEPTION 'this test database refuses reference %', NEW.reference;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER msgledger_refuse_poison BEFORE INSERT ON ledger_entries
    FOR EACH ROW EXECUTE FUNCTION msgledger_refuse_poison();
"""

TABLES = "ledger_refusals, ledger_entries, ledger_transfers, ledger_accounts, outbox, inbox"


@pytest.fixture
def memory() -> MemoryLedger:
    return MemoryLedger()


def dsn_of(url: str) -> str:
    return asyncpg_dsn(make_url(url))


@pytest.fixture(scope="session")
async def ledger_database_url(postgres_admin_dsn: str) -> AsyncIterator[str]:
    name = await postgres.create_database(postgres_admin_dsn, prefix="keel_msgledger")
    url = postgres.sqlalchemy_url(postgres_admin_dsn, name)
    try:
        await upgrade_to_head_async(url, LEDGER_MIGRATIONS)
        connection = await asyncpg.connect(dsn_of(url))
        try:
            await connection.execute(POISON_TRIGGER)
        finally:
            await connection.close()
        yield url
    finally:
        await postgres.drop_database(postgres_admin_dsn, name)


@pytest.fixture
async def database_url(ledger_database_url: str) -> AsyncIterator[str]:
    try:
        yield ledger_database_url
    finally:
        connection = await asyncpg.connect(dsn_of(ledger_database_url))
        try:
            await connection.execute(f"TRUNCATE {TABLES} RESTART IDENTITY")
        finally:
            await connection.close()


@pytest.fixture
def settings(database_url: str, redis_url: str, stream_prefix: str) -> Settings:
    return Settings(
        database_url=database_url,
        broker_url=redis_url,
        stream_prefix=stream_prefix,
        broker_claim_idle_ms=CLAIM_IDLE_MS,
        broker_max_deliveries=MAX_DELIVERIES,
    )


@pytest.fixture
async def container(settings: Settings) -> AsyncIterator[Container]:
    manager = DatabaseSessionManager()
    built = bootstrap(settings, manager=manager)
    try:
        yield built
    finally:
        await manager.close()
