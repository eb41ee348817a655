"""The catalog's use cases: command and event handlers, each one unit of work.

``COMMAND_HANDLERS`` and ``EVENT_HANDLERS`` are the catalog's tables of
handlers, under the stable names their inbox rows carry.
"""

from __future__ import annotations

from domain.aggregate import Event
from domain.messages import Command
from service_layer.messagebus import Handler
from service_layer.retry import RetryPolicy, retrying
from tests.catalog.domain import (
    AddProduct,
    DuplicateSku,
    Product,
    ProductNotFound,
    Reservation,
    ReserveStock,
    StockReserved,
)
from tests.catalog.unit_of_work import CatalogUnitOfWork

CONFLICTS = RetryPolicy(attempts=5, base_delay=0.001, max_delay=0.01)
"""Short pauses: the tests race writers on purpose and should not wait long."""


async def add_product(command: AddProduct, uow: CatalogUnitOfWork) -> str:
    async with uow:
        if await uow.products.get(command.sku) is not None:
            raise DuplicateSku(f"a product with SKU {command.sku!r} already exists")
        uow.products.add(Product(command.sku, command.name, command.on_hand))
        await uow.commit()
    return command.sku


async def reserve_stock(
    command: ReserveStock, uow: CatalogUnitOfWork, policy: RetryPolicy = CONFLICTS
) -> int:
    """Reserve stock for an order; returns what is still available.

    Re-run from the top on a conflict: entering ``uow`` again starts a fresh
    transaction that reads the winner's write.
    """

    async def attempt() -> int:
        async with uow:
            product = await uow.products.get(command.sku)
            if product is None:
                raise ProductNotFound(f"no product with SKU {command.sku!r}")
            product.reserve(command.quantity, command.order_ref)
            await uow.commit()
            return product.available

    return await retrying(attempt, policy)


async def record_reservation(event: StockReserved, uow: CatalogUnitOfWork) -> None:
    """What the catalog's consumer of ``catalog.events`` does with each reservation."""
    async with uow:
        uow.reservations.add(
            Reservation(event.event_id, event.sku, event.quantity, event.order_ref)
        )
        await uow.commit()


COMMAND_HANDLERS: dict[type[Command], Handler] = {
    AddProduct: Handler(add_product, "catalog.add_product"),
    ReserveStock: Handler(reserve_stock, "catalog.reserve_stock"),
}
CONSUMED_EVENTS: dict[type[Event], list[Handler]] = {
    StockReserved: [Handler(record_reservation, "catalog.record_reservation")]
}
