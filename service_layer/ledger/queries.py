"""The read-side port: queries that answer with views, bypassing aggregates.

Reads need no identity map, no change tracking and no version bump, so they
go straight to rows. Each unit-of-work backend provides an implementation
that reads through its own transaction (or committed store), so a query
never sees another writer's uncommitted work.
"""

from __future__ import annotations

import abc
from uuid import UUID

from service_layer.ledger.views import AccountView, TransferView


class LedgerQueries(abc.ABC):
    """Reads on behalf of an owner: what is not theirs is not found, as if it did not exist."""

    @abc.abstractmethod
    async def account(self, account_id: UUID, *, owner: str) -> AccountView | None:
        """The account, if ``owner`` is its owner subject."""

    @abc.abstractmethod
    async def transfer(self, transfer_id: UUID, *, viewer: str) -> TransferView | None:
        """The transfer, if ``viewer`` owns its source or its target."""
