"""Keyset pages and offset pages: the same pages from every backend and flavour."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from service_layer.pagination import InvalidCursor
from service_layer.repository import Ordering, Prefix
from tests.kernel.contract.conftest import PartUowFactory
from tests.kernel.contract.steps import store_parts
from tests.kernel.factories import PartFactory
from tests.kernel.parts import Part

START = datetime(2024, 1, 1, tzinfo=UTC)


async def walk(
    part_uow_factory: PartUowFactory,
    order_by: Ordering,
    limit: int,
    where: dict[str, object] | None = None,
) -> list[list[str]]:
    """Every page from the first to the last, each read in a unit of work of its own."""
    pages: list[list[str]] = []
    cursor: str | None = None
    while True:
        async with part_uow_factory() as uow:
            page = await uow.parts.page(where=where, order_by=order_by, after=cursor, limit=limit)
        pages.append([part.name for part in page.items])
        if page.next is None:
            return pages
        cursor = page.next


async def test_pages_visit_every_aggregate_once_in_order(part_uow_factory: PartUowFactory) -> None:
    await store_parts(
        part_uow_factory, *(PartFactory.build(name=f"p{i}", stock=i) for i in range(7))
    )

    pages = await walk(part_uow_factory, "stock", limit=3)

    assert pages == [["p0", "p1", "p2"], ["p3", "p4", "p5"], ["p6"]]


async def test_the_last_full_page_has_no_next_cursor(part_uow_factory: PartUowFactory) -> None:
    await store_parts(part_uow_factory, *(PartFactory.build(stock=i) for i in range(4)))

    async with part_uow_factory() as uow:
        page = await uow.parts.page(order_by="stock", limit=4)

    assert (len(page.items), page.next) == (4, None)


async def test_ties_in_the_sort_key_never_repeat_or_skip_across_pages(
    part_uow_factory: PartUowFactory,
) -> None:
    parts = [PartFactory.build(stock=i % 2) for i in range(9)]
    await store_parts(part_uow_factory, *parts)

    pages = await walk(part_uow_factory, "-stock", limit=2)

    visited = [name for page in pages for name in page]
    expected = sorted(parts, key=lambda part: (-part.stock, part.id))
    assert visited == [part.name for part in expected]


async def test_every_page_applies_where(part_uow_factory: PartUowFactory) -> None:
    await store_parts(
        part_uow_factory,
        *(PartFactory.build(name=f"{prefix}{i}", stock=i) for prefix in "ab" for i in range(3)),
    )

    pages = await walk(part_uow_factory, "stock", limit=2, where={"name": Prefix("b")})

    assert pages == [["b0", "b1"], ["b2"]]


async def test_rows_inserted_while_paging_neither_repeat_nor_shift_later_pages(
    part_uow_factory: PartUowFactory,
) -> None:
    await store_parts(
        part_uow_factory, *(PartFactory.build(name=f"p{i}", stock=i * 10) for i in range(6))
    )
    async with part_uow_factory() as uow:
        first = await uow.parts.page(order_by="stock", limit=3)

    await store_parts(
        part_uow_factory,
        PartFactory.build(name="behind", stock=5),
        PartFactory.build(name="ahead", stock=35),
    )
    async with part_uow_factory() as uow:
        second = await uow.parts.page(order_by="stock", after=first.next, limit=3)

    assert [part.name for part in first.items] == ["p0", "p1", "p2"]
    assert [part.name for part in second.items] == ["p3", "ahead", "p4"]


async def test_paging_by_a_nullable_attribute_visits_missing_values_last(
    part_uow_factory: PartUowFactory,
) -> None:
    await store_parts(
        part_uow_factory,
        *(PartFactory.build(name=f"r{i}", retired_at=START + timedelta(days=i)) for i in range(3)),
        *(PartFactory.build(name=f"z{i}", stock=i) for i in range(3)),
    )

    pages = await walk(part_uow_factory, ["retired_at", "stock"], limit=2)

    assert pages == [["r0", "r1"], ["r2", "z0"], ["z1", "z2"]]


async def test_paging_descending_by_a_nullable_attribute_visits_missing_values_first(
    part_uow_factory: PartUowFactory,
) -> None:
    await store_parts(
        part_uow_factory,
        *(PartFactory.build(name=f"r{i}", retired_at=START + timedelta(days=i)) for i in range(3)),
        *(PartFactory.build(name=f"z{i}", stock=i) for i in range(2)),
    )

    pages = await walk(part_uow_factory, ["-retired_at", "stock"], limit=2)

    assert pages == [["z0", "z1"], ["r2", "r1"], ["r0"]]


async def test_paging_by_decimal_and_name_round_trips_through_the_cursor(
    part_uow_factory: PartUowFactory,
) -> None:
    await store_parts(
        part_uow_factory,
        *(
            PartFactory.build(name=n, price=Decimal(p))
            for n, p in [("a", "1.10"), ("b", "1.10"), ("c", "0.99")]
        ),
    )

    pages = await walk(part_uow_factory, ["-price", "name"], limit=1)

    assert pages == [["a"], ["b"], ["c"]]


async def test_a_cursor_is_refused_for_another_ordering(part_uow_factory: PartUowFactory) -> None:
    await store_parts(part_uow_factory, *(PartFactory.build(stock=i) for i in range(3)))
    async with part_uow_factory() as uow:
        first = await uow.parts.page(order_by="stock", limit=1)

        with pytest.raises(InvalidCursor, match="another ordering"):
            await uow.parts.page(order_by="-stock", after=first.next, limit=1)


async def test_an_altered_cursor_is_refused(part_uow_factory: PartUowFactory) -> None:
    await store_parts(part_uow_factory, *(PartFactory.build(stock=i) for i in range(3)))
    async with part_uow_factory() as uow:
        first = await uow.parts.page(order_by="stock", limit=1)
        assert first.next is not None

        with pytest.raises(InvalidCursor):
            await uow.parts.page(order_by="stock", after=first.next[:-3] + "@@@", limit=1)


async def test_a_page_of_fewer_than_one_is_refused(part_uow_factory: PartUowFactory) -> None:
    async with part_uow_factory() as uow:
        with pytest.raises(ValueError, match="limit >= 1"):
            await uow.parts.page(order_by="stock", limit=0)


async def test_page_items_are_tracked_for_their_events(part_uow_factory: PartUowFactory) -> None:
    await store_parts(part_uow_factory, PartFactory.build())

    async with part_uow_factory() as uow:
        (part,) = (await uow.parts.page(limit=5)).items
        part.restock(3)
        events = list(uow.collect_new_events())

    assert len(events) == 1


async def test_offset_pages_with_a_count_number_an_admin_screen(
    part_uow_factory: PartUowFactory,
) -> None:
    await store_parts(
        part_uow_factory, *(PartFactory.build(name=f"p{i}", stock=i) for i in range(5))
    )

    async with part_uow_factory() as uow:
        total = await uow.parts.count()
        third: list[Part] = await uow.parts.list(order_by="stock", offset=4, limit=2)

    assert (total, [part.name for part in third]) == (5, ["p4"])
