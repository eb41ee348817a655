"""Moving money between two accounts: the transfer aggregate and how it is made."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import NamedTuple
from uuid import UUID, uuid4

from domain.aggregate import Aggregate
from domain.ledger.account import Account, Entry
from domain.ledger.errors import CurrencyMismatch, ReferenceReused, SameAccount
from domain.ledger.events import TransferCompleted
from domain.ledger.values import check_amount, check_reference


class Posting(NamedTuple):
    """Everything one transfer writes: the transfer and its two entries."""

    transfer: Transfer
    debit: Entry
    credit: Entry


class Transfer(Aggregate[UUID]):
    """A completed movement of ``amount`` from ``source_id`` to ``target_id``.

    Only :meth:`between` makes one, together with both entries, so a transfer
    cannot exist with one side missing. Its ``reference`` is unique among
    the transfers out of its source account.
    """

    source_id: UUID
    target_id: UUID
    amount: int
    currency: str
    reference: str
    created_at: datetime

    def __init__(
        self,
        *,
        id: UUID,
        source_id: UUID,
        target_id: UUID,
        amount: int,
        currency: str,
        reference: str,
        created_at: datetime,
    ) -> None:
        self.id = id
        self.source_id = source_id
        self.target_id = target_id
        self.amount = amount
        self.currency = currency
        self.reference = reference
        self.created_at = created_at

    @classmethod
    def between(cls, source: Account, target: Account, *, amount: int, reference: str) -> Posting:
        """Debit ``source`` and credit ``target``; both change or neither does.

        The request itself was checked by :func:`check_transfer_request` before
        any account was read; the accounts' own methods check the amount again
        as part of their invariants.
        """
        if source.id == target.id:
            raise SameAccount(f"a transfer needs two different accounts; got {source.id} twice")
        if source.currency != target.currency:
            raise CurrencyMismatch(
                f"account {source.id} holds {source.currency} but account {target.id} "
                f"holds {target.currency}"
            )
        transfer = cls(
            id=uuid4(),
            source_id=source.id,
            target_id=target.id,
            amount=amount,
            currency=source.currency,
            reference=reference,
            created_at=datetime.now(UTC),
        )
        # The debit goes first: it is the half that can be refused, and
        # nothing has changed yet when it is.
        debit = source.transfer_out(amount, reference=reference, transfer_id=transfer.id)
        credit = target.transfer_in(amount, reference=reference, transfer_id=transfer.id)
        transfer.raise_event(
            TransferCompleted(
                transfer_id=transfer.id,
                source_id=source.id,
                target_id=target.id,
                amount=amount,
                currency=transfer.currency,
                reference=reference,
            )
        )
        return Posting(transfer, debit, credit)

    def check_replay(self, *, source_id: UUID, target_id: UUID, amount: int) -> None:
        """Accept a request that reuses this transfer's reference only if it asks the same thing.

        The refusal names neither the earlier transfer, nor its amount, nor its
        target: they may concern another party.
        """
        if (source_id, target_id, amount) != (self.source_id, self.target_id, self.amount):
            raise ReferenceReused(
                f"reference {self.reference!r} was already used for another transfer out of "
                "this account"
            )


def check_transfer_request(
    source_id: UUID, target_id: UUID, *, amount: int, reference: str
) -> None:
    """The checks a transfer request must pass before any account is read."""
    if source_id == target_id:
        raise SameAccount(f"a transfer needs two different accounts; got {source_id} twice")
    check_amount(amount)
    check_reference(reference)
