"""The catalog's service functions: each one business transaction on a ``CatalogUnitOfWork``."""

from __future__ import annotations

from domain.errors import NotFound
from service_layer.retry import RetryPolicy, retry_on_conflict
from tests.catalog.domain import DuplicateSku, Product
from tests.catalog.unit_of_work import CatalogUnitOfWork

# Short pauses: the tests race writers on purpose and should not wait long.
CONFLICTS = RetryPolicy(attempts=5, base_delay=0.001, max_delay=0.01)


async def add_product(uow: CatalogUnitOfWork, sku: str, name: str, on_hand: int) -> None:
    async with uow:
        if await uow.products.get(sku) is not None:
            raise DuplicateSku(f"a product with SKU {sku!r} already exists")
        uow.products.add(Product(sku, name, on_hand))
        await uow.commit()


@retry_on_conflict(CONFLICTS)
async def reserve_stock(uow: CatalogUnitOfWork, sku: str, quantity: int, order_ref: str) -> int:
    """Reserve stock for an order; returns what is still available.

    Re-run from the top on a conflict: entering ``uow`` again starts a fresh
    transaction that reads the winner's write.
    """
    async with uow:
        product = await uow.products.get(sku)
        if product is None:
            raise NotFound(f"no product with SKU {sku!r}")
        product.reserve(quantity, order_ref)
        await uow.commit()
        return product.available
