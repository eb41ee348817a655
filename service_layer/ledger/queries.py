"""The read-side port: queries that answer with views, bypassing aggregates.

Reads need no identity map, no change tracking and no version bump, so they
go straight to rows. Each unit-of-work backend provides an implementation
that reads through its own transaction (or committed store), so a query
never sees another writer's uncommitted work.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from uuid import UUID

from service_layer.ledger.views import AccountView, EntryView, TransferView


@dataclass(frozen=True)
class JournalLine:
    """An entry with its position in the account's journal (for the cursor)."""

    sequence: int
    entry: EntryView


class LedgerQueries(abc.ABC):
    """Reads on behalf of an owner: what is not theirs is not found, as if it did not exist."""

    @abc.abstractmethod
    async def account(self, account_id: UUID, *, owner: str) -> AccountView | None:
        """The account, if ``owner`` is its owner subject."""

    @abc.abstractmethod
    async def transfer(self, transfer_id: UUID, *, viewer: str) -> TransferView | None:
        """The transfer, if ``viewer`` owns its source or its target."""

    @abc.abstractmethod
    async def journal(self, account_id: UUID, *, after: int, limit: int) -> list[JournalLine]:
        """At most ``limit`` entries of the account with a sequence above ``after``, in order."""
