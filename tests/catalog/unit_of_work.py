"""The catalog's unit of work, declared once; backends are mixed in."""

from __future__ import annotations

import tests.catalog.orm  # noqa: F401 - maps Product before any SQL unit of work runs
from adapters.unit_of_work import InMemoryUnitOfWork, SqlAlchemyUnitOfWork
from service_layer.unit_of_work import AbstractUnitOfWork, repository
from tests.catalog.domain import Product


class CatalogUnitOfWork(AbstractUnitOfWork):
    products = repository(Product, str)


class SqlAlchemyCatalogUnitOfWork(CatalogUnitOfWork, SqlAlchemyUnitOfWork):
    pass


class InMemoryCatalogUnitOfWork(CatalogUnitOfWork, InMemoryUnitOfWork):
    pass
