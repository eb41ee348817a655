"""The ledger's reads: views straight from rows, in a unit of work's transaction.

Reads need no aggregate, no retry and no commit; they answer with the
service layer's frozen views, or refuse with a domain error the entrypoints
map like any other. Every read is made for a principal: only an account's
owner sees it and its entries, only the owners of a transfer's two accounts
see the transfer, and anything else is "not found", word for word as an id
that does not exist.
"""

from __future__ import annotations

from uuid import UUID

from domain.ledger.errors import AccountNotFound, InvalidLimit, TransferNotFound
from domain.principal import Principal
from service_layer.ledger.unit_of_work import LedgerUnitOfWork
from service_layer.ledger.views import AccountView, EntryPage, EntryView, TransferView

MAX_PAGE_SIZE = 500


async def get_account(uow: LedgerUnitOfWork, account_id: UUID, principal: Principal) -> AccountView:
    async with uow:
        found = await uow.queries.account(account_id, owner=principal.subject)
    if found is None:
        raise AccountNotFound(f"no account with id {account_id}")
    return found


async def get_transfer(
    uow: LedgerUnitOfWork, transfer_id: UUID, principal: Principal
) -> TransferView:
    async with uow:
        found = await uow.queries.transfer(transfer_id, viewer=principal.subject)
    if found is None:
        raise TransferNotFound(f"no transfer with id {transfer_id}")
    return found


async def list_entries(
    uow: LedgerUnitOfWork,
    account_id: UUID,
    principal: Principal,
    *,
    limit: int = 50,
    after: str | None = None,
) -> EntryPage:
    """One page of the account's entries, oldest first, ``limit`` at most (1..500)."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE_SIZE:
        raise InvalidLimit(f"limit must be an integer from 1 to {MAX_PAGE_SIZE}, got {limit!r}")
    async with uow:
        if await uow.queries.account(account_id, owner=principal.subject) is None:
            raise AccountNotFound(f"no account with id {account_id}")
        # The kernel's keyset pagination: a tampered or foreign cursor (an
        # overflowing position included) is an InvalidCursor, 422, and each
        # page costs the same however deep.
        page = await uow.entries.page(
            where={"account_id": account_id}, order_by="sequence", after=after, limit=limit
        )
        return EntryPage(items=[EntryView.of(entry) for entry in page.items], next=page.next)
