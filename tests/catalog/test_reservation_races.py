"""Two customers reserve at once: with real transactions, stock is never oversold.

Runs on the fake and on real databases with real commits
(``committing_backend``); ``reserve_stock`` retries the loser of a race.
Marks come from that fixture's parameters (``unit`` for the fake,
``integration`` for the databases).
"""

from __future__ import annotations

import asyncio

from tests.catalog.conftest import CatalogUowFactory
from tests.catalog.domain import OutOfStock
from tests.catalog.services import add_product, reserve_stock


async def test_two_concurrent_reservations_that_fit_both_succeed(
    committing_catalog_uow_factory: CatalogUowFactory,
) -> None:
    factory = committing_catalog_uow_factory
    await add_product(factory(), "SKU-1", "Lamp", on_hand=2)

    await asyncio.gather(
        reserve_stock(factory(), "SKU-1", 1, order_ref="a"),
        reserve_stock(factory(), "SKU-1", 1, order_ref="b"),
    )

    async with factory() as uow:
        product = await uow.products.get("SKU-1")
    assert product is not None
    assert (product.reserved, product.available) == (2, 0)


async def test_of_two_concurrent_reservations_for_the_last_unit_one_is_refused(
    committing_catalog_uow_factory: CatalogUowFactory,
) -> None:
    factory = committing_catalog_uow_factory
    await add_product(factory(), "SKU-1", "Lamp", on_hand=1)

    outcomes = await asyncio.gather(
        reserve_stock(factory(), "SKU-1", 1, order_ref="a"),
        reserve_stock(factory(), "SKU-1", 1, order_ref="b"),
        return_exceptions=True,
    )

    assert sorted(type(outcome).__name__ for outcome in outcomes) == ["OutOfStock", "int"]
    assert any(isinstance(outcome, OutOfStock) for outcome in outcomes)
    async with factory() as uow:
        product = await uow.products.get("SKU-1")
    assert product is not None
    assert product.reserved == 1
