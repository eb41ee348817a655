"""Fixtures shared by every test package.

Databases (one of each per run):

- ``postgres_admin_dsn``: a libpq DSN of a PostgreSQL server for this run:
  ``KEEL_TEST_POSTGRES_URL``, else 127.0.0.1:5432, else a throwaway cluster
  started from the installed binaries (``KEEL_TEST_POSTGRES_CLUSTER=1``
  forces the cluster). Without any, PostgreSQL tests skip — except under CI
  (``CI`` set), where they fail.
- ``postgres_url``: an asyncpg SQLAlchemy URL of a database created for this
  run and dropped after it.
- ``sqlite_url``: an aiosqlite URL of a SQLite file in a temporary directory.
- ``postgres_database`` / ``sqlite_database``: a
  :class:`tests.support.databases.SqlDatabase` on a database of its own
  (not the ones above), with ``metadata.create_all`` run for every mapped table.
- ``sync_postgres_database`` / ``sync_sqlite_database``: the same two
  databases through synchronous engines (psycopg 3, sqlite3), as
  :class:`tests.support.databases.SyncSqlDatabase`.

Per test, with savepoint isolation (the code under test may ``commit()``;
nothing persists, the outer transaction is rolled back afterwards):

- ``isolated_session_factory``: an ``async_sessionmaker`` bound to that
  outer transaction; parametrised over ``postgresql`` and ``sqlite``.
- ``backend``: a :class:`tests.support.databases.Backend` parametrised over
  ``memory`` (a fresh ``InMemoryStore``), ``postgresql`` and ``sqlite``
  (isolated session factories). Build units of work with
  ``backend.unit_of_work(SqlAlchemyXUnitOfWork, InMemoryXUnitOfWork)``.

Per test, with real commits (for two truly concurrent transactions; every
table is emptied afterwards):

- ``committing_backend``: like ``backend``, over the kernel's own session
  factory.
- ``postgres_session_factory``: the kernel's own factory on PostgreSQL.

The ``memory`` parameters carry the ``unit`` mark and the database ones the
``integration`` mark, so ``pytest -m unit`` runs the fake variants only.

Authentication: the run trusts the test key of :mod:`tests.support.tokens`
(``AUTH_PUBLIC_KEY``) and signs commands with its ``COMMAND_SIGNING_KEY``;
both are put in the environment here, before any settings are read, so that
``keel`` processes started by tests trust them too.
"""

from __future__ import annotations

import gc
import logging
import os
from collections.abc import AsyncIterator, Generator, Iterator
from pathlib import Path
from uuid import uuid4

import pytest
import redis.asyncio as aioredis
from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from adapters.database import safe_url
from adapters.repository import InMemoryStore
from tests.faults.harness import LeakCheck
from tests.support import postgres, tokens
from tests.support.collection import deselected_as_a_whole
from tests.support.databases import Backend, SqlDatabase, SyncSqlDatabase, own_postgres_database


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """Leave out, unimported, a test module whose every test ``-m`` would deselect.

    ``make test-unit`` would otherwise import every integration and end-to-end module
    only to deselect all of it; see :mod:`tests.support.collection`. Without ``-m``
    (``make test``), nothing is left out.
    """
    return True if deselected_as_a_whole(collection_path, config.option.markexpr) else None


@pytest.hookimpl(wrapper=True)
def pytest_collection(session: pytest.Session) -> Generator[None, object, object]:
    """Collect with the cyclic garbage collector paused; in a run of in-memory tests only,
    then freeze what collection built.

    Collection imports the code under test and makes an item per test: a quarter of a
    million objects that live until the run ends. Left to itself the collector walks all
    of them again in every full collection, during collection and during the run (most
    of a second of ``make test-unit``). ``gc.freeze`` (the standard library's way to
    exempt long-lived objects) moves them out of its sight; what the tests make is
    collected as before. Not when an integration or end-to-end test runs: the app's
    lifespan freezes and unfreezes the heap itself, and a test checks that it does.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        return (yield)
    finally:
        if not any(_starts_services(item) for item in getattr(session, "items", ())):
            gc.freeze()
        if enabled:
            gc.enable()


def _starts_services(item: pytest.Item) -> bool:
    return any(item.get_closest_marker(name) for name in ("integration", "e2e"))


@pytest.fixture(autouse=True)
def _logging_left_as_found() -> Iterator[None]:
    """Undo what a test's ``keel`` run did to the root logger (its JSON handler would
    keep writing to that test's captured, closed stderr in every later test)."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    if root.level != level:  # setLevel empties every logger's cache, even for the same level
        root.setLevel(level)


os.environ["AUTH_PUBLIC_KEY"] = tokens.PUBLIC_KEY_PEM
os.environ["COMMAND_SIGNING_KEY"] = tokens.SIGNING_KEY


@pytest.fixture
async def leak_check() -> AsyncIterator[LeakCheck]:
    """A :class:`~tests.faults.harness.LeakCheck` for the test's engines, verified at its end."""
    check = LeakCheck()
    yield check
    await check.verify()


MEMORY = pytest.param("memory", marks=pytest.mark.unit)
POSTGRESQL = pytest.param("postgresql", marks=pytest.mark.integration)
SQLITE = pytest.param("sqlite", marks=pytest.mark.integration)


@pytest.fixture(scope="session")
async def postgres_admin_dsn() -> AsyncIterator[str]:
    try:
        async with postgres.admin_server() as dsn:
            yield dsn
    except postgres.PostgresUnavailable as exc:
        if os.environ.get("CI"):
            pytest.fail(f"{exc} (CI never skips PostgreSQL tests)")
        pytest.skip(str(exc))


@pytest.fixture(scope="session")
async def postgres_url(postgres_admin_dsn: str) -> AsyncIterator[str]:
    name = await postgres.create_database(postgres_admin_dsn)
    try:
        yield postgres.sqlalchemy_url(postgres_admin_dsn, name)
    finally:
        await postgres.drop_database(postgres_admin_dsn, name)


@pytest.fixture(scope="session")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("sqlite") / "keel-test.db"
    return f"sqlite+aiosqlite:///{path}"


@pytest.fixture(scope="session")
async def postgres_database(postgres_admin_dsn: str) -> AsyncIterator[SqlDatabase]:
    async with own_postgres_database(postgres_admin_dsn, "keel_test_isolated") as database:
        yield database


@pytest.fixture(scope="session")
async def sqlite_database(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[SqlDatabase]:
    path = tmp_path_factory.mktemp("sqlite-isolated") / "keel-isolated.db"
    database = SqlDatabase("sqlite", f"sqlite+aiosqlite:///{path}")
    try:
        await database.start()
        yield database
    finally:
        await database.close()


DATABASE_FIXTURES = {"postgresql": "postgres_database", "sqlite": "sqlite_database"}


@pytest.fixture(scope="session")
def sync_postgres_database(postgres_database: SqlDatabase) -> Iterator[SyncSqlDatabase]:
    """``postgres_database`` through psycopg 3: the same database, a synchronous engine."""
    database = SyncSqlDatabase(postgres_database)
    database.start()
    try:
        yield database
    finally:
        database.close()


@pytest.fixture(scope="session")
def sync_sqlite_database(sqlite_database: SqlDatabase) -> Iterator[SyncSqlDatabase]:
    """``sqlite_database`` through the standard library's sqlite3."""
    database = SyncSqlDatabase(sqlite_database)
    database.start()
    try:
        yield database
    finally:
        database.close()


SYNC_DATABASE_FIXTURES = {
    "postgresql": "sync_postgres_database",
    "sqlite": "sync_sqlite_database",
}


def _database(request: pytest.FixtureRequest) -> SqlDatabase | None:
    # Resolved lazily, so that the memory variants never start a database; in
    # sync fixtures, because an async fixture cannot call getfixturevalue.
    if request.param == "memory":
        return None
    database: SqlDatabase = request.getfixturevalue(DATABASE_FIXTURES[request.param])
    return database


@pytest.fixture(params=[POSTGRESQL, SQLITE])
def _isolated_database(request: pytest.FixtureRequest) -> SqlDatabase | None:
    return _database(request)


@pytest.fixture(params=[MEMORY, POSTGRESQL, SQLITE])
def _backend_database(request: pytest.FixtureRequest) -> SqlDatabase | None:
    return _database(request)


@pytest.fixture(params=[MEMORY, POSTGRESQL, SQLITE])
def _committing_database(request: pytest.FixtureRequest) -> SqlDatabase | None:
    return _database(request)


@pytest.fixture
async def isolated_session_factory(
    _isolated_database: SqlDatabase,
) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    async with _isolated_database.isolated() as session_factory:
        yield session_factory


@pytest.fixture
async def backend(_backend_database: SqlDatabase | None) -> AsyncIterator[Backend]:
    if _backend_database is None:
        yield Backend("memory", store=InMemoryStore())
        return
    async with _backend_database.isolated() as session_factory:
        yield Backend(_backend_database.name, session_factory=session_factory)


@pytest.fixture
async def committing_backend(_committing_database: SqlDatabase | None) -> AsyncIterator[Backend]:
    if _committing_database is None:
        yield Backend("memory", store=InMemoryStore())
        return
    await _committing_database.ensure_schema()
    try:
        yield Backend(
            _committing_database.name, session_factory=_committing_database.session_factory
        )
    finally:
        await _committing_database.empty()


@pytest.fixture
async def postgres_session_factory(
    postgres_database: SqlDatabase,
) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    await postgres_database.ensure_schema()
    try:
        yield postgres_database.session_factory
    finally:
        await postgres_database.empty()


@pytest.fixture(scope="session")
async def redis_url() -> str:
    """The Redis of ``KEEL_TEST_REDIS_URL`` (default: the local server). Never skipped under CI."""
    url = os.environ.get("KEEL_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    client = aioredis.Redis.from_url(url, socket_connect_timeout=3)
    try:
        await client.ping()
    except (RedisError, OSError) as exc:
        message = f"no Redis answers at {safe_url(url)}: {type(exc).__name__}"
        if os.environ.get("CI"):
            pytest.fail(message + " (CI never skips Redis tests)")
        pytest.skip(message)
    finally:
        await client.aclose()
    return url


@pytest.fixture
async def redis_client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_url)
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
async def stream_prefix(redis_client: aioredis.Redis) -> AsyncIterator[str]:
    """Stream names of this test's own, deleted afterwards, so runs never collide."""
    prefix = f"keeltest-{uuid4().hex[:10]}:"
    try:
        yield prefix
    finally:
        keys = [key async for key in redis_client.scan_iter(match=prefix + "*")]
        if keys:
            await redis_client.delete(*keys)
