"""The relay finds a key's pending rows by key: ``ix_outbox_pending_by_key``.

A relay that has locked a key publishes that key's oldest pending rows first,
including one whose id lies below where its claims now start (a transaction
that took its id early and committed late). This index makes that lookup a
walk over the key's own pending rows.

Revision ID: kernel_0004
Revises: kernel_0003
Create Date: 2026-12-02 09:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "kernel_0004"
down_revision: str | Sequence[str] | None = "kernel_0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_outbox_pending_by_key",
        "outbox",
        ["aggregate_key", "id"],
        postgresql_where=sa.text("published_at IS NULL"),
        sqlite_where=sa.text("published_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_outbox_pending_by_key", table_name="outbox")
