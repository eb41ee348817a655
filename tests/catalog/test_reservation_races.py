"""Two customers reserve at once: with real transactions, stock is never oversold.

Runs on the fake and on real databases with real commits
(``committing_backend``); ``reserve_stock`` retries the loser of a race.
Marks come from that fixture's parameters (``unit`` for the fake,
``integration`` for the databases).
"""

from __future__ import annotations

import asyncio

from tests.catalog.conftest import CatalogUowFactory
from tests.catalog.domain import AddProduct, OutOfStock, ReserveStock
from tests.catalog.handlers import add_product, reserve_stock


async def test_two_concurrent_reservations_that_fit_both_succeed(
    committing_catalog_uow_factory: CatalogUowFactory,
) -> None:
    factory = committing_catalog_uow_factory
    await add_product(AddProduct(sku="SKU-1", name="Lamp", on_hand=2), factory())

    await asyncio.gather(
        reserve_stock(ReserveStock(sku="SKU-1", quantity=1, order_ref="a"), factory()),
        reserve_stock(ReserveStock(sku="SKU-1", quantity=1, order_ref="b"), factory()),
    )

    async with factory() as uow:
        product = await uow.products.get("SKU-1")
    assert product is not None
    assert (product.reserved, product.available) == (2, 0)


async def test_of_two_concurrent_reservations_for_the_last_unit_one_is_refused(
    committing_catalog_uow_factory: CatalogUowFactory,
) -> None:
    factory = committing_catalog_uow_factory
    await add_product(AddProduct(sku="SKU-1", name="Lamp", on_hand=1), factory())

    outcomes = await asyncio.gather(
        reserve_stock(ReserveStock(sku="SKU-1", quantity=1, order_ref="a"), factory()),
        reserve_stock(ReserveStock(sku="SKU-1", quantity=1, order_ref="b"), factory()),
        return_exceptions=True,
    )

    assert sorted(type(outcome).__name__ for outcome in outcomes) == ["OutOfStock", "int"]
    assert any(isinstance(outcome, OutOfStock) for outcome in outcomes)
    async with factory() as uow:
        product = await uow.products.get("SKU-1")
    assert product is not None
    assert product.reserved == 1
