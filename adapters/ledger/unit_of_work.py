"""The ledger's unit of work on each backend: SQLAlchemy, and the in-memory fake."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any

from adapters.ledger.integrity import idempotency_conflict
from adapters.ledger.queries import InMemoryLedgerQueries, SqlAlchemyLedgerQueries
from adapters.ledger.tables import OWN_REFERENCE_KINDS
from adapters.sql_errors import UNIQUE_VIOLATION
from adapters.unit_of_work import InMemoryUnitOfWork, SqlAlchemyUnitOfWork
from domain.errors import DuplicateKeyError
from domain.ledger.account import Entry
from domain.ledger.refusal import Refusal
from domain.ledger.transfer import Transfer
from service_layer.ledger.queries import LedgerQueries
from service_layer.ledger.unit_of_work import LedgerUnitOfWork


class SqlAlchemyLedgerUnitOfWork(LedgerUnitOfWork, SqlAlchemyUnitOfWork):
    @property
    def queries(self) -> LedgerQueries:
        self._require_active("queries")
        return SqlAlchemyLedgerQueries(lambda: self.session, self.driver)

    def translate_error(self, exc: BaseException) -> Exception | None:
        # Two requests with the same new reference (or account id) both find
        # nothing and both insert; the loser's unique violation is a lost race
        # like any other. Retrying finds the winner's row and replays it.
        constraint = idempotency_conflict(exc)
        if constraint is not None:
            return DuplicateKeyError(
                f"a concurrent request wrote the same key first ({constraint})",
                sqlstate=UNIQUE_VIOLATION,
            )
        return super().translate_error(exc)


_UNIQUE_KEYS: dict[type[Any], tuple[str, Callable[[Any], Hashable | None]]] = {
    Transfer: ("uq_ledger_transfers_source_reference", lambda t: (t.source_id, t.reference)),
    Entry: (
        "uq_ledger_entries_account_kind_reference",
        # The partial index: only deposits and withdrawals; None is never a duplicate.
        lambda e: (e.account_id, e.kind, e.reference) if e.kind in OWN_REFERENCE_KINDS else None,
    ),
    Refusal: (
        "uq_ledger_refusals_account_kind_reference",
        lambda r: (r.account_id, r.kind, r.reference),
    ),
}
"""The unique keys the tables keep; a key function answering ``None`` exempts the row."""


class InMemoryLedgerUnitOfWork(LedgerUnitOfWork, InMemoryUnitOfWork):
    """The fake, which also keeps the unique idempotency keys that the tables keep."""

    @property
    def queries(self) -> LedgerQueries:
        self._require_active("queries")
        return InMemoryLedgerQueries(self.store)

    async def _commit(self) -> None:
        duplicates = self._duplicate_keys()
        if duplicates:
            await self._rollback()
            raise DuplicateKeyError(
                "a concurrent request wrote the same key first (" + ", ".join(duplicates) + ")",
                sqlstate=UNIQUE_VIOLATION,
            )
        await super()._commit()

    def _duplicate_keys(self) -> list[str]:
        duplicates = []
        for kind, (constraint, key) in _UNIQUE_KEYS.items():
            committed = self.store.table(kind)
            taken = {key(row) for row in committed.values()} - {None}
            for staged in self.repository(kind).seen:
                if staged.id not in committed and key(staged) in taken:
                    duplicates.append(constraint)
        return duplicates
