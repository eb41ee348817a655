"""What every aggregate and every domain event has in common.

An aggregate is the unit a repository loads and saves, and the unit whose
``version`` guards against lost updates. It collects the events it raises so
that the unit of work can hand them to the message bus after a commit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar, Generic, TypeVar
from uuid import UUID, uuid4

IdT = TypeVar("IdT")


@dataclass(frozen=True, kw_only=True)
class Event:
    """Something that happened in the domain. Immutable; compared by value."""

    event_id: UUID = field(default_factory=uuid4)
    occurred_at: datetime = field(default_factory=lambda: datetime.now(UTC))


class Aggregate(Generic[IdT]):
    """Base for aggregate roots.

    Subclasses set ``id`` and may leave ``version`` at 0: persistence assigns
    1 on the first insert and bumps it on every write, and a write based on a
    stale version fails with :class:`domain.errors.ConcurrencyError`.

    ``events`` is not an attribute stored in ``__init__`` on purpose: an ORM
    loads objects without calling ``__init__``, so the list is created on
    first use instead.
    """

    id: IdT
    version: int = 0

    _transient_attributes: ClassVar[frozenset[str]] = frozenset({"_pending_events"})

    @property
    def events(self) -> list[Event]:
        pending: list[Event] | None = self.__dict__.get("_pending_events")
        if pending is None:
            pending = []
            self.__dict__["_pending_events"] = pending
        return pending

    def raise_event(self, event: Event) -> None:
        self.events.append(event)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} id={self.id!r} version={self.version}>"

    def __getstate__(self) -> dict[str, Any]:
        # Pending events belong to one unit of work; copies never carry them.
        state = dict(self.__dict__)
        state.pop("_pending_events", None)
        return state
