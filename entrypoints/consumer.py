"""The message entrypoint: every running context's subscribed streams, into its bus.

Run it as ``keel consume`` (one or several processes, on a broker other
processes reach), or inside ``keel serve`` on the embedded in-process broker.
Each :class:`~entrypoints.context.Subscription` of each context in
``KEEL_CONTEXTS`` is subscribed with its consumer group; what a delivery does
(validate, ``bus.handle(message, once=True)``, announce refusals) is the
context's own handler, built on :func:`adapters.brokers.consumer.deliver_to_bus`.

Stopping (SIGTERM) stops reading, lets the message in hand finish within the
broker's graceful timeout, and leaves anything unfinished unacknowledged:
its transaction never committed, so its redelivery applies it whole.
"""

from __future__ import annotations

import asyncio
import logging

from adapters.database import DatabaseSessionManager
from adapters.settings import Settings
from entrypoints.bootstrap import Container, bootstrap
from entrypoints.observability import observing

logger = logging.getLogger(__name__)


def subscribe_all(container: Container) -> list[str]:
    """Feed every context's subscribed streams to its bus; call before the broker starts.

    Returns the streams' wire names, for the start-up log.
    """
    streams = []
    for wiring in container.contexts.values():
        for subscription in wiring.context.subscriptions:
            handler = subscription.handler(wiring, container)
            container.broker.subscribe(subscription.stream, handler, group=subscription.group)
            streams.append(container.broker.wire_name(subscription.stream))
    return streams


async def consume(settings: Settings, stop: asyncio.Event) -> None:
    """``keel consume``: consume until ``stop`` is set, then stop gracefully."""
    manager = DatabaseSessionManager()
    container = bootstrap(settings, manager=manager)
    try:
        streams = subscribe_all(container)
        if not streams:
            logger.warning("no running context subscribes to a stream; nothing to consume")
        await container.broker.ping()  # a clear failure beats a process that does nothing
        async with container.broker, observing(container, serve_port=True):
            logger.info("consuming", extra={"streams": streams})
            await stop.wait()
            logger.info("stopping: finishing the message in hand")
    finally:
        await manager.close()
