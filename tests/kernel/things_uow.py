"""The units of work of the kernel tests, async and sync, declared as an application would."""

from __future__ import annotations

from uuid import UUID

import tests.kernel.things_orm  # noqa: F401 - maps Thing before any SQL unit of work runs
from adapters.sync_unit_of_work import InMemorySyncUnitOfWork, SqlAlchemySyncUnitOfWork
from adapters.unit_of_work import InMemoryUnitOfWork, SqlAlchemyUnitOfWork
from service_layer.sync_unit_of_work import AbstractSyncUnitOfWork, sync_repository
from service_layer.unit_of_work import AbstractUnitOfWork, repository
from tests.kernel.things import Thing


class ThingUnitOfWork(AbstractUnitOfWork):
    things = repository(Thing, UUID)


class SqlAlchemyThingUnitOfWork(ThingUnitOfWork, SqlAlchemyUnitOfWork):
    pass


class InMemoryThingUnitOfWork(ThingUnitOfWork, InMemoryUnitOfWork):
    pass


class SyncThingUnitOfWork(AbstractSyncUnitOfWork):
    """The same repository for synchronous code (scripts, tasks, ``def`` routes)."""

    things = sync_repository(Thing, UUID)


class SqlAlchemySyncThingUnitOfWork(SyncThingUnitOfWork, SqlAlchemySyncUnitOfWork):
    pass


class InMemorySyncThingUnitOfWork(SyncThingUnitOfWork, InMemorySyncUnitOfWork):
    pass
