"""The ledger's use cases: one handler per command, each one unit of work under the retry.

A handler *is* the use case: it takes the command and the unit of work and does
the work. HTTP routes hand it commands through the bus; the message consumer
hands it the same commands with ``once=True``; tests call it directly. Every
write follows one shape: lock what will change, look for an earlier request
with the same reference (and answer with its result if there is one),
otherwise let the domain decide, and commit. The look-up happens after the
lock, so a request that waited for a concurrent twin sees the twin's committed
result and replays it instead of writing twice.

:data:`COMMAND_HANDLERS` is the ledger's table of handlers, each under the
stable name its inbox rows are kept under.
"""

from __future__ import annotations

from typing import Protocol
from uuid import UUID

from domain.aggregate import Event
from domain.errors import DomainError
from domain.ledger.account import Account, EntryKind
from domain.ledger.commands import (
    CommandRejected,
    Deposit,
    OpenAccount,
    TransferFunds,
    Withdraw,
)
from domain.ledger.errors import AccountNotFound
from domain.ledger.refusal import Refusal, may_be_kept_for
from domain.ledger.transfer import Transfer, check_transfer_request
from domain.ledger.values import check_amount, check_currency, check_owner, check_reference
from domain.messages import Command
from domain.principal import Principal
from service_layer.ledger.unit_of_work import LedgerUnitOfWork
from service_layer.ledger.views import AccountView, EntryView, Outcome, TransferView
from service_layer.messagebus import Handler, Inbox
from service_layer.retry import RetryPolicy, retrying
from service_layer.unit_of_work import AbstractUnitOfWork


async def open_account(
    command: OpenAccount, uow: LedgerUnitOfWork, policy: RetryPolicy | None = None
) -> AccountView:
    """Open an empty account owned by the command's principal. The command names the
    id, so a replay answers with the account it opened the first time instead of
    opening a second one."""
    owner = command.principal.subject
    # Refused before any work: a malformed command never reads.
    check_owner(owner)
    check_currency(command.currency)

    async def attempt() -> AccountView:
        async with uow:
            existing = await uow.accounts.get(command.account_id)
            if existing is not None:
                existing.check_reopen(owner=owner, currency=command.currency)
                return AccountView.of(existing)
            account = Account.open(
                owner=owner, currency=command.currency, account_id=command.account_id
            )
            uow.accounts.add(account)
            await uow.commit()
            return AccountView.of(account)

    return await retrying(attempt, policy)


async def deposit(
    command: Deposit, uow: LedgerUnitOfWork, policy: RetryPolicy | None = None
) -> Outcome[EntryView]:
    return await _post(uow, EntryKind.DEPOSIT, command.account_id, command, policy)


async def withdraw(
    command: Withdraw, uow: LedgerUnitOfWork, policy: RetryPolicy | None = None
) -> Outcome[EntryView]:
    return await _post(uow, EntryKind.WITHDRAWAL, command.account_id, command, policy)


async def _post(
    uow: LedgerUnitOfWork,
    kind: EntryKind,
    account_id: UUID,
    command: Deposit | Withdraw,
    policy: RetryPolicy | None,
) -> Outcome[EntryView]:
    # Refused before any work: a malformed command never takes a lock.
    amount, reference = check_amount(command.amount), check_reference(command.reference)

    async def attempt() -> Outcome[EntryView]:
        async with uow:
            account = await _owned_account(uow, account_id, command.principal)
            earlier = await uow.entries.list(
                where={"account_id": account_id, "kind": kind, "reference": reference}, limit=1
            )
            if earlier:
                earlier[0].check_replay(amount=amount)
                return Outcome(EntryView.of(earlier[0]), created=False)
            await _answer_earlier_refusal(uow, account_id, kind, reference, amount=amount)
            try:
                if kind is EntryKind.DEPOSIT:
                    entry = account.deposit(amount, reference=reference)
                else:
                    entry = account.withdraw(amount, reference=reference)
            except DomainError as refused:
                await _record_refusal(
                    uow,
                    refused,
                    account_id=account_id,
                    kind=kind,
                    reference=reference,
                    amount=amount,
                )
                raise
            uow.entries.add(entry)
            await uow.commit()
            return Outcome(EntryView.of(entry), created=True)

    return await retrying(attempt, policy)


async def transfer(
    command: TransferFunds, uow: LedgerUnitOfWork, policy: RetryPolicy | None = None
) -> Outcome[TransferView]:
    """Move money between two accounts of the same currency, all or nothing."""
    source_id, target_id = command.source_id, command.target_id
    # Refused before any work; Transfer.between relies on it and checks only
    # what needs the two accounts.
    check_transfer_request(source_id, target_id, amount=command.amount, reference=command.reference)

    async def attempt() -> Outcome[TransferView]:
        async with uow:
            # Always lock in id order: two opposite transfers then queue on the
            # same first row instead of each holding the row the other needs.
            found = {
                account_id: await uow.accounts.get_for_update(account_id)
                for account_id in sorted({source_id, target_id})
            }
            # The source is judged first: someone else's source must answer
            # exactly as an unknown one, whatever the target.
            source = found[source_id]
            if source is None or not source.is_owned_by(command.principal.subject):
                raise AccountNotFound(f"no account with id {source_id}")
            target = found[target_id]
            if target is None:
                raise AccountNotFound(f"no account with id {target_id}")
            earlier = await uow.transfers.list(
                where={"source_id": source_id, "reference": command.reference}, limit=1
            )
            if earlier:
                earlier[0].check_replay(
                    source_id=source_id, target_id=target_id, amount=command.amount
                )
                return Outcome(TransferView.of(earlier[0]), created=False)
            await _answer_earlier_refusal(
                uow,
                source_id,
                EntryKind.TRANSFER_OUT,
                command.reference,
                amount=command.amount,
                target_id=target_id,
            )
            try:
                posting = Transfer.between(
                    source,
                    target,
                    amount=command.amount,
                    reference=command.reference,
                )
            except DomainError as refused:
                await _record_refusal(
                    uow,
                    refused,
                    account_id=source_id,
                    kind=EntryKind.TRANSFER_OUT,
                    reference=command.reference,
                    amount=command.amount,
                    target_id=target_id,
                )
                raise
            uow.transfers.add(posting.transfer)
            uow.entries.add(posting.debit)
            uow.entries.add(posting.credit)
            await uow.commit()
            return Outcome(TransferView.of(posting.transfer), created=True)

    return await retrying(attempt, policy)


async def _locked_account(uow: LedgerUnitOfWork, account_id: UUID) -> Account:
    account = await uow.accounts.get_for_update(account_id)
    if account is None:
        raise AccountNotFound(f"no account with id {account_id}")
    return account


async def _owned_account(uow: LedgerUnitOfWork, account_id: UUID, principal: Principal) -> Account:
    """The account, locked, if ``principal`` owns it; else the refusal of an unknown id."""
    account = await _locked_account(uow, account_id)
    if not account.is_owned_by(principal.subject):
        raise AccountNotFound(f"no account with id {account_id}")
    return account


async def _answer_earlier_refusal(
    uow: LedgerUnitOfWork,
    account_id: UUID,
    kind: EntryKind,
    reference: str,
    *,
    amount: int,
    target_id: UUID | None = None,
) -> None:
    """Raise the answer of a refused request with this reference, if there was one."""
    if not may_be_kept_for(kind):
        return
    refused = await uow.refusals.list(
        where={"account_id": account_id, "kind": str(kind), "reference": reference}, limit=1
    )
    if refused:
        raise refused[0].replay(amount=amount, target_id=target_id)


async def _record_refusal(
    uow: LedgerUnitOfWork,
    error: DomainError,
    *,
    account_id: UUID,
    kind: EntryKind,
    reference: str,
    amount: int,
    target_id: UUID | None = None,
) -> None:
    """Keep ``error`` under the request's reference, when it is a refusal that is kept.

    Nothing else of the unit of work changed: the domain refuses before it
    changes a balance or makes an entry.
    """
    refusal = Refusal.of(
        error,
        account_id=account_id,
        kind=str(kind),
        reference=reference,
        amount=amount,
        target_id=target_id,
    )
    if refusal is not None:
        uow.refusals.add(refusal)
        await uow.commit()


COMMAND_HANDLERS: dict[type[Command], Handler] = {
    OpenAccount: Handler(open_account, "ledger.open_account"),
    Deposit: Handler(deposit, "ledger.deposit"),
    Withdraw: Handler(withdraw, "ledger.withdraw"),
    TransferFunds: Handler(transfer, "ledger.transfer"),
}
"""Each command's handler, under the name its inbox rows are kept under."""


class EventOutbox(Protocol):
    """Where an event that no aggregate raised is written, in an open unit of work."""

    async def put(
        self, uow: AbstractUnitOfWork, event: Event, *, key: str | None = None
    ) -> None: ...


async def reject_command(
    command: Command,
    error: DomainError,
    *,
    uow: LedgerUnitOfWork,
    inbox: Inbox,
    outbox: EventOutbox,
) -> None:
    """Announce that a domain rule refused ``command``: a ``CommandRejected`` in the outbox.

    The refusal is recorded in the inbox under the command handler's own
    key, in the same transaction. So a command message is settled once,
    applied or refused: a redelivery of a refused command is neither run
    again (its funds may have arrived meanwhile) nor announced twice — the
    second attempt's commit raises ``DuplicateMessage``.

    The announcement itself is kept under the handler's name with
    ``:rejected``: a refusal the handler kept itself (a :class:`Refusal`, for
    want of funds) committed the handler's own inbox row already, and is
    still announced once.
    """
    handler = COMMAND_HANDLERS[type(command)].name
    if not await inbox.already_processed(uow, command.message_id, handler):
        inbox.guard(uow, command.message_id, handler)
    inbox.guard(uow, command.message_id, f"{handler}:rejected")
    rejected = CommandRejected(
        command_message_id=command.message_id, code=error.code, detail=error.detail
    )
    async with uow:
        await outbox.put(uow, rejected, key=f"Command:{command.message_id}")
        await uow.commit()
