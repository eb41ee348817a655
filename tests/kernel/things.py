"""A minimal aggregate for the kernel's own tests: a named thing with a counter.

Plain Python like any domain module; ``things_orm`` maps it.
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID, uuid4

from domain.aggregate import Aggregate, Event


@dataclass(frozen=True, kw_only=True)
class ThingRenamed(Event):
    thing_id: UUID
    name: str


class Thing(Aggregate[UUID]):
    def __init__(self, name: str, count: int = 0, *, id: UUID | None = None) -> None:
        self.id = id or uuid4()
        self.name = name
        self.count = count

    def rename(self, name: str) -> None:
        self.name = name
        self.raise_event(ThingRenamed(thing_id=self.id, name=name))

    def increment(self, by: int = 1) -> None:
        self.count += by
