"""What the account and transfer aggregates say and record: error details a client reads,
every field of the events they raise, the time of each entry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from domain.ledger.account import Account
from domain.ledger.errors import (
    AccountAlreadyExists,
    CurrencyMismatch,
    InsufficientFunds,
    InvalidAmount,
    ReferenceReused,
    SameAccount,
)
from domain.ledger.events import Deposited, Withdrawn
from domain.ledger.transfer import Transfer, check_transfer_request
from domain.ledger.values import MAX_BALANCE
from tests.ledger.factories import AccountFactory

pytestmark = pytest.mark.unit


def just_now(moment: datetime) -> bool:
    return moment.tzinfo is UTC and abs(datetime.now(UTC) - moment) < timedelta(seconds=5)


def test_a_new_account_has_version_0_until_it_is_stored() -> None:
    assert Account.open(owner="Ada", currency="EUR").version == 0


def test_insufficient_funds_say_what_the_account_holds_and_what_was_asked() -> None:
    account = AccountFactory.build(funded=70)

    with pytest.raises(InsufficientFunds) as raised:
        account.withdraw(100, reference="r")

    assert raised.value.detail == (
        f"account {account.id} holds 70 EUR; 100 cannot be taken from it"
    )


def test_a_balance_may_reach_the_maximum_exactly() -> None:
    account = AccountFactory.build()
    account.balance = MAX_BALANCE - 1

    account.deposit(1, reference="to the brim")

    assert account.balance == MAX_BALANCE


def test_a_balance_beyond_the_maximum_is_refused_naming_it() -> None:
    account = AccountFactory.build()
    account.balance = MAX_BALANCE

    with pytest.raises(InvalidAmount) as raised:
        account.deposit(1, reference="overflow")

    assert raised.value.detail == f"account {account.id} would hold more than {MAX_BALANCE} EUR"


def test_reopening_with_other_details_says_the_account_exists() -> None:
    account = AccountFactory.build()

    with pytest.raises(AccountAlreadyExists) as raised:
        account.check_reopen(owner="somebody else", currency="EUR")

    assert raised.value.detail == f"account {account.id} already exists"


def test_an_entry_is_stamped_with_the_time_it_was_posted_in_utc() -> None:
    entry = AccountFactory.build().deposit(10, reference="r")

    assert just_now(entry.created_at)


def test_a_deposit_event_carries_every_detail_of_the_entry() -> None:
    account = AccountFactory.build(funded=5)
    account.events.clear()

    entry = account.deposit(10, reference="dep-1")

    (event,) = account.events
    assert isinstance(event, Deposited)
    assert (
        event.account_id,
        event.entry_id,
        event.amount,
        event.currency,
        event.reference,
        event.balance_after,
    ) == (account.id, entry.id, 10, "EUR", "dep-1", 15)


def test_a_withdrawal_event_carries_every_detail_of_the_entry() -> None:
    account = AccountFactory.build(funded=50)
    account.events.clear()

    entry = account.withdraw(20, reference="wd-1")

    (event,) = account.events
    assert isinstance(event, Withdrawn)
    assert (
        event.account_id,
        event.entry_id,
        event.amount,
        event.currency,
        event.reference,
        event.balance_after,
    ) == (account.id, entry.id, 20, "EUR", "wd-1", 30)


def test_a_reused_movement_reference_says_what_it_was_used_for() -> None:
    account = AccountFactory.build()
    entry = account.deposit(10, reference="dep-1")

    with pytest.raises(ReferenceReused) as raised:
        entry.check_replay(amount=11)

    assert raised.value.detail == (
        "reference 'dep-1' was already used for a deposit of 10 on this account; "
        "this request asks for 11"
    )


def test_a_transfer_request_to_the_same_account_names_it() -> None:
    account_id = uuid4()

    with pytest.raises(SameAccount) as raised:
        check_transfer_request(account_id, account_id, amount=1, reference="r")

    assert raised.value.detail == (
        f"a transfer needs two different accounts; got {account_id} twice"
    )


def test_a_transfer_between_one_account_and_itself_names_it() -> None:
    account = AccountFactory.build(funded=10)

    with pytest.raises(SameAccount) as raised:
        Transfer.between(account, account, amount=1, reference="r")

    assert raised.value.detail == f"a transfer needs two different accounts; got {account.id} twice"


def test_a_transfer_between_currencies_names_both() -> None:
    source = AccountFactory.build(funded=10, currency="EUR")
    target = AccountFactory.build(currency="GBP")

    with pytest.raises(CurrencyMismatch) as raised:
        Transfer.between(source, target, amount=1, reference="r")

    assert raised.value.detail == (
        f"account {source.id} holds EUR but account {target.id} holds GBP"
    )


def test_a_transfer_is_stamped_with_the_time_it_was_made_in_utc() -> None:
    source, target = AccountFactory.build(funded=10), AccountFactory.build()

    posting = Transfer.between(source, target, amount=1, reference="r")

    assert just_now(posting.transfer.created_at)


def test_a_reused_transfer_reference_says_so_and_nothing_of_the_other_transfer() -> None:
    source, target = AccountFactory.build(funded=10), AccountFactory.build()
    transfer = Transfer.between(source, target, amount=3, reference="tr-1").transfer

    with pytest.raises(ReferenceReused) as raised:
        transfer.check_replay(source_id=source.id, target_id=target.id, amount=4)

    assert raised.value.detail == (
        "reference 'tr-1' was already used for another transfer out of this account"
    )
    for private in (transfer.id, target.id, "of 3"):
        assert str(private) not in raised.value.detail
