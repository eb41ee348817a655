"""A write refused for the state of its account, kept under the request's reference.

Invariant 4 of the contract: a replay answers with the first result. A
withdrawal (or a transfer out) refused for want of funds *is* a result, so it
is recorded like a success would be; the same request sent again after money
arrived answers the same refusal instead of succeeding late, and another
request under the same reference is a ``reference_reused``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID, uuid4

from domain.aggregate import Aggregate
from domain.errors import DomainError
from domain.ledger.account import EntryKind
from domain.ledger.errors import InsufficientFunds, ReferenceReused

RECORDED: dict[str, type[DomainError]] = {InsufficientFunds.code: InsufficientFunds}
"""The refusals that depend on an account's state, and are kept: by code."""


def may_be_kept_for(kind: EntryKind) -> bool:
    """Whether a refusal of an entry of ``kind`` can have been kept.

    Only want of funds is kept, and only a debit can want funds: a deposit
    never needs to look for an earlier refusal (one statement fewer).
    """
    return not kind.is_credit


class Refusal(Aggregate[UUID]):
    """A refused write: which account, which kind of entry, reference, request and answer."""

    account_id: UUID
    kind: str
    reference: str
    amount: int
    target_id: UUID | None
    code: str
    detail: str
    created_at: datetime

    def __init__(
        self,
        *,
        id: UUID,
        account_id: UUID,
        kind: str,
        reference: str,
        amount: int,
        target_id: UUID | None,
        code: str,
        detail: str,
        created_at: datetime,
    ) -> None:
        self.id = id
        self.account_id = account_id
        self.kind = kind
        self.reference = reference
        self.amount = amount
        self.target_id = target_id
        self.code = code
        self.detail = detail
        self.created_at = created_at

    @classmethod
    def of(
        cls,
        error: DomainError,
        *,
        account_id: UUID,
        kind: str,
        reference: str,
        amount: int,
        target_id: UUID | None = None,
    ) -> Refusal | None:
        """The record of ``error``, or ``None`` when it is not a refusal that is kept."""
        if error.code not in RECORDED:
            return None
        return cls(
            id=uuid4(),
            account_id=account_id,
            kind=kind,
            reference=reference,
            amount=amount,
            target_id=target_id,
            code=error.code,
            detail=error.detail,
            created_at=datetime.now(UTC),
        )

    def replay(self, *, amount: int, target_id: UUID | None = None) -> DomainError:
        """The answer to a request under this reference: the same refusal, or a reuse."""
        if (amount, target_id) != (self.amount, self.target_id):
            return ReferenceReused(
                f"reference {self.reference!r} was already used for another {self.kind} "
                "on this account, which was refused"
            )
        return RECORDED[self.code](self.detail)
