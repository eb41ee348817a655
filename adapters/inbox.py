"""The inbox: a redelivered message is applied once.

Brokers deliver at least once, so a consumer sees some messages twice — after
a crash before the ack, after a reclaim from a dead consumer, or twice at the
same time. The ``inbox`` table holds one row per (message id, handler),
written *in the same transaction as the handler's effect*: the effect and the
record that it happened are kept together or not at all.

On SQL the row is claimed by the first statement of the handler's
transaction (``INSERT ... ON CONFLICT DO NOTHING RETURNING``), before the
handler's own first statement: that one round trip is both the check and the
record. A redelivery finds the row there and stops with
:class:`~service_layer.messagebus.DuplicateMessage` before any work or lock.
Two concurrent deliveries: the second ``INSERT`` waits for the first
transaction, finds the row once it commits (or takes over the claim if it
rolls back), and the second unit of work ends with ``DuplicateMessage``. A
transaction that runs no statement before its commit claims in its commit
hook, first of the hooks. The message bus drives this through the
:class:`~service_layer.messagebus.Inbox` port; code that owns its session can
call :func:`already_processed` and :func:`claim` directly.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from sqlalchemy import (
    Column,
    Connection,
    DateTime,
    Index,
    String,
    Table,
    bindparam,
    event,
    exists,
    func,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session, SessionTransaction
from sqlalchemy.sql.dml import Insert
from sqlalchemy.util import await_

from adapters.database import metadata
from adapters.driver import Driver, compile_for
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
    statement = _claim_statement(session.get_bind().dialect.name)
    inserted = await session.scalar(statement, {"message_id": message_id, "handler": handler})
    return inserted is not None


@functools.cache
def _claim_statement(dialect: str) -> Insert:
    """``INSERT ... ON CONFLICT DO NOTHING RETURNING message_id``, built once per dialect."""
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return (
        insert(inbox_table)
        .values(message_id=bindparam("message_id"), handler=bindparam("handler"))
        .on_conflict_do_nothing(index_elements=["message_id", "handler"])
        .returning(inbox_table.c.message_id)
    )


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


class _FirstStatementClaim(_InboxClaim):
    """Claims one message as the first statement of each transaction, until one commits.

    ``at_begin`` runs when a session of the unit of work begins a transaction
    (SQLAlchemy's ``after_begin``, inside the greenlet, so it may run SQL);
    the commit hook covers a transaction that began before it could run.
    """

    def __init__(self, message_id: str, handler: str) -> None:
        super().__init__(self._claim_unless_claimed, message_id, handler)
        self.claimed_in: SessionTransaction | None = None

    def at_begin(self, transaction: SessionTransaction, connection: Connection) -> None:
        if self.done:
            return
        statement = _claim_statement(connection.dialect.name)
        parameters = {"message_id": self.message_id, "handler": self.handler}
        driver = Driver.on(connection)
        if driver is not None:
            # On every guarded message's path: asyncpg straight (adapters.driver).
            compiled = compile_for(statement, driver.dialect)
            claimed = bool(await_(driver.fetch(compiled.sql, compiled.args(parameters))).rows)
        else:
            claimed = connection.execute(statement, parameters).first() is not None
        if not claimed:
            raise DuplicateMessage(self.message_id, self.handler)
        self.claimed_in = transaction

    async def _claim_unless_claimed(
        self, uow: AbstractUnitOfWork, message_id: str, handler: str
    ) -> bool:
        session = _session(uow)
        if not self._claimed_in(session):  # usually claimed: no call into the greenlet
            await session.connection()  # a transaction with no statement yet claims now
            if not self._claimed_in(session):
                # A session made before the claim was armed: claim the usual way.
                return await claim(session, message_id, handler)
        return True

    def _claimed_in(self, session: AsyncSession) -> bool:
        transaction = session.sync_session.get_transaction()
        return transaction is not None and transaction is self.claimed_in


_CLAIMS = "keel.inbox.claims"
"""``Session.info`` key of the claims a unit of work's session makes as it begins."""


@event.listens_for(Session, "after_begin")
def _claim_first(session: Session, transaction: SessionTransaction, connection: Connection) -> None:
    """Run the claims of ``session``, if it has any, as its transaction begins.

    One listener for every session, registered once: a listener per session costs
    SQLAlchemy's event registry more than the claim's own statement.
    """
    claims: list[_FirstStatementClaim] | None = session.info.get(_CLAIMS)
    if not claims or transaction.parent is not None:  # a savepoint: its root claimed
        return
    for claim in claims:
        claim.at_begin(transaction, connection)


class _ClaimingSessions(async_sessionmaker[AsyncSession]):
    """A unit of work's session factory whose sessions claim its messages first."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        super().__init__(class_=sessions.class_, **sessions.kw)
        self.claims: list[_FirstStatementClaim] = []

    def __call__(self, **local_kw: Any) -> AsyncSession:
        session = super().__call__(**local_kw)
        session.sync_session.info[_CLAIMS] = self.claims
        return session


class SqlAlchemyInbox:
    """The :class:`~service_layer.messagebus.Inbox` port over the ``inbox`` table."""

    async def already_processed(
        self, uow: AbstractUnitOfWork, message_id: str, handler: str
    ) -> bool:
        async with uow:
            return await already_processed(_session(uow), message_id, handler)

    def guard(self, uow: AbstractUnitOfWork, message_id: str, handler: str) -> None:
        """Claim the message in each transaction of ``uow`` before anything else runs."""
        claim = _FirstStatementClaim(message_id, handler)
        # First in line at commit too: a duplicate is refused before the outbox writes.
        uow.hooks.insert(0, claim)
        if not isinstance(uow, SqlAlchemyUnitOfWork):
            return  # the commit hook says what is wrong with it
        sessions = uow.session_factory
        if not isinstance(sessions, _ClaimingSessions):
            if not isinstance(sessions, async_sessionmaker):
                return  # a factory of another kind: the commit hook claims
            sessions = uow.session_factory = _ClaimingSessions(sessions)
        sessions.claims.append(claim)


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
        if (message_id, handler) in self.processed:  # the early exit costs nothing here
            raise DuplicateMessage(message_id, handler)
        uow.hooks.insert(0, _InboxClaim(self._record, message_id, handler))

    async def _record(self, uow: AbstractUnitOfWork, message_id: str, handler: str) -> bool:
        key = (message_id, handler)
        if key in self.processed:
            return False
        uow.on_commit(lambda: self.processed.add(key))
        return True
