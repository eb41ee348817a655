"""Cancellation anywhere in a request: rolled back, nothing partial, nothing leaked.

A cancellation mid-request runs 100 rounds, one around COMMIT 25, each on
the app's own engine (a unique ``application_name``) while the test watches
from a connection of its own. After every round: no connection checked out,
no session of the app left in a transaction, no trace of the cancelled
write, and the next request works.
The slow statement is a trigger sleeping in ``pg_sleep`` (see
``tests.faults.harness``), so the cancellation is known to land while
PostgreSQL works for the request.

httpx's ASGITransport runs the app inside the calling task, so cancelling
that task is what an ASGI server does when the client goes away mid-request
(Hypercorn on disconnect, uvicorn on shutdown): the request's task is
cancelled wherever it is.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Any
from uuid import UUID

import pytest
from sqlalchemy import text

from adapters.unit_of_work import SqlAlchemyUnitOfWork
from domain.aggregate import Aggregate, Event
from domain.ledger.commands import Deposit
from domain.ledger.events import Deposited
from service_layer.ledger import handlers
from service_layer.unit_of_work import AbstractUnitOfWork
from tests.faults.harness import checked_out_of
from tests.ledger.factories import OWNER
from tests.ledger.faults.conftest import MakeLedger
from tests.ledger.faults.harness import (
    GATED_COMMIT,
    SLOW_INSERT,
    FaultDatabase,
    LedgerApp,
    Probe,
    fault_reference,
)

pytestmark = pytest.mark.e2e

ROUNDS = 100
"""Rounds of each cancellation mid-request."""
COMMIT_ROUNDS = 25
"""Rounds of the scenarios around COMMIT, whose cancellation point is exact, not sampled."""


@pytest.fixture
async def probe(faults: FaultDatabase) -> AsyncIterator[Probe]:
    async with faults.probe() as opened:
        yield opened


async def assert_round_left_nothing(
    ledger: LedgerApp, probe: Probe, account_id: str, reference: str
) -> None:
    """The cancelled write left no entry, no connection out, no open transaction;
    and the account takes the next deposit."""
    assert await probe.entries_with(reference) == 0
    assert await probe.outbox_rows_with(reference) == 0
    assert checked_out_of(ledger.engine) == 0
    assert await probe.sessions_in_transaction(ledger.application_name) == []
    response = await ledger.deposit(account_id, amount=1)
    assert response.status_code == 201, response.text


async def test_a_request_cancelled_during_a_slow_statement_keeps_nothing(
    ledger: LedgerApp, probe: Probe
) -> None:
    account_id = await ledger.open_account()

    for _ in range(ROUNDS):
        reference = fault_reference(SLOW_INSERT)
        request = asyncio.create_task(ledger.deposit(account_id, amount=50, reference=reference))
        await probe.wait_for_session(ledger.application_name, wait_event="PgSleep")
        request.cancel()
        with pytest.raises(asyncio.CancelledError):
            await request
        await assert_round_left_nothing(ledger, probe, account_id, reference)

    assert (await probe.account(account_id)).balance == ROUNDS


async def test_a_timeout_around_a_service_call_rolls_the_call_back(
    ledger: LedgerApp, probe: Probe
) -> None:
    account_id = await ledger.open_account()

    for round_ in range(ROUNDS):
        reference = fault_reference(SLOW_INSERT)
        # From 0 to 9 ms: most rounds time out in the sleeping INSERT, the
        # first ones while taking the connection or locking the account.
        with pytest.raises(TimeoutError):
            async with asyncio.timeout((round_ % 10) / 1000):
                await handlers.deposit(
                    Deposit(
                        principal=OWNER,
                        account_id=UUID(account_id),
                        amount=50,
                        reference=reference,
                    ),
                    ledger.unit_of_work(),
                )
        await assert_round_left_nothing(ledger, probe, account_id, reference)

    assert (await probe.account(account_id)).balance == ROUNDS


async def consume(ledger: LedgerApp, inbox: asyncio.Queue[tuple[str, str]]) -> None:
    """A consumer-like task: applies each (account, reference) deposit it is handed."""
    while True:
        account_id, reference = await inbox.get()
        await handlers.deposit(
            Deposit(principal=OWNER, account_id=UUID(account_id), amount=1, reference=reference),
            ledger.unit_of_work(),
        )
        inbox.task_done()


async def test_a_consumer_cancelled_mid_message_rolls_back_and_its_successor_goes_on(
    ledger: LedgerApp, probe: Probe
) -> None:
    account_id = await ledger.open_account()

    for round_ in range(ROUNDS):
        inbox: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
        consumer = asyncio.create_task(consume(ledger, inbox))
        slow = fault_reference(SLOW_INSERT)
        await inbox.put((account_id, slow))
        await probe.wait_for_session(ledger.application_name, wait_event="PgSleep")
        consumer.cancel()
        with pytest.raises(asyncio.CancelledError):
            await consumer
        assert await probe.entries_with(slow) == 0
        assert checked_out_of(ledger.engine) == 0
        assert await probe.sessions_in_transaction(ledger.application_name) == []

        # A fresh queue: the cancelled consumer never finished its message.
        inbox = asyncio.Queue()
        successor = asyncio.create_task(consume(ledger, inbox))
        await inbox.put((account_id, f"after-round-{round_}"))
        async with asyncio.timeout(10):
            await inbox.join()
        successor.cancel()
        with pytest.raises(asyncio.CancelledError):
            await successor

    assert (await probe.account(account_id)).balance == ROUNDS


class HoldAfterCommit:
    """Holds the deposits of ``references`` just after their COMMIT succeeded.

    The cancellation then reaches the request after the database committed
    and before anyone heard of it: the other half of "all or nothing".
    """

    def __init__(self) -> None:
        self.references: set[str] = set()
        self.held = asyncio.Event()

    async def before_commit(
        self, uow: AbstractUnitOfWork, raised: Sequence[tuple[Aggregate[Any], Event]]
    ) -> None:
        for _, event in raised:
            if isinstance(event, Deposited) and event.reference in self.references:
                self.references.discard(event.reference)
                uow.on_commit(self.hold)

    async def hold(self) -> None:
        self.held.set()
        await asyncio.Event().wait()  # until cancelled


async def test_a_request_cancelled_while_its_commit_waits_keeps_nothing_and_is_applied_on_retry(
    ledger: LedgerApp, probe: Probe
) -> None:
    account_id = await ledger.open_account()

    for _ in range(COMMIT_ROUNDS):
        reference = fault_reference(GATED_COMMIT)
        await probe.connection.execute("SELECT pg_advisory_lock(hashtext($1))", reference)
        try:
            request = asyncio.create_task(ledger.deposit(account_id, amount=1, reference=reference))
            await probe.wait_for_session(ledger.application_name, wait_event="advisory")
            request.cancel()
            with pytest.raises(asyncio.CancelledError):
                await request
        finally:
            await probe.connection.execute("SELECT pg_advisory_unlock(hashtext($1))", reference)
        assert await probe.entries_with(reference) == 0
        assert checked_out_of(ledger.engine) == 0

        retry = await ledger.deposit(account_id, amount=1, reference=reference)

        assert retry.status_code == 201, retry.text
        assert await probe.entries_with(reference) == 1

    assert (await probe.account(account_id)).balance == COMMIT_ROUNDS


async def test_a_request_cancelled_after_its_commit_keeps_all_and_its_retry_is_a_replay(
    ledger: LedgerApp, probe: Probe
) -> None:
    account_id = await ledger.open_account()
    gate = HoldAfterCommit()
    ledger.hooks.append(gate)

    for round_ in range(COMMIT_ROUNDS):
        reference = f"held-after-commit-{round_}"
        gate.references.add(reference)
        gate.held.clear()
        request = asyncio.create_task(ledger.deposit(account_id, amount=1, reference=reference))
        async with asyncio.timeout(10):
            await gate.held.wait()
        request.cancel()
        with pytest.raises(asyncio.CancelledError):
            await request
        assert await probe.entries_with(reference) == 1
        assert await probe.outbox_rows_with(reference) == 1
        assert checked_out_of(ledger.engine) == 0

        retry = await ledger.deposit(account_id, amount=1, reference=reference)

        assert retry.status_code == 200, retry.text
        assert await probe.entries_with(reference) == 1

    row = await probe.account(account_id)
    assert (row.balance, row.entry_count) == (COMMIT_ROUNDS, COMMIT_ROUNDS)


async def test_a_unit_of_work_cancelled_again_while_it_closes_still_returns_its_connection(
    make_ledger: MakeLedger, probe: Probe
) -> None:
    """The kernel's close runs to completion: hammered with cancellations while it
    rolls back, the unit of work still hands its connection back to the pool,
    instead of SQLAlchemy throwing it away half-closed."""
    ledger = await make_ledger(db_pool_size=1, db_max_overflow=0)
    account_id = await ledger.open_account()
    backend = await backend_pid(ledger)

    for round_ in range(COMMIT_ROUNDS):
        parked = asyncio.Event()
        reference = f"cancelled-while-closing-{round_}"
        work = asyncio.create_task(write_then_wait(ledger, account_id, reference, parked))
        async with asyncio.timeout(10):
            await parked.wait()
        while not work.done():
            work.cancel()
            await asyncio.sleep(0)
        with pytest.raises(asyncio.CancelledError):
            await work

        assert checked_out_of(ledger.engine) == 0
        assert await probe.sessions_in_transaction(ledger.application_name) == []
        assert await probe.entries_with(reference) == 0
        assert await backend_pid(ledger) == backend, "the connection was thrown away"


async def write_then_wait(
    ledger: LedgerApp, account_id: str, reference: str, parked: asyncio.Event
) -> None:
    """A deposit written and flushed, then parked inside its unit of work until cancelled."""
    uow = ledger.unit_of_work()
    assert isinstance(uow, SqlAlchemyUnitOfWork)
    async with uow:
        account = await uow.accounts.get_for_update(UUID(account_id))
        assert account is not None
        uow.entries.add(account.deposit(1, reference=reference))
        await uow.session.flush()
        parked.set()
        await asyncio.Event().wait()


async def backend_pid(ledger: LedgerApp) -> int:
    """The server process behind the connection the app's next unit of work gets."""
    uow = ledger.unit_of_work()
    assert isinstance(uow, SqlAlchemyUnitOfWork)
    async with uow:
        pid: int = (await uow.session.execute(text("SELECT pg_backend_pid()"))).scalar_one()
    return pid
