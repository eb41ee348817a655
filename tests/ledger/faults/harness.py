"""What the ledger's fault scenarios are made of: the fault triggers, the app under test.

The fault triggers are installed once in the run's database and keyed by
the entry's ``reference``: only a request whose reference starts with one
of the prefixes below meets its fault, so scenarios share the database
without meeting each other's faults.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.database import DatabaseSessionManager
from entrypoints.bootstrap import Container
from entrypoints.ledger import context as ledger_context
from service_layer.ledger.unit_of_work import LedgerUnitOfWork
from service_layer.unit_of_work import CommitHook
from tests.faults.harness import WAIT_SECONDS
from tests.ledger.e2e.factories import MovementBody, OpenAccountBody

# -- the database ------------------------------------------------------------------------

SLOW_INSERT = "fault-slow-insert-"
"""An entry whose reference starts so sleeps in a BEFORE INSERT trigger: a slow statement."""
REFUSED_AT_COMMIT = "fault-refused-at-commit-"
"""An entry whose reference starts so breaks a deferred constraint: its COMMIT fails."""
GATED_COMMIT = "fault-gated-commit-"
"""An entry whose reference starts so makes COMMIT wait for the advisory lock of that reference."""

FAULT_TRIGGERS = f"""
CREATE FUNCTION fault_sleep() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_sleep(60);  -- cut short by a cancel request or the statement_timeout
    RETURN NEW;
END $$;
CREATE TRIGGER fault_slow_insert BEFORE INSERT ON ledger_entries FOR EACH ROW
    WHEN (NEW.reference LIKE '{SLOW_INSERT}%') EXECUTE FUNCTION fault_sleep();

CREATE FUNCTION fault_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'entry % refused by the test''s deferred constraint', NEW.reference
        USING ERRCODE = 'check_violation';
END $$;
CREATE CONSTRAINT TRIGGER fault_refused_at_commit AFTER INSERT ON ledger_entries
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
    WHEN (NEW.reference LIKE '{REFUSED_AT_COMMIT}%') EXECUTE FUNCTION fault_refuse();

CREATE FUNCTION fault_gate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext(NEW.reference));
    RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER fault_gated_commit AFTER INSERT ON ledger_entries
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
    WHEN (NEW.reference LIKE '{GATED_COMMIT}%') EXECUTE FUNCTION fault_gate();
"""


def fault_reference(prefix: str) -> str:
    """A fresh reference that meets the fault of ``prefix`` (one of the prefixes above)."""
    return f"{prefix}{uuid4()}"


@dataclass(frozen=True)
class AccountRow:
    balance: int
    version: int
    entry_count: int


class Probe:
    """The test's own connection to the fault database: an actor the app knows nothing of."""

    def __init__(self, connection: asyncpg.Connection) -> None:
        self.connection = connection

    async def account(self, account_id: str | UUID) -> AccountRow:
        row = await self.connection.fetchrow(
            "SELECT balance, version, entry_count FROM ledger_accounts WHERE id = $1",
            UUID(str(account_id)),
        )
        assert row is not None, f"no account {account_id}"
        return AccountRow(row["balance"], row["version"], row["entry_count"])

    async def entries_with(self, reference: str) -> int:
        count: int = await self.connection.fetchval(
            "SELECT count(*) FROM ledger_entries WHERE reference = $1", reference
        )
        return count

    async def outbox_rows_with(self, reference: str) -> int:
        count: int = await self.connection.fetchval(
            "SELECT count(*) FROM outbox WHERE payload->>'reference' = $1", reference
        )
        return count

    async def sessions_in_transaction(self, application_name: str) -> list[str]:
        rows = await self.connection.fetch(
            "SELECT pid, state, left(query, 80) AS query FROM pg_stat_activity"
            " WHERE application_name = $1 AND state LIKE 'idle in transaction%'",
            application_name,
        )
        return [f"{row['pid']} {row['state']}: {row['query']}" for row in rows]

    async def wait_for_session(
        self, application_name: str, *, wait_event: str | None = None, state: str | None = None
    ) -> None:
        """Until a session of ``application_name`` waits on ``wait_event`` or is in ``state``.

        E.g. ``wait_event="PgSleep"``: the slow statement is running;
        ``"advisory"``: COMMIT waits for the test's advisory lock.
        """
        async with asyncio.timeout(WAIT_SECONDS):
            # Polled: the server has no way to tell the test when a session starts waiting.
            while True:
                found = await self.connection.fetchval(
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1"
                    " AND ($2::text IS NULL OR wait_event = $2)"
                    " AND ($3::text IS NULL OR state = $3)",
                    application_name,
                    wait_event,
                    state,
                )
                if found:
                    return
                await asyncio.sleep(0.002)


@dataclass(frozen=True)
class FaultDatabase:
    """The run's migrated database with the fault triggers; its reads go around the app."""

    url: str
    """The SQLAlchemy (asyncpg) URL the app connects to."""
    dsn: str
    """The same database as a libpq DSN, for the test's own asyncpg connections."""
    admin_dsn: str

    @contextlib.asynccontextmanager
    async def probe(self) -> AsyncIterator[Probe]:
        connection = await asyncpg.connect(self.dsn)
        try:
            yield Probe(connection)
        finally:
            await connection.close()

    async def account(self, account_id: str | UUID) -> AccountRow:
        async with self.probe() as probe:
            return await probe.account(account_id)

    async def entries_with(self, reference: str) -> int:
        async with self.probe() as probe:
            return await probe.entries_with(reference)

    async def outbox_rows_with(self, reference: str) -> int:
        async with self.probe() as probe:
            return await probe.outbox_rows_with(reference)


# -- the ledger app ---------------------------------------------------------------------


class TunedSessionManager(DatabaseSessionManager):
    """A session manager with engine and session options the settings have no knob for."""

    def __init__(
        self,
        engine_options: dict[str, Any] | None = None,
        session_options: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.extra_engine_options = engine_options or {}
        self.extra_session_options = session_options or {}

    def init(self, url: str, **engine_options: Any) -> None:
        super().init(url, **{**engine_options, **self.extra_engine_options})
        self.session_factory.configure(**self.extra_session_options)


@dataclass
class LedgerApp:
    """The ledger app on the fault database, the client that drives it, and its engine."""

    client: httpx.AsyncClient
    container: Container
    application_name: str
    hooks: list[CommitHook] = field(default_factory=list)
    """Commit hooks added to every unit of work the app makes from now on, after the outbox."""

    @property
    def engine(self) -> AsyncEngine:
        return self.container.session_manager.engine

    def unit_of_work(self) -> LedgerUnitOfWork:
        """A unit of work as the routes get one, test hooks included."""
        return ledger_context.wiring(self.container).uow_factory()

    async def open_account(self) -> str:
        response = await self.client.post("/accounts", json=OpenAccountBody.build())
        assert response.status_code == 201, response.text
        account_id: str = response.json()["id"]
        return account_id

    async def deposit(self, account_id: str, **fields: Any) -> httpx.Response:
        return await self.client.post(
            f"/accounts/{account_id}/deposits", json=MovementBody.build(**fields)
        )

    async def balance(self, account_id: str) -> int:
        response = await self.client.get(f"/accounts/{account_id}")
        assert response.status_code == 200, response.text
        balance: int = response.json()["balance"]
        return balance
