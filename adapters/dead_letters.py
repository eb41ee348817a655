"""Dead letters as an operator sees them: list, show, replay — a small port the brokers implement.

A message that can never be handled goes to ``<stream>.dead`` with the
reason (``adapters.brokers.base``). Once the cause is fixed, an operator puts
it back: :func:`replay` re-appends the original entry (its ``data`` and
headers, unchanged) to its stream as a *new* delivery, removes it from the
dead letters and leaves an audit record — on the broker, in the same atomic
step where it can, and as a JSON line on the ``keel.audit`` logger. The
message keeps its ``message_id``, so a replay of something already applied
(replayed twice, or applied before it was dead-lettered) is absorbed by the
consumer's inbox: applied once.
"""

from __future__ import annotations

import getpass
import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol, runtime_checkable

audit_logger = logging.getLogger("keel.audit")

BOOKKEEPING_FIELDS = frozenset({"reason", "stream", "attempts"})
"""Fields the dead-letter entry adds to the original; a replay leaves them behind."""


@dataclass(frozen=True)
class DeadLetterEntry:
    """One entry of a ``<stream>.dead`` stream, with the broker's id for it."""

    id: str
    stream: str
    """The logical stream the message was consumed from (without ``.dead`` or prefix)."""
    raw: str
    reason: str
    attempts: int
    fields: dict[str, str] = field(default_factory=dict)
    """Everything the entry holds, as text: ``data``, ``reason``, ``headers``, ..."""

    def message(self) -> dict[str, Any] | None:
        """The original message, parsed; ``None`` when it is not a JSON object."""
        try:
            parsed = json.loads(self.raw)
        except ValueError:
            return None
        return parsed if isinstance(parsed, dict) else None

    @property
    def message_id(self) -> str | None:
        message = self.message()
        value = message.get("message_id") if message else None
        return str(value) if value is not None else None

    @property
    def type(self) -> str | None:
        message = self.message()
        value = message.get("type") if message else None
        return str(value) if value is not None else None

    def replay_fields(self) -> dict[str, str]:
        """The fields of the original entry, for its new delivery."""
        return {k: v for k, v in self.fields.items() if k not in BOOKKEEPING_FIELDS}

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "stream": self.stream,
            "message_id": self.message_id,
            "type": self.type,
            "reason": self.reason,
            "attempts": self.attempts,
            "fields": self.fields,
            "message": self.message(),
        }


class DeadLetterNotFound(LookupError):
    """No dead letter with this id in this stream's dead letters."""


@runtime_checkable
class DeadLetterBox(Protocol):
    """What a broker offers for its dead letters; streams are logical names."""

    async def dead_letters(self, stream: str, *, limit: int = 100) -> list[DeadLetterEntry]:
        """The oldest ``limit`` dead letters of ``stream``, oldest first."""
        ...

    async def dead_letter_count(self, stream: str) -> int: ...

    async def get_dead_letter(self, stream: str, entry_id: str) -> DeadLetterEntry:
        """Raises :class:`DeadLetterNotFound`."""
        ...

    async def replay_dead_letter(
        self, stream: str, entry_id: str, audit: dict[str, str]
    ) -> tuple[DeadLetterEntry, str]:
        """Move the entry back to ``stream`` as a new delivery, recording ``audit``.

        Returns the entry and the id of its new delivery. Raises
        :class:`DeadLetterNotFound`.
        """
        ...


@dataclass(frozen=True)
class Replayed:
    entry: DeadLetterEntry
    new_id: str


async def replay(
    box: DeadLetterBox, stream: str, entry_id: str, *, by: str | None = None
) -> Replayed:
    """Replay one dead letter and log the audit line; raises :class:`DeadLetterNotFound`."""
    operator = by or _operator()
    audit = {
        "action": "dead_letter_replayed",
        "stream": stream,
        "dead_letter_id": entry_id,
        "by": operator,
        "at": datetime.now(UTC).isoformat(),
    }
    entry, new_id = await box.replay_dead_letter(stream, entry_id, audit)
    audit_logger.info(
        "dead letter replayed",
        extra={
            **audit,
            "new_id": new_id,
            "message_id": entry.message_id,
            "type": entry.type,
            "reason": entry.reason,
        },
    )
    return Replayed(entry, new_id)


def _operator() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no user name for this uid (a container)
        return "unknown"
