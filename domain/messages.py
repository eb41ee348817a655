"""Commands: what callers ask the domain to do, as opposed to events, what it did.

A command has exactly one handler and may be refused; an event
(:class:`domain.aggregate.Event`) has any number of handlers and is a fact.
Both travel as messages, so a command carries the ``message_id`` it arrived
with: the inbox uses it to apply a redelivered command once, and a rejection
names it. The id is a string because the wire format only promises a string;
a command made in-process gets a fresh UUID in text form.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TypeAlias
from uuid import uuid4

from domain.aggregate import Event


def _new_message_id() -> str:
    return str(uuid4())


@dataclass(frozen=True, kw_only=True)
class Command:
    """A request to change the domain. Immutable; subclasses add the fields they need."""

    message_id: str = field(default_factory=_new_message_id)
    issued_at: datetime = field(default_factory=lambda: datetime.now(UTC))


Message: TypeAlias = Command | Event
"""Anything the message bus dispatches."""


def message_id_of(message: Message) -> str:
    """The id a message travels under: the command's ``message_id`` or the event's ``event_id``."""
    if isinstance(message, Command):
        return message.message_id
    return str(message.event_id)
