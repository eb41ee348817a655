"""Outbox rows keep where their event came from: correlation, causation and trace context.

The contract's v2 envelope carries ``correlation_id`` and ``causation_id``;
the relay reads them from the row, with the W3C trace context
(``trace_context``) its publish span continues. All nullable: rows written
before this revision are published as their own cause.

Revision ID: kernel_0003
Revises: kernel_0002
Create Date: 2026-12-01 09:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "kernel_0003"
down_revision: str | Sequence[str] | None = "kernel_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # batch_alter_table: SQLite cannot add several columns in one ALTER otherwise.
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("correlation_id", sa.String(length=200), nullable=True))
        batch.add_column(sa.Column("causation_id", sa.String(length=200), nullable=True))
        batch.add_column(sa.Column("trace_context", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("trace_context")
        batch.drop_column("causation_id")
        batch.drop_column("correlation_id")
