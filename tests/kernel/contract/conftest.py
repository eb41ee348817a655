"""Units of work over the ``Thing`` aggregate, on every backend the kernel supports.

``uow_factory`` runs inside savepoint isolation; ``committing_uow_factory``
commits for real (two units of work then are two transactions) and is
emptied afterwards.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.kernel.things_uow import (
    InMemoryThingUnitOfWork,
    SqlAlchemyThingUnitOfWork,
    ThingUnitOfWork,
)
from tests.support.databases import Backend

UowFactory = Callable[[], ThingUnitOfWork]


@pytest.fixture
def uow_factory(backend: Backend) -> UowFactory:
    return backend.unit_of_work(SqlAlchemyThingUnitOfWork, InMemoryThingUnitOfWork)


@pytest.fixture
def committing_uow_factory(committing_backend: Backend) -> UowFactory:
    return committing_backend.unit_of_work(SqlAlchemyThingUnitOfWork, InMemoryThingUnitOfWork)
