"""The ledger's tables on the kernel's shared ``metadata``.

Constraint names are spelled out because the unit of work recognises the
idempotency constraints by name (see ``IDEMPOTENCY_CONSTRAINTS``), and
because Alembic migrations need stable names to alter them later.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    ForeignKeyConstraint,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    UniqueConstraint,
    Uuid,
)

from adapters.audit import UtcDateTime
from adapters.database import metadata
from adapters.ledger.types import EntryKindType

accounts = Table(
    "ledger_accounts",
    metadata,
    Column("id", Uuid, nullable=False),
    Column("owner", String(200), nullable=False),
    # NULL for accounts made before owners were principals: nobody's until assigned.
    Column("owner_subject", String(200), nullable=True),
    Column("currency", String(3), nullable=False),
    Column("balance", BigInteger, nullable=False),
    Column("entry_count", BigInteger, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("version", Integer, nullable=False),
    PrimaryKeyConstraint("id", name="pk_ledger_accounts"),
    CheckConstraint("balance >= 0", name="ck_ledger_accounts_balance_not_negative"),
)

transfers = Table(
    "ledger_transfers",
    metadata,
    Column("id", Uuid, nullable=False),
    Column("source_id", Uuid, nullable=False),
    Column("target_id", Uuid, nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("reference", String(100), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    PrimaryKeyConstraint("id", name="pk_ledger_transfers"),
    ForeignKeyConstraint(
        ["source_id"], ["ledger_accounts.id"], name="fk_ledger_transfers_source_id"
    ),
    ForeignKeyConstraint(
        ["target_id"], ["ledger_accounts.id"], name="fk_ledger_transfers_target_id"
    ),
    # Per source account: one owner's references neither collide with nor reveal another's.
    UniqueConstraint("source_id", "reference", name="uq_ledger_transfers_source_reference"),
    CheckConstraint("amount > 0", name="ck_ledger_transfers_amount_positive"),
    CheckConstraint("source_id <> target_id", name="ck_ledger_transfers_two_accounts"),
)

entries = Table(
    "ledger_entries",
    metadata,
    Column("id", Uuid, nullable=False),
    Column("account_id", Uuid, nullable=False),
    Column("sequence", BigInteger, nullable=False),
    Column("kind", EntryKindType, nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("balance_after", BigInteger, nullable=False),
    Column("reference", String(100), nullable=False),
    Column("transfer_id", Uuid, nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    PrimaryKeyConstraint("id", name="pk_ledger_entries"),
    ForeignKeyConstraint(
        ["account_id"], ["ledger_accounts.id"], name="fk_ledger_entries_account_id"
    ),
    ForeignKeyConstraint(
        ["transfer_id"], ["ledger_transfers.id"], name="fk_ledger_entries_transfer_id"
    ),
    # Also the index behind the keyset pagination of an account's journal.
    UniqueConstraint("account_id", "sequence", name="uq_ledger_entries_account_sequence"),
    CheckConstraint("amount > 0", name="ck_ledger_entries_amount_positive"),
    CheckConstraint("balance_after >= 0", name="ck_ledger_entries_balance_after_not_negative"),
    CheckConstraint(
        "kind IN ('deposit', 'withdrawal', 'transfer_in', 'transfer_out')",
        name="ck_ledger_entries_kind",
    ),
)

OWN_REFERENCE_KINDS = ("deposit", "withdrawal")
"""Entries whose reference is their account owner's own. A ``transfer_in`` carries the
payer's reference, which two payers may share; a ``transfer_out`` is kept unique by
its transfer's (source, reference)."""

Index(
    "uq_ledger_entries_account_kind_reference",
    entries.c.account_id,
    entries.c.kind,
    entries.c.reference,
    unique=True,
    postgresql_where=entries.c.kind.in_(OWN_REFERENCE_KINDS),
    sqlite_where=entries.c.kind.in_(OWN_REFERENCE_KINDS),
)

refusals = Table(
    "ledger_refusals",
    metadata,
    Column("id", Uuid, nullable=False),
    Column("account_id", Uuid, nullable=False),
    Column("kind", String(20), nullable=False),
    Column("reference", String(100), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("target_id", Uuid, nullable=True),
    Column("code", String(50), nullable=False),
    Column("detail", String(500), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    PrimaryKeyConstraint("id", name="pk_ledger_refusals"),
    ForeignKeyConstraint(
        ["account_id"], ["ledger_accounts.id"], name="fk_ledger_refusals_account_id"
    ),
    UniqueConstraint(
        "account_id", "kind", "reference", name="uq_ledger_refusals_account_kind_reference"
    ),
)

IDEMPOTENCY_CONSTRAINTS = frozenset(
    {
        "pk_ledger_accounts",
        "uq_ledger_transfers_source_reference",
        "uq_ledger_entries_account_kind_reference",
        "uq_ledger_entries_account_sequence",
        "uq_ledger_refusals_account_kind_reference",
    }
)
"""Unique constraints whose violation means "a concurrent writer got there first".

Re-running the unit of work then finds the other writer's row and answers
with it (an idempotent replay) or refuses properly, so these violations are
retried like any other lost race.
"""
