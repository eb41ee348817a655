"""The broker port: publish a message to a stream, consume a stream in a group.

Every adapter shares one delivery policy (:meth:`Broker.deliver`), so that
the in-process broker and Redis Streams behave the same to a handler:

- the handler returns: the message is acknowledged;
- the handler raises: the message is not acknowledged and comes back later
  (``attempt`` counts deliveries), while the messages behind it go on;
- it raised on the ``max_deliveries``-th attempt, or the message cannot be
  parsed at all (:class:`~adapters.serialization.MalformedMessage`, also
  raised by a handler that finds the payload unusable): it goes to
  ``<stream>.dead`` with the reason, and is acknowledged;
- it raised because the database could not be reached
  (:func:`~adapters.outages.is_database_unavailable`): that is not the
  message's fault, so it is left unacknowledged *whatever the attempt count*
  (an outage longer than ``max_deliveries`` redeliveries must not send good
  messages to the dead letters), and the consumer pauses before it takes the
  next message, from ``outage_pause_min`` doubling up to ``outage_pause_max``
  while the outage lasts, instead of failing every message in the stream.

Stream names are logical (``orders.events``); an adapter adds its
``prefix`` (``STREAM_PREFIX``) on the wire.

Every delivery runs in a consumer span continuing the trace of its headers,
and in the message's correlation context (``service_layer.correlation``: its
``correlation_id``, else its id; caused by its id), so the events it causes
and its log lines carry both ids.
"""

from __future__ import annotations

import abc
import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, ClassVar, Protocol, Self

from opentelemetry import trace

from adapters import metrics, tracing
from adapters.outages import is_database_unavailable
from adapters.serialization import MalformedMessage, decode
from service_layer import correlation

logger = logging.getLogger(__name__)

DEAD_LETTER_SUFFIX = ".dead"
DEFAULT_PING_TIMEOUT = 2.0
"""Seconds :meth:`Broker.ping` waits for an answer: a broker that takes longer is not ready."""
DEFAULT_MAX_DELIVERIES = 5
OUTAGE_PAUSE_MIN = 0.1
OUTAGE_PAUSE_MAX = 5.0
"""Bounds of a consumer's pause after a delivery failed on an unreachable database (s)."""


class BrokerUnavailable(Exception):
    """The broker could not be reached or did not answer in time; not the message's fault.

    Adapters raise it from :meth:`Broker.publish` and :meth:`Broker.ping` for
    connection-level failures, so that callers (the outbox relay) can stop
    and back off instead of trying every message in turn. The message names
    the broker with its password masked.
    """


def dead_letter_stream(stream: str) -> str:
    """Where the messages of ``stream`` that cannot be handled end up."""
    return stream + DEAD_LETTER_SUFFIX


class Publisher(Protocol):
    """What the relay (and any handler that must publish directly) needs."""

    async def publish(
        self, stream: str, message: Mapping[str, Any], headers: Mapping[str, str] | None = None
    ) -> None: ...


@dataclass(frozen=True)
class Delivery:
    """One delivery of a message to a handler."""

    stream: str
    message: dict[str, Any]
    """The checked envelope: ``message_id``, ``type``, ``occurred_at``, ``payload``."""
    raw: str
    headers: dict[str, str] = field(default_factory=dict)
    attempt: int = 1
    """1 on the first delivery, then one more on each redelivery."""


DeliveryHandler = Callable[[Delivery], Awaitable[None]]
Settle = Callable[[], Awaitable[None]]


@dataclass(frozen=True)
class _Outcome:
    """What became of one delivery, for its log line."""

    name: str
    message_id: str | None = None


@dataclass(frozen=True)
class DeadLetter:
    """A message set aside, with why; what ``<stream>.dead`` holds."""

    stream: str
    raw: str
    reason: str
    attempts: int
    headers: Mapping[str, str] = field(default_factory=dict)
    """The original delivery's headers (trace context...), given back on a replay."""

    def fields(self) -> dict[str, str]:
        """The entry as flat text fields; ``data`` keeps the original message unchanged."""
        fields = {
            "data": self.raw,
            "reason": self.reason,
            "stream": self.stream,
            "attempts": str(self.attempts),
        }
        if self.headers:
            fields["headers"] = json.dumps(dict(self.headers))
        return fields


class Broker(abc.ABC):
    """A message broker: publish, subscribe (before ``start``), start, stop.

    Use it as an async context manager, or call ``start``/``stop``.
    """

    messaging_system: ClassVar[str] = "keel"
    """The ``messaging.system`` of this broker's consumer spans."""

    def __init__(self, *, prefix: str = "", max_deliveries: int = DEFAULT_MAX_DELIVERIES) -> None:
        if max_deliveries < 1:
            raise ValueError(f"max_deliveries must be >= 1, got {max_deliveries}")
        self.prefix = prefix
        self.max_deliveries = max_deliveries
        self.outage_pause_min = OUTAGE_PAUSE_MIN
        self.outage_pause_max = OUTAGE_PAUSE_MAX
        self._outage_pause = 0.0

    def wire_name(self, stream: str) -> str:
        """The stream's name on the broker, with the configured prefix."""
        return self.prefix + stream

    @abc.abstractmethod
    async def publish(
        self, stream: str, message: Mapping[str, Any], headers: Mapping[str, str] | None = None
    ) -> None:
        """Append ``message`` (a JSON-ready dict) to ``stream``; returns once the broker has it."""

    @abc.abstractmethod
    def subscribe(
        self,
        stream: str,
        handler: DeliveryHandler,
        *,
        group: str,
        consumer: str | None = None,
    ) -> None:
        """Consume ``stream`` as a member of ``group``: each message goes to one member.

        ``consumer`` names this member (default: unique per process). Call
        before :meth:`start`.
        """

    @abc.abstractmethod
    async def ping(self, *, within: float = DEFAULT_PING_TIMEOUT) -> None:
        """Check that the broker answers within ``within`` seconds, else raise BrokerUnavailable.

        Works before :meth:`start`. Call it at start-up to fail fast on an
        unreachable broker, and from a readiness probe.
        """

    @abc.abstractmethod
    async def _publish_dead(self, letter: DeadLetter) -> None: ...

    @abc.abstractmethod
    async def start(self) -> None: ...

    @abc.abstractmethod
    async def stop(self) -> None: ...

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def dead_letter(
        self,
        stream: str,
        raw: str,
        reason: str,
        *,
        attempts: int = 1,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Send a message that cannot be handled to ``<stream>.dead``, with the reason."""
        logger.error(
            "message sent to the dead-letter stream",
            extra={"stream": stream, "reason": reason, "attempts": attempts},
        )
        await self._publish_dead(DeadLetter(stream, raw, reason, attempts, dict(headers or {})))
        metrics.count_message(stream, "dead")

    async def deliver(
        self,
        handler: DeliveryHandler,
        *,
        stream: str,
        raw: str | None,
        headers: Mapping[str, str],
        attempt: int,
        ack: Settle,
        nack: Settle,
    ) -> None:
        """Apply the delivery policy of the module doc to one received message.

        Whatever happens, one log line says what became of the message, with
        its id, the outcome and how long it took.
        """
        started = time.perf_counter()
        with (
            correlation.caused_by(None),
            tracing.consuming(stream, self.messaging_system, headers) as span,
        ):
            outcome = await self._deliver(
                handler,
                stream=stream,
                raw=raw,
                headers=headers,
                attempt=attempt,
                ack=ack,
                nack=nack,
            )
            span.set_attribute("keel.outcome", outcome.name)
            if not logger.isEnabledFor(logging.INFO):
                return
            context = correlation.current()
            logger.info(
                "message handled",
                extra={
                    "stream": stream,
                    "message_id": outcome.message_id,
                    "attempt": attempt,
                    "outcome": outcome.name,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                    "correlation_id": context.correlation_id if context else None,
                    "causation_id": context.causation_id if context else None,
                },
            )

    async def _deliver(
        self,
        handler: DeliveryHandler,
        *,
        stream: str,
        raw: str | None,
        headers: Mapping[str, str],
        attempt: int,
        ack: Settle,
        nack: Settle,
    ) -> _Outcome:
        if raw is None:
            await self.dead_letter(stream, "", "entry has no 'data' field", attempts=attempt)
            await ack()
            return _Outcome("dead_lettered")
        try:
            message = decode(raw)
        except MalformedMessage as exc:
            await self.dead_letter(stream, raw, str(exc), attempts=attempt, headers=headers)
            await ack()
            return _Outcome("dead_lettered")
        # What the handler's events and log lines carry (contract, "v2: correlation").
        correlation.use(
            correlation.MessageContext.of_message(
                message["message_id"], message.get("correlation_id")
            )
        )
        trace.get_current_span().set_attribute("messaging.message.id", message["message_id"])
        delivery = Delivery(stream, message, raw, dict(headers), attempt)
        try:
            await handler(delivery)
        except MalformedMessage as exc:
            await self.dead_letter(stream, raw, str(exc), attempts=attempt, headers=headers)
            await ack()
            return _Outcome("dead_lettered", message["message_id"])
        except Exception as exc:
            reason = f"{type(exc).__name__}: {exc}"
            if is_database_unavailable(exc):
                await nack()
                await self._pause_for_outage(stream, message["message_id"], exc)
                return _Outcome("database_unavailable", message["message_id"])
            elif attempt >= self.max_deliveries:
                await self.dead_letter(
                    stream,
                    raw,
                    f"failed {attempt} times, last: {reason}",
                    attempts=attempt,
                    headers=headers,
                )
                await ack()
                return _Outcome("dead_lettered", message["message_id"])
            else:
                logger.warning(
                    "message handler failed; the message will be delivered again",
                    extra={
                        "stream": stream,
                        "message_id": message["message_id"],
                        "attempt": attempt,
                        "cause": reason,
                    },
                )
                await nack()
                return _Outcome("failed_will_retry", message["message_id"])
        self._outage_pause = 0.0
        await ack()
        return _Outcome("handled", message["message_id"])

    async def _pause_for_outage(self, stream: str, message_id: str, exc: Exception) -> None:
        """Hold this consumer back while the database is unreachable; the message comes back."""
        self._outage_pause = min(
            self.outage_pause_max, max(self.outage_pause_min, self._outage_pause * 2)
        )
        # The exception's type only: driver messages can name hosts and users.
        logger.warning(
            "database unavailable; the message stays unacknowledged and the consumer pauses",
            extra={
                "stream": stream,
                "message_id": message_id,
                "cause": type(exc).__name__,
                "pause_s": self._outage_pause,
            },
        )
        await asyncio.sleep(self._outage_pause)
