"""Catalog units of work on every backend (see ``backend`` in tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.catalog.orm import start_mappers
from tests.catalog.unit_of_work import (
    CatalogUnitOfWork,
    InMemoryCatalogUnitOfWork,
    SqlAlchemyCatalogUnitOfWork,
)
from tests.support.databases import Backend

start_mappers()  # bootstrap's job in a service; these tests build units of work by hand

CatalogUowFactory = Callable[[], CatalogUnitOfWork]


@pytest.fixture
def catalog_uow_factory(backend: Backend) -> CatalogUowFactory:
    return backend.unit_of_work(SqlAlchemyCatalogUnitOfWork, InMemoryCatalogUnitOfWork)


@pytest.fixture
def committing_catalog_uow_factory(committing_backend: Backend) -> CatalogUowFactory:
    return committing_backend.unit_of_work(SqlAlchemyCatalogUnitOfWork, InMemoryCatalogUnitOfWork)
