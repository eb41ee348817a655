"""The ledger's read-side queries, for SQLAlchemy and for the in-memory fake."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from uuid import UUID

from sqlalchemy import Select, bindparam, exists, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from adapters.driver import DriverSource
from adapters.ledger.tables import accounts, transfers
from adapters.repository import InMemoryStore
from domain.ledger.account import Account
from domain.ledger.transfer import Transfer
from service_layer.ledger.queries import LedgerQueries
from service_layer.ledger.views import AccountView, TransferView

# Built once: composing a statement costs more than SQLAlchemy's compiled cache saves.
ACCOUNT = select(
    accounts.c.id,
    accounts.c.owner,
    accounts.c.currency,
    accounts.c.balance,
    accounts.c.version,
    accounts.c.created_at,
).where(accounts.c.id == bindparam("id"), accounts.c.owner_subject == bindparam("owner"))
TRANSFER = select(
    transfers.c.id,
    transfers.c.source_id,
    transfers.c.target_id,
    transfers.c.amount,
    transfers.c.currency,
    transfers.c.reference,
    transfers.c.created_at,
).where(
    transfers.c.id == bindparam("id"),
    exists().where(
        accounts.c.owner_subject == bindparam("viewer"),
        or_(accounts.c.id == transfers.c.source_id, accounts.c.id == transfers.c.target_id),
    ),
)


class SqlAlchemyLedgerQueries(LedgerQueries):
    """Core ``SELECT``s on the unit of work's session: rows, not tracked objects; straight
    on asyncpg when the unit of work's ``driver`` gives one (``adapters.driver``)."""

    def __init__(
        self, session: Callable[[], AsyncSession], driver: DriverSource | None = None
    ) -> None:
        self._session = session  # asked for only on the ORM's path: a read may have none
        self._driver = driver

    async def _row(self, statement: Select[Any], values: dict[str, Any]) -> dict[str, Any] | None:
        driver = None if self._driver is None else await self._driver()
        if driver is not None:
            rows = await driver.rows(statement, values)
            return rows[0] if rows else None
        row = (await self._session().execute(statement, values)).one_or_none()
        return None if row is None else row._asdict()

    async def account(self, account_id: UUID, *, owner: str) -> AccountView | None:
        row = await self._row(ACCOUNT, {"id": account_id, "owner": owner})
        return None if row is None else AccountView(**row)

    async def transfer(self, transfer_id: UUID, *, viewer: str) -> TransferView | None:
        row = await self._row(TRANSFER, {"id": transfer_id, "viewer": viewer})
        return None if row is None else TransferView(**row)


class InMemoryLedgerQueries(LedgerQueries):
    """The same answers from the fake's store, which only ever holds committed copies."""

    def __init__(self, store: InMemoryStore) -> None:
        self.store = store

    async def account(self, account_id: UUID, *, owner: str) -> AccountView | None:
        found: Account | None = self.store.table(Account).get(account_id)
        if found is None or not found.is_owned_by(owner):
            return None
        return AccountView.of(found)

    async def transfer(self, transfer_id: UUID, *, viewer: str) -> TransferView | None:
        found: Transfer | None = self.store.table(Transfer).get(transfer_id)
        if found is None:
            return None
        sides = (self.store.table(Account).get(i) for i in (found.source_id, found.target_id))
        if not any(side is not None and side.is_owned_by(viewer) for side in sides):
            return None
        return TransferView.of(found)
