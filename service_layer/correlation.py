"""Which request or message the work in hand was caused by: correlation and causation ids.

Contract, section "v2: correlation": every event carries ``correlation_id``
(the conversation it belongs to: the HTTP request's ``X-Request-ID``, or the
first message's id) and ``causation_id`` (the message or request that
directly caused it). Entrypoints say what they are serving with
:func:`caused_by` — the HTTP middleware for a request, the consumer for a
delivered message — and the outbox reads :func:`current` when it writes an
event. A context variable rather than a parameter: the ids must reach the
outbox through handlers that know nothing about them, in any context.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class MessageContext:
    """The ids an event raised now carries."""

    correlation_id: str
    causation_id: str

    @classmethod
    def of_message(cls, message_id: str, correlation_id: str | None = None) -> MessageContext:
        """The context of work caused by a message: its correlation id (else its own id)."""
        return cls(correlation_id=correlation_id or message_id, causation_id=message_id)

    def caused_by(self, message_id: str) -> MessageContext:
        """The same conversation, one step further: caused by ``message_id``."""
        return MessageContext(correlation_id=self.correlation_id, causation_id=message_id)


_current: contextvars.ContextVar[MessageContext | None] = contextvars.ContextVar(
    "keel_message_context", default=None
)


def current() -> MessageContext | None:
    """The context of the request or message being served; ``None`` outside one."""
    return _current.get()


@contextlib.contextmanager
def caused_by(context: MessageContext | None) -> Iterator[MessageContext | None]:
    """Serve the block in ``context``; whatever was current before is back afterwards."""
    token = _current.set(context)
    try:
        yield context
    finally:
        _current.reset(token)


def use(context: MessageContext | None) -> None:
    """Make ``context`` current until the enclosing :func:`caused_by` block ends.

    For code that learns the ids half-way (a consumer decodes the message
    inside a block it opened before it knew them).
    """
    _current.set(context)
