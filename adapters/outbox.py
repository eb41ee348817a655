"""The transactional outbox: events for other services are written with the change itself.

An event that leaves the service is not sent to the broker by the code that
raised it — a crash between the commit and the send would lose it, and a send
before a failed commit would announce something that never happened. Instead
the unit of work's commit hook (:class:`SqlAlchemyOutbox`) inserts one
``outbox`` row per published event *in the same transaction*, just before
``COMMIT``. The relay (``adapters.relay``) later publishes the pending rows and
marks them sent. So an event is published if and only if its transaction
committed, at least once.

Which events are published, to which stream and under which ordering key, is
decided by the :class:`~adapters.serialization.MessageRegistry`.

The relay's side of the table — claiming pending rows, marking them — is
:class:`SqlAlchemyOutboxStore`; :class:`InMemoryOutbox` is both sides at once
for the in-memory unit of work, with the same semantics (rows appear on commit).

Each row also keeps where the event came from (contract, "v2: correlation"):
``correlation_id`` and ``causation_id`` from the request or message being
served (:mod:`service_layer.correlation`; an event raised outside any is its
own cause), and ``trace_context``, the W3C trace context current at the write,
so that the relay's publish continues the request's trace.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from uuid import UUID

from opentelemetry import propagate
from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    String,
    Table,
    Text,
    Uuid,
    case,
    delete,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from adapters.database import metadata
from adapters.serialization import MessageRegistry, OutgoingMessage
from adapters.unit_of_work import InMemoryUnitOfWork, SqlAlchemyUnitOfWork
from domain.aggregate import Aggregate, Event
from service_layer import correlation
from service_layer.unit_of_work import AbstractUnitOfWork, CommitHook

logger = logging.getLogger(__name__)

UowT = TypeVar("UowT", bound=AbstractUnitOfWork)

NOTIFY_CHANNEL = "keel_outbox"
"""The PostgreSQL channel a committing writer notifies, so that relays wake at once."""

ADVISORY_LOCK_CLASS = 0x6B65656C
"""First half of the two-int advisory lock a relay takes per aggregate key ('keel')."""

outbox_table = Table(
    "outbox",
    metadata,
    # BIGINT on PostgreSQL; plain INTEGER on SQLite, where only that autoincrements.
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("message_id", Uuid, nullable=False, unique=True),
    Column("stream", String(200), nullable=False),
    Column("aggregate_key", String(200), nullable=False),
    Column("type", String(200), nullable=False),
    Column("occurred_at", DateTime(timezone=True), nullable=False),
    Column("payload", JSON, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("published_at", DateTime(timezone=True), nullable=True),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("last_error", Text, nullable=True),
    # Where the event came from (kernel_0003): the ids of the contract's v2 envelope,
    # and the trace context the relay's publish continues.
    Column("correlation_id", String(200), nullable=True),
    Column("causation_id", String(200), nullable=True),
    Column("trace_context", JSON, nullable=True),
    # What the relay scans: pending rows by key, in id order. Partial, so it stays
    # as small as the backlog however long the published history grows.
    Index(
        "ix_outbox_pending",
        "aggregate_key",
        "id",
        postgresql_where=text("published_at IS NULL"),
        sqlite_where=text("published_at IS NULL"),
    ),
)


@dataclass(frozen=True)
class OutboxRecord:
    """One outbox row, as the relay sees it."""

    id: int
    message_id: UUID
    stream: str
    key: str
    type: str
    occurred_at: datetime
    payload: dict[str, Any]
    attempts: int = 0
    published_at: datetime | None = None
    last_error: str | None = None
    correlation_id: str | None = None
    causation_id: str | None = None
    trace_context: dict[str, str] | None = None
    created_at: datetime | None = None

    def as_message(self) -> dict[str, Any]:
        """The wire form: ``{"message_id", "type", "occurred_at", "payload",
        "correlation_id", "causation_id"}`` (a row older than those columns is its own cause)."""
        occurred_at = self.occurred_at
        if occurred_at.tzinfo is None:  # SQLite hands back naive values; they were UTC
            occurred_at = occurred_at.replace(tzinfo=UTC)
        message_id = str(self.message_id)
        return {
            "message_id": message_id,
            "type": self.type,
            "occurred_at": occurred_at.isoformat(),
            "payload": self.payload,
            "correlation_id": self.correlation_id or message_id,
            "causation_id": self.causation_id or message_id,
        }


PublishRecord = Callable[[OutboxRecord], Awaitable[None]]


@dataclass(frozen=True)
class BatchOutcome:
    """What one relay pass did. ``claimed`` counts rows it looked at."""

    claimed: int = 0
    published: int = 0
    failed: int = 0


class Doorbell:
    """Wakes a relay in this process the moment a writer commits outbox rows.

    Hand-written because it is an ``asyncio.Event`` with a timeout and
    auto-reset, nothing more. It complements LISTEN/NOTIFY (other processes)
    and is the only prompt wake-up on SQLite.
    """

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def ring(self) -> None:
        self._event.set()

    async def wait(self, seconds: float) -> bool:
        """Wait for a ring, at most ``seconds``; ``True`` when rung."""
        try:
            async with asyncio.timeout(seconds):
                await self._event.wait()
        except TimeoutError:
            return False
        self._event.clear()
        return True


@dataclass(frozen=True)
class StreamBacklog:
    """What waits in the outbox for one stream: for ``keel outbox status`` and the metrics."""

    stream: str
    pending: int
    oldest_created_at: datetime | None
    failing: int = 0
    """Pending rows the broker already refused at least once."""

    def oldest_age(self, now: datetime | None = None) -> float:
        """Seconds the oldest pending row has waited; 0 when none waits."""
        if self.oldest_created_at is None:
            return 0.0
        oldest = self.oldest_created_at
        if oldest.tzinfo is None:  # SQLite's CURRENT_TIMESTAMP is UTC without a zone
            oldest = oldest.replace(tzinfo=UTC)
        return max(0.0, ((now or datetime.now(UTC)) - oldest).total_seconds())


def message_context(message_id: UUID) -> dict[str, Any]:
    """The outbox columns that say where an event written now came from."""
    context = correlation.current() or correlation.MessageContext.of_message(str(message_id))
    carrier: dict[str, str] = {}
    propagate.inject(carrier)  # nothing when tracing is off
    return {
        "correlation_id": context.correlation_id,
        "causation_id": context.causation_id,
        "trace_context": carrier or None,
    }


def _rows(messages: Sequence[OutgoingMessage]) -> list[dict[str, Any]]:
    return [
        {
            "message_id": message.message_id,
            "stream": message.stream,
            "aggregate_key": message.key,
            "type": message.type,
            "occurred_at": message.occurred_at,
            "payload": message.payload,
            **message_context(message.message_id),
        }
        for message in messages
    ]


class SqlAlchemyOutbox:
    """The commit hook that writes outbox rows in the unit of work's transaction.

    Attach it to every unit of work (see :func:`with_outbox`). It also offers
    :meth:`put` for an event no aggregate raised (e.g. a command rejection).
    """

    def __init__(self, registry: MessageRegistry, *, doorbell: Doorbell | None = None) -> None:
        self.registry = registry
        self.doorbell = doorbell if doorbell is not None else Doorbell()

    async def before_commit(
        self, uow: AbstractUnitOfWork, raised: Sequence[tuple[Aggregate[Any], Event]]
    ) -> None:
        outgoing = [
            message
            for aggregate, event in raised
            if (message := self.registry.outgoing(event, source=aggregate)) is not None
        ]
        if outgoing:
            await self._write(uow, outgoing)

    async def put(self, uow: AbstractUnitOfWork, event: Event, *, key: str | None = None) -> None:
        """Write ``event`` to the outbox now, inside the active block of ``uow``.

        It is published only if the block then commits. Raises ``KeyError``
        when the registry does not publish this event type.
        """
        message = self.registry.outgoing(event, key=key)
        if message is None:
            raise KeyError(f"{type(event).__name__} is not registered with a stream")
        await self._write(uow, [message])

    async def _write(self, uow: AbstractUnitOfWork, messages: Sequence[OutgoingMessage]) -> None:
        if not isinstance(uow, SqlAlchemyUnitOfWork):
            raise TypeError(
                f"SqlAlchemyOutbox needs a SqlAlchemyUnitOfWork, got {type(uow).__name__}; "
                "use InMemoryOutbox with the in-memory unit of work"
            )
        session: AsyncSession = uow.session
        # Flush the aggregates first: the outbox id is then taken after the
        # aggregate's row lock, so one aggregate's rows get ids in commit order.
        await session.flush()
        statement = insert(outbox_table)
        if session.get_bind().dialect.name == "postgresql":
            # NOTIFY rides on the INSERT (no extra round trip); PostgreSQL delivers
            # it on COMMIT only, once per transaction, and never on rollback.
            statement = statement.returning(func.pg_notify(NOTIFY_CHANNEL, ""))
        await session.execute(statement, _rows(messages))
        uow.on_commit(self.doorbell.ring)


def with_outbox(uow_factory: Callable[[], UowT], outbox: CommitHook) -> Callable[[], UowT]:
    """Wrap a unit-of-work factory so that every unit of work it makes writes the outbox."""

    def make() -> UowT:
        uow = uow_factory()
        uow.hooks.append(outbox)
        return uow

    return make


class SqlAlchemyOutboxStore:
    """The relay's side of the ``outbox`` table: claim pending rows, publish, mark.

    One pass (:meth:`process_batch`) is one transaction. Rows are marked
    ``published_at`` in the same transaction after the broker accepted them,
    so a crash or a cancellation before the commit leaves every row of the
    pass pending (published again later: at least once) and never half-marked.

    Ordering and concurrency on PostgreSQL: a pass takes a transaction-level
    advisory lock per aggregate key (``pg_try_advisory_xact_lock``), skipping
    keys another relay holds, and then publishes the pending rows of the keys
    it holds in id order. So one key is only ever published by one relay at a
    time, in id order, and relays running side by side share the keys.
    On SQLite a pass first takes the database's write lock, so passes run one
    at a time.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    async def process_batch(self, publish: PublishRecord, *, limit: int = 100) -> BatchOutcome:
        async with self.engine.connect() as connection, connection.begin():
            records = await self._claim(connection, limit)
            if not records:
                return BatchOutcome()
            published, failures = await publish_in_order(records, publish)
            now = datetime.now(UTC)
            if published:
                await connection.execute(
                    update(outbox_table)
                    .where(outbox_table.c.id.in_(published))
                    .values(published_at=now, attempts=outbox_table.c.attempts + 1)
                )
            for record_id, reason in failures.items():
                await connection.execute(
                    update(outbox_table)
                    .where(outbox_table.c.id == record_id)
                    .values(attempts=outbox_table.c.attempts + 1, last_error=reason[:2000])
                )
        return BatchOutcome(claimed=len(records), published=len(published), failed=len(failures))

    async def _claim(self, connection: AsyncConnection, limit: int) -> list[OutboxRecord]:
        pending = outbox_table.c.published_at.is_(None)
        statement = select(outbox_table).where(pending).order_by(outbox_table.c.id).limit(limit)
        if self.dialect == "postgresql":
            keys = await self._lock_keys(connection, limit)
            if not keys:
                return []
            statement = statement.where(outbox_table.c.aggregate_key.in_(keys)).with_for_update()
        else:
            # A no-op write takes SQLite's write lock now, before the read, so a
            # second relay waits here instead of reading the same pending rows.
            await connection.execute(update(outbox_table).where(text("0")).values(attempts=0))
        result = await connection.execute(statement)
        return [_record(row) for row in result.mappings()]

    async def _lock_keys(self, connection: AsyncConnection, limit: int) -> list[str]:
        # Candidates are the keys with the oldest pending rows; a relay locks at
        # most `limit` of those it can, and skips the ones another relay holds.
        # MATERIALIZED keeps the lock function off keys beyond the LIMIT.
        result = await connection.execute(
            text(
                """
                WITH candidates AS MATERIALIZED (
                    SELECT aggregate_key, min(id) AS first_id
                    FROM outbox
                    WHERE published_at IS NULL
                    GROUP BY aggregate_key
                    ORDER BY first_id
                    LIMIT :candidates
                )
                SELECT aggregate_key FROM candidates
                WHERE pg_try_advisory_xact_lock(:lock_class, hashtext(aggregate_key))
                LIMIT :limit
                """
            ),
            {"candidates": limit * 4, "lock_class": ADVISORY_LOCK_CLASS, "limit": limit},
        )
        return [row[0] for row in result]

    async def pending_count(self) -> int:
        async with self.engine.connect() as connection:
            count = await connection.scalar(
                select(func.count())
                .select_from(outbox_table)
                .where(outbox_table.c.published_at.is_(None))
            )
        return int(count or 0)

    async def backlog(self) -> list[StreamBacklog]:
        """Pending rows per stream: how many, the oldest one's creation time, how many failing."""
        pending = outbox_table.c.published_at.is_(None)
        statement = (
            select(
                outbox_table.c.stream,
                func.count(),
                func.min(outbox_table.c.created_at),
                func.sum(case((outbox_table.c.attempts > 0, 1), else_=0)),
            )
            .where(pending)
            .group_by(outbox_table.c.stream)
            .order_by(outbox_table.c.stream)
        )
        async with self.engine.connect() as connection:
            result = await connection.execute(statement)
            rows = result.all()
        return [
            StreamBacklog(stream, int(count), oldest, int(failing or 0))
            for stream, count, oldest, failing in rows
        ]

    async def purge_published(self, older_than: timedelta) -> int:
        """Delete rows published longer ago than ``older_than``; returns how many."""
        cutoff = datetime.now(UTC) - older_than
        async with self.engine.begin() as connection:
            result = await connection.execute(
                delete(outbox_table).where(
                    outbox_table.c.published_at.is_not(None),
                    outbox_table.c.published_at < cutoff,
                )
            )
        return int(result.rowcount or 0)


def _record(row: Any) -> OutboxRecord:
    return OutboxRecord(
        id=row["id"],
        message_id=row["message_id"],
        stream=row["stream"],
        key=row["aggregate_key"],
        type=row["type"],
        occurred_at=row["occurred_at"],
        payload=row["payload"],
        attempts=row["attempts"],
        published_at=row["published_at"],
        last_error=row["last_error"],
        correlation_id=row["correlation_id"],
        causation_id=row["causation_id"],
        trace_context=row["trace_context"],
        created_at=row["created_at"],
    )


async def publish_in_order(
    records: Sequence[OutboxRecord], publish: PublishRecord
) -> tuple[list[int], dict[int, str]]:
    """Publish ``records`` in order; after a failure, skip the rest of that key.

    Skipping keeps the key's order: its later rows wait for the failed one.
    Returns the ids published and, per failed id, why.
    """
    published: list[int] = []
    failures: dict[int, str] = {}
    blocked: set[str] = set()
    for record in records:
        if record.key in blocked:
            continue
        try:
            await publish(record)
        except Exception as exc:
            blocked.add(record.key)
            failures[record.id] = f"{type(exc).__name__}: {exc}"
            logger.warning(
                "outbox relay could not publish a message; it stays pending",
                extra={"outbox_id": record.id, "type": record.type, "cause": failures[record.id]},
            )
        else:
            published.append(record.id)
    return published, failures


class InMemoryOutbox:
    """The outbox of the in-memory unit of work: a list, with the same semantics.

    It is the commit hook (rows appear only when the unit of work commits,
    never on rollback) and the relay's store at once.
    """

    def __init__(self, registry: MessageRegistry, *, doorbell: Doorbell | None = None) -> None:
        self.registry = registry
        self.doorbell = doorbell if doorbell is not None else Doorbell()
        self.records: list[OutboxRecord] = []
        self._lock = asyncio.Lock()

    async def before_commit(
        self, uow: AbstractUnitOfWork, raised: Sequence[tuple[Aggregate[Any], Event]]
    ) -> None:
        outgoing = [
            message
            for aggregate, event in raised
            if (message := self.registry.outgoing(event, source=aggregate)) is not None
        ]
        if outgoing:
            self._stage(uow, outgoing)

    async def put(self, uow: AbstractUnitOfWork, event: Event, *, key: str | None = None) -> None:
        """Like :meth:`SqlAlchemyOutbox.put`: kept only if the block commits."""
        message = self.registry.outgoing(event, key=key)
        if message is None:
            raise KeyError(f"{type(event).__name__} is not registered with a stream")
        self._stage(uow, [message])

    def _stage(self, uow: AbstractUnitOfWork, messages: Sequence[OutgoingMessage]) -> None:
        if not isinstance(uow, InMemoryUnitOfWork):
            raise TypeError(f"InMemoryOutbox needs an InMemoryUnitOfWork, got {type(uow).__name__}")
        contexts = [message_context(message.message_id) for message in messages]

        def append() -> None:
            known = {record.message_id for record in self.records}
            for message, context in zip(messages, contexts, strict=True):
                if message.message_id in known:  # the table's unique key
                    continue
                self.records.append(
                    OutboxRecord(
                        id=len(self.records) + 1,
                        message_id=message.message_id,
                        stream=message.stream,
                        key=message.key,
                        type=message.type,
                        occurred_at=message.occurred_at,
                        payload=message.payload,
                        created_at=datetime.now(UTC),
                        **context,
                    )
                )
            self.doorbell.ring()

        uow.on_commit(append)

    def pending(self) -> list[OutboxRecord]:
        return [record for record in self.records if record.published_at is None]

    async def pending_count(self) -> int:
        return len(self.pending())

    async def backlog(self) -> list[StreamBacklog]:
        """Like :meth:`SqlAlchemyOutboxStore.backlog`."""
        streams: dict[str, list[OutboxRecord]] = {}
        for record in self.pending():
            streams.setdefault(record.stream, []).append(record)
        return [
            StreamBacklog(
                stream,
                len(records),
                min((r.created_at for r in records if r.created_at), default=None),
                sum(1 for r in records if r.attempts > 0),
            )
            for stream, records in sorted(streams.items())
        ]

    async def process_batch(self, publish: PublishRecord, *, limit: int = 100) -> BatchOutcome:
        async with self._lock:
            records = self.pending()[:limit]
            published, failures = await publish_in_order(records, publish)
            now = datetime.now(UTC)
            for index, record in enumerate(self.records):
                if record.id in published:
                    self.records[index] = replace(
                        record, published_at=now, attempts=record.attempts + 1
                    )
                elif record.id in failures:
                    self.records[index] = replace(
                        record, attempts=record.attempts + 1, last_error=failures[record.id]
                    )
        return BatchOutcome(claimed=len(records), published=len(published), failed=len(failures))
