"""Two customers reserve at once: with real transactions, stock is never oversold.

Runs on the fake and on real databases with real commits
(``committing_backend``); ``reserve_stock`` retries the loser of a race.
Marks come from that fixture's parameters (``unit`` for the fake,
``integration`` for the databases).

The race is staged, not hoped for: :class:`MeetBeforeCommit` holds each
reservation's first attempt at its commit until both have read the product,
so both decide on the same stock; the fake would otherwise run one after the
other. Each test asserts that a commit was refused (``conflicts``) and
retried, so a test that stopped racing would fail.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from domain.aggregate import Aggregate, Event
from service_layer.unit_of_work import AbstractUnitOfWork
from tests.catalog.conftest import CatalogUowFactory
from tests.catalog.domain import AddProduct, OutOfStock, ReserveStock
from tests.catalog.handlers import add_product, reserve_stock
from tests.catalog.unit_of_work import CatalogUnitOfWork


class MeetBeforeCommit:
    """A commit hook: the first commit of each unit of work waits for the others'."""

    def __init__(self, parties: int) -> None:
        self.barrier = asyncio.Barrier(parties)
        self.met: set[int] = set()

    async def before_commit(
        self, uow: AbstractUnitOfWork, raised: Sequence[tuple[Aggregate[Any], Event]]
    ) -> None:
        if id(uow) not in self.met:
            self.met.add(id(uow))
            await asyncio.wait_for(self.barrier.wait(), timeout=10)


def racing(factory: CatalogUowFactory, parties: int) -> list[CatalogUnitOfWork]:
    meeting = MeetBeforeCommit(parties)
    uows = [factory() for _ in range(parties)]
    for uow in uows:
        uow.hooks.append(meeting)
    return uows


async def test_two_concurrent_reservations_that_fit_both_succeed(
    committing_catalog_uow_factory: CatalogUowFactory,
) -> None:
    factory = committing_catalog_uow_factory
    await add_product(AddProduct(sku="SKU-1", name="Lamp", on_hand=2), factory())
    first, second = racing(factory, 2)

    await asyncio.gather(
        reserve_stock(ReserveStock(sku="SKU-1", quantity=1, order_ref="a"), first),
        reserve_stock(ReserveStock(sku="SKU-1", quantity=1, order_ref="b"), second),
    )

    assert first.conflicts + second.conflicts == 1
    async with factory() as uow:
        product = await uow.products.get("SKU-1")
    assert product is not None
    assert (product.reserved, product.available) == (2, 0)


async def test_of_two_concurrent_reservations_for_the_last_unit_one_is_refused(
    committing_catalog_uow_factory: CatalogUowFactory,
) -> None:
    factory = committing_catalog_uow_factory
    await add_product(AddProduct(sku="SKU-1", name="Lamp", on_hand=1), factory())
    first, second = racing(factory, 2)

    outcomes = await asyncio.gather(
        reserve_stock(ReserveStock(sku="SKU-1", quantity=1, order_ref="a"), first),
        reserve_stock(ReserveStock(sku="SKU-1", quantity=1, order_ref="b"), second),
        return_exceptions=True,
    )

    assert first.conflicts + second.conflicts == 1
    assert sorted(type(outcome).__name__ for outcome in outcomes) == ["OutOfStock", "int"]
    assert any(isinstance(outcome, OutOfStock) for outcome in outcomes)
    async with factory() as uow:
        product = await uow.products.get("SKU-1")
    assert product is not None
    assert product.reserved == 1
