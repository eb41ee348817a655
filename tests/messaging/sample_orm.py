"""Imperative mapping of the sample domain onto the shared ``metadata``; runs once on import."""

from __future__ import annotations

from sqlalchemy import Column, Integer, String, Table, Uuid

from adapters.database import mapper_registry, metadata
from tests.messaging.sample import Counter, Note

counters = Table(
    "msgtest_counters",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("value", Integer, nullable=False),
    Column("version", Integer, nullable=False),
)

notes = Table(
    "msgtest_notes",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("counter_id", Uuid, nullable=False),
    Column("text", String(200), nullable=False),
    Column("version", Integer, nullable=False),
)

mapper_registry.map_imperatively(Counter, counters, version_id_col=counters.c.version)
mapper_registry.map_imperatively(Note, notes, version_id_col=notes.c.version)
