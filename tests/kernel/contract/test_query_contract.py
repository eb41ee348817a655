"""Filters, counts, ordering and offsets: the same answers from every backend and flavour.

Runs over :class:`Part`, whose unit of work whitelists ``name``, ``stock``,
``price``, ``retired_at`` and ``created_at`` (and, always, ``id``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from service_layer.repository import In, IsNull, Prefix, Range
from tests.kernel.contract.conftest import PartUowFactory
from tests.kernel.contract.steps import store_parts
from tests.kernel.factories import PartFactory

JAN = datetime(2024, 1, 15, 12, 0, tzinfo=UTC)
MAR = datetime(2024, 3, 15, 12, 0, tzinfo=UTC)


async def names_where(part_uow_factory: PartUowFactory, **where: object) -> list[str]:
    async with part_uow_factory() as uow:
        return sorted(part.name for part in await uow.parts.list(where=where))


async def test_in_keeps_aggregates_whose_attribute_is_one_of_the_values(
    part_uow_factory: PartUowFactory,
) -> None:
    await store_parts(
        part_uow_factory, *(PartFactory.build(name=n, stock=i) for i, n in enumerate("abcd"))
    )

    assert await names_where(part_uow_factory, stock=In([1, 3, 99])) == ["b", "d"]


async def test_in_with_no_values_matches_nothing(part_uow_factory: PartUowFactory) -> None:
    await store_parts(part_uow_factory, PartFactory.build())

    assert await names_where(part_uow_factory, stock=In([])) == []


async def test_in_on_the_id_is_always_allowed(part_uow_factory: PartUowFactory) -> None:
    wanted, other = PartFactory.build(name="wanted"), PartFactory.build(name="other")
    await store_parts(part_uow_factory, wanted, other)

    assert await names_where(part_uow_factory, id=In([wanted.id])) == ["wanted"]


async def test_range_gt_keeps_aggregates_strictly_above_the_bound(
    part_uow_factory: PartUowFactory,
) -> None:
    await store_parts(
        part_uow_factory, *(PartFactory.build(name=f"s{i}", stock=i) for i in range(6))
    )

    assert await names_where(part_uow_factory, stock=Range(gt=3)) == ["s4", "s5"]


async def test_range_bounds_combine_inclusive_and_exclusive(
    part_uow_factory: PartUowFactory,
) -> None:
    await store_parts(
        part_uow_factory, *(PartFactory.build(name=f"s{i}", stock=i) for i in range(6))
    )

    assert await names_where(part_uow_factory, stock=Range(ge=2, lt=4)) == ["s2", "s3"]


async def test_range_compares_decimals_exactly(part_uow_factory: PartUowFactory) -> None:
    await store_parts(
        part_uow_factory,
        PartFactory.build(name="cheap", price=Decimal("9.99")),
        PartFactory.build(name="even", price=Decimal("10.00")),
        PartFactory.build(name="dear", price=Decimal("10.01")),
    )

    assert await names_where(part_uow_factory, price=Range(le=Decimal("10.00"))) == [
        "cheap",
        "even",
    ]


async def test_range_compares_aware_datetimes(part_uow_factory: PartUowFactory) -> None:
    await store_parts(
        part_uow_factory,
        PartFactory.build(name="january", retired_at=JAN),
        PartFactory.build(name="march", retired_at=MAR),
    )

    found = await names_where(
        part_uow_factory, retired_at=Range(gt=datetime(2024, 2, 1, tzinfo=UTC))
    )

    assert found == ["march"]


async def test_range_never_matches_a_missing_value(part_uow_factory: PartUowFactory) -> None:
    await store_parts(part_uow_factory, PartFactory.build(name="active", retired_at=None))

    assert await names_where(part_uow_factory, retired_at=Range(lt=MAR)) == []


async def test_is_null_keeps_aggregates_without_a_value(part_uow_factory: PartUowFactory) -> None:
    await store_parts(
        part_uow_factory,
        PartFactory.build(name="active"),
        PartFactory.build(name="retired", retired_at=JAN),
    )

    assert await names_where(part_uow_factory, retired_at=IsNull()) == ["active"]


async def test_is_null_false_keeps_aggregates_with_a_value(
    part_uow_factory: PartUowFactory,
) -> None:
    await store_parts(
        part_uow_factory,
        PartFactory.build(name="active"),
        PartFactory.build(name="retired", retired_at=JAN),
    )

    assert await names_where(part_uow_factory, retired_at=IsNull(False)) == ["retired"]


async def test_prefix_matches_the_start_of_a_name_ignoring_case(
    part_uow_factory: PartUowFactory,
) -> None:
    await store_parts(
        part_uow_factory,
        *(PartFactory.build(name=n) for n in ["Abacus", "abbey", "cab", "ABC"]),
    )

    assert await names_where(part_uow_factory, name=Prefix("ab")) == ["ABC", "Abacus", "abbey"]


async def test_prefix_takes_percent_and_underscore_literally(
    part_uow_factory: PartUowFactory,
) -> None:
    await store_parts(
        part_uow_factory,
        *(PartFactory.build(name=n) for n in ["50%_off", "50 pct", "50%xoff", "5_0"]),
    )

    assert await names_where(part_uow_factory, name=Prefix("50%_")) == ["50%_off"]


async def test_filters_on_several_attributes_all_apply(part_uow_factory: PartUowFactory) -> None:
    await store_parts(
        part_uow_factory,
        PartFactory.build(name="bolt", stock=5),
        PartFactory.build(name="bracket", stock=1),
        PartFactory.build(name="nut", stock=9),
    )

    assert await names_where(part_uow_factory, name=Prefix("b"), stock=Range(gt=3)) == ["bolt"]


async def test_an_attribute_outside_the_whitelist_is_refused_naming_the_allowed_ones(
    part_uow_factory: PartUowFactory,
) -> None:
    async with part_uow_factory() as uow:
        with pytest.raises(ValueError, match="by 'updated_at'; allowed: created_at, id, name"):
            await uow.parts.list(where={"updated_at": IsNull(False)})


async def test_ordering_by_an_attribute_outside_the_whitelist_is_refused(
    part_uow_factory: PartUowFactory,
) -> None:
    async with part_uow_factory() as uow:
        with pytest.raises(ValueError, match="cannot be filtered or ordered by 'version'"):
            await uow.parts.list(order_by="-version")


async def test_count_counts_the_aggregates_matching_where(part_uow_factory: PartUowFactory) -> None:
    await store_parts(part_uow_factory, *(PartFactory.build(stock=i) for i in range(5)))

    async with part_uow_factory() as uow:
        assert await uow.parts.count(where={"stock": Range(ge=3)}) == 2


async def test_count_without_where_counts_everything(part_uow_factory: PartUowFactory) -> None:
    await store_parts(part_uow_factory, *(PartFactory.build() for _ in range(3)))

    async with part_uow_factory() as uow:
        assert await uow.parts.count() == 3


async def test_count_sees_aggregates_added_in_the_same_unit_of_work(
    part_uow_factory: PartUowFactory,
) -> None:
    async with part_uow_factory() as uow:
        uow.parts.add(PartFactory.build(stock=7))
        assert await uow.parts.count(where={"stock": 7}) == 1


async def test_missing_values_sort_last_ascending(part_uow_factory: PartUowFactory) -> None:
    await store_parts(
        part_uow_factory,
        PartFactory.build(name="none"),
        PartFactory.build(name="march", retired_at=MAR),
        PartFactory.build(name="january", retired_at=JAN),
    )

    async with part_uow_factory() as uow:
        found = await uow.parts.list(order_by="retired_at")

    assert [part.name for part in found] == ["january", "march", "none"]


async def test_missing_values_sort_first_descending(part_uow_factory: PartUowFactory) -> None:
    await store_parts(
        part_uow_factory,
        PartFactory.build(name="january", retired_at=JAN),
        PartFactory.build(name="none"),
        PartFactory.build(name="march", retired_at=MAR),
    )

    async with part_uow_factory() as uow:
        found = await uow.parts.list(order_by="-retired_at")

    assert [part.name for part in found] == ["none", "march", "january"]


async def test_equal_sort_keys_are_ordered_by_id(part_uow_factory: PartUowFactory) -> None:
    parts = [PartFactory.build(stock=1) for _ in range(5)]
    await store_parts(part_uow_factory, *parts)

    async with part_uow_factory() as uow:
        found = await uow.parts.list(order_by="stock")

    assert [part.id for part in found] == sorted(part.id for part in parts)


async def test_offset_skips_that_many_aggregates_in_order(part_uow_factory: PartUowFactory) -> None:
    await store_parts(
        part_uow_factory, *(PartFactory.build(name=f"p{i}", stock=i) for i in range(7))
    )

    async with part_uow_factory() as uow:
        found = await uow.parts.list(order_by="stock", offset=2, limit=3)

    assert [part.name for part in found] == ["p2", "p3", "p4"]


async def test_offset_past_the_end_gives_nothing(part_uow_factory: PartUowFactory) -> None:
    await store_parts(part_uow_factory, PartFactory.build())

    async with part_uow_factory() as uow:
        assert await uow.parts.list(order_by="name", offset=5) == []


async def test_a_negative_offset_is_refused(part_uow_factory: PartUowFactory) -> None:
    async with part_uow_factory() as uow:
        with pytest.raises(ValueError, match="offset must be >= 0"):
            await uow.parts.list(offset=-1)
