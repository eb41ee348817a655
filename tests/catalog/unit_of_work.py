"""The catalog's unit of work, declared once; backends are mixed in."""

from __future__ import annotations

from uuid import UUID

from adapters.unit_of_work import InMemoryUnitOfWork, SqlAlchemyUnitOfWork
from service_layer.unit_of_work import AbstractUnitOfWork, repository
from tests.catalog.domain import Product, Reservation


class CatalogUnitOfWork(AbstractUnitOfWork):
    products = repository(Product, str)
    reservations = repository(Reservation, UUID)


class SqlAlchemyCatalogUnitOfWork(CatalogUnitOfWork, SqlAlchemyUnitOfWork):
    pass


class InMemoryCatalogUnitOfWork(CatalogUnitOfWork, InMemoryUnitOfWork):
    pass
