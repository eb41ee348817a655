"""Many concurrent requests on PostgreSQL, then the contract's invariants.

Every request runs through the service layer in a unit of work of its own
(its own session and connection, real commits), all at once under
``asyncio.gather``. Afterwards the database must show:

1. no negative balance;
2. every balance equal to the sum of its entries, and to what the successful
   requests say they did;
3. every transfer whole: both entries or neither;
4. replaying every successful request changes nothing and answers the first
   result.

Each test also proves that its requests raced (so that one that stopped
racing fails): where the loser's commit is refused — a unique key taken by a
twin — at least one unit of work counts a conflict (``uow.conflicts``);
where the handlers serialise on row locks instead (``get_for_update``, so
nothing is refused), :class:`Overlap` shows that commits happened while
other requests' transactions were open, i.e. those waited for the lock.
The unique-key races are staged: :class:`MeetBeforeCommit` holds every
first attempt at its commit until all have read.
"""

from __future__ import annotations

import asyncio
import random
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID, uuid4

import pytest
from sqlalchemy import select

from adapters.ledger.tables import accounts, entries, transfers
from adapters.ledger.unit_of_work import SqlAlchemyLedgerUnitOfWork
from domain.aggregate import Aggregate, Event
from domain.ledger.commands import Deposit, OpenAccount, TransferFunds, Withdraw
from domain.ledger.errors import InsufficientFunds, ReferenceReused
from service_layer.ledger import handlers, reads
from service_layer.ledger.views import AccountView, EntryView, Outcome, TransferView
from service_layer.retry import RetryPolicy
from service_layer.unit_of_work import AbstractUnitOfWork
from tests.ledger.conftest import SqlUowFactory
from tests.ledger.factories import (
    OWNER,
    MovementArgs,
    OpenAccountArgs,
    TransferArgs,
    open_funded_account,
)

pytestmark = pytest.mark.integration

PATIENT = RetryPolicy(attempts=10, base_delay=0.005, max_delay=0.05)
ACCOUNTS = 4
OPENING_BALANCE = 1_000
REQUESTS = 150
TWINS = 20
"""Requests sent twice at the same moment, with the same reference."""


@dataclass
class Overlap:
    """How many transactions are open at once, and how many commits had company."""

    open: int = 0
    commits_while_others_open: int = 0
    made: list[SqlAlchemyLedgerUnitOfWork] = field(default_factory=list)

    def factory(self, uow_factory: SqlUowFactory) -> SqlUowFactory:
        """``uow_factory``'s units of work, watched by this overlap."""
        overlap = self

        class Watched(SqlAlchemyLedgerUnitOfWork):
            async def _begin(self) -> None:
                await super()._begin()
                overlap.open += 1

            async def _commit(self) -> None:
                overlap.commits_while_others_open += overlap.open > 1
                await super()._commit()

            async def _close(self) -> None:
                overlap.open -= 1
                await super()._close()

        def make() -> SqlAlchemyLedgerUnitOfWork:
            uow = Watched(uow_factory().session_factory)
            self.made.append(uow)
            return uow

        return make

    @property
    def conflicts(self) -> int:
        return sum(uow.conflicts for uow in self.made)


class MeetBeforeCommit:
    """A commit hook: each unit of work's first commit waits until ``parties`` have come."""

    def __init__(self, parties: int) -> None:
        self.barrier = asyncio.Barrier(parties)
        self.met: set[int] = set()

    async def before_commit(
        self, uow: AbstractUnitOfWork, raised: Sequence[tuple[Aggregate[Any], Event]]
    ) -> None:
        if id(uow) not in self.met:
            self.met.add(id(uow))
            await asyncio.wait_for(self.barrier.wait(), timeout=10)


def meeting(uow_factory: SqlUowFactory, parties: int) -> list[SqlAlchemyLedgerUnitOfWork]:
    """``parties`` units of work whose first commits meet (see :class:`MeetBeforeCommit`)."""
    hook = MeetBeforeCommit(parties)
    uows = [uow_factory() for _ in range(parties)]
    for uow in uows:
        uow.hooks.append(hook)
    return uows


COMMANDS_BY_KIND: dict[str, tuple[Callable[..., Awaitable[Outcome[Any]]], type[Any]]] = {
    "deposit": (handlers.deposit, Deposit),
    "withdraw": (handlers.withdraw, Withdraw),
    "transfer": (handlers.transfer, TransferFunds),
}


@dataclass(frozen=True)
class Request:
    kind: str
    args: dict[str, Any]

    def send(self, uow_factory: SqlUowFactory) -> Awaitable[Outcome[Any]]:
        handler, command = COMMANDS_BY_KIND[self.kind]
        return handler(command(**self.args), uow_factory(), policy=PATIENT)


def _workload(ids: list[UUID], rng: random.Random) -> list[Request]:
    requests = []
    for _ in range(REQUESTS):
        roll = rng.random()
        if roll < 0.3:
            requests.append(
                Request(
                    "deposit",
                    MovementArgs.build(account_id=rng.choice(ids), amount=rng.randint(1, 200)),
                )
            )
        elif roll < 0.6:
            requests.append(
                Request(
                    "withdraw",
                    MovementArgs.build(account_id=rng.choice(ids), amount=rng.randint(1, 400)),
                )
            )
        else:
            source, target = rng.sample(ids, 2)
            requests.append(
                Request(
                    "transfer",
                    TransferArgs.build(
                        source_id=source, target_id=target, amount=rng.randint(1, 300)
                    ),
                )
            )
    requests.extend(rng.sample(requests, TWINS))
    rng.shuffle(requests)
    return requests


def _effects(request: Request, outcome: Outcome[Any]) -> list[tuple[UUID, int]]:
    """What a successful request did to which balance."""
    if request.kind == "deposit":
        return [(request.args["account_id"], request.args["amount"])]
    if request.kind == "withdraw":
        return [(request.args["account_id"], -request.args["amount"])]
    value: TransferView = outcome.value
    return [(value.source_id, -value.amount), (value.target_id, value.amount)]


async def _stored(uow_factory: SqlUowFactory, ids: list[UUID]) -> dict[str, Any]:
    async with uow_factory() as uow:
        account_rows = (
            await uow.session.execute(select(accounts).where(accounts.c.id.in_(ids)))
        ).all()
        entry_rows = (
            await uow.session.execute(
                select(entries)
                .where(entries.c.account_id.in_(ids))
                .order_by(entries.c.account_id, entries.c.sequence)
            )
        ).all()
        transfer_rows = (
            await uow.session.execute(select(transfers).where(transfers.c.source_id.in_(ids)))
        ).all()
    return {"accounts": account_rows, "entries": entry_rows, "transfers": transfer_rows}


async def test_concurrent_movements_keep_every_invariant(
    postgres_uow_factory: SqlUowFactory,
) -> None:
    opened = [
        await open_funded_account(postgres_uow_factory(), OPENING_BALANCE) for _ in range(ACCOUNTS)
    ]
    ids = [account.id for account in opened]
    requests = _workload(ids, random.Random(20240611))
    overlap = Overlap()

    results = await asyncio.gather(
        *(request.send(overlap.factory(postgres_uow_factory)) for request in requests),
        return_exceptions=True,
    )

    assert overlap.commits_while_others_open > REQUESTS // 2

    unexpected = [r for r in results if isinstance(r, BaseException)]
    assert all(isinstance(error, InsufficientFunds) for error in unexpected), unexpected
    succeeded = [
        (request, result)
        for request, result in zip(requests, results, strict=True)
        if isinstance(result, Outcome)
    ]
    assert len(succeeded) > REQUESTS // 2

    # Twins: of the requests sharing a reference, exactly one created.
    created_by_reference: dict[str, int] = defaultdict(int)
    for request, outcome in succeeded:
        created_by_reference[request.args["reference"]] += outcome.created
    assert set(created_by_reference.values()) == {1}

    expected = {account_id: OPENING_BALANCE for account_id in ids}
    for request, outcome in succeeded:
        if outcome.created:
            for account_id, change in _effects(request, outcome):
                expected[account_id] += change

    stored = await _stored(postgres_uow_factory, ids)
    balances = {row.id: row.balance for row in stored["accounts"]}
    journals: dict[UUID, list[Any]] = defaultdict(list)
    for row in stored["entries"]:
        journals[row.account_id].append(row)

    # 1. No negative balance.
    assert min(balances.values()) >= 0
    # 2. Balance = sum of entries = what the successful requests did.
    for row in stored["accounts"]:
        journal = journals[row.id]
        signed = sum(
            e.amount if e.kind in ("deposit", "transfer_in") else -e.amount for e in journal
        )
        assert row.balance == signed == expected[row.id] == journal[-1].balance_after
        assert [e.sequence for e in journal] == list(range(1, len(journal) + 1))
        assert row.entry_count == len(journal)
    # 3. Every transfer whole: one debit on its source, one credit on its target.
    halves: dict[UUID, list[Any]] = defaultdict(list)
    for row in stored["entries"]:
        if row.transfer_id is not None:
            halves[row.transfer_id].append(row)
    assert set(halves) == {row.id for row in stored["transfers"]}
    for transfer in stored["transfers"]:
        assert sorted((e.kind, e.account_id, e.amount) for e in halves[transfer.id]) == sorted(
            [
                ("transfer_in", transfer.target_id, transfer.amount),
                ("transfer_out", transfer.source_id, transfer.amount),
            ]
        )

    # 4. Replaying every successful request answers the first result, changes nothing.
    replays = await asyncio.gather(
        *(request.send(postgres_uow_factory) for request, _ in succeeded)
    )
    for (_, first), replay in zip(succeeded, replays, strict=True):
        assert (replay.value, replay.created) == (first.value, False)
    assert await _stored(postgres_uow_factory, ids) == stored


async def test_twin_deposits_with_a_new_reference_apply_once(
    postgres_uow_factory: SqlUowFactory,
) -> None:
    account = await open_funded_account(postgres_uow_factory())
    args = MovementArgs.build(account_id=account.id)
    overlap = Overlap()
    twins = overlap.factory(postgres_uow_factory)

    outcomes: list[Outcome[EntryView]] = await asyncio.gather(
        *(handlers.deposit(Deposit(**args), twins(), policy=PATIENT) for _ in range(4))
    )

    # Serialised on the account's row lock: nothing refused, but the first
    # commit happened while the three twins were waiting for the lock.
    assert overlap.commits_while_others_open >= 1
    assert sorted(outcome.created for outcome in outcomes) == [False, False, False, True]
    assert len({outcome.value for outcome in outcomes}) == 1
    stored = await reads.get_account(postgres_uow_factory(), account.id, OWNER)
    assert stored.balance == args["amount"]


async def test_a_transfer_reference_raced_to_other_targets_is_refused_as_reused(
    postgres_uow_factory: SqlUowFactory,
) -> None:
    # References are unique per source account, so the racers share a source.
    source = await open_funded_account(postgres_uow_factory(), 100)
    targets = [await open_funded_account(postgres_uow_factory()) for _ in range(3)]
    args = TransferArgs.build()
    overlap = Overlap()
    racers = overlap.factory(postgres_uow_factory)

    results = await asyncio.gather(
        *(
            handlers.transfer(
                TransferFunds(source_id=source.id, target_id=target.id, **args),
                racers(),
                policy=PATIENT,
            )
            for target in targets
        ),
        return_exceptions=True,
    )

    # Serialised on the source's row lock: nothing refused, but the first
    # commit happened while the other racers were waiting for the lock.
    assert overlap.commits_while_others_open >= 1
    assert sum(isinstance(result, Outcome) for result in results) == 1
    assert sum(isinstance(result, ReferenceReused) for result in results) == 2


async def test_twin_openings_of_one_account_id_answer_the_same_account(
    postgres_uow_factory: SqlUowFactory,
) -> None:
    args = OpenAccountArgs.build(account_id=uuid4())
    uows = meeting(postgres_uow_factory, 3)

    opened: list[AccountView] = await asyncio.gather(
        *(handlers.open_account(OpenAccount(**args), uow, policy=PATIENT) for uow in uows)
    )

    assert sum(uow.conflicts for uow in uows) == 2
    assert len(set(opened)) == 1


async def test_opposite_transfers_between_two_accounts_never_deadlock(
    postgres_uow_factory: SqlUowFactory,
) -> None:
    first = await open_funded_account(postgres_uow_factory(), 1_000)
    second = await open_funded_account(postgres_uow_factory(), 1_000)
    no_retry = RetryPolicy(attempts=1)
    overlap = Overlap()
    watched = overlap.factory(postgres_uow_factory)

    outcomes = await asyncio.gather(
        *(
            handlers.transfer(
                TransferFunds(
                    source_id=source.id, target_id=target.id, **TransferArgs.build(amount=10)
                ),
                watched(),
                policy=no_retry,
            )
            for source, target in [(first, second), (second, first)] * 10
        )
    )

    # Opposite transfers held their locks at the same time, and none deadlocked.
    assert overlap.commits_while_others_open >= 1
    assert overlap.conflicts == 0
    assert all(outcome.created for outcome in outcomes)
    balances = [
        (await reads.get_account(postgres_uow_factory(), a.id, OWNER)).balance
        for a in (first, second)
    ]
    assert balances == [1_000, 1_000]
