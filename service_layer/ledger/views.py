"""What the ledger's use cases answer with: frozen, framework-free read models.

Entrypoints serialise these; they never see an aggregate, so nothing they do
can change one by accident or trigger lazy database I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar
from uuid import UUID

from domain.ledger.account import Account, Entry
from domain.ledger.transfer import Transfer

V = TypeVar("V")


@dataclass(frozen=True)
class AccountView:
    id: UUID
    owner: str
    currency: str
    balance: int
    version: int
    created_at: datetime

    @classmethod
    def of(cls, account: Account) -> AccountView:
        return cls(
            id=account.id,
            owner=account.owner,
            currency=account.currency,
            balance=account.balance,
            version=account.version,
            created_at=account.created_at,
        )


@dataclass(frozen=True)
class EntryView:
    id: UUID
    account_id: UUID
    kind: str
    """One of ``deposit``, ``withdrawal``, ``transfer_in``, ``transfer_out``."""
    amount: int
    balance_after: int
    reference: str
    transfer_id: UUID | None
    created_at: datetime

    @classmethod
    def of(cls, entry: Entry) -> EntryView:
        return cls(
            id=entry.id,
            account_id=entry.account_id,
            kind=str(entry.kind),
            amount=entry.amount,
            balance_after=entry.balance_after,
            reference=entry.reference,
            transfer_id=entry.transfer_id,
            created_at=entry.created_at,
        )


@dataclass(frozen=True)
class TransferView:
    id: UUID
    source_id: UUID
    target_id: UUID
    amount: int
    currency: str
    reference: str
    created_at: datetime

    @classmethod
    def of(cls, transfer: Transfer) -> TransferView:
        return cls(
            id=transfer.id,
            source_id=transfer.source_id,
            target_id=transfer.target_id,
            amount=transfer.amount,
            currency=transfer.currency,
            reference=transfer.reference,
            created_at=transfer.created_at,
        )


@dataclass(frozen=True)
class EntryPage:
    """One page of an account's journal, oldest first; ``next`` is the cursor of the
    following page, ``None`` on the last one."""

    items: list[EntryView]
    next: str | None


@dataclass(frozen=True)
class Outcome(Generic[V]):
    """A write's result; ``created`` is ``False`` when it replayed an earlier request."""

    value: V
    created: bool
