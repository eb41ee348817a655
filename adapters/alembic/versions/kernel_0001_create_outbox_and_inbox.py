"""Create the messaging kernel's tables: the transactional outbox and the inbox.

The first revision of the kernel's own branch (``kernel``), which depends on
no bounded context; each context's branch depends on it. Constraint names are PostgreSQL's
defaults for the unnamed constraints of the mapped tables, so a database
made here and one made by ``metadata.create_all`` are the same.
``func.now()`` rather than the text ``now()``: it renders per dialect
(``CURRENT_TIMESTAMP`` on SQLite, which has no ``now()``).

Revision ID: kernel_0001
Revises:
Create Date: 2026-11-22 04:22:25.124893
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "kernel_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("kernel",)
depends_on: str | Sequence[str] | None = None

PENDING = sa.text("published_at IS NULL")


def upgrade() -> None:
    op.create_table(
        "outbox",
        # BIGSERIAL on PostgreSQL; INTEGER PRIMARY KEY (the rowid) on SQLite.
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("message_id", sa.Uuid(), nullable=False),
        sa.Column("stream", sa.String(length=200), nullable=False),
        sa.Column("aggregate_key", sa.String(length=200), nullable=False),
        sa.Column("type", sa.String(length=200), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="outbox_pkey"),
        sa.UniqueConstraint("message_id", name="outbox_message_id_key"),
    )
    op.create_index(
        "ix_outbox_pending",
        "outbox",
        ["aggregate_key", "id"],
        postgresql_where=PENDING,
        sqlite_where=PENDING,
    )
    op.create_table(
        "inbox",
        sa.Column("message_id", sa.String(length=200), nullable=False),
        sa.Column("handler", sa.String(length=200), server_default="", nullable=False),
        sa.Column(
            "processed_at",
            sa.DateTime(timezone=True),
            server_default=sa.func.now(),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("message_id", "handler", name="inbox_pkey"),
    )


def downgrade() -> None:
    op.drop_table("inbox")
    op.drop_index("ix_outbox_pending", table_name="outbox")
    op.drop_table("outbox")
