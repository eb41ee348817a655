"""Typing proof: mypy checks these ``assert_type`` calls, so a typing regression fails the build.

At run time ``assert_type`` does nothing, so each test also asserts, at run
time, what the annotated calls return on the fake.
"""

from __future__ import annotations

from typing import assert_type
from uuid import UUID

import pytest

from adapters.repository import InMemoryRepository
from service_layer.pagination import Page
from service_layer.repository import Prefix, Range, Repository, SyncRepository
from service_layer.retry import RetryPolicy, retrying, retrying_sync
from service_layer.unit_of_work import repository
from tests.kernel.factories import ThingFactory
from tests.kernel.things import Thing
from tests.kernel.things_uow import (
    InMemorySyncThingUnitOfWork,
    InMemoryThingUnitOfWork,
    SqlAlchemyThingUnitOfWork,
)

pytestmark = pytest.mark.unit


async def test_repository_attributes_are_typed_by_their_declaration() -> None:
    thing = ThingFactory.build()
    uow = InMemoryThingUnitOfWork()
    async with uow:
        assert_type(uow.things, Repository[Thing, UUID])
        implementation: object = uow.things  # checked apart: isinstance would narrow the type
        assert isinstance(implementation, InMemoryRepository)
        assert uow.things.kind is Thing
        uow.things.add(thing)
        got = await uow.things.get(thing.id)
        assert_type(got, Thing | None)
        assert got is thing
        locked = await uow.things.get_for_update(thing.id)
        assert_type(locked, Thing | None)
        assert locked is thing
        listed = await uow.things.list(order_by="name")
        assert_type(listed, list[Thing])
        assert listed == [thing]
        assert_type(uow.things.seen, list[Thing])
        assert uow.things.seen == [thing]
        assert_type(await uow.things.count(where={"name": Prefix("t")}), int)
        assert_type(await uow.things.page(order_by="name", limit=5), Page[Thing])
        assert_type(await uow.things.add_many([ThingFactory.build()]), None)
        await uow.commit()

    assert uow.commits == 1


def test_sync_repository_attributes_are_typed_by_their_declaration() -> None:
    thing = ThingFactory.build()
    with InMemorySyncThingUnitOfWork() as uow:
        assert_type(uow.things, SyncRepository[Thing, UUID])
        uow.things.add(thing)
        assert_type(uow.things.get(thing.id), Thing | None)
        assert_type(uow.things.list(where={"count": Range(ge=0)}), list[Thing])
        assert_type(uow.things.page(limit=5), Page[Thing])
        uow.commit()


def test_retrying_sync_returns_what_the_operation_returns() -> None:
    result = retrying_sync(lambda: "done", RetryPolicy(attempts=1, base_delay=0, max_delay=0))

    assert_type(result, str)
    assert result == "done"


def test_the_declaration_itself_is_reachable_on_the_class() -> None:
    declaration = SqlAlchemyThingUnitOfWork.things
    assert_type(declaration, repository[Thing, UUID])
    assert isinstance(declaration, repository)
    assert (declaration.kind, declaration.key, declaration.name) == (Thing, UUID, "things")


async def test_retrying_returns_what_the_operation_returns() -> None:
    async def operation() -> int:
        return 42

    result = await retrying(operation, RetryPolicy(attempts=1, base_delay=0, max_delay=0))

    assert_type(result, int)
    assert result == 42
