"""A tiny domain for the messaging tests: counters that add up, and notes.

Plain Python like any domain module; ``sample_orm`` maps it. ``Note`` is
append-only on purpose: taking a note twice creates two rows rather than a
version conflict, so only the inbox can stop a duplicate delivery.
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID, uuid4

from domain.aggregate import Aggregate, Event
from domain.errors import DomainError
from domain.messages import Command


class NegativeAmount(DomainError):
    code = "negative_amount"


@dataclass(frozen=True, kw_only=True)
class CounterOpened(Event):
    counter_id: UUID


@dataclass(frozen=True, kw_only=True)
class Added(Event):
    counter_id: UUID
    by: int
    value: int


@dataclass(frozen=True, kw_only=True)
class NoteTaken(Event):
    """Stays inside the service: not registered with a stream."""

    note_id: UUID
    counter_id: UUID


@dataclass(frozen=True, kw_only=True)
class CommandRefused(Event):
    """Announces a command that a domain rule refused; no aggregate raises it."""

    command_message_id: str
    code: str


@dataclass(frozen=True, kw_only=True)
class OpenCounter(Command):
    counter_id: UUID


@dataclass(frozen=True, kw_only=True)
class Add(Command):
    counter_id: UUID
    by: int


@dataclass(frozen=True, kw_only=True)
class TakeNote(Command):
    counter_id: UUID
    text: str


class Counter(Aggregate[UUID]):
    def __init__(self, *, id: UUID | None = None, value: int = 0) -> None:
        self.id = id or uuid4()
        self.value = value

    @classmethod
    def open(cls, counter_id: UUID) -> Counter:
        counter = cls(id=counter_id)
        counter.raise_event(CounterOpened(counter_id=counter.id))
        return counter

    def add(self, by: int) -> None:
        if by < 0:
            raise NegativeAmount(f"cannot add a negative amount ({by})")
        self.value += by
        self.raise_event(Added(counter_id=self.id, by=by, value=self.value))


class Note(Aggregate[UUID]):
    def __init__(self, *, counter_id: UUID, text: str, id: UUID | None = None) -> None:
        self.id = id or uuid4()
        self.counter_id = counter_id
        self.text = text
        self.raise_event(NoteTaken(note_id=self.id, counter_id=counter_id))
