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
from service_layer.ledger.cursor import decode_cursor, encode_cursor
from service_layer.ledger.unit_of_work import LedgerUnitOfWork
from service_layer.ledger.views import AccountView, EntryPage, TransferView

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
    after_sequence = 0 if after is None else decode_cursor(after)
    async with uow:
        if await uow.queries.account(account_id, owner=principal.subject) is None:
            raise AccountNotFound(f"no account with id {account_id}")
        # One extra row tells whether another page follows, without a count.
        lines = await uow.queries.journal(account_id, after=after_sequence, limit=limit + 1)
    page = lines[:limit]
    following = encode_cursor(page[-1].sequence) if len(lines) > limit else None
    return EntryPage(items=[line.entry for line in page], next=following)
