"""The account aggregate and the entries of its journal.

An account's balance only ever changes together with a new :class:`Entry`,
made here and nowhere else, so "balance = sum of entries" holds by
construction. Entries are stored through their own repository so that
loading an account never loads its history; they still belong to the
account's consistency boundary, because every entry changes the balance and
so bumps the account's version (or waits on its row lock).
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from uuid import UUID, uuid4

from domain.aggregate import Aggregate
from domain.ledger.errors import (
    AccountAlreadyExists,
    InsufficientFunds,
    InvalidAmount,
    ReferenceReused,
)
from domain.ledger.events import AccountOpened, Deposited, Withdrawn
from domain.ledger.values import (
    MAX_BALANCE,
    check_amount,
    check_currency,
    check_owner,
    check_reference,
)


class EntryKind(enum.StrEnum):
    DEPOSIT = "deposit"
    WITHDRAWAL = "withdrawal"
    TRANSFER_IN = "transfer_in"
    TRANSFER_OUT = "transfer_out"

    @property
    def is_credit(self) -> bool:
        return self in (EntryKind.DEPOSIT, EntryKind.TRANSFER_IN)


class Entry(Aggregate[UUID]):
    """One line of an account's journal; immutable once made.

    ``sequence`` numbers an account's entries 1, 2, 3... without gaps; it
    orders the journal and makes the pagination cursor.
    """

    account_id: UUID
    sequence: int
    kind: EntryKind
    amount: int
    balance_after: int
    reference: str
    transfer_id: UUID | None
    created_at: datetime

    def __init__(
        self,
        *,
        id: UUID,
        account_id: UUID,
        sequence: int,
        kind: EntryKind,
        amount: int,
        balance_after: int,
        reference: str,
        transfer_id: UUID | None,
        created_at: datetime,
    ) -> None:
        self.id = id
        self.account_id = account_id
        self.sequence = sequence
        self.kind = kind
        self.amount = amount
        self.balance_after = balance_after
        self.reference = reference
        self.transfer_id = transfer_id
        self.created_at = created_at

    @property
    def signed_amount(self) -> int:
        """What this entry did to the balance: positive for credits, negative for debits."""
        return self.amount if self.kind.is_credit else -self.amount

    def check_replay(self, *, amount: int) -> None:
        """Accept a request that reuses this entry's reference only if it asks the same thing."""
        if amount != self.amount:
            raise ReferenceReused(
                f"reference {self.reference!r} was already used for a {self.kind} "
                f"of {self.amount} on this account; this request asks for {amount}"
            )


class Account(Aggregate[UUID]):
    """Money held in one currency. The balance never goes below zero.

    New accounts start empty: money only arrives through entries. Persistence
    loads accounts without calling ``__init__``. ``owner_subject`` is the
    principal who may read the account and move its money; ``owner`` is what
    the API shows (the same subject for every account opened since v2). An
    account made before v2 has no owner subject, and nobody reaches it until
    an operator assigns one.
    """

    owner: str
    owner_subject: str | None
    currency: str
    balance: int
    entry_count: int
    """How many entries the journal holds; the next entry's sequence is one more."""
    created_at: datetime

    def __init__(self, *, id: UUID, owner: str, currency: str, created_at: datetime) -> None:
        self.id = id
        self.owner = check_owner(owner)
        self.owner_subject = self.owner
        self.currency = check_currency(currency)
        self.balance = 0
        self.entry_count = 0
        self.created_at = created_at
        self.version = 0

    @classmethod
    def open(cls, *, owner: str, currency: str, account_id: UUID | None = None) -> Account:
        account = cls(
            id=account_id or uuid4(), owner=owner, currency=currency, created_at=datetime.now(UTC)
        )
        account.raise_event(
            AccountOpened(account_id=account.id, owner=account.owner, currency=account.currency)
        )
        return account

    def is_owned_by(self, subject: str) -> bool:
        """Whether ``subject`` may read this account and move its money."""
        return self.owner_subject is not None and self.owner_subject == subject

    def check_reopen(self, *, owner: str, currency: str) -> None:
        """Accept opening this account again only with the same details (an idempotent replay).

        The refusal says nothing of the account it collided with.
        """
        if not self.is_owned_by(owner) or currency != self.currency:
            raise AccountAlreadyExists(f"account {self.id} already exists")

    def deposit(self, amount: int, *, reference: str) -> Entry:
        entry = self._post(EntryKind.DEPOSIT, amount, reference=reference)
        self.raise_event(
            Deposited(
                account_id=self.id,
                entry_id=entry.id,
                amount=entry.amount,
                currency=self.currency,
                reference=entry.reference,
                balance_after=entry.balance_after,
            )
        )
        return entry

    def withdraw(self, amount: int, *, reference: str) -> Entry:
        entry = self._post(EntryKind.WITHDRAWAL, amount, reference=reference)
        self.raise_event(
            Withdrawn(
                account_id=self.id,
                entry_id=entry.id,
                amount=entry.amount,
                currency=self.currency,
                reference=entry.reference,
                balance_after=entry.balance_after,
            )
        )
        return entry

    def transfer_out(self, amount: int, *, reference: str, transfer_id: UUID) -> Entry:
        """The debit half of a transfer; the transfer itself raises the event."""
        return self._post(
            EntryKind.TRANSFER_OUT, amount, reference=reference, transfer_id=transfer_id
        )

    def transfer_in(self, amount: int, *, reference: str, transfer_id: UUID) -> Entry:
        """The credit half of a transfer; the transfer itself raises the event."""
        return self._post(
            EntryKind.TRANSFER_IN, amount, reference=reference, transfer_id=transfer_id
        )

    def _post(
        self, kind: EntryKind, amount: int, *, reference: str, transfer_id: UUID | None = None
    ) -> Entry:
        check_amount(amount)
        check_reference(reference)
        balance = self.balance + amount if kind.is_credit else self.balance - amount
        if balance < 0:
            raise InsufficientFunds(
                f"account {self.id} holds {self.balance} {self.currency}; "
                f"{amount} cannot be taken from it"
            )
        if balance > MAX_BALANCE:
            raise InvalidAmount(
                f"account {self.id} would hold more than {MAX_BALANCE} {self.currency}"
            )
        self.balance = balance
        self.entry_count += 1
        return Entry(
            id=uuid4(),
            account_id=self.id,
            sequence=self.entry_count,
            kind=kind,
            amount=amount,
            balance_after=balance,
            reference=reference,
            transfer_id=transfer_id,
            created_at=datetime.now(UTC),
        )
