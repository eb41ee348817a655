"""Widen the outbox's ordering key; index the outbox and the inbox for the relay and the purge.

- ``outbox.aggregate_key`` to 400 characters: a refused command's rejection
  is keyed ``Command:<message_id>``, and the envelope allows a 200-character
  message id, so the key did not fit in 200 and the refusal was
  dead-lettered instead of announced. Widening a ``varchar`` rewrites
  nothing on PostgreSQL.
- ``ix_outbox_pending`` now leads with ``id``: the relay walks the oldest
  pending rows in id order with a LIMIT, so a pass costs the same whatever
  the backlog (it was keyed by ``aggregate_key`` first, and the relay
  grouped the whole backlog every pass).
- ``ix_outbox_published_at`` and ``ix_inbox_processed_at``: the retention
  purge deletes the oldest rows in small batches without scanning the rest.

On a large table the index builds hold a lock that blocks writes to it for
their duration; purge-free history makes ``outbox`` large.

Revision ID: kernel_0002
Revises: kernel_0001
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "kernel_0002"
down_revision: str | Sequence[str] | None = "kernel_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PENDING = sa.text("published_at IS NULL")
PUBLISHED = sa.text("published_at IS NOT NULL")


def upgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.alter_column(
            "aggregate_key",
            existing_type=sa.String(length=200),
            type_=sa.String(length=400),
            existing_nullable=False,
        )
    op.drop_index("ix_outbox_pending", table_name="outbox")
    op.create_index(
        "ix_outbox_pending",
        "outbox",
        ["id", "aggregate_key"],
        postgresql_where=PENDING,
        sqlite_where=PENDING,
    )
    op.create_index(
        "ix_outbox_published_at",
        "outbox",
        ["published_at"],
        postgresql_where=PUBLISHED,
        sqlite_where=PUBLISHED,
    )
    op.create_index("ix_inbox_processed_at", "inbox", ["processed_at"])


def downgrade() -> None:
    op.drop_index("ix_inbox_processed_at", table_name="inbox")
    op.drop_index("ix_outbox_published_at", table_name="outbox")
    op.drop_index("ix_outbox_pending", table_name="outbox")
    op.create_index(
        "ix_outbox_pending",
        "outbox",
        ["aggregate_key", "id"],
        postgresql_where=PENDING,
        sqlite_where=PENDING,
    )
    with op.batch_alter_table("outbox") as batch:
        batch.alter_column(
            "aggregate_key",
            existing_type=sa.String(length=400),
            type_=sa.String(length=200),
            existing_nullable=False,
        )
