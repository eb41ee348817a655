"""The Product aggregate on its own: its invariant and its events."""

from __future__ import annotations

import pytest

from tests.catalog.domain import InvalidQuantity, OutOfStock, StockReplenished, StockReserved
from tests.catalog.factories import ProductFactory

pytestmark = pytest.mark.unit


def test_reserving_lowers_what_is_available() -> None:
    product = ProductFactory.build(on_hand=10)

    product.reserve(3, order_ref="order-1")

    assert (product.reserved, product.available) == (3, 7)


def test_reserving_raises_stock_reserved() -> None:
    product = ProductFactory.build(sku="SKU-1")

    product.reserve(2, order_ref="order-1")

    (event,) = product.events
    assert isinstance(event, StockReserved)
    assert (event.sku, event.quantity, event.order_ref) == ("SKU-1", 2, "order-1")


def test_reserving_more_than_available_is_refused_and_changes_nothing() -> None:
    product = ProductFactory.build(on_hand=5, reserved=4)

    with pytest.raises(OutOfStock, match="only 1 available"):
        product.reserve(2, order_ref="order-1")

    assert (product.reserved, product.events) == (4, [])


@pytest.mark.parametrize("quantity", [0, -3])
def test_a_quantity_that_is_not_positive_is_refused(quantity: int) -> None:
    with pytest.raises(InvalidQuantity, match="quantity must be positive"):
        ProductFactory.build().reserve(quantity, order_ref="order-1")


def test_restocking_raises_stock_replenished() -> None:
    product = ProductFactory.build(on_hand=1)

    product.restock(4)

    assert product.on_hand == 5
    assert isinstance(product.events[0], StockReplenished)


def test_a_product_cannot_start_with_more_reserved_than_on_hand() -> None:
    with pytest.raises(InvalidQuantity):
        ProductFactory.build(on_hand=1, reserved=2)
