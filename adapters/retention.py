"""Retention: published outbox rows and old inbox rows are deleted, a small batch at a time.

Without it both tables grow for ever. The relay runs :meth:`Retention.purge`
every ``interval`` seconds (``adapters.relay``); each batch is its own short
transaction, so a purge never holds locks for long.

Ages:

- a *published* outbox row is only history once the broker has it, so it
  may go soon after (pending rows are never purged, however old);
- an inbox row is what makes a redelivery a no-op, so it must outlive every
  redelivery of its message. Redis redelivers an unacknowledged entry every
  ``BROKER_CLAIM_IDLE_MS`` up to ``BROKER_MAX_DELIVERIES`` times; the inbox
  window must be longer than that product (``adapters.settings`` checks it),
  and, in practice, longer than a relay may stay down between publishing a
  message and marking it (it publishes it again when it comes back).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select, tuple_
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.inbox import inbox_table
from adapters.outbox import SqlAlchemyOutboxStore, delete_in_batches

logger = logging.getLogger(__name__)

DEFAULT_OUTBOX_RETENTION = timedelta(days=7)
DEFAULT_INBOX_RETENTION = timedelta(days=14)
DEFAULT_BATCH_SIZE = 1000
DEFAULT_INTERVAL_SECONDS = 60.0


@dataclass(frozen=True)
class RetentionPolicy:
    """How long rows are kept, how many one transaction deletes, how often the relay purges."""

    outbox_age: timedelta = DEFAULT_OUTBOX_RETENTION
    inbox_age: timedelta = DEFAULT_INBOX_RETENTION
    batch_size: int = DEFAULT_BATCH_SIZE
    interval: float = DEFAULT_INTERVAL_SECONDS

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError(f"retention batch_size must be >= 1, got {self.batch_size}")
        if self.interval <= 0:
            raise ValueError(f"retention interval must be > 0 seconds, got {self.interval}")
        if self.outbox_age < timedelta(0) or self.inbox_age < timedelta(0):
            raise ValueError("retention ages must not be negative")


@dataclass(frozen=True)
class Purged:
    """Rows one purge deleted."""

    outbox: int = 0
    inbox: int = 0


class Retention:
    """Deletes published outbox rows and inbox rows older than the policy's ages."""

    def __init__(self, engine: AsyncEngine, policy: RetentionPolicy | None = None) -> None:
        self.engine = engine
        self.policy = policy if policy is not None else RetentionPolicy()
        self._outbox = SqlAlchemyOutboxStore(engine)

    async def purge(self) -> Purged:
        """Both purges, each to the end; logged when they deleted anything."""
        outbox = await self.purge_outbox()
        inbox = await self.purge_inbox()
        if outbox or inbox:
            logger.info(
                "purged old outbox and inbox rows", extra={"outbox": outbox, "inbox": inbox}
            )
        return Purged(outbox=outbox, inbox=inbox)

    async def purge_outbox(self) -> int:
        """Delete outbox rows published longer ago than the policy's ``outbox_age``."""
        return await self._outbox.purge_published(
            self.policy.outbox_age, batch_size=self.policy.batch_size
        )

    async def purge_inbox(self) -> int:
        """Delete inbox rows processed longer ago than the policy's ``inbox_age``."""
        cutoff = datetime.now(UTC) - self.policy.inbox_age
        key = tuple_(inbox_table.c.message_id, inbox_table.c.handler)
        oldest = (
            select(inbox_table.c.message_id, inbox_table.c.handler)
            .where(inbox_table.c.processed_at < cutoff)
            .order_by(inbox_table.c.processed_at)
            .limit(self.policy.batch_size)
        )
        return await delete_in_batches(
            self.engine, delete(inbox_table).where(key.in_(oldest)), self.policy.batch_size
        )
