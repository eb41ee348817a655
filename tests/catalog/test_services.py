"""Catalog services on every backend.

Marks come from the ``backend`` fixture's parameters: the fake is ``unit``,
PostgreSQL and SQLite are ``integration``.
"""

from __future__ import annotations

import pytest

from tests.catalog.conftest import CatalogUowFactory
from tests.catalog.domain import (
    AddProduct,
    DuplicateSku,
    OutOfStock,
    Product,
    ProductNotFound,
    ReserveStock,
    StockReserved,
)
from tests.catalog.handlers import add_product, reserve_stock


async def stored(uow_factory: CatalogUowFactory, sku: str) -> Product:
    async with uow_factory() as uow:
        product = await uow.products.get(sku)
    assert product is not None
    return product


async def test_an_added_product_can_be_read_back(catalog_uow_factory: CatalogUowFactory) -> None:
    await add_product(AddProduct(sku="SKU-1", name="Lamp", on_hand=4), catalog_uow_factory())

    product = await stored(catalog_uow_factory, "SKU-1")

    assert (product.sku, product.name, product.available, product.version) == (
        "SKU-1",
        "Lamp",
        4,
        1,
    )


async def test_adding_a_product_twice_is_refused(catalog_uow_factory: CatalogUowFactory) -> None:
    await add_product(AddProduct(sku="SKU-1", name="Lamp", on_hand=4), catalog_uow_factory())

    with pytest.raises(DuplicateSku, match="'SKU-1' already exists"):
        await add_product(
            AddProduct(sku="SKU-1", name="Other lamp", on_hand=1), catalog_uow_factory()
        )


async def test_a_reservation_is_kept_and_returns_what_remains(
    catalog_uow_factory: CatalogUowFactory,
) -> None:
    await add_product(AddProduct(sku="SKU-1", name="Lamp", on_hand=4), catalog_uow_factory())

    remaining = await reserve_stock(
        ReserveStock(sku="SKU-1", quantity=3, order_ref="order-1"), catalog_uow_factory()
    )

    assert remaining == 1
    product = await stored(catalog_uow_factory, "SKU-1")
    assert (product.reserved, product.version) == (3, 2)


async def test_a_reservation_beyond_the_stock_is_refused_and_keeps_nothing(
    catalog_uow_factory: CatalogUowFactory,
) -> None:
    await add_product(AddProduct(sku="SKU-1", name="Lamp", on_hand=2), catalog_uow_factory())

    with pytest.raises(OutOfStock):
        await reserve_stock(
            ReserveStock(sku="SKU-1", quantity=3, order_ref="order-1"), catalog_uow_factory()
        )

    product = await stored(catalog_uow_factory, "SKU-1")
    assert (product.reserved, product.version) == (0, 1)


async def test_reserving_an_unknown_product_is_not_found(
    catalog_uow_factory: CatalogUowFactory,
) -> None:
    with pytest.raises(ProductNotFound, match="no product with SKU 'SKU-404'"):
        await reserve_stock(
            ReserveStock(sku="SKU-404", quantity=1, order_ref="order-1"), catalog_uow_factory()
        )


async def test_a_reservation_event_is_collected_after_the_commit(
    catalog_uow_factory: CatalogUowFactory,
) -> None:
    await add_product(AddProduct(sku="SKU-1", name="Lamp", on_hand=4), catalog_uow_factory())
    uow = catalog_uow_factory()

    await reserve_stock(ReserveStock(sku="SKU-1", quantity=1, order_ref="order-7"), uow)

    events = list(uow.collect_new_events())
    assert [(e.sku, e.order_ref) for e in events if isinstance(e, StockReserved)] == [
        ("SKU-1", "order-7")
    ]


async def test_products_can_be_listed_by_availability_order(
    catalog_uow_factory: CatalogUowFactory,
) -> None:
    for sku, on_hand in [("SKU-A", 5), ("SKU-B", 9), ("SKU-C", 1)]:
        await add_product(
            AddProduct(sku=sku, name=sku.lower(), on_hand=on_hand), catalog_uow_factory()
        )

    async with catalog_uow_factory() as uow:
        found = await uow.products.list(order_by="-on_hand", limit=2)

    assert [product.sku for product in found] == ["SKU-B", "SKU-A"]
