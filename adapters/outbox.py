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
import functools
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
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
    column,
    delete,
    func,
    insert,
    select,
    text,
    true,
    update,
    values,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession
from sqlalchemy.sql import Delete

from adapters.brokers.base import BrokerUnavailable
from adapters.database import metadata, run_to_completion
from adapters.driver import InsertPlan, Write
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

AGGREGATE_KEY_LENGTH = 400
"""Longest ordering key: an aggregate type's name, ``:``, and an id of up to 200 characters."""

outbox_table = Table(
    "outbox",
    metadata,
    # BIGINT on PostgreSQL; plain INTEGER on SQLite, where only that autoincrements.
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("message_id", Uuid, nullable=False, unique=True),
    Column("stream", String(200), nullable=False),
    # Room for a prefix and the longest id the envelope allows (200): a command's
    # rejection is keyed "Command:<message_id>".
    Column("aggregate_key", String(AGGREGATE_KEY_LENGTH), nullable=False),
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
    # What the relay walks: the oldest pending rows, in id order, with their key
    # (an index-only scan). Partial, so it stays as small as the backlog however
    # long the published history grows.
    Index(
        "ix_outbox_pending",
        "id",
        "aggregate_key",
        postgresql_where=text("published_at IS NULL"),
        sqlite_where=text("published_at IS NULL"),
    ),
    # What a relay reads for the keys it locked: each key's oldest pending rows,
    # wherever their ids lie (kernel_0004).
    Index(
        "ix_outbox_pending_by_key",
        "aggregate_key",
        "id",
        postgresql_where=text("published_at IS NULL"),
        sqlite_where=text("published_at IS NULL"),
    ),
    # What the purge walks: the oldest published rows, a batch at a time.
    Index(
        "ix_outbox_published_at",
        "published_at",
        postgresql_where=text("published_at IS NOT NULL"),
        sqlite_where=text("published_at IS NOT NULL"),
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
    broker_error: str | None = None
    """Why the broker could not be used, when that ended the pass early."""


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


INSERT = insert(outbox_table)
INSERT_AND_NOTIFY = INSERT.returning(func.pg_notify(NOTIFY_CHANNEL, ""))
"""On PostgreSQL the NOTIFY rides on the INSERT (no extra round trip); it is
delivered on COMMIT only, once per transaction, and never on rollback.
Both statements are built once: they are on every write's path."""


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
        # The aggregates are written first: the outbox id is then taken after the
        # aggregate's row lock, so one aggregate's rows get ids in commit order.
        rows = _rows(messages)
        driver = await uow.driver()
        if driver is not None:
            # On every write's path: asyncpg straight, in the flush's own statement.
            plan = _insert_plan(driver.dialect, tuple(rows[0]))
            await uow.flush(then=Write(plan, [plan.bound(row) for row in rows]))
        else:
            await uow.flush()
            session: AsyncSession = uow.session
            postgresql = session.get_bind().dialect.name == "postgresql"
            await session.execute(INSERT_AND_NOTIFY if postgresql else INSERT, rows)
        uow.on_commit(self.doorbell.ring)


@functools.lru_cache(maxsize=8)
def _insert_plan(dialect: Dialect, keys: tuple[str, ...]) -> InsertPlan:
    """``INSERT_AND_NOTIFY`` for the driver path."""
    notify = func.pg_notify(NOTIFY_CHANNEL, "").compile(
        dialect=dialect, compile_kwargs={"literal_binds": True}
    )
    columns = tuple(outbox_table.columns[key] for key in keys)
    return InsertPlan(outbox_table, columns, keys, str(notify), dialect)


def with_outbox(uow_factory: Callable[[], UowT], outbox: CommitHook) -> Callable[[], UowT]:
    """Wrap a unit-of-work factory so that every unit of work it makes writes the outbox."""

    def make() -> UowT:
        uow = uow_factory()
        uow.hooks.append(outbox)
        return uow

    return make


class SqlAlchemyOutboxStore:
    """The relay's side of the ``outbox`` table: claim pending rows, publish, mark.

    On PostgreSQL a pass never keeps a transaction open while it waits on the
    broker (a broker that stops answering would otherwise hold row locks and
    the vacuum horizon for as long as the wait lasts). It runs on one
    connection in three steps:

    1. *claim*, a short transaction: take a session-level advisory lock per
       aggregate key (``pg_try_advisory_lock``) among the oldest pending rows,
       skipping keys another relay holds, and read those keys' pending rows
       in id order; commit. The locks outlive the commit.
    2. *publish*, no transaction open: the rows in id order.
    3. *mark*, a short transaction: ``published_at`` on the rows the broker
       accepted, ``attempts`` and ``last_error`` on the one it refused.

    Then the locks are released (or the connection thrown away, which
    releases them too). So one key is only ever published by one relay at a
    time, in id order, and relays running side by side share the keys. A
    crash, a kill or a cancellation before step 3 commits leaves every row of
    the pass pending: published again later, at least once, never half-marked.

    The claim costs O(batch), not O(backlog): it walks ``ix_outbox_pending``
    (``id, aggregate_key``, partial) in id order over a window of
    ``CLAIM_WINDOW_FACTOR * limit`` rows, from where the last window began,
    and reads the locked keys' pending rows up to the window's end (from each
    key's first pending row: one that committed late below the window still
    goes out before the key's later rows).

    On SQLite a pass is one transaction that first takes the database's write
    lock, so passes run one at a time; the broker call happens inside it.
    SQLite is the embedded default, where the broker is in-process.
    """

    CLAIM_WINDOW_FACTOR = 4
    """How many pending rows a claim looks at per row it may take: room to skip held keys."""
    FULL_SCAN_EVERY = 50
    """Passes between claims that start from the lowest id rather than from ``_floor``."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        # Where the last claim window began: every row below it was published (or
        # not yet committed). Starting there skips the index entries of rows this
        # drain already published, which stay until vacuum; without it each pass
        # would step over all of them again. A lower id that commits late goes out
        # with its key's next claim (before the key's later rows), and is otherwise
        # found by the periodic full scan, or at once when nothing is left above it.
        self._floor = 0
        self._passes = 0

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    async def process_batch(self, publish: PublishRecord, *, limit: int = 100) -> BatchOutcome:
        if self.dialect == "postgresql":
            return await self._process_batch_unlocked_publish(publish, limit)
        return await self._process_batch_in_one_transaction(publish, limit)

    async def _process_batch_unlocked_publish(
        self, publish: PublishRecord, limit: int
    ) -> BatchOutcome:
        async with self.engine.connect() as connection:
            try:
                async with connection.begin():
                    records = await self._claim_keys_and_rows(connection, limit)
                if not records:
                    return BatchOutcome()
                result = await publish_in_order(records, publish)
                async with connection.begin():
                    await _mark(connection, result)
            finally:
                await run_to_completion(_release_key_locks(connection))
        return result.outcome(claimed=len(records))

    async def _process_batch_in_one_transaction(
        self, publish: PublishRecord, limit: int
    ) -> BatchOutcome:
        async with self.engine.connect() as connection, connection.begin():
            # A no-op write takes SQLite's write lock now, before the read, so a
            # second relay waits here instead of reading the same pending rows.
            await connection.execute(update(outbox_table).where(text("0")).values(attempts=0))
            result_rows = await connection.execute(
                select(outbox_table)
                .where(outbox_table.c.published_at.is_(None))
                .order_by(outbox_table.c.id)
                .limit(limit)
            )
            records = [_record(row) for row in result_rows.mappings()]
            if not records:
                return BatchOutcome()
            result = await publish_in_order(records, publish)
            await _mark(connection, result)
        return result.outcome(claimed=len(records))

    async def _claim_keys_and_rows(
        self, connection: AsyncConnection, limit: int
    ) -> list[OutboxRecord]:
        self._passes += 1
        if self._passes % self.FULL_SCAN_EVERY == 0:
            self._floor = 0
        window = await self._lock_window_keys(connection, limit)
        if window.start is None and self._floor > 0:
            self._floor = 0  # nothing above the floor: look below it before saying so
            window = await self._lock_window_keys(connection, limit)
        if window.start is not None:
            self._floor = window.start
        if not window.keys:
            return []
        # A new statement, so a new snapshot: rows another relay marked before it
        # let go of a key are seen as published. Up to the window's end, so the
        # read stays O(batch) however many rows a locked key has further on; and
        # from the key's first pending row, not the window's start: a row that
        # took its id early and committed late lies below the window, and must
        # still go out before the key's later rows (ix_outbox_pending_by_key).
        # One index walk per key (a LATERAL over the keys): a plain IN list lets the
        # planner walk ix_outbox_pending from the lowest id instead, over every
        # published row's entry that vacuum has not yet removed.
        locked = values(column("key", String), name="locked_keys").data(
            [(key,) for key in window.keys]
        )
        first_rows = (
            select(outbox_table)
            .where(
                outbox_table.c.aggregate_key == locked.c.key,
                outbox_table.c.published_at.is_(None),
                outbox_table.c.id <= window.end,
            )
            .order_by(outbox_table.c.id)
            .limit(limit)
            .lateral("first_rows")
        )
        rows = await connection.execute(
            select(first_rows)
            .select_from(locked)
            .join(first_rows, true())
            .order_by(first_rows.c.id)
            .limit(limit)
        )
        return [_record(row) for row in rows.mappings()]

    async def _lock_window_keys(self, connection: AsyncConnection, limit: int) -> _ClaimWindow:
        # The window is the oldest pending rows from the floor up (an index-only
        # walk with a LIMIT). A relay locks at most `limit` of the window's keys it
        # can, oldest first, and skips those another relay holds. MATERIALIZED and
        # the inner LIMIT keep the lock function off keys it does not reach.
        result = await connection.execute(
            text(
                """
                WITH claim_window AS MATERIALIZED (
                    SELECT id, aggregate_key
                    FROM outbox
                    WHERE published_at IS NULL AND id >= :floor
                    ORDER BY id
                    LIMIT :window
                ),
                candidates AS MATERIALIZED (
                    SELECT aggregate_key, min(id) AS first_id
                    FROM claim_window
                    GROUP BY aggregate_key
                    ORDER BY first_id
                )
                SELECT bounds.window_start, bounds.window_end, locked.aggregate_key
                FROM (SELECT min(id) AS window_start, max(id) AS window_end FROM claim_window)
                    AS bounds
                LEFT JOIN LATERAL (
                    SELECT aggregate_key FROM candidates
                    WHERE pg_try_advisory_lock(:lock_class, hashtext(aggregate_key))
                    LIMIT :limit
                ) AS locked ON true
                """
            ),
            {
                "floor": self._floor,
                "window": limit * self.CLAIM_WINDOW_FACTOR,
                "lock_class": ADVISORY_LOCK_CLASS,
                "limit": limit,
            },
        )
        rows = result.all()
        keys = [row.aggregate_key for row in rows if row.aggregate_key is not None]
        return _ClaimWindow(start=rows[0].window_start, end=rows[0].window_end, keys=keys)

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

    async def purge_published(self, older_than: timedelta, *, batch_size: int = 1000) -> int:
        """Delete rows published longer ago than ``older_than``, a batch per transaction.

        Returns how many. Each batch is a short transaction that walks
        ``ix_outbox_published_at`` from the oldest row, so a purge never
        holds locks for long nor scans the rows it keeps.
        """
        cutoff = datetime.now(UTC) - older_than
        oldest = (
            select(outbox_table.c.id)
            .where(outbox_table.c.published_at.is_not(None), outbox_table.c.published_at < cutoff)
            .order_by(outbox_table.c.published_at)
            .limit(batch_size)
            .scalar_subquery()
        )
        return await delete_in_batches(
            self.engine, delete(outbox_table).where(outbox_table.c.id.in_(oldest)), batch_size
        )


async def delete_in_batches(engine: AsyncEngine, statement: Delete, batch_size: int) -> int:
    """Run ``statement`` (a DELETE of at most ``batch_size`` rows) until it deletes fewer."""
    total = 0
    while True:
        async with engine.begin() as connection:
            deleted = int((await connection.execute(statement)).rowcount or 0)
        total += deleted
        if deleted < batch_size:
            return total
        await asyncio.sleep(0)  # a long purge must not starve the rest of the process


async def _mark(connection: AsyncConnection, result: PublishResult) -> None:
    now = datetime.now(UTC)
    if result.published:
        await connection.execute(
            update(outbox_table)
            .where(outbox_table.c.id.in_(result.published))
            .values(published_at=now, attempts=outbox_table.c.attempts + 1)
        )
    for record_id, reason in result.failures.items():
        await connection.execute(
            update(outbox_table)
            .where(outbox_table.c.id == record_id)
            .values(attempts=outbox_table.c.attempts + 1, last_error=reason[:2000])
        )


async def _release_key_locks(connection: AsyncConnection) -> None:
    """Let go of the pass's key locks; a pooled connection must not keep them."""
    try:
        async with connection.begin():
            await connection.execute(text("SELECT pg_advisory_unlock_all()"))
    except Exception:
        # The session is gone or unusable; closing it for good releases its locks too.
        logger.debug("could not release the relay's key locks; discarding the connection")
        await connection.invalidate()


@dataclass(frozen=True)
class _ClaimWindow:
    """The id range a claim looked at (``None``: nothing pending) and the keys it locked."""

    start: int | None
    end: int | None
    keys: list[str]


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


@dataclass(frozen=True)
class PublishResult:
    """What :func:`publish_in_order` did with a pass's rows."""

    published: list[int] = field(default_factory=list)
    failures: dict[int, str] = field(default_factory=dict)
    broker_error: str | None = None
    """Set when the broker itself failed (:class:`BrokerUnavailable`); the pass stopped there."""

    def outcome(self, *, claimed: int) -> BatchOutcome:
        return BatchOutcome(
            claimed=claimed,
            published=len(self.published),
            failed=len(self.failures),
            broker_error=self.broker_error,
        )


async def publish_in_order(
    records: Sequence[OutboxRecord], publish: PublishRecord
) -> PublishResult:
    """Publish ``records`` in order; after a failure, skip the rest of that key.

    Skipping keeps the key's order: its later rows wait for the failed one.
    When the broker itself is unavailable (:class:`BrokerUnavailable`, which
    the relay also raises for a publish that timed out), the pass stops at
    once: every other message would fail the same way, each after its own
    timeout. The rows not tried stay pending, their attempts unchanged.
    """
    published: list[int] = []
    failures: dict[int, str] = {}
    blocked: set[str] = set()
    for record in records:
        if record.key in blocked:
            continue
        try:
            await publish(record)
        except BrokerUnavailable as exc:
            failures[record.id] = f"{type(exc).__name__}: {exc}"
            # The relay reports the broker's state once per change, not per message.
            return PublishResult(published, failures, broker_error=str(exc))
        except Exception as exc:
            blocked.add(record.key)
            failures[record.id] = f"{type(exc).__name__}: {exc}"
            logger.warning(
                "outbox relay could not publish a message; it stays pending",
                extra={"outbox_id": record.id, "type": record.type, "cause": failures[record.id]},
            )
        else:
            published.append(record.id)
    return PublishResult(published, failures)


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
            result = await publish_in_order(records, publish)
            now = datetime.now(UTC)
            published = set(result.published)
            for index, record in enumerate(self.records):
                if record.id in published:
                    self.records[index] = replace(
                        record, published_at=now, attempts=record.attempts + 1
                    )
                elif record.id in result.failures:
                    self.records[index] = replace(
                        record, attempts=record.attempts + 1, last_error=result.failures[record.id]
                    )
        return result.outcome(claimed=len(records))
