"""Create the example ledger's tables: accounts, transfers and the entries journal.

Column types are spelled with plain SQLAlchemy types, not the application's
TypeDecorators: a migration is a frozen record and must not change when the
application code does. The first revision of the ledger's own branch
(``ledger``), which depends on the kernel's.

Revision ID: ledger_0001
Revises:
Create Date: 2026-11-22 03:24:04.842047
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "ledger_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("ledger",)
depends_on: str | Sequence[str] | None = "kernel_0001"


def upgrade() -> None:
    op.create_table(
        "ledger_accounts",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("owner", sa.String(length=200), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("balance", sa.BigInteger(), nullable=False),
        sa.Column("entry_count", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.CheckConstraint("balance >= 0", name="ck_ledger_accounts_balance_not_negative"),
        sa.PrimaryKeyConstraint("id", name="pk_ledger_accounts"),
    )
    op.create_table(
        "ledger_transfers",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("source_id", sa.Uuid(), nullable=False),
        sa.Column("target_id", sa.Uuid(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("reference", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("amount > 0", name="ck_ledger_transfers_amount_positive"),
        sa.CheckConstraint("source_id <> target_id", name="ck_ledger_transfers_two_accounts"),
        sa.ForeignKeyConstraint(
            ["source_id"], ["ledger_accounts.id"], name="fk_ledger_transfers_source_id"
        ),
        sa.ForeignKeyConstraint(
            ["target_id"], ["ledger_accounts.id"], name="fk_ledger_transfers_target_id"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_ledger_transfers"),
        sa.UniqueConstraint("reference", name="uq_ledger_transfers_reference"),
    )
    op.create_table(
        "ledger_entries",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("sequence", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("balance_after", sa.BigInteger(), nullable=False),
        sa.Column("reference", sa.String(length=100), nullable=False),
        sa.Column("transfer_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "kind IN ('deposit', 'withdrawal', 'transfer_in', 'transfer_out')",
            name="ck_ledger_entries_kind",
        ),
        sa.CheckConstraint("amount > 0", name="ck_ledger_entries_amount_positive"),
        sa.CheckConstraint(
            "balance_after >= 0", name="ck_ledger_entries_balance_after_not_negative"
        ),
        sa.ForeignKeyConstraint(
            ["account_id"], ["ledger_accounts.id"], name="fk_ledger_entries_account_id"
        ),
        sa.ForeignKeyConstraint(
            ["transfer_id"], ["ledger_transfers.id"], name="fk_ledger_entries_transfer_id"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_ledger_entries"),
        sa.UniqueConstraint(
            "account_id", "kind", "reference", name="uq_ledger_entries_account_kind_reference"
        ),
        sa.UniqueConstraint("account_id", "sequence", name="uq_ledger_entries_account_sequence"),
    )


def downgrade() -> None:
    op.drop_table("ledger_entries")
    op.drop_table("ledger_transfers")
    op.drop_table("ledger_accounts")
