"""The relay's wake-up lost (issue 5, scenario 10).

A relay on PostgreSQL sleeps until a writer's ``NOTIFY`` arrives on its
LISTEN connection. That connection can die: an administrator's
``pg_terminate_backend``, or the server restarting while events are being
written. Notifications sent meanwhile are lost for good, so:

- events written while the relay is not listening still go out, by the
  fallback poll (the relay's ``idle_max``);
- the relay listens again by itself, and then a ``NOTIFY`` wakes it as before.

Writers here have their own outbox (and so their own doorbell): only a
``NOTIFY`` or the poll can reach the relay, as from another process.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import asyncpg
import pytest
from sqlalchemy import select

from adapters.database import DatabaseSessionManager
from adapters.outages import is_database_unavailable
from adapters.outbox import Doorbell, SqlAlchemyOutbox, SqlAlchemyOutboxStore, outbox_table
from adapters.relay import OutboxRelay, PostgresListener, create_relay
from tests.faults.harness import LeakCheck
from tests.faults.sample_database import Actors, actors, sample_database
from tests.messaging.factories import OpenCounterFactory
from tests.messaging.sample_service import make_registry, sql_bus
from tests.messaging.support import DEADLINE, RecordingPublisher, wait_until
from tests.support import postgres

pytestmark = pytest.mark.integration

POLL_SECONDS = 0.2
"""The fallback poll of the relays here (``idle_max``); production's is 5 s."""


@dataclass
class Relaying:
    relay: OutboxRelay
    listener: PostgresListener
    publisher: RecordingPublisher


@contextlib.asynccontextmanager
async def relaying(
    manager: DatabaseSessionManager, *, poll: float, reconnect_delay: float
) -> AsyncIterator[Relaying]:
    """A relay with a LISTEN connection, running until the block ends."""
    doorbell = Doorbell()
    listener = PostgresListener(
        manager.engine.url, doorbell, keepalive=0.2, reconnect_delay=reconnect_delay
    )
    publisher = RecordingPublisher()
    relay = OutboxRelay(
        SqlAlchemyOutboxStore(manager.engine),
        publisher,
        idle_max=poll,
        doorbell=doorbell,
        listener=listener,
    )
    task = asyncio.create_task(relay.run())
    try:
        await wait_until(listener.listening.is_set, "the relay's first LISTEN")
        yield Relaying(relay, listener, publisher)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def terminate(admin_dsn: str, pid: int | None) -> None:
    assert pid is not None
    admin = await asyncpg.connect(admin_dsn)
    try:
        await admin.execute("SELECT pg_terminate_backend($1)", pid)
    finally:
        await admin.close()


async def write_events(manager: DatabaseSessionManager, count: int) -> list[str]:
    """Commit ``count`` events through a writer of its own; their message ids."""
    bus = sql_bus(manager, SqlAlchemyOutbox(make_registry()))
    for _ in range(count):
        await bus.handle(OpenCounterFactory.build())
    async with manager.session() as session:
        return [str(m) for m in await session.scalars(select(outbox_table.c.message_id))]


def published(relayed: Relaying, expected: list[str]) -> Callable[[], bool]:
    return lambda: set(expected) <= set(relayed.publisher.ids())


@pytest.fixture(scope="module")
async def shared_url(postgres_admin_dsn: str) -> AsyncIterator[str]:
    async with sample_database(postgres_admin_dsn, "keel_fault_wakeup") as url:
        yield url


@pytest.fixture
async def shared(
    shared_url: str, postgres_admin_dsn: str, leak_check: LeakCheck
) -> AsyncIterator[Actors]:
    async with actors(shared_url, postgres_admin_dsn, leak_check) as made:
        yield made


async def test_events_written_while_the_listen_connection_is_dead_go_out_by_polling(
    shared: Actors, postgres_admin_dsn: str
) -> None:
    writer, relay_database = shared.manager("writer"), shared.manager("relay")
    # A reconnect far beyond the test: only the poll can publish what follows.
    async with relaying(relay_database, poll=POLL_SECONDS, reconnect_delay=600) as relayed:
        await terminate(postgres_admin_dsn, relayed.listener.backend_pid)
        await wait_until(lambda: not relayed.listener.listening.is_set(), "the LISTEN lost")

        written = await write_events(writer, 3)

        await wait_until(published(relayed, written), "the events published by polling")
        assert not relayed.listener.listening.is_set()


async def test_the_relay_listens_again_by_itself_and_is_woken_by_notify(
    shared: Actors, postgres_admin_dsn: str
) -> None:
    writer, relay_database = shared.manager("writer"), shared.manager("relay")
    # A poll far beyond the test: only a NOTIFY can publish what follows in time.
    async with relaying(relay_database, poll=600, reconnect_delay=0.05) as relayed:
        killed = relayed.listener.backend_pid
        await terminate(postgres_admin_dsn, killed)
        await wait_until(
            lambda: relayed.listener.connections == 2 and relayed.listener.listening.is_set(),
            "the relay listening again",
        )

        written = await write_events(writer, 2)

        await wait_until(published(relayed, written), "the events published on NOTIFY")
        assert relayed.listener.backend_pid != killed


# -- the server restarted while events are written -------------------------------------------


@pytest.fixture(scope="module")
async def cluster() -> AsyncIterator[postgres.ThrowawayCluster]:
    try:
        started = await postgres.start_throwaway_cluster()
    except postgres.PostgresUnavailable as exc:
        if os.environ.get("CI"):
            pytest.fail(f"{exc} (CI never skips PostgreSQL tests)")
        pytest.skip(str(exc))
    try:
        yield started
    finally:
        await started.stop()


@pytest.fixture
async def own(cluster: postgres.ThrowawayCluster, leak_check: LeakCheck) -> AsyncIterator[Actors]:
    async with (
        sample_database(cluster.dsn, "keel_fault_wakeup") as url,
        actors(url, cluster.dsn, leak_check) as made,
    ):
        yield made


async def test_events_written_across_a_server_restart_are_all_published(
    own: Actors, cluster: postgres.ThrowawayCluster
) -> None:
    writer, relay_database = own.manager("writer"), own.manager("relay")
    relay = create_relay(relay_database.engine, publisher := RecordingPublisher())
    listener = relay.listener
    assert listener is not None
    bus = sql_bus(writer, SqlAlchemyOutbox(make_registry()))
    restarted = asyncio.Event()
    committed_after_restart = 0
    stop = asyncio.Event()

    async def keep_writing() -> None:
        nonlocal committed_after_restart
        while not stop.is_set():
            try:
                await bus.handle(OpenCounterFactory.build())
            except Exception as exc:
                if not is_database_unavailable(exc):
                    raise
            else:
                committed_after_restart += 1 if restarted.is_set() else 0
            await asyncio.sleep(0.01)

    relaying_task = asyncio.create_task(relay.run())
    writing = asyncio.create_task(keep_writing())
    try:
        await wait_until(lambda: len(publisher.sent) >= 3, "events published before the restart")
        await cluster.restart()
        restarted.set()
        await wait_until(lambda: committed_after_restart >= 3, "events written after it")
        stop.set()
        await asyncio.wait_for(writing, DEADLINE)
        store = SqlAlchemyOutboxStore(writer.engine)

        async def nothing_pending() -> bool:
            return await store.pending_count() == 0

        await wait_until(nothing_pending, "every committed event published")
        await wait_until(lambda: listener.connections >= 2, "the relay listening again")
    finally:
        stop.set()
        relaying_task.cancel()
        await asyncio.gather(relaying_task, writing, return_exceptions=True)

    async with writer.session() as session:
        written = {str(m) for m in await session.scalars(select(outbox_table.c.message_id))}
    assert set(publisher.ids()) == written
