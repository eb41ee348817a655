"""What the ledger announces. Each event carries enough for a consumer to act
without reading the ledger back: ids, amounts, the reference and the new balance."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from domain.aggregate import Event


@dataclass(frozen=True, kw_only=True)
class AccountOpened(Event):
    account_id: UUID
    owner: str
    currency: str


@dataclass(frozen=True, kw_only=True)
class Deposited(Event):
    account_id: UUID
    entry_id: UUID
    amount: int
    currency: str
    reference: str
    balance_after: int


@dataclass(frozen=True, kw_only=True)
class Withdrawn(Event):
    account_id: UUID
    entry_id: UUID
    amount: int
    currency: str
    reference: str
    balance_after: int


@dataclass(frozen=True, kw_only=True)
class TransferCompleted(Event):
    transfer_id: UUID
    source_id: UUID
    target_id: UUID
    amount: int
    currency: str
    reference: str
