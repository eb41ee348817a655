"""A commit hook that behaves like the outbox, for the contract tests.

Like ``SqlAlchemyOutbox`` it reads each aggregate it is handed (so a hook run
on an aggregate that a rollback expired fails on SQLAlchemy, as the outbox
did), and like ``InMemoryOutbox`` it publishes through an ``on_commit``
callback: what it ``published`` is what a committed transaction kept.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from domain.aggregate import Aggregate, Event
from service_layer.unit_of_work import AbstractUnitOfWork
from tests.kernel.things import ThingRenamed
from tests.kernel.things_uow import ThingUnitOfWork


class RecordingHook:
    def __init__(self) -> None:
        self.handed: list[list[str]] = []
        """The renames handed to each ``before_commit``, one list per commit tried."""
        self.published: list[str] = []
        """The renames of the commits that succeeded, in order."""

    async def before_commit(
        self, uow: AbstractUnitOfWork, raised: Sequence[tuple[Aggregate[Any], Event]]
    ) -> None:
        renames = [
            f"{aggregate.id}:{event.name}"
            for aggregate, event in raised
            if isinstance(event, ThingRenamed)
        ]
        self.handed.append(renames)
        uow.on_commit(lambda: self.published.extend(renames))

    def published_names(self) -> list[str]:
        return [entry.split(":", 1)[1] for entry in self.published]


def hooked(uow: ThingUnitOfWork) -> tuple[ThingUnitOfWork, RecordingHook]:
    """``uow`` with a fresh :class:`RecordingHook` attached."""
    hook = RecordingHook()
    uow.hooks.append(hook)
    return uow, hook
