"""factory-boy factories for the catalog. Use ``.build()``, which is typed."""

from __future__ import annotations

from factory.base import Factory
from factory.declarations import Sequence

from tests.catalog.domain import Product


class ProductFactory(Factory[Product]):
    class Meta:
        model = Product

    sku = Sequence(lambda n: f"SKU-{n:05d}")  # type: ignore[no-untyped-call]
    name = Sequence(lambda n: f"Product {n}")  # type: ignore[no-untyped-call]
    on_hand = 10
    reserved = 0
