"""Fixtures of the ledger's fault scenarios (``leak_check`` comes from ``tests/faults``).

- ``faults``: the run's migrated PostgreSQL database, with the fault triggers.
- ``make_ledger(**settings)``: the ledger app on it, wired by ``bootstrap``
  as in production (outbox included), its connections named uniquely for
  this test, driven through httpx's ASGITransport. ``ledger``: one with the
  default settings. Both are leak-checked and closed after the test.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy.engine import make_url

from adapters.database import DatabaseSessionManager
from adapters.migrate import upgrade_to_head_async
from adapters.settings import Settings
from entrypoints.bootstrap import bootstrap
from entrypoints.http.app import create_app
from entrypoints.ledger import context as ledger_context
from service_layer.ledger.unit_of_work import LedgerUnitOfWork
from service_layer.unit_of_work import CommitHook
from tests.faults.harness import LeakCheck, unique_application_name
from tests.ledger.factories import OWNER
from tests.ledger.faults.harness import (
    FAULT_TRIGGERS,
    FaultDatabase,
    LedgerApp,
    TunedSessionManager,
)
from tests.ledger.wiring import LEDGER_MIGRATIONS, with_unit_of_work
from tests.support import postgres
from tests.support.tokens import bearer_for

BASE_URL = "http://testserver"
STATEMENT_TIMEOUT_MS = 10_000
"""Caps a fault's sleeping statement if a test fails to cancel it."""

MakeLedger = Callable[..., Awaitable[LedgerApp]]


@pytest.fixture(scope="session")
async def faults(postgres_admin_dsn: str) -> AsyncIterator[FaultDatabase]:
    name = await postgres.create_database(postgres_admin_dsn, prefix="keel_faults")
    try:
        url = postgres.sqlalchemy_url(postgres_admin_dsn, name)
        await upgrade_to_head_async(url, LEDGER_MIGRATIONS)
        dsn = make_url(postgres_admin_dsn).set(database=name).render_as_string(False)
        connection = await asyncpg.connect(dsn)
        try:
            await connection.execute(FAULT_TRIGGERS)
        finally:
            await connection.close()
        yield FaultDatabase(url=url, dsn=dsn, admin_dsn=postgres_admin_dsn)
    finally:
        await postgres.drop_database(postgres_admin_dsn, name)


@pytest.fixture
async def make_ledger(
    faults: FaultDatabase, leak_check: LeakCheck, request: pytest.FixtureRequest
) -> AsyncIterator[MakeLedger]:
    """``await make_ledger(**settings)``: the app with these :class:`Settings` overrides.

    ``engine_options=`` and ``session_options=`` add what the settings do not
    cover (e.g. an ``isolation_level``, a ``sync_session_class``).
    """
    built: list[tuple[LedgerApp, DatabaseSessionManager]] = []

    async def make(
        engine_options: dict[str, Any] | None = None,
        session_options: dict[str, Any] | None = None,
        **overrides: Any,
    ) -> LedgerApp:
        name = unique_application_name(request.node.name.split("[")[0][-40:])
        overrides.setdefault("db_statement_timeout_ms", STATEMENT_TIMEOUT_MS)
        settings = Settings(database_url=faults.url, db_application_name=name, **overrides)
        manager = TunedSessionManager(engine_options, session_options)
        container = bootstrap(settings, manager=manager)
        hooks: list[CommitHook] = []
        make_unit_of_work = ledger_context.wiring(container).uow_factory

        def with_test_hooks() -> LedgerUnitOfWork:
            uow = make_unit_of_work()
            uow.hooks.extend(hooks)
            return uow

        # The routes' writes go through the bus: it gets the same factory, as in bootstrap.
        container = with_unit_of_work(container, with_test_hooks)
        # raise_app_exceptions=False: the client sees the 500 a real client would.
        transport = httpx.ASGITransport(
            app=create_app(container=container), raise_app_exceptions=False
        )
        app = LedgerApp(
            httpx.AsyncClient(
                transport=transport, base_url=BASE_URL, headers=bearer_for(OWNER.subject)
            ),
            container,
            name,
            hooks,
        )
        built.append((app, manager))
        leak_check.watch(app.engine, admin_dsn=faults.admin_dsn, application_name=name)
        return app

    try:
        yield make
    finally:
        try:
            await leak_check.verify()
        finally:
            for app, manager in built:
                await app.client.aclose()
                await manager.close()


@pytest.fixture
async def ledger(make_ledger: MakeLedger) -> LedgerApp:
    """The app with the default settings (and a 10 s statement timeout)."""
    return await make_ledger()
