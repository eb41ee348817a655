"""PostgreSQL down, then back (issue 5, scenario 4).

The app, the outbox relay and the command consumer reach PostgreSQL through
a TCP proxy of the test's own (:mod:`tests.faults.tcp_proxy`), which takes
the database away for them only: ``refuse()`` is a server that is down
(connections reset, new ones refused), ``go_silent()`` a host that no longer
answers. What must hold:

- requests fail fast with a 503 ``database_unavailable`` problem carrying
  ``Retry-After`` — within the configured connect timeout even when nothing
  answers — and never a 500; ``/ready`` answers 503 meanwhile;
- when the database is back, the service resumes by itself;
- the relay and the consumer back off during the outage and afterwards
  publish / apply every message, none lost and none applied twice.

A database that is up but too slow — a statement cut off by
``DB_STATEMENT_TIMEOUT_MS`` — gets the same retryable 503, with its own code.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from typing import Any
from uuid import UUID

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from adapters.relay import create_relay
from adapters.serialization import encode
from domain.ledger.commands import Deposit
from entrypoints.consumer import subscribe_all
from entrypoints.ledger.messages import CONSUMER_GROUP
from entrypoints.signed_commands import command_envelope, sign
from tests.faults.harness import LeakCheck, unique_application_name
from tests.faults.redis_server import RedisStreams, redis_streams
from tests.faults.tcp_proxy import TcpProxy
from tests.ledger.e2e.api import assert_problem, balance_of, deposit, open_account
from tests.ledger.factories import OWNER
from tests.ledger.faults.conftest import MakeLedger
from tests.ledger.faults.harness import SLOW_INSERT, fault_reference
from tests.ledger.faults.ledger_under_test import Ledger, migrated_database, running_ledger
from tests.messaging.support import DEADLINE, RecordingPublisher, wait_until
from tests.support import postgres
from tests.support.tokens import SIGNING_KEY

pytestmark = pytest.mark.e2e

CONNECT_TIMEOUT = 1.0
"""The bound a request waits for a connection from a server that never answers (s)."""
COMMANDS_STREAM = "ledger.commands"


@pytest.fixture
async def proxy(postgres_admin_dsn: str) -> AsyncIterator[TcpProxy]:
    server = make_url(postgres_admin_dsn)
    running = TcpProxy(server.host or "127.0.0.1", server.port or 5432)
    await running.start()
    try:
        yield running
    finally:
        await running.stop()


@pytest.fixture
async def database(postgres_admin_dsn: str) -> AsyncIterator[str]:
    """The name of a migrated database of this test's own on the shared server."""
    async with migrated_database(postgres_admin_dsn, "keel_fault_down") as name:
        yield name


@pytest.fixture
async def redis() -> AsyncIterator[RedisStreams]:
    async with redis_streams() as streams:
        yield streams


@pytest.fixture
async def ledger(
    postgres_admin_dsn: str,
    database: str,
    proxy: TcpProxy,
    redis: RedisStreams,
    leak_check: LeakCheck,
) -> AsyncIterator[Ledger]:
    """The app, and everything it wires, connected to PostgreSQL through ``proxy``."""
    name = unique_application_name("down")
    proxied = postgres.sqlalchemy_url(
        make_url(postgres_admin_dsn).set(port=proxy.port).render_as_string(False), database
    )
    async with running_ledger(
        proxied,
        name,
        db_connect_timeout=CONNECT_TIMEOUT,
        db_pool_timeout=CONNECT_TIMEOUT,
        broker_url=redis.url,
        stream_prefix=redis.prefix,
        broker_max_deliveries=2,
        broker_claim_idle_ms=100,
    ) as running:
        leak_check.watch(running.engine, admin_dsn=postgres_admin_dsn, application_name=name)
        yield running
        await leak_check.verify()


async def test_a_request_while_the_database_is_down_gets_a_503_with_retry_after(
    ledger: Ledger, proxy: TcpProxy
) -> None:
    account = await open_account(ledger.http)
    await proxy.refuse()

    response = await asyncio.wait_for(deposit(ledger.http, account["id"]), DEADLINE)

    assert_problem(response, 503, "database_unavailable")
    assert response.headers["Retry-After"].isdigit()


async def test_ready_answers_503_while_the_database_is_down(
    ledger: Ledger, proxy: TcpProxy
) -> None:
    assert (await ledger.http.get("/ready")).status_code == 200
    await proxy.refuse()

    response = await asyncio.wait_for(ledger.http.get("/ready"), DEADLINE)

    assert_problem(response, 503, "database_unavailable")


async def test_a_database_that_never_answers_fails_within_the_connect_timeout(
    ledger: Ledger, proxy: TcpProxy
) -> None:
    account = await open_account(ledger.http)
    await proxy.go_silent()
    # Let the event loop read the resets: the pool then knows its connections are
    # gone and opens a new one, which is the connection that never answers.
    await asyncio.sleep(0.1)

    # Without a connect timeout this waits for asyncpg's 60 s: DEADLINE would fail it.
    response = await asyncio.wait_for(deposit(ledger.http, account["id"]), DEADLINE)

    assert_problem(response, 503, "database_unavailable")
    assert proxy.accepted > 1  # it did get a connection, which never answered


async def test_the_service_resumes_by_itself_when_the_database_is_back(
    ledger: Ledger, proxy: TcpProxy
) -> None:
    account = await open_account(ledger.http)
    await proxy.refuse()
    assert (await deposit(ledger.http, account["id"])).status_code == 503
    assert (await ledger.http.get("/ready")).status_code == 503

    await proxy.restore()

    assert (await ledger.http.get("/ready")).status_code == 200
    assert (await deposit(ledger.http, account["id"], amount=40)).status_code == 201
    assert await balance_of(ledger.http, account["id"]) == 40


class StallingPublisher(RecordingPublisher):
    """Holds its first publish until released: a relay pass caught mid-way by the outage."""

    def __init__(self) -> None:
        super().__init__()
        self.stalled = asyncio.Event()
        self.release = asyncio.Event()

    async def publish(
        self, stream: str, message: Mapping[str, Any], headers: Mapping[str, str] | None = None
    ) -> None:
        if not self.stalled.is_set():
            self.stalled.set()
            await self.release.wait()
        await super().publish(stream, message, headers)


async def outbox_state(dsn: str) -> tuple[set[str], int]:
    """Every outbox message id, and how many rows are still pending, read past the proxy."""
    connection = await asyncpg.connect(dsn)
    try:
        rows = await connection.fetch("SELECT message_id, published_at FROM outbox")
    finally:
        await connection.close()
    pending = sum(1 for row in rows if row["published_at"] is None)
    return {str(row["message_id"]) for row in rows}, pending


async def test_the_relay_publishes_every_event_after_an_outage_cut_its_pass(
    ledger: Ledger, proxy: TcpProxy, postgres_admin_dsn: str, database: str
) -> None:
    direct = make_url(postgres_admin_dsn).set(database=database).render_as_string(False)
    account = await open_account(ledger.http)
    for amount in (10, 20, 30):
        assert (await deposit(ledger.http, account["id"], amount=amount)).status_code == 201
    publisher = StallingPublisher()
    relay = create_relay(ledger.engine, publisher)
    relaying = asyncio.create_task(relay.run())
    try:
        await asyncio.wait_for(publisher.stalled.wait(), DEADLINE)
        await proxy.refuse()  # the pass loses its connection before it could mark anything
        publisher.release.set()
        assert (await deposit(ledger.http, account["id"])).status_code == 503
        await proxy.restore()
        assert (await deposit(ledger.http, account["id"], amount=40)).status_code == 201

        async def all_published() -> bool:
            _, pending = await outbox_state(direct)
            return pending == 0

        await wait_until(all_published, "every outbox row marked published")
    finally:
        relaying.cancel()
        await asyncio.gather(relaying, return_exceptions=True)

    written, _ = await outbox_state(direct)
    assert len(written) == 5  # AccountOpened and four deposits; the 503 wrote nothing
    assert set(publisher.ids()) == written
    assert len(publisher.ids()) > len(written)  # the cut pass's messages went out again


async def test_the_consumer_keeps_commands_sent_during_an_outage_and_applies_each_once(
    ledger: Ledger, proxy: TcpProxy, redis: RedisStreams
) -> None:
    account = await open_account(ledger.http)
    broker = ledger.container.broker
    broker.outage_pause_min, broker.outage_pause_max = 0.05, 0.2
    subscribe_all(ledger.container)
    commands = [
        Deposit(
            principal=OWNER,
            account_id=UUID(account["id"]),
            amount=amount,
            reference=f"outage-{amount}",
        )
        for amount in (1, 2, 4, 8)
    ]
    await proxy.refuse()

    async with broker:
        for command in commands:
            await broker.publish(
                COMMANDS_STREAM,
                command_envelope(ledger.container.registry, command),
                {
                    "sig": sign(
                        encode(command_envelope(ledger.container.registry, command)), SIGNING_KEY
                    )
                },
            )

        async def redelivered_past_the_limit() -> bool:
            deliveries = await redis.most_deliveries(COMMANDS_STREAM, CONSUMER_GROUP)
            return deliveries > broker.max_deliveries

        # Each failed on the database more often than a failing message may.
        await wait_until(redelivered_past_the_limit, "redeliveries during the outage")
        await proxy.restore()

        async def all_applied() -> bool:
            return await redis.pending(COMMANDS_STREAM, CONSUMER_GROUP) == 0

        await wait_until(all_applied, "every command acknowledged after the outage")

    assert await balance_of(ledger.http, account["id"]) == 15
    assert await redis.length(COMMANDS_STREAM + ".dead") == 0


async def test_a_statement_cut_off_by_the_statement_timeout_answers_a_retryable_503(
    make_ledger: MakeLedger,
) -> None:
    ledger = await make_ledger(db_statement_timeout_ms=200)
    account_id = await ledger.open_account()

    response = await ledger.deposit(account_id, reference=fault_reference(SLOW_INSERT))

    assert_problem(response, 503, "database_timeout")
    assert response.headers["Retry-After"].isdigit()
