"""Imperative mapping of the plain domain classes onto the ledger's tables.

The domain never imports SQLAlchemy; this module teaches SQLAlchemy about the
domain instead. Entries are reached through their own repository and
queries, never through a collection, so loading an account never loads its
journal.
"""

from __future__ import annotations

from sqlalchemy import inspect
from sqlalchemy.orm import relationship

from adapters.database import mapper_registry
from adapters.ledger.tables import accounts, entries, refusals, transfers
from domain.ledger.account import Account, Entry
from domain.ledger.refusal import Refusal
from domain.ledger.transfer import Transfer


def start_mappers() -> None:
    """Map the ledger's classes; calling it again does nothing."""
    if inspect(Account, raiseerr=False) is not None:
        return
    # version_id_col: every UPDATE says "WHERE version = <what I read>" and
    # bumps it, so a write based on a stale read fails instead of being lost.
    mapper_registry.map_imperatively(Account, accounts, version_id_col=accounts.c.version)
    mapper_registry.map_imperatively(Transfer, transfers)
    mapper_registry.map_imperatively(Refusal, refusals)
    mapper_registry.map_imperatively(
        Entry,
        entries,
        properties={
            # Never read (lazy="raise" makes sure). The unit of work orders its
            # INSERTs by relationships, not by foreign keys: without this, a
            # transfer's entries could be inserted before the transfer itself.
            "_transfer": relationship(Transfer, lazy="raise"),
        },
    )
