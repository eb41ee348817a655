"""Real ``keel consume`` and ``keel relay`` processes, killed and stopped at the worst moments.

Each crash is made deterministic with a lock the test holds: the process is
known to be inside its transaction when it dies, not merely somewhere.
"""

from __future__ import annotations

import signal
from collections import Counter
from pathlib import Path
from uuid import UUID

import asyncpg
import pytest
import redis.asyncio as aioredis
from sqlalchemy import func, select

from adapters.brokers.consumer import deliver_to_bus
from adapters.brokers.redis_streams import RedisStreamsBroker
from adapters.inbox import InMemoryInbox
from adapters.ledger.messages import COMMANDS_STREAM, EVENTS_STREAM, ledger_registry
from adapters.ledger.unit_of_work import InMemoryLedgerUnitOfWork
from adapters.outbox import outbox_table
from adapters.repository import InMemoryStore
from adapters.settings import Settings
from domain.aggregate import Event
from entrypoints.bootstrap import Container
from entrypoints.ledger import context as ledger_context
from service_layer.ledger import reads
from service_layer.ledger.unit_of_work import LedgerUnitOfWork
from service_layer.messagebus import MessageBus
from tests.ledger.messaging.conftest import dsn_of
from tests.ledger.messaging.factories import SENDER, DepositFactory, OpenAccountFactory
from tests.ledger.messaging.processes import backends_waiting_for_a_lock, holding, keel
from tests.ledger.messaging.support import (
    commands_settled,
    consuming,
    entry_count,
    inbox_count,
    published_events,
    send,
)
from tests.messaging.support import wait_until

pytestmark = pytest.mark.e2e

COMMANDS = 200
SHUTDOWN_COMMANDS = 60
PROCESS_DEADLINE = 60.0
"""Generous: two cores shared with other suites. It only stops a hung test."""


async def open_account_with_queued_deposits(
    container: Container, client: aioredis.Redis, prefix: str, count: int
) -> UUID:
    """An account, and ``count`` deposits of 1..count waiting on ``ledger.commands``."""
    opened = OpenAccountFactory.build()
    await ledger_context.wiring(container).bus.handle(opened)
    for amount in range(1, count + 1):
        deposit = DepositFactory.build(account_id=opened.account_id, amount=amount)
        await send(client, prefix, deposit)
    return opened.account_id


async def unacknowledged(client: aioredis.Redis, prefix: str) -> int:
    """Entries of ``ledger.commands`` not yet acknowledged: pending, or never read."""
    [group] = await client.xinfo_groups(prefix + COMMANDS_STREAM)
    return int(group["pending"]) + int(group["lag"])


async def assert_every_deposit_applied_once(
    container: Container, account_id: UUID, count: int
) -> None:
    account = await reads.get_account(
        ledger_context.wiring(container).uow_factory(), account_id, SENDER
    )
    assert account.balance == count * (count + 1) // 2
    assert await entry_count(container, account_id) == count
    assert await inbox_count(container) == count
    async with container.session_manager.session() as session:
        deposited = await session.scalar(
            select(func.count()).select_from(outbox_table).where(outbox_table.c.type == "Deposited")
        )
    assert deposited == count


async def test_a_consumer_killed_mid_batch_and_restarted_applies_every_command_once(
    container: Container,
    settings: Settings,
    redis_client: aioredis.Redis,
    stream_prefix: str,
    tmp_path: Path,
) -> None:
    account_id = await open_account_with_queued_deposits(
        container, redis_client, stream_prefix, COMMANDS
    )
    dsn = dsn_of(settings.database_url)

    async with keel("consume", settings, tmp_path) as first:
        await wait_until(
            lambda: entry_count_at_least(container, account_id, 20),
            "the first deposits",
            within=PROCESS_DEADLINE,
        )
        # Hold the account: the consumer's next deposit waits inside its transaction.
        lock = "SELECT 1 FROM ledger_accounts WHERE id = $1 FOR UPDATE"
        async with holding(dsn, lock, account_id):
            await wait_until(
                lambda: some_backend_waiting(dsn), "a deposit in flight", within=PROCESS_DEADLINE
            )
            first.process.kill()
            await first.wait()
        applied_when_killed = await entry_count(container, account_id)
    assert applied_when_killed < COMMANDS, "the consumer finished before it could be killed"

    async with keel("consume", settings, tmp_path) as second:
        await wait_until(
            lambda: all_handled(container, redis_client, stream_prefix, account_id, COMMANDS),
            "every deposit after the restart",
            within=PROCESS_DEADLINE,
        )
        assert "Traceback" not in second.output()

    await assert_every_deposit_applied_once(container, account_id, COMMANDS)


async def test_a_consumer_stopped_with_sigterm_leaves_nothing_half_done(
    container: Container,
    settings: Settings,
    redis_client: aioredis.Redis,
    stream_prefix: str,
    tmp_path: Path,
) -> None:
    account_id = await open_account_with_queued_deposits(
        container, redis_client, stream_prefix, SHUTDOWN_COMMANDS
    )

    async with keel("consume", settings, tmp_path) as first:
        await wait_until(
            lambda: entry_count_at_least(container, account_id, 20),
            "the first deposits",
            within=PROCESS_DEADLINE,
        )
        first.process.send_signal(signal.SIGTERM)
        code = await first.wait()
    acknowledged = SHUTDOWN_COMMANDS - await unacknowledged(redis_client, stream_prefix)
    applied = await entry_count(container, account_id)

    assert code == 0, first.output()
    assert "Traceback" not in first.output()
    # Every acknowledged command was applied; what was in hand either finished
    # (and was acknowledged) or stays unacknowledged, for the restart below.
    assert applied >= acknowledged
    async with consuming(container):  # the same wiring as `keel consume`, in this process
        await wait_until(
            lambda: all_handled(
                container, redis_client, stream_prefix, account_id, SHUTDOWN_COMMANDS
            ),
            "every deposit after the restart",
            within=PROCESS_DEADLINE,
        )
    await assert_every_deposit_applied_once(container, account_id, SHUTDOWN_COMMANDS)


async def test_a_relay_killed_between_publish_and_mark_republishes_and_consumers_dedupe(
    container: Container,
    settings: Settings,
    redis_client: aioredis.Redis,
    stream_prefix: str,
    tmp_path: Path,
) -> None:
    opened = OpenAccountFactory.build()
    await ledger_context.wiring(container).bus.handle(opened)
    for amount in range(1, 31):
        deposit = DepositFactory.build(account_id=opened.account_id, amount=amount)
        await ledger_context.wiring(container).bus.handle(deposit)
    async with container.session_manager.session() as session:
        written = set((await session.scalars(select(outbox_table.c.message_id))).all())
    events = stream_prefix + EVENTS_STREAM
    dsn = dsn_of(settings.database_url)

    # SHARE mode lets the relay read and lock rows (FOR UPDATE) but not mark them.
    async with (
        holding(dsn, "LOCK TABLE outbox IN SHARE MODE"),
        keel("relay", settings, tmp_path) as first,
    ):
        await wait_until(
            lambda: stream_length_is(redis_client, events, len(written)),
            "the first publication",
            within=PROCESS_DEADLINE,
        )
        await wait_until(
            lambda: some_backend_waiting(dsn), "the relay marking", within=PROCESS_DEADLINE
        )
        first.process.kill()
        await first.wait()
    # The killed relay's PostgreSQL session outlives the process: its backend
    # finishes the statement it was blocked in, and only then reads the closed
    # socket and exits, releasing the key locks it holds. A relay starting
    # before that finds every key taken and publishes nothing (the flake).
    await wait_until(lambda: no_key_locks_held(dsn), "the killed relay's session to end")

    async with container.broker:  # a second relay, in this process
        await container.relay.drain()

    published = Counter(
        UUID(message["message_id"])
        for message in await published_events(redis_client, stream_prefix)
    )
    assert set(published) == written  # nothing lost
    assert set(published.values()) == {2}  # everything of the killed pass published again
    assert await applied_by_a_deduplicating_consumer(settings, stream_prefix) == written


async def entry_count_at_least(container: Container, account_id: UUID, n: int) -> bool:
    return await entry_count(container, account_id) >= n


async def some_backend_waiting(dsn: str) -> bool:
    return await backends_waiting_for_a_lock(dsn) > 0


async def no_key_locks_held(dsn: str) -> bool:
    """No session of this database holds an advisory lock (the relay's per-key locks)."""
    connection = await asyncpg.connect(dsn)
    try:
        held: int = await connection.fetchval(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND database = "
            "(SELECT oid FROM pg_database WHERE datname = current_database())"
        )
    finally:
        await connection.close()
    return held == 0


async def all_handled(
    container: Container, client: aioredis.Redis, prefix: str, account_id: UUID, count: int
) -> bool:
    applied = await entry_count(container, account_id)
    return applied == count and await commands_settled(client, prefix)


async def stream_length_is(client: aioredis.Redis, stream: str, length: int) -> bool:
    return int(await client.xlen(stream)) == length


async def applied_by_a_deduplicating_consumer(settings: Settings, prefix: str) -> set[UUID]:
    """Read ``ledger.events`` as another service would, with an inbox: what it applied."""
    applied: list[UUID] = []

    async def apply(event: Event, uow: LedgerUnitOfWork) -> None:
        async with uow:
            uow.on_commit(lambda: applied.append(event.event_id))
            await uow.commit()

    store = InMemoryStore()
    bus: MessageBus[LedgerUnitOfWork] = MessageBus(
        lambda: InMemoryLedgerUnitOfWork(store), inbox=InMemoryInbox()
    )
    bus.register_event(Event, apply)
    assert settings.broker_url is not None
    audit = RedisStreamsBroker(settings.broker_url, prefix=prefix, poll_ms=20)
    audit.subscribe(EVENTS_STREAM, deliver_to_bus(bus, ledger_registry()), group="audit")
    async with audit:
        client = audit.client

        async def read_all() -> bool:
            [group] = await client.xinfo_groups(prefix + EVENTS_STREAM)
            return bool(group["lag"] == 0 and group["pending"] == 0)

        await wait_until(read_all, "the audit consumer", within=PROCESS_DEADLINE)
    assert len(applied) == len(set(applied)), "an event was applied twice"
    return set(applied)
