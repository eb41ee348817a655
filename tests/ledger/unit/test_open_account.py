"""Opening accounts and reading them back, on the in-memory unit of work."""

from __future__ import annotations

from uuid import uuid4

import pytest

from adapters.ledger.unit_of_work import InMemoryLedgerUnitOfWork
from domain.ledger.commands import OpenAccount
from domain.ledger.errors import AccountAlreadyExists, AccountNotFound, InvalidCurrency
from domain.ledger.events import AccountOpened
from service_layer.ledger import handlers, reads
from tests.ledger.factories import OWNER, OpenAccountArgs

pytestmark = pytest.mark.unit


async def test_a_new_account_is_empty_at_version_one(uow: InMemoryLedgerUnitOfWork) -> None:
    args = OpenAccountArgs.build(currency="USD")

    account = await handlers.open_account(OpenAccount(**args), uow)

    assert (account.owner, account.currency, account.balance, account.version) == (
        args["principal"].subject,
        "USD",
        0,
        1,
    )
    assert account.created_at.tzinfo is not None


async def test_an_opened_account_can_be_read_back(uow: InMemoryLedgerUnitOfWork) -> None:
    opened = await handlers.open_account(OpenAccount(**OpenAccountArgs.build()), uow)

    assert await reads.get_account(uow, opened.id, OWNER) == opened


async def test_opening_an_account_raises_account_opened(uow: InMemoryLedgerUnitOfWork) -> None:
    opened = await handlers.open_account(OpenAccount(**OpenAccountArgs.build()), uow)

    events = list(uow.collect_new_events())
    assert [type(event) for event in events] == [AccountOpened]
    assert isinstance(events[0], AccountOpened)
    assert events[0].account_id == opened.id


async def test_opening_again_with_the_same_id_and_details_answers_the_account(
    uow: InMemoryLedgerUnitOfWork,
) -> None:
    args = OpenAccountArgs.build(account_id=uuid4())
    first = await handlers.open_account(OpenAccount(**args), uow)

    again = await handlers.open_account(OpenAccount(**args), uow)

    assert again == first
    assert uow.commits == 1


async def test_opening_again_with_the_same_id_and_other_details_is_refused(
    uow: InMemoryLedgerUnitOfWork,
) -> None:
    args = OpenAccountArgs.build(account_id=uuid4(), currency="EUR")
    await handlers.open_account(OpenAccount(**args), uow)

    with pytest.raises(AccountAlreadyExists):
        await handlers.open_account(OpenAccount(**{**args, "currency": "USD"}), uow)


async def test_a_malformed_currency_is_refused_before_any_work(
    uow: InMemoryLedgerUnitOfWork,
) -> None:
    with pytest.raises(InvalidCurrency):
        await handlers.open_account(OpenAccount(**OpenAccountArgs.build(currency="eur")), uow)

    assert (uow.commits, uow.rollbacks, uow.accessed) == (0, 0, [])


async def test_reading_an_unknown_account_is_account_not_found(
    uow: InMemoryLedgerUnitOfWork,
) -> None:
    with pytest.raises(AccountNotFound):
        await reads.get_account(uow, uuid4(), OWNER)
