"""What a caller may ask a repository: the filter vocabulary's own checks and the whitelist.

Backend-independent, so on the fake only; the contract suite shows the
backends agree on what these filters match.
"""

from __future__ import annotations

from uuid import UUID

import pytest

from service_layer.pagination import CursorCodec, InvalidCursor
from service_layer.repository import (
    Eq,
    In,
    IsNull,
    Prefix,
    QueryRules,
    Range,
    as_filter,
    data_attributes,
)
from service_layer.unit_of_work import repository
from tests.kernel.factories import ThingFactory
from tests.kernel.things import Thing
from tests.kernel.things_uow import InMemoryThingUnitOfWork

pytestmark = pytest.mark.unit


class NarrowThingUnitOfWork(InMemoryThingUnitOfWork):
    things = repository(Thing, UUID, fields=("name",))


class MistakenThingUnitOfWork(InMemoryThingUnitOfWork):
    things = repository(Thing, UUID, fields=("name", "colour"))


def test_a_plain_value_means_equality() -> None:
    assert as_filter(3) == Eq(3)


def test_a_filter_is_taken_as_given() -> None:
    assert as_filter(IsNull()) == IsNull()


def test_in_refuses_none_and_points_to_is_null() -> None:
    with pytest.raises(ValueError, match="use IsNull"):
        In([1, None])


def test_in_refuses_a_bare_string() -> None:
    with pytest.raises(ValueError, match="not a single string"):
        In("abc")


def test_in_takes_any_iterable() -> None:
    assert In(x for x in (1, 2)).values == (1, 2)


def test_range_needs_a_bound() -> None:
    with pytest.raises(ValueError, match="at least one of gt, ge, lt, le"):
        Range()


@pytest.mark.parametrize(
    ("bounds", "message"),
    [({"gt": 1, "ge": 1}, "gt or ge"), ({"lt": 1, "le": 1}, "lt or le")],
    ids=["lower", "upper"],
)
def test_range_takes_one_bound_per_side(bounds: dict[str, int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Range(**bounds)


def test_prefix_refuses_a_non_string() -> None:
    with pytest.raises(ValueError, match="takes a string, got int"):
        Prefix(5)  # type: ignore[arg-type]


def test_the_default_whitelist_is_the_data_attributes_never_methods_or_properties() -> None:
    assert data_attributes(Thing) >= {"id", "name", "count", "version"}
    assert not data_attributes(Thing) & {"rename", "increment", "events", "raise_event"}


def test_an_attribute_mapped_onto_the_class_after_a_first_look_is_seen() -> None:
    class Parcel:
        def __init__(self, weight: int) -> None:
            self.weight = weight  # on the instance only, until a mapping puts it on the class

    assert "weight" not in data_attributes(Parcel)
    Parcel.weight = 0  # what an imperative mapping does
    assert "weight" in data_attributes(Parcel)


@pytest.mark.parametrize("name", ["rename", "events", "_pending_events"])
async def test_a_method_property_or_private_name_is_refused(name: str) -> None:
    async with InMemoryThingUnitOfWork() as uow:
        with pytest.raises(ValueError, match=f"cannot be filtered or ordered by '{name}'"):
            await uow.things.list(where={name: 1})


async def test_a_declared_whitelist_refuses_other_attributes_naming_the_allowed() -> None:
    async with NarrowThingUnitOfWork() as uow:
        with pytest.raises(ValueError, match=r"by 'count'; allowed: id, name$"):
            await uow.things.list(order_by="count")


async def test_a_declared_whitelist_always_allows_the_id() -> None:
    thing = ThingFactory.build()
    async with NarrowThingUnitOfWork() as uow:
        uow.things.add(thing)
        assert await uow.things.list(where={"id": In([thing.id])}) == [thing]


async def test_a_whitelist_naming_an_unknown_attribute_fails_on_first_use() -> None:
    async with MistakenThingUnitOfWork() as uow:
        with pytest.raises(ValueError, match="Thing has no attribute 'colour' to allow"):
            uow.things.add(ThingFactory.build())


async def test_the_whitelist_survives_a_rollback() -> None:
    async with NarrowThingUnitOfWork() as uow:
        uow.things.add(ThingFactory.build())
        await uow.rollback()
        with pytest.raises(ValueError, match="allowed: id, name"):
            await uow.things.count(where={"count": 0})


async def test_a_configured_secret_signs_the_cursors_of_every_repository(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(QueryRules, "cursors", CursorCodec(secret=b"sixteen bytes at least"))
    async with InMemoryThingUnitOfWork() as uow:
        await uow.things.add_many(ThingFactory.build_batch(3))
        first = await uow.things.page(order_by="name", limit=1)
        assert first.next is not None

        with pytest.raises(InvalidCursor, match="signature"):
            await uow.things.page(order_by="name", after=first.next.split(".")[0], limit=1)
