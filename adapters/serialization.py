"""Domain messages to and from the wire format, and which events leave the service.

Every message on the wire is one JSON object (contract, section "Messages")::

    {"message_id": str, "type": str, "occurred_at": ISO-8601, "payload": {...}}

plus, on events (contract, "v2: correlation") and optionally on commands,
``correlation_id`` and ``causation_id``: kept by :func:`decode` when present.

A :class:`MessageRegistry` names each command and event class, and for an
event that other services consume, the stream it goes to and the key that
orders it. The outbox asks the registry which events to write; the consumer
asks it to turn an incoming object back into a command.

Payloads are converted with pydantic's ``TypeAdapter`` over the plain
dataclasses, so the domain keeps no serialization code and incoming payloads
are validated (types, required fields) with pydantic's messages.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import Annotated, Any, TypeAlias, TypeVar
from uuid import UUID

from pydantic import BaseModel, ConfigDict, StringConstraints, TypeAdapter, ValidationError

from domain.aggregate import Aggregate, Event
from domain.messages import Command, Message

M = TypeVar("M", bound=Message)
KeyFunction: TypeAlias = Callable[[Any], str]

MESSAGE_KEYS = ("message_id", "type", "occurred_at", "payload")
CONTEXT_KEYS = ("correlation_id", "causation_id")
"""Optional envelope fields that say which conversation a message belongs to."""

# The dataclass fields that travel in the envelope rather than in the payload.
_ENVELOPE_FIELDS: dict[type[Any], tuple[str, str]] = {
    Command: ("message_id", "issued_at"),
    Event: ("event_id", "occurred_at"),
}


class MalformedMessage(ValueError):
    """A message that can never be handled: not JSON, the wrong shape, an unknown type.

    Retrying cannot help, so a consumer sends it to the dead-letter stream at
    once. The message names what was wrong and never echoes the whole input.
    """


class _Envelope(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    message_id: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    type: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    occurred_at: datetime | None = None
    payload: dict[str, Any]
    correlation_id: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = None
    causation_id: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = None


def _describe(error: ValidationError) -> str:
    parts = []
    for problem in error.errors(include_input=False, include_url=False):
        where = ".".join(str(part) for part in problem["loc"]) or "message"
        parts.append(f"{where}: {problem['msg']}")
    return "; ".join(parts)


def encode(message: Mapping[str, Any]) -> str:
    """The JSON text of a message, compact and with non-ASCII kept readable."""
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False)


def decode(raw: str | bytes | Mapping[str, Any]) -> dict[str, Any]:
    """Parse a message's JSON text and check its envelope; raises :class:`MalformedMessage`."""
    if isinstance(raw, Mapping):
        data: Any = dict(raw)
    else:
        try:
            data = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise MalformedMessage(f"message is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise MalformedMessage(f"message must be a JSON object, got {type(data).__name__}")
    try:
        envelope = _Envelope.model_validate(data)
    except ValidationError as exc:
        raise MalformedMessage(f"message envelope is invalid: {_describe(exc)}") from None
    occurred_at = envelope.occurred_at or datetime.now(UTC)
    decoded: dict[str, Any] = {
        "message_id": envelope.message_id,
        "type": envelope.type,
        "occurred_at": occurred_at.isoformat(),
        "payload": envelope.payload,
    }
    for key in CONTEXT_KEYS:
        if (value := getattr(envelope, key)) is not None:
            decoded[key] = value
    return decoded


@dataclass(frozen=True)
class MessageType:
    """How one command or event class travels."""

    kind: type[Any]
    name: str
    stream: str | None = None
    """The stream the outbox publishes this event to; ``None``: it stays inside the service."""
    key: KeyFunction | None = None
    """The ordering key of an event; by default the aggregate that raised it."""

    @functools.cached_property
    def envelope_fields(self) -> tuple[str, str]:
        """The class's fields the envelope carries: its id, then its time."""
        return _envelope_fields(self.kind)


@dataclass(frozen=True)
class OutgoingMessage:
    """One event as the outbox stores it and the relay publishes it."""

    message_id: UUID
    stream: str
    key: str
    type: str
    occurred_at: datetime
    payload: dict[str, Any]

    def as_message(self) -> dict[str, Any]:
        return {
            "message_id": str(self.message_id),
            "type": self.type,
            "occurred_at": self.occurred_at.isoformat(),
            "payload": self.payload,
        }


def aggregate_key(aggregate: Aggregate[Any]) -> str:
    """The default ordering key: the aggregate's class and id, e.g. ``Account:3f2a...``."""
    return f"{type(aggregate).__name__}:{aggregate.id}"


_ADAPTERS: dict[type[Any], TypeAdapter[Any]] = {}


def _adapter(kind: type[Any]) -> TypeAdapter[Any]:
    """One pydantic adapter per message type for the process: building one takes
    milliseconds, and every container's registry registers every type again."""
    found = _ADAPTERS.get(kind)
    if found is None:
        found = _ADAPTERS[kind] = TypeAdapter(kind)
    return found


class MessageRegistry:
    """Names the message classes of a service and says which events leave it.

    Built once by the composition root::

        registry = MessageRegistry()
        registry.register(PlaceOrder)                               # a command we consume
        registry.register(OrderPlaced, stream="orders.events")    # an event we publish
    """

    def __init__(self) -> None:
        self._by_kind: dict[type[Any], MessageType] = {}
        self._by_name: dict[str, MessageType] = {}
        self._adapters: dict[type[Any], TypeAdapter[Any]] = {}

    def register(
        self,
        kind: type[Message],
        *,
        name: str | None = None,
        stream: str | None = None,
        key: KeyFunction | None = None,
    ) -> MessageType:
        """Declare ``kind`` under ``name`` (default: the class name).

        ``stream`` makes an event published through the outbox; ``key``
        overrides its ordering key (default: the raising aggregate).
        """
        if not (issubclass(kind, Command) or issubclass(kind, Event)):
            raise TypeError(f"{kind.__name__} is neither a Command nor an Event")
        if stream is not None and not issubclass(kind, Event):
            raise TypeError(f"{kind.__name__} is a command; only events are published")
        entry = MessageType(kind=kind, name=name or kind.__name__, stream=stream, key=key)
        taken = self._by_name.get(entry.name)
        if taken is not None and taken.kind is not kind:
            raise ValueError(
                f"message type {entry.name!r} is already registered for {taken.kind.__name__}"
            )
        self._by_kind[kind] = entry
        self._by_name[entry.name] = entry
        self._adapters[kind] = _adapter(kind)
        return entry

    def type_of(self, message: Message) -> MessageType | None:
        return self._by_kind.get(type(message))

    def published_streams(self) -> list[str]:
        """Every stream some registered event is published to, sorted."""
        return sorted({entry.stream for entry in self._by_kind.values() if entry.stream})

    def is_published(self, event: Event) -> bool:
        entry = self._by_kind.get(type(event))
        return entry is not None and entry.stream is not None

    # -- out ---------------------------------------------------------------------------

    def to_message(self, message: Message) -> dict[str, Any]:
        """The wire form of a registered command or event."""
        entry = self._require(type(message))
        id_field, time_field = entry.envelope_fields
        payload = self._adapters[entry.kind].dump_python(message, mode="json")
        message_id = payload.pop(id_field)
        occurred_at = getattr(message, time_field)
        payload.pop(time_field)
        return {
            "message_id": str(message_id),
            "type": entry.name,
            "occurred_at": occurred_at.isoformat(),
            "payload": payload,
        }

    def outgoing(
        self, event: Event, *, source: Aggregate[Any] | None = None, key: str | None = None
    ) -> OutgoingMessage | None:
        """The outbox row for ``event``, or ``None`` when the event is not published.

        The key is, in order of preference: ``key``, the registered key
        function, the aggregate ``source``, the message id (no ordering).
        """
        entry = self._by_kind.get(type(event))
        if entry is None or entry.stream is None:
            return None
        if key is None:
            if entry.key is not None:
                key = entry.key(event)
            elif source is not None:
                key = aggregate_key(source)
            else:
                key = str(event.event_id)
        message = self.to_message(event)
        return OutgoingMessage(
            message_id=event.event_id,
            stream=entry.stream,
            key=key,
            type=entry.name,
            occurred_at=event.occurred_at,
            payload=message["payload"],
        )

    # -- in ----------------------------------------------------------------------------

    def from_message(self, raw: str | bytes | Mapping[str, Any]) -> Message:
        """Rebuild the command or event from its wire form; raises :class:`MalformedMessage`."""
        return self.from_envelope(decode(raw))

    def from_envelope(self, message: Mapping[str, Any]) -> Message:
        """Rebuild the command or event from an envelope :func:`decode` has already checked.

        A consumer's :class:`~adapters.brokers.Delivery` holds one: its envelope is not
        parsed and checked a second time. Raises :class:`MalformedMessage`.
        """
        entry = self._by_name.get(message["type"])
        if entry is None:
            raise MalformedMessage(f"unknown message type {message['type']!r}")
        id_field, time_field = entry.envelope_fields
        values = {
            key: value
            for key, value in message["payload"].items()
            if key not in (id_field, time_field)
        }
        values[id_field] = message["message_id"]
        values[time_field] = message["occurred_at"]
        try:
            built: Message = self._adapters[entry.kind].validate_python(values)
        except ValidationError as exc:
            raise MalformedMessage(f"{entry.name} is invalid: {_describe(exc)}") from None
        return built

    def _require(self, kind: type[Any]) -> MessageType:
        entry = self._by_kind.get(kind)
        if entry is None:
            raise KeyError(f"{kind.__name__} is not registered with this MessageRegistry")
        return entry


def _envelope_fields(kind: type[Any]) -> tuple[str, str]:
    base = Command if issubclass(kind, Command) else Event
    names = _ENVELOPE_FIELDS[base]
    declared = {f.name for f in fields(kind)}
    assert set(names) <= declared, f"{kind.__name__} lost its envelope fields"
    return names
