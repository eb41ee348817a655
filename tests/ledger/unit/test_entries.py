"""Listing an account's journal: order, keyset pages, cursors and limits."""

from __future__ import annotations

from uuid import uuid4

import pytest

from adapters.ledger.unit_of_work import InMemoryLedgerUnitOfWork
from domain.ledger.commands import Deposit, TransferFunds, Withdraw
from domain.ledger.errors import AccountNotFound, InvalidLimit
from service_layer.ledger import handlers, reads
from service_layer.ledger.views import AccountView, EntryView
from service_layer.pagination import InvalidCursor
from tests.ledger.factories import OWNER, MovementArgs, TransferArgs, open_funded_account

pytestmark = pytest.mark.unit


async def _deposits(uow: InMemoryLedgerUnitOfWork, account: AccountView, count: int) -> list[str]:
    references = []
    for _ in range(count):
        outcome = await handlers.deposit(
            Deposit(account_id=account.id, **MovementArgs.build()), uow
        )
        references.append(outcome.value.reference)
    return references


async def test_a_new_account_has_an_empty_last_page(uow: InMemoryLedgerUnitOfWork) -> None:
    account = await open_funded_account(uow)

    page = await reads.list_entries(uow, account.id, OWNER)

    assert (page.items, page.next) == ([], None)


async def test_entries_come_oldest_first_with_every_kind(uow: InMemoryLedgerUnitOfWork) -> None:
    account, other = await open_funded_account(uow, 100), await open_funded_account(uow, 100)
    await handlers.withdraw(Withdraw(account_id=account.id, **MovementArgs.build(amount=10)), uow)
    for source, target in [(account, other), (other, account)]:
        await handlers.transfer(
            TransferFunds(
                source_id=source.id, target_id=target.id, **TransferArgs.build(amount=50)
            ),
            uow,
        )

    page = await reads.list_entries(uow, account.id, OWNER)

    assert [entry.kind for entry in page.items] == [
        "deposit",
        "withdrawal",
        "transfer_out",
        "transfer_in",
    ]
    assert [entry.balance_after for entry in page.items] == [100, 90, 40, 90]


async def test_pages_follow_each_other_until_the_last(uow: InMemoryLedgerUnitOfWork) -> None:
    account = await open_funded_account(uow)
    references = await _deposits(uow, account, 5)

    seen: list[EntryView] = []
    cursor: str | None = None
    pages = 0
    while True:
        page = await reads.list_entries(uow, account.id, OWNER, limit=2, after=cursor)
        seen.extend(page.items)
        pages += 1
        if page.next is None:
            break
        cursor = page.next

    assert pages == 3
    assert [entry.reference for entry in seen] == references


async def test_a_full_last_page_has_no_next_cursor(uow: InMemoryLedgerUnitOfWork) -> None:
    account = await open_funded_account(uow)
    await _deposits(uow, account, 2)

    page = await reads.list_entries(uow, account.id, OWNER, limit=2)

    assert (len(page.items), page.next) == (2, None)


async def test_entries_made_after_a_page_appear_on_the_next_one(
    uow: InMemoryLedgerUnitOfWork,
) -> None:
    account = await open_funded_account(uow)
    await _deposits(uow, account, 2)
    first = await reads.list_entries(uow, account.id, OWNER, limit=1)
    later = await _deposits(uow, account, 1)

    assert first.next is not None
    rest = await reads.list_entries(uow, account.id, OWNER, after=first.next)
    assert [entry.reference for entry in rest.items][-1] == later[0]
    assert len(rest.items) == 2


async def test_a_cursor_not_made_by_the_service_is_invalid(uow: InMemoryLedgerUnitOfWork) -> None:
    account = await open_funded_account(uow)

    with pytest.raises(InvalidCursor):
        await reads.list_entries(uow, account.id, OWNER, after="garbage!")


@pytest.mark.parametrize("limit", [0, -1, 501])
async def test_a_limit_outside_1_to_500_is_refused(
    uow: InMemoryLedgerUnitOfWork, limit: int
) -> None:
    account = await open_funded_account(uow)

    with pytest.raises(InvalidLimit):
        await reads.list_entries(uow, account.id, OWNER, limit=limit)


async def test_the_entries_of_an_unknown_account_are_account_not_found(
    uow: InMemoryLedgerUnitOfWork,
) -> None:
    with pytest.raises(AccountNotFound):
        await reads.list_entries(uow, uuid4(), OWNER)


async def test_reads_never_see_uncommitted_work(uow: InMemoryLedgerUnitOfWork) -> None:
    account = await open_funded_account(uow, 100)
    writer = InMemoryLedgerUnitOfWork(uow.store)

    async with writer:
        loaded = await writer.accounts.get(account.id)
        assert loaded is not None
        writer.entries.add(loaded.deposit(5, reference="uncommitted"))

        assert (await reads.get_account(uow, account.id, OWNER)).balance == 100
        assert len((await reads.list_entries(uow, account.id, OWNER)).items) == 1
