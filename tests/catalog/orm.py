"""Imperative mapping of the catalog onto the kernel's ``mapper_registry``; runs once on import.

The ``sku`` column is the aggregate's ``id`` attribute, so the generic
repository's ``get(sku)`` works unchanged with a string key.
"""

from __future__ import annotations

from sqlalchemy import CheckConstraint, Column, Integer, String, Table

from adapters.database import mapper_registry, metadata
from tests.catalog.domain import Product

products = Table(
    "catalog_products",
    metadata,
    Column("sku", String(32), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("on_hand", Integer, nullable=False),
    Column("reserved", Integer, nullable=False),
    Column("version", Integer, nullable=False),
    # The invariant again, as a last line of defence below the domain.
    CheckConstraint("reserved >= 0 AND reserved <= on_hand", name="catalog_products_stock"),
)

mapper_registry.map_imperatively(
    Product, products, properties={"id": products.c.sku}, version_id_col=products.c.version
)
