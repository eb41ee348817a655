"""Units of work over :class:`Part`, async and sync, with a whitelist of queryable fields."""

from __future__ import annotations

from uuid import UUID

import tests.kernel.parts_orm  # noqa: F401 - maps Part before any SQL unit of work runs
from adapters.sync_unit_of_work import InMemorySyncUnitOfWork, SqlAlchemySyncUnitOfWork
from adapters.unit_of_work import InMemoryUnitOfWork, SqlAlchemyUnitOfWork
from service_layer.sync_unit_of_work import AbstractSyncUnitOfWork, sync_repository
from service_layer.unit_of_work import AbstractUnitOfWork, repository
from tests.kernel.parts import Part

QUERYABLE = ("name", "stock", "price", "retired_at", "created_at")
"""Deliberately not ``updated_at``: the tests show an unlisted attribute is refused."""


class PartUnitOfWork(AbstractUnitOfWork):
    parts = repository(Part, UUID, fields=QUERYABLE)


class SqlAlchemyPartUnitOfWork(PartUnitOfWork, SqlAlchemyUnitOfWork):
    pass


class InMemoryPartUnitOfWork(PartUnitOfWork, InMemoryUnitOfWork):
    pass


class SyncPartUnitOfWork(AbstractSyncUnitOfWork):
    """The same repository for synchronous code (scripts, tasks, ``def`` routes)."""

    parts = sync_repository(Part, UUID, fields=QUERYABLE)


class SqlAlchemySyncPartUnitOfWork(SyncPartUnitOfWork, SqlAlchemySyncUnitOfWork):
    pass


class InMemorySyncPartUnitOfWork(SyncPartUnitOfWork, InMemorySyncUnitOfWork):
    pass
