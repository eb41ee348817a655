"""The service did its work, then COMMIT failed: the client must never hear "done".

Each fault strikes after the deposit's rows and its outbox row were written
in the transaction: a deferred constraint that PostgreSQL checks at COMMIT,
a serialization failure at COMMIT (write skew between two SERIALIZABLE
transactions), a commit hook that raises, a SQLAlchemy ``before_commit``
session event that raises. Each time the client gets a problem document
(409 or 5xx), and neither the entry, nor the balance change, nor the outbox
row exist. And after a 2xx, a read sees the write.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import pytest
from sqlalchemy import event, func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from adapters.database import DatabaseSessionManager
from adapters.ledger.tables import accounts
from adapters.unit_of_work import SqlAlchemyUnitOfWork
from domain.aggregate import Aggregate, Event
from service_layer.unit_of_work import AbstractUnitOfWork
from tests.ledger.e2e.api import assert_problem
from tests.ledger.faults.conftest import MakeLedger
from tests.ledger.faults.harness import REFUSED_AT_COMMIT, FaultDatabase, LedgerApp, fault_reference

pytestmark = pytest.mark.e2e

BARRIER_SECONDS = 10.0


def deposited_account(response: httpx.Response) -> str:
    """The account id in the URL of a deposit request."""
    return response.url.path.split("/")[-2]


async def assert_nothing_kept(
    faults: FaultDatabase, account_id: str, reference: str, *, balance: int
) -> None:
    """No entry, no outbox row for ``reference``, and the account as it was."""
    assert await faults.entries_with(reference) == 0
    assert await faults.outbox_rows_with(reference) == 0
    assert (await faults.account(account_id)).balance == balance


class FailingHook:
    """A commit hook, run after the outbox wrote its row, that raises."""

    async def before_commit(
        self, uow: AbstractUnitOfWork, raised: Sequence[tuple[Aggregate[Any], Event]]
    ) -> None:
        raise RuntimeError("the test's commit hook refuses this commit")


class CombinedBalanceCheck:
    """Reads the sum of two accounts just before COMMIT, as a rule over both would.

    Two deposits into the two accounts, each reading the other's balance,
    are the textbook write skew: under SERIALIZABLE one of them must fail.
    The first ``meetings`` units of work wait for each other after their last
    statement, so that both reach COMMIT with all their work done.
    """

    def __init__(self, account_ids: Sequence[str], meetings: int = 2) -> None:
        self.account_ids = [UUID(account_id) for account_id in account_ids]
        self.barrier = asyncio.Barrier(meetings)
        self.meetings = meetings
        self.calls = 0
        self.reached_commit = 0

    async def before_commit(
        self, uow: AbstractUnitOfWork, raised: Sequence[tuple[Aggregate[Any], Event]]
    ) -> None:
        assert isinstance(uow, SqlAlchemyUnitOfWork)
        self.calls += 1
        first_attempts = self.calls <= self.meetings
        await uow.session.flush()
        await uow.session.execute(
            select(func.sum(accounts.c.balance)).where(accounts.c.id.in_(self.account_ids))
        )
        if first_attempts:
            await asyncio.wait_for(self.barrier.wait(), BARRIER_SECONDS)
            self.reached_commit += 1


async def test_a_commit_refused_by_a_deferred_constraint_answers_500_and_keeps_nothing(
    ledger: LedgerApp, faults: FaultDatabase
) -> None:
    account_id = await ledger.open_account()
    await ledger.deposit(account_id, amount=100)
    reference = fault_reference(REFUSED_AT_COMMIT)

    response = await ledger.deposit(account_id, amount=5, reference=reference)

    assert_problem(response, 500, "internal_error")
    await assert_nothing_kept(faults, account_id, reference, balance=100)


async def test_a_serialization_failure_at_commit_answers_409_and_keeps_nothing(
    make_ledger: MakeLedger, faults: FaultDatabase
) -> None:
    ledger = await make_ledger(engine_options={"isolation_level": "SERIALIZABLE"}, retry_attempts=1)
    first, second = await ledger.open_account(), await ledger.open_account()
    check = CombinedBalanceCheck([first, second])
    ledger.hooks.append(check)
    references = {first: "skew-first-" + first, second: "skew-second-" + second}

    responses = await asyncio.gather(
        *(
            ledger.deposit(account, amount=10, reference=references[account])
            for account in references
        )
    )

    assert check.reached_commit == 2, "both transactions did all their work before COMMIT"
    assert sorted(response.status_code for response in responses) == [201, 409]
    (refused,) = [r for r in responses if r.status_code == 409]
    (accepted,) = [r for r in responses if r.status_code == 201]
    assert_problem(refused, 409, "concurrent_update")
    refused_account = deposited_account(refused)
    await assert_nothing_kept(faults, refused_account, references[refused_account], balance=0)
    assert await ledger.balance(deposited_account(accepted)) == 10


async def test_with_retries_both_deposits_of_a_write_skew_are_applied_once(
    make_ledger: MakeLedger, faults: FaultDatabase
) -> None:
    ledger = await make_ledger(engine_options={"isolation_level": "SERIALIZABLE"})
    first, second = await ledger.open_account(), await ledger.open_account()
    check = CombinedBalanceCheck([first, second])
    ledger.hooks.append(check)
    references = {first: "skew-first-" + first, second: "skew-second-" + second}

    responses = await asyncio.gather(
        *(
            ledger.deposit(account, amount=10, reference=references[account])
            for account in references
        )
    )

    assert [response.status_code for response in responses] == [201, 201]
    assert check.calls == 3, "the loser of the write skew ran once more"
    for account, reference in references.items():
        assert await faults.entries_with(reference) == 1
        assert await faults.outbox_rows_with(reference) == 1
        assert await ledger.balance(account) == 10


async def test_a_commit_hook_that_raises_answers_500_and_keeps_nothing(
    ledger: LedgerApp, faults: FaultDatabase
) -> None:
    account_id = await ledger.open_account()
    ledger.hooks.append(FailingHook())

    response = await ledger.deposit(account_id, amount=5, reference="hook-refused-" + account_id)

    assert_problem(response, 500, "internal_error")
    await assert_nothing_kept(faults, account_id, "hook-refused-" + account_id, balance=0)


async def test_a_before_commit_session_event_that_raises_answers_500_and_keeps_nothing(
    make_ledger: MakeLedger, faults: FaultDatabase
) -> None:
    class RefusingSession(Session):
        refusing = False

    @event.listens_for(RefusingSession, "before_commit")
    def _refuse(session: Session) -> None:
        if RefusingSession.refusing:
            raise RuntimeError("the test's before_commit listener refuses this commit")

    ledger = await make_ledger(session_options={"sync_session_class": RefusingSession})
    account_id = await ledger.open_account()
    RefusingSession.refusing = True

    response = await ledger.deposit(account_id, amount=5, reference="event-refused-" + account_id)

    assert_problem(response, 500, "internal_error")
    await assert_nothing_kept(faults, account_id, "event-refused-" + account_id, balance=0)


async def test_after_a_refused_commit_the_next_deposit_is_applied_and_read_back(
    ledger: LedgerApp, faults: FaultDatabase
) -> None:
    account_id = await ledger.open_account()
    refused = await ledger.deposit(
        account_id, amount=5, reference=fault_reference(REFUSED_AT_COMMIT)
    )
    assert refused.status_code == 500

    accepted = await ledger.deposit(account_id, amount=7, reference="after-" + account_id)

    assert accepted.status_code == 201, accepted.text
    assert await ledger.balance(account_id) == 7
    entries = await ledger.client.get(f"/accounts/{account_id}/entries")
    assert [entry["reference"] for entry in entries.json()["items"]] == ["after-" + account_id]
    assert await faults.outbox_rows_with("after-" + account_id) == 1


@pytest.mark.integration
async def test_on_sqlite_a_refused_commit_leaves_nothing_on_the_pooled_connection(
    tmp_path: Path,
) -> None:
    """SQLite keeps its transaction open when COMMIT fails on a deferred constraint;
    the unit of work must end it, or the next one on that connection inherits the
    refused row (and cannot commit anything either)."""
    manager = DatabaseSessionManager()
    manager.init(f"sqlite+aiosqlite:///{tmp_path / 'deferred.db'}")
    try:
        async with manager.connect() as connection:
            await connection.execute(text("CREATE TABLE parent (id INTEGER PRIMARY KEY)"))
            await connection.execute(
                text(
                    "CREATE TABLE child (id INTEGER PRIMARY KEY, parent_id INTEGER"
                    " REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED)"
                )
            )
        with pytest.raises(IntegrityError):
            await insert_orphan(manager)

        async with SqlAlchemyUnitOfWork(manager.session_factory) as uow:
            await uow.session.execute(text("INSERT INTO parent VALUES (7)"))
            await uow.commit()
        async with manager.session() as session:
            children = (await session.execute(text("SELECT count(*) FROM child"))).scalar_one()
            parents = (await session.execute(text("SELECT count(*) FROM parent"))).scalar_one()
        assert (children, parents) == (0, 1)
    finally:
        await manager.close()


async def insert_orphan(manager: DatabaseSessionManager) -> None:
    """A child row whose parent does not exist: SQLite refuses it only at COMMIT."""
    async with SqlAlchemyUnitOfWork(manager.session_factory) as uow:
        await uow.session.execute(text("INSERT INTO child VALUES (1, 404)"))
        await uow.commit()
