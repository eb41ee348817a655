"""The ledger's use cases. Each write is one unit of work under the bounded retry.

Every write follows the same shape: lock what will change, look for an
earlier request with the same reference (and answer with its result if there
is one), otherwise let the domain decide and commit. The look-up happens
after the lock, so a request that waited for a concurrent twin sees the
twin's committed result and replays it instead of writing twice.
"""

from __future__ import annotations

from uuid import UUID

from domain.ledger.account import Account, EntryKind
from domain.ledger.errors import AccountNotFound, InvalidLimit, TransferNotFound
from domain.ledger.transfer import Transfer, check_transfer_request
from domain.ledger.values import check_amount, check_currency, check_owner, check_reference
from service_layer.ledger.cursor import decode_cursor, encode_cursor
from service_layer.ledger.unit_of_work import LedgerUnitOfWork
from service_layer.ledger.views import AccountView, EntryPage, EntryView, Outcome, TransferView
from service_layer.retry import RetryPolicy, retrying

MAX_PAGE_SIZE = 500


async def open_account(
    uow: LedgerUnitOfWork,
    *,
    owner: str,
    currency: str,
    account_id: UUID | None = None,
    policy: RetryPolicy | None = None,
) -> AccountView:
    """Open an empty account. With a caller-chosen ``account_id`` (a command
    replayed from a broker), opening the same account again answers with it."""
    check_owner(owner)
    check_currency(currency)

    async def attempt() -> AccountView:
        async with uow:
            if account_id is not None:
                existing = await uow.accounts.get(account_id)
                if existing is not None:
                    existing.check_reopen(owner=owner, currency=currency)
                    return AccountView.of(existing)
            account = Account.open(owner=owner, currency=currency, account_id=account_id)
            uow.accounts.add(account)
            await uow.commit()
            return AccountView.of(account)

    return await retrying(attempt, policy)


async def deposit(
    uow: LedgerUnitOfWork,
    *,
    account_id: UUID,
    amount: int,
    reference: str,
    policy: RetryPolicy | None = None,
) -> Outcome[EntryView]:
    return await _post(
        uow, EntryKind.DEPOSIT, account_id, amount=amount, reference=reference, policy=policy
    )


async def withdraw(
    uow: LedgerUnitOfWork,
    *,
    account_id: UUID,
    amount: int,
    reference: str,
    policy: RetryPolicy | None = None,
) -> Outcome[EntryView]:
    return await _post(
        uow, EntryKind.WITHDRAWAL, account_id, amount=amount, reference=reference, policy=policy
    )


async def _post(
    uow: LedgerUnitOfWork,
    kind: EntryKind,
    account_id: UUID,
    *,
    amount: int,
    reference: str,
    policy: RetryPolicy | None,
) -> Outcome[EntryView]:
    check_amount(amount)
    check_reference(reference)

    async def attempt() -> Outcome[EntryView]:
        async with uow:
            account = await _locked_account(uow, account_id)
            earlier = await uow.entries.list(
                where={"account_id": account_id, "kind": kind, "reference": reference}, limit=1
            )
            if earlier:
                earlier[0].check_replay(amount=amount)
                return Outcome(EntryView.of(earlier[0]), created=False)
            if kind is EntryKind.DEPOSIT:
                entry = account.deposit(amount, reference=reference)
            else:
                entry = account.withdraw(amount, reference=reference)
            uow.entries.add(entry)
            await uow.commit()
            return Outcome(EntryView.of(entry), created=True)

    return await retrying(attempt, policy)


async def transfer(
    uow: LedgerUnitOfWork,
    *,
    source_id: UUID,
    target_id: UUID,
    amount: int,
    reference: str,
    policy: RetryPolicy | None = None,
) -> Outcome[TransferView]:
    """Move money between two accounts of the same currency, all or nothing."""
    check_transfer_request(source_id, target_id, amount=amount, reference=reference)

    async def attempt() -> Outcome[TransferView]:
        async with uow:
            # Always lock in id order: two opposite transfers then queue on the
            # same first row instead of each holding the row the other needs.
            locked = {
                account_id: await _locked_account(uow, account_id)
                for account_id in sorted((source_id, target_id))
            }
            earlier = await uow.transfers.list(where={"reference": reference}, limit=1)
            if earlier:
                earlier[0].check_replay(source_id=source_id, target_id=target_id, amount=amount)
                return Outcome(TransferView.of(earlier[0]), created=False)
            posting = Transfer.between(
                locked[source_id], locked[target_id], amount=amount, reference=reference
            )
            uow.transfers.add(posting.transfer)
            uow.entries.add(posting.debit)
            uow.entries.add(posting.credit)
            await uow.commit()
            return Outcome(TransferView.of(posting.transfer), created=True)

    return await retrying(attempt, policy)


async def get_account(uow: LedgerUnitOfWork, account_id: UUID) -> AccountView:
    async with uow:
        found = await uow.queries.account(account_id)
    if found is None:
        raise AccountNotFound(f"no account with id {account_id}")
    return found


async def get_transfer(uow: LedgerUnitOfWork, transfer_id: UUID) -> TransferView:
    async with uow:
        found = await uow.queries.transfer(transfer_id)
    if found is None:
        raise TransferNotFound(f"no transfer with id {transfer_id}")
    return found


async def list_entries(
    uow: LedgerUnitOfWork, account_id: UUID, *, limit: int = 50, after: str | None = None
) -> EntryPage:
    """One page of the account's entries, oldest first, ``limit`` at most (1..500)."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE_SIZE:
        raise InvalidLimit(f"limit must be an integer from 1 to {MAX_PAGE_SIZE}, got {limit!r}")
    after_sequence = 0 if after is None else decode_cursor(after)
    async with uow:
        if await uow.queries.account(account_id) is None:
            raise AccountNotFound(f"no account with id {account_id}")
        # One extra row tells whether another page follows, without a count.
        lines = await uow.queries.journal(account_id, after=after_sequence, limit=limit + 1)
    page = lines[:limit]
    following = encode_cursor(page[-1].sequence) if len(lines) > limit else None
    return EntryPage(items=[line.entry for line in page], next=following)


async def _locked_account(uow: LedgerUnitOfWork, account_id: UUID) -> Account:
    account = await uow.accounts.get_for_update(account_id)
    if account is None:
        raise AccountNotFound(f"no account with id {account_id}")
    return account
