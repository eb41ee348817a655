"""The transfer rules, without any I/O."""

from __future__ import annotations

import pytest

from domain.ledger.account import EntryKind
from domain.ledger.errors import (
    CurrencyMismatch,
    InsufficientFunds,
    InvalidAmount,
    ReferenceReused,
    SameAccount,
)
from domain.ledger.events import TransferCompleted
from domain.ledger.transfer import Transfer
from tests.ledger.factories import AccountFactory

pytestmark = pytest.mark.unit


def test_a_transfer_moves_the_amount_and_makes_both_entries() -> None:
    source, target = AccountFactory.build(funded=100), AccountFactory.build(funded=5)

    posting = Transfer.between(source, target, amount=40, reference="t-1")

    assert (source.balance, target.balance) == (60, 45)
    assert (posting.debit.kind, posting.debit.amount, posting.debit.balance_after) == (
        EntryKind.TRANSFER_OUT,
        40,
        60,
    )
    assert (posting.credit.kind, posting.credit.amount, posting.credit.balance_after) == (
        EntryKind.TRANSFER_IN,
        40,
        45,
    )
    assert posting.debit.transfer_id == posting.credit.transfer_id == posting.transfer.id


def test_a_transfer_raises_transfer_completed() -> None:
    source, target = AccountFactory.build(funded=100), AccountFactory.build()

    transfer = Transfer.between(source, target, amount=40, reference="t-1").transfer

    event = transfer.events[-1]
    assert isinstance(event, TransferCompleted)
    assert (event.transfer_id, event.source_id, event.target_id, event.amount) == (
        transfer.id,
        source.id,
        target.id,
        40,
    )
    assert (event.currency, event.reference) == ("EUR", "t-1")


def test_a_transfer_beyond_the_source_balance_changes_neither_account() -> None:
    source, target = AccountFactory.build(funded=10), AccountFactory.build(funded=3)

    with pytest.raises(InsufficientFunds):
        Transfer.between(source, target, amount=11, reference="t-1")

    assert (source.balance, target.balance) == (10, 3)
    assert (source.entry_count, target.entry_count) == (1, 1)


def test_a_transfer_between_currencies_is_refused() -> None:
    source = AccountFactory.build(funded=100, currency="EUR")
    target = AccountFactory.build(currency="USD")

    with pytest.raises(CurrencyMismatch):
        Transfer.between(source, target, amount=1, reference="t-1")


def test_a_transfer_to_the_same_account_is_refused() -> None:
    account = AccountFactory.build(funded=100)

    with pytest.raises(SameAccount):
        Transfer.between(account, account, amount=1, reference="t-1")


def test_a_transfer_of_nothing_is_refused() -> None:
    source, target = AccountFactory.build(funded=100), AccountFactory.build()

    with pytest.raises(InvalidAmount):
        Transfer.between(source, target, amount=0, reference="t-1")


def test_a_transfer_accepts_a_replay_of_the_same_request() -> None:
    source, target = AccountFactory.build(funded=100), AccountFactory.build()
    transfer = Transfer.between(source, target, amount=40, reference="t-1").transfer
    before, balances = dict(vars(transfer)), (source.balance, target.balance)

    transfer.check_replay(source_id=source.id, target_id=target.id, amount=40)

    assert vars(transfer) == before, "an accepted replay moves no money again"
    assert (source.balance, target.balance) == balances


@pytest.mark.parametrize("change", ["amount", "direction"])
def test_a_transfer_refuses_its_reference_for_another_request(change: str) -> None:
    source, target = AccountFactory.build(funded=100), AccountFactory.build()
    transfer = Transfer.between(source, target, amount=40, reference="t-1").transfer
    source_id, target_id, amount = source.id, target.id, 40
    if change == "amount":
        amount = 41
    else:
        source_id, target_id = target_id, source_id

    with pytest.raises(ReferenceReused):
        transfer.check_replay(source_id=source_id, target_id=target_id, amount=amount)
