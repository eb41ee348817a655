"""The port the ledger's use cases depend on: its repositories and read-side queries."""

from __future__ import annotations

import abc
from uuid import UUID

from domain.ledger.account import Account, Entry
from domain.ledger.refusal import Refusal
from domain.ledger.transfer import Transfer
from service_layer.ledger.queries import LedgerQueries
from service_layer.unit_of_work import AbstractUnitOfWork, repository


class LedgerUnitOfWork(AbstractUnitOfWork):
    """The port the ledger's services depend on; ``adapters.ledger.unit_of_work`` implements it."""

    accounts = repository(Account, UUID)
    entries = repository(Entry, UUID)
    transfers = repository(Transfer, UUID)
    refusals = repository(Refusal, UUID)

    @property
    @abc.abstractmethod
    def queries(self) -> LedgerQueries:
        """Read-side queries inside this unit of work's transaction."""
