"""A second test aggregate, for queries: a part with stock, a price and a retirement date.

Plain Python like any domain module; ``parts_orm`` maps it, with audit columns
the domain never mentions.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from uuid import UUID, uuid4

from domain.aggregate import Aggregate, Event


@dataclass(frozen=True, kw_only=True)
class PartRestocked(Event):
    part_id: UUID
    stock: int


class Part(Aggregate[UUID]):
    def __init__(
        self,
        name: str,
        stock: int = 0,
        price: Decimal = Decimal("0.00"),
        retired_at: datetime | None = None,
        *,
        id: UUID | None = None,
    ) -> None:
        self.id = id or uuid4()
        self.name = name
        self.stock = stock
        self.price = price
        self.retired_at = retired_at

    def restock(self, by: int) -> None:
        self.stock += by
        self.raise_event(PartRestocked(part_id=self.id, stock=self.stock))
