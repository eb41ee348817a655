"""The inbox: a redelivered message is applied once.

Brokers deliver at least once, so a consumer sees some messages twice — after
a crash before the ack, after a reclaim from a dead consumer, or twice at the
same time. The ``inbox`` table holds one row per (message id, handler),
written *in the same transaction as the handler's effect*: the effect and the
record that it happened are kept together or not at all.

Two concurrent deliveries both pass the cheap check, but only one can insert
the row: the second ``INSERT ... ON CONFLICT DO NOTHING`` waits for the first
transaction, finds the row, and the second unit of work rolls back with
:class:`~service_layer.messagebus.DuplicateMessage`. The message bus drives
this through the :class:`~service_layer.messagebus.Inbox` port; code that owns
its session can call :func:`already_processed` and :func:`claim` directly.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from sqlalchemy import Column, DateTime, Index, String, Table, exists, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from adapters.database import metadata
from adapters.unit_of_work import InMemoryUnitOfWork, SqlAlchemyUnitOfWork
from domain.aggregate import Aggregate, Event
from service_layer.messagebus import DuplicateMessage
from service_layer.unit_of_work import AbstractUnitOfWork

Recorder = Callable[[AbstractUnitOfWork, str, str], Awaitable[bool]]

DEFAULT_HANDLER = ""
"""The handler name of a message that is processed as a whole, not per handler."""

inbox_table = Table(
    "inbox",
    metadata,
    # A string: the wire format promises only that a message id is a string.
    Column("message_id", String(200), primary_key=True),
    Column("handler", String(200), primary_key=True, server_default=""),
    Column("processed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    # What the purge walks: the oldest rows, a batch at a time.
    Index("ix_inbox_processed_at", "processed_at"),
)


async def already_processed(
    session: AsyncSession, message_id: str, handler: str = DEFAULT_HANDLER
) -> bool:
    """Whether a committed transaction already recorded ``message_id`` for ``handler``."""
    found = await session.scalar(
        select(
            exists().where(inbox_table.c.message_id == message_id, inbox_table.c.handler == handler)
        )
    )
    return bool(found)


async def claim(session: AsyncSession, message_id: str, handler: str = DEFAULT_HANDLER) -> bool:
    """Record ``message_id`` in this transaction; ``False`` when another one already did.

    On PostgreSQL a concurrent transaction that inserted the same key first
    makes this wait until it ends: ``False`` if it committed, ``True`` if it
    rolled back. Call it early in the transaction to wait before doing the work.
    """
    values = {"message_id": message_id, "handler": handler}
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = (
        insert(inbox_table)
        .values(values)
        .on_conflict_do_nothing(index_elements=["message_id", "handler"])
        .returning(inbox_table.c.message_id)
    )
    inserted = await session.scalar(statement)
    return inserted is not None


class _InboxClaim:
    """A commit hook that records one message once, then steps aside."""

    def __init__(self, record: Recorder, message_id: str, handler: str) -> None:
        self.record = record
        self.message_id = message_id
        self.handler = handler
        self.done = False

    async def before_commit(
        self, uow: AbstractUnitOfWork, raised: Sequence[tuple[Aggregate[Any], Event]]
    ) -> None:
        if self.done:  # a later block of the same handler run: already recorded
            return
        if not await self.record(uow, self.message_id, self.handler):
            raise DuplicateMessage(self.message_id, self.handler)
        uow.on_commit(self._committed)

    def _committed(self) -> None:
        self.done = True


class SqlAlchemyInbox:
    """The :class:`~service_layer.messagebus.Inbox` port over the ``inbox`` table."""

    async def already_processed(
        self, uow: AbstractUnitOfWork, message_id: str, handler: str
    ) -> bool:
        async with uow:
            return await already_processed(_session(uow), message_id, handler)

    def guard(self, uow: AbstractUnitOfWork, message_id: str, handler: str) -> None:
        # First in line: a duplicate is refused before the outbox writes anything.
        uow.hooks.insert(0, _InboxClaim(self._record, message_id, handler))

    @staticmethod
    async def _record(uow: AbstractUnitOfWork, message_id: str, handler: str) -> bool:
        return await claim(_session(uow), message_id, handler)


def _session(uow: AbstractUnitOfWork) -> AsyncSession:
    if not isinstance(uow, SqlAlchemyUnitOfWork):
        raise TypeError(
            f"SqlAlchemyInbox needs a SqlAlchemyUnitOfWork, got {type(uow).__name__}; "
            "use InMemoryInbox with the in-memory unit of work"
        )
    return uow.session


class InMemoryInbox:
    """The in-memory inbox: a set of (message id, handler), added to on commit only."""

    def __init__(self) -> None:
        self.processed: set[tuple[str, str]] = set()

    async def already_processed(
        self, uow: AbstractUnitOfWork, message_id: str, handler: str
    ) -> bool:
        return (message_id, handler) in self.processed

    def guard(self, uow: AbstractUnitOfWork, message_id: str, handler: str) -> None:
        if not isinstance(uow, InMemoryUnitOfWork):
            raise TypeError(f"InMemoryInbox needs an InMemoryUnitOfWork, got {type(uow).__name__}")
        uow.hooks.insert(0, _InboxClaim(self._record, message_id, handler))

    async def _record(self, uow: AbstractUnitOfWork, message_id: str, handler: str) -> bool:
        key = (message_id, handler)
        if key in self.processed:
            return False
        uow.on_commit(lambda: self.processed.add(key))
        return True
