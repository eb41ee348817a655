"""Owners are principals, references are scoped per account, refusals are kept.

- ``ledger_accounts.owner_subject``: the principal who owns the account.
  Accounts made before it get NULL: their ``owner`` was free text that anyone
  could type, not an identity, so nobody reaches them until an operator
  assigns the subject (``docs/security.md``, "Upgrading").
- Transfer references are unique per source account instead of globally, and
  entry references per account for deposits and withdrawals only (a
  ``transfer_in`` carries the payer's reference, which two payers may share).
  Every existing row already satisfies the narrower constraints.
- ``ledger_refusals``: a write refused for want of funds, under its reference,
  so that a replay answers the same refusal.

SQLite cannot drop a constraint in place; batch mode rebuilds those tables
there, and alters them in place on PostgreSQL.

Revision ID: ledger_0002
Revises: ledger_0001
Create Date: 2026-12-01 09:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "ledger_0002"
down_revision: str | Sequence[str] | None = "ledger_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OWN_REFERENCE_KINDS = "kind IN ('deposit', 'withdrawal')"


def upgrade() -> None:
    op.add_column(
        "ledger_accounts", sa.Column("owner_subject", sa.String(length=200), nullable=True)
    )
    with op.batch_alter_table("ledger_transfers") as transfers:
        transfers.drop_constraint("uq_ledger_transfers_reference", type_="unique")
        transfers.create_unique_constraint(
            "uq_ledger_transfers_source_reference", ["source_id", "reference"]
        )
    with op.batch_alter_table("ledger_entries") as entries:
        entries.drop_constraint("uq_ledger_entries_account_kind_reference", type_="unique")
    op.create_index(
        "uq_ledger_entries_account_kind_reference",
        "ledger_entries",
        ["account_id", "kind", "reference"],
        unique=True,
        postgresql_where=sa.text(OWN_REFERENCE_KINDS),
        sqlite_where=sa.text(OWN_REFERENCE_KINDS),
    )
    op.create_table(
        "ledger_refusals",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("reference", sa.String(length=100), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("target_id", sa.Uuid(), nullable=True),
        sa.Column("code", sa.String(length=50), nullable=False),
        sa.Column("detail", sa.String(length=500), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["ledger_accounts.id"], name="fk_ledger_refusals_account_id"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_ledger_refusals"),
        sa.UniqueConstraint(
            "account_id", "kind", "reference", name="uq_ledger_refusals_account_kind_reference"
        ),
    )


def downgrade() -> None:
    # Fails, as it should, when two accounts have since used the same transfer reference.
    op.drop_table("ledger_refusals")
    op.drop_index("uq_ledger_entries_account_kind_reference", table_name="ledger_entries")
    with op.batch_alter_table("ledger_entries") as entries:
        entries.create_unique_constraint(
            "uq_ledger_entries_account_kind_reference", ["account_id", "kind", "reference"]
        )
    with op.batch_alter_table("ledger_transfers") as transfers:
        transfers.drop_constraint("uq_ledger_transfers_source_reference", type_="unique")
        transfers.create_unique_constraint("uq_ledger_transfers_reference", ["reference"])
    with op.batch_alter_table("ledger_accounts") as accounts:
        accounts.drop_column("owner_subject")
