"""Imperative mapping of the catalog onto the kernel's ``mapper_registry``.

The ``sku`` column is the aggregate's ``id`` attribute, so the generic
repository's ``get(sku)`` works unchanged with a string key. The composition
root calls :func:`start_mappers` once (``BoundedContext.start_mappers``).
"""

from __future__ import annotations

from sqlalchemy import CheckConstraint, Column, Integer, String, Table, Uuid, inspect

from adapters.database import mapper_registry, metadata
from tests.catalog.domain import Product, Reservation

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

reservations = Table(
    "catalog_reservations",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("sku", String(32), nullable=False),
    Column("quantity", Integer, nullable=False),
    Column("order_ref", String(100), nullable=False),
    Column("version", Integer, nullable=False),
)


def start_mappers() -> None:
    """Map the catalog's classes; calling it again does nothing."""
    if inspect(Product, raiseerr=False) is not None:
        return
    mapper_registry.map_imperatively(
        Product, products, properties={"id": products.c.sku}, version_id_col=products.c.version
    )
    mapper_registry.map_imperatively(
        Reservation, reservations, version_id_col=reservations.c.version
    )
