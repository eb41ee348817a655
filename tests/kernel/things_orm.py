"""Imperative mapping of :class:`Thing` onto the shared ``metadata``; runs once on import."""

from __future__ import annotations

from sqlalchemy import Column, Integer, String, Table, Uuid

from adapters.database import mapper_registry, metadata
from tests.kernel.things import Thing

things = Table(
    "kernel_things",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("name", String(100), nullable=False),
    Column("count", Integer, nullable=False),
    Column("version", Integer, nullable=False),
)

mapper_registry.map_imperatively(Thing, things, version_id_col=things.c.version)
