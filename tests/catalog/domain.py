"""A product catalog with stock reservations: the kernel's second, tests-only domain.

Plain Python, no framework imports. Its invariant: a product never has more
stock reserved than it has on hand.
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from domain.aggregate import Aggregate, Event
from domain.errors import Conflict, InvalidValue, NotFound
from domain.messages import Command


class OutOfStock(Conflict):
    code = "out_of_stock"


class InvalidQuantity(InvalidValue):
    code = "invalid_quantity"


class DuplicateSku(Conflict):
    code = "duplicate_sku"


class ProductNotFound(NotFound):
    code = "product_not_found"


@dataclass(frozen=True, kw_only=True)
class AddProduct(Command):
    sku: str
    name: str
    on_hand: int


@dataclass(frozen=True, kw_only=True)
class ReserveStock(Command):
    sku: str
    quantity: int
    order_ref: str


@dataclass(frozen=True, kw_only=True)
class StockReserved(Event):
    sku: str
    quantity: int
    order_ref: str


@dataclass(frozen=True, kw_only=True)
class StockReplenished(Event):
    sku: str
    quantity: int


def _positive(quantity: int) -> int:
    if quantity <= 0:
        raise InvalidQuantity(f"quantity must be positive, got {quantity}")
    return quantity


class Product(Aggregate[str]):
    """A stock-keeping unit; its ``id`` is the SKU, a string key."""

    def __init__(self, sku: str, name: str, on_hand: int = 0, reserved: int = 0) -> None:
        if not 0 <= reserved <= on_hand:
            raise InvalidQuantity(f"need 0 <= reserved ({reserved}) <= on_hand ({on_hand})")
        self.id = sku
        self.name = name
        self.on_hand = on_hand
        self.reserved = reserved

    @property
    def sku(self) -> str:
        return self.id

    @property
    def available(self) -> int:
        return self.on_hand - self.reserved

    def reserve(self, quantity: int, order_ref: str) -> None:
        _positive(quantity)
        if quantity > self.available:
            raise OutOfStock(
                f"cannot reserve {quantity} of {self.sku}: only {self.available} available"
            )
        self.reserved += quantity
        self.raise_event(StockReserved(sku=self.sku, quantity=quantity, order_ref=order_ref))

    def restock(self, quantity: int) -> None:
        self.on_hand += _positive(quantity)
        self.raise_event(StockReplenished(sku=self.sku, quantity=quantity))


class Reservation(Aggregate[UUID]):
    """What the catalog's own event consumer records for each ``StockReserved`` it applies.

    Keyed by the event's id: the inbox makes a redelivered event apply once, and
    the key would refuse a second row anyway.
    """

    def __init__(self, id: UUID, sku: str, quantity: int, order_ref: str) -> None:
        self.id = id
        self.sku = sku
        self.quantity = quantity
        self.order_ref = order_ref
