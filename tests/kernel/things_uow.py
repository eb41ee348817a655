"""The units of work of the kernel tests, declared the way an application declares its own."""

from __future__ import annotations

from uuid import UUID

import tests.kernel.things_orm  # noqa: F401 - maps Thing before any SQL unit of work runs
from adapters.unit_of_work import InMemoryUnitOfWork, SqlAlchemyUnitOfWork
from service_layer.unit_of_work import AbstractUnitOfWork, repository
from tests.kernel.things import Thing


class ThingUnitOfWork(AbstractUnitOfWork):
    things = repository(Thing, UUID)


class SqlAlchemyThingUnitOfWork(ThingUnitOfWork, SqlAlchemyUnitOfWork):
    pass


class InMemoryThingUnitOfWork(ThingUnitOfWork, InMemoryUnitOfWork):
    pass
