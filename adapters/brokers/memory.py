"""The in-process broker: the embedded default when no ``BROKER_URL`` is set.

Streams and consumer groups live in this process's memory: every group of a
stream receives each message published after it subscribed, and the members
of a group share them. It follows the same delivery policy as Redis (ack on
success, redelivery on failure, dead letter after ``max_deliveries``), so code
tested against it behaves the same on a real broker. What it cannot give is
durability: messages not yet handled are lost when the process stops. The
outbox does not depend on it — unpublished rows stay pending in the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from adapters.brokers.base import (
    DEFAULT_PING_TIMEOUT,
    Broker,
    DeadLetter,
    DeliveryHandler,
    dead_letter_stream,
)
from adapters.dead_letters import DeadLetterEntry, DeadLetterNotFound
from adapters.serialization import encode

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Entry:
    raw: str
    headers: dict[str, str] = field(default_factory=dict)
    attempt: int = 1


@dataclass(frozen=True)
class _Subscription:
    stream: str
    wire_name: str
    group: str
    handler: DeliveryHandler


class InProcessBroker(Broker):
    """Streams in memory, for the embedded default and for tests.

    ``published`` keeps the messages published per wire stream name, and
    ``dead`` every dead letter, for inspection: all of them by default (tests),
    the last ``history`` per stream when given — a long-running service must
    not keep every event it ever sent. Its dead letters can be listed and
    replayed (:class:`~adapters.dead_letters.DeadLetterBox`), from this process
    only; ``audit`` keeps the replays' audit records.
    """

    def __init__(
        self,
        *,
        prefix: str = "",
        max_deliveries: int = 5,
        redelivery_delay: float = 0.05,
        history: int | None = None,
    ) -> None:
        super().__init__(prefix=prefix, max_deliveries=max_deliveries)
        self.redelivery_delay = redelivery_delay
        self.history = history
        self.published: defaultdict[str, list[dict[str, Any]]] = defaultdict(list)
        self.dead: defaultdict[str, list[DeadLetter]] = defaultdict(list)
        self._dead_ids: defaultdict[str, list[str]] = defaultdict(list)
        self._dead_sequence = 0
        self.audit: list[dict[str, str]] = []
        self._queues: dict[tuple[str, str], asyncio.Queue[_Entry]] = {}
        self._subscriptions: list[_Subscription] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._scheduled = 0

    async def publish(
        self, stream: str, message: Mapping[str, Any], headers: Mapping[str, str] | None = None
    ) -> None:
        # Through JSON text, as on a real broker: a value that is not JSON fails
        # here, and consumers never share an object with the publisher.
        self._append(self.wire_name(stream), encode(message), headers)

    def _append(self, name: str, raw: str, headers: Mapping[str, str] | None) -> None:
        kept = self.published[name]
        kept.append(json.loads(raw))
        if self.history is not None and len(kept) > self.history:
            del kept[: len(kept) - self.history]
        for (queue_stream, _group), queue in self._queues.items():
            if queue_stream == name:
                queue.put_nowait(_Entry(raw, dict(headers or {})))

    async def ping(self, *, within: float = DEFAULT_PING_TIMEOUT) -> None:
        """Always fine: the broker is this process."""

    def subscribe(
        self,
        stream: str,
        handler: DeliveryHandler,
        *,
        group: str,
        consumer: str | None = None,
    ) -> None:
        if self._tasks:
            raise RuntimeError("subscribe before start()")
        name = self.wire_name(stream)
        self._queues.setdefault((name, group), asyncio.Queue())
        self._subscriptions.append(_Subscription(stream, name, group, handler))

    async def start(self) -> None:
        if self._tasks:
            return
        for subscription in self._subscriptions:
            queue = self._queues[(subscription.wire_name, subscription.group)]
            self._tasks.append(asyncio.create_task(self._consume(subscription, queue)))

    async def stop(self) -> None:
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def settled(self) -> None:
        """Wait until every group has handled (or dead-lettered) everything published so far."""
        while True:
            for queue in self._queues.values():
                await queue.join()
            if self._scheduled == 0 and all(q.empty() for q in self._queues.values()):
                return
            await asyncio.sleep(self.redelivery_delay)

    async def _publish_dead(self, letter: DeadLetter) -> None:
        name = self.wire_name(dead_letter_stream(letter.stream))
        self._dead_sequence += 1
        self.dead[name].append(letter)
        self._dead_ids[name].append(str(self._dead_sequence))

    # -- dead letters (adapters.dead_letters.DeadLetterBox) ------------------------------

    def _dead_entries(self, stream: str) -> list[DeadLetterEntry]:
        name = self.wire_name(dead_letter_stream(stream))
        return [
            DeadLetterEntry(
                id=entry_id,
                stream=letter.stream,
                raw=letter.raw,
                reason=letter.reason,
                attempts=letter.attempts,
                fields=letter.fields(),
            )
            for entry_id, letter in zip(self._dead_ids[name], self.dead[name], strict=False)
        ]

    async def dead_letters(self, stream: str, *, limit: int = 100) -> list[DeadLetterEntry]:
        return self._dead_entries(stream)[:limit]

    async def dead_letter_count(self, stream: str) -> int:
        return len(self.dead[self.wire_name(dead_letter_stream(stream))])

    async def get_dead_letter(self, stream: str, entry_id: str) -> DeadLetterEntry:
        for entry in self._dead_entries(stream):
            if entry.id == entry_id:
                return entry
        raise DeadLetterNotFound(f"no dead letter {entry_id!r} in {dead_letter_stream(stream)}")

    async def replay_dead_letter(
        self, stream: str, entry_id: str, audit: dict[str, str]
    ) -> tuple[DeadLetterEntry, str]:
        entry = await self.get_dead_letter(stream, entry_id)
        name = self.wire_name(dead_letter_stream(stream))
        index = self._dead_ids[name].index(entry_id)
        letter = self.dead[name].pop(index)
        del self._dead_ids[name][index]
        self._append(self.wire_name(stream), letter.raw, letter.headers)
        self._dead_sequence += 1
        new_id = f"replay-{self._dead_sequence}"
        self.audit.append({**audit, "new_id": new_id})
        return entry, new_id

    async def _consume(self, subscription: _Subscription, queue: asyncio.Queue[_Entry]) -> None:
        while True:
            entry = await queue.get()
            try:

                async def ack() -> None:
                    pass

                async def nack(entry: _Entry = entry) -> None:
                    self._redeliver(queue, entry)

                await self.deliver(
                    subscription.handler,
                    stream=subscription.stream,
                    raw=entry.raw,
                    headers=entry.headers,
                    attempt=entry.attempt,
                    ack=ack,
                    nack=nack,
                )
            except Exception:
                logger.exception("in-process delivery failed; the message comes back")
                self._redeliver(queue, entry)
            finally:
                queue.task_done()

    def _redeliver(self, queue: asyncio.Queue[_Entry], entry: _Entry) -> None:
        self._scheduled += 1

        def put_back() -> None:
            self._scheduled -= 1
            queue.put_nowait(replace(entry, attempt=entry.attempt + 1))

        asyncio.get_running_loop().call_later(self.redelivery_delay, put_back)
