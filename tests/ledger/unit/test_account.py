"""The account aggregate's rules, without any I/O."""

from __future__ import annotations

from uuid import uuid4

import pytest

from domain.ledger.account import Account, EntryKind
from domain.ledger.errors import (
    AccountAlreadyExists,
    InsufficientFunds,
    InvalidAmount,
    InvalidCurrency,
    ReferenceReused,
)
from domain.ledger.events import AccountOpened, Deposited, Withdrawn
from domain.ledger.values import MAX_AMOUNT, MAX_BALANCE
from tests.ledger.factories import AccountFactory

pytestmark = pytest.mark.unit


def test_an_opened_account_is_empty_and_announces_itself() -> None:
    account = Account.open(owner="Ada", currency="EUR")

    assert (account.balance, account.entry_count) == (0, 0)
    assert account.events == [
        AccountOpened(
            account_id=account.id,
            owner="Ada",
            currency="EUR",
            event_id=account.events[0].event_id,
            occurred_at=account.events[0].occurred_at,
        )
    ]


def test_opening_keeps_an_id_the_caller_chose() -> None:
    chosen = uuid4()

    assert Account.open(owner="Ada", currency="EUR", account_id=chosen).id == chosen


def test_an_account_refuses_a_malformed_currency() -> None:
    with pytest.raises(InvalidCurrency):
        Account.open(owner="Ada", currency="euro")


def test_a_deposit_raises_the_balance_and_records_an_entry() -> None:
    account = AccountFactory.build(funded=100)

    entry = account.deposit(50, reference="r-1")

    assert account.balance == 150
    assert (entry.kind, entry.amount, entry.balance_after, entry.sequence) == (
        EntryKind.DEPOSIT,
        50,
        150,
        2,
    )
    assert (entry.account_id, entry.reference, entry.transfer_id) == (account.id, "r-1", None)


def test_a_deposit_raises_a_deposited_event_with_the_new_balance() -> None:
    account = AccountFactory.build()

    entry = account.deposit(70, reference="r-1")

    event = account.events[-1]
    assert isinstance(event, Deposited)
    assert (event.entry_id, event.amount, event.balance_after, event.reference) == (
        entry.id,
        70,
        70,
        "r-1",
    )


def test_a_withdrawal_lowers_the_balance_and_raises_withdrawn() -> None:
    account = AccountFactory.build(funded=100)

    entry = account.withdraw(30, reference="w-1")

    assert (account.balance, entry.balance_after, entry.kind) == (70, 70, EntryKind.WITHDRAWAL)
    assert isinstance(account.events[-1], Withdrawn)


def test_a_withdrawal_may_empty_the_account() -> None:
    account = AccountFactory.build(funded=100)

    account.withdraw(100, reference="w-1")

    assert account.balance == 0


def test_a_withdrawal_beyond_the_balance_is_refused_and_changes_nothing() -> None:
    account = AccountFactory.build(funded=100)

    with pytest.raises(InsufficientFunds):
        account.withdraw(101, reference="w-1")

    assert (account.balance, account.entry_count) == (100, 1)


def test_an_amount_outside_the_contract_is_refused() -> None:
    account = AccountFactory.build()

    with pytest.raises(InvalidAmount):
        account.deposit(MAX_AMOUNT + 1, reference="r-1")


def test_a_deposit_that_would_overflow_the_balance_is_refused() -> None:
    account = AccountFactory.build()
    account.balance = MAX_BALANCE - 1

    with pytest.raises(InvalidAmount):
        account.deposit(2, reference="r-1")


def test_entries_are_numbered_without_gaps() -> None:
    account = AccountFactory.build()

    entries = [account.deposit(10, reference=f"r-{n}") for n in range(3)]
    entries.append(account.withdraw(5, reference="w-1"))

    assert [entry.sequence for entry in entries] == [1, 2, 3, 4]


def test_the_balance_is_the_sum_of_the_entries() -> None:
    account = AccountFactory.build()

    entries = [
        account.deposit(100, reference="r-1"),
        account.withdraw(30, reference="w-1"),
        account.deposit(5, reference="r-2"),
    ]

    assert account.balance == sum(entry.signed_amount for entry in entries) == 75


def test_an_entry_accepts_a_replay_asking_for_the_same_amount() -> None:
    entry = AccountFactory.build().deposit(10, reference="r-1")
    before = dict(vars(entry))

    entry.check_replay(amount=10)

    assert vars(entry) == before, "an accepted replay leaves the entry as it was"


def test_an_entry_refuses_its_reference_for_another_amount() -> None:
    entry = AccountFactory.build().deposit(10, reference="r-1")

    with pytest.raises(ReferenceReused):
        entry.check_replay(amount=11)


def test_reopening_with_the_same_details_is_accepted() -> None:
    account = AccountFactory.build(owner="Ada", currency="EUR")
    events = list(account.events)
    before = dict(vars(account))

    account.check_reopen(owner="Ada", currency="EUR")

    assert (vars(account), account.events) == (before, events), "nothing opened twice"


def test_reopening_with_other_details_is_refused() -> None:
    account = AccountFactory.build(owner="Ada", currency="EUR")

    with pytest.raises(AccountAlreadyExists):
        account.check_reopen(owner="Ada", currency="USD")
