"""Imperative mapping of :class:`Part`, with the kernel's audit columns; runs once on import."""

from __future__ import annotations

from sqlalchemy import Column, Integer, Numeric, String, Table, Uuid

from adapters.audit import UtcDateTime, audit_columns
from adapters.database import mapper_registry, metadata
from tests.kernel.parts import Part

parts = Table(
    "kernel_parts",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("name", String(100), nullable=False),
    Column("stock", Integer, nullable=False),
    Column("price", Numeric(12, 2), nullable=False),
    Column("retired_at", UtcDateTime(), nullable=True),
    Column("version", Integer, nullable=False),
    *audit_columns(),
)

mapper_registry.map_imperatively(Part, parts, version_id_col=parts.c.version)
