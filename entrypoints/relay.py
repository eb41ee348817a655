"""The outbox relay as a process: ``keel relay``, or a task inside ``keel serve``.

The relay publishes committed events from the ``outbox`` table to the
streams the contexts declared, and marks them sent (``adapters.relay`` has the
guarantees). Several may run side by side, in separate processes or next to
``keel serve``'s own: each locks the aggregate keys it publishes, so per-key
order holds and they share the work.

Stopping cancels the pass in progress: its transaction rolls back, so the
rows it had published stay pending and the next relay publishes them again
(a duplicate, which consumers' inboxes absorb) — none is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from adapters.database import DatabaseSessionManager
from adapters.relay import OutboxRelay
from adapters.settings import Settings
from entrypoints.bootstrap import bootstrap
from entrypoints.observability import observing

logger = logging.getLogger(__name__)


@contextlib.asynccontextmanager
async def relaying(relay: OutboxRelay) -> AsyncIterator[None]:
    """Run ``relay`` in a task while inside the block; cancel it and wait on the way out.

    Start the relay's broker before entering and stop it after leaving.
    """
    task = asyncio.create_task(relay.run(), name="outbox-relay")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def relay(settings: Settings, stop: asyncio.Event) -> None:
    """``keel relay``: publish the outbox until ``stop`` is set."""
    manager = DatabaseSessionManager()
    container = bootstrap(settings, manager=manager)
    try:
        await container.broker.ping()  # a clear failure beats a process that does nothing
        async with (
            container.broker,
            relaying(container.relay),
            observing(container, serve_port=True),
        ):
            logger.info("relaying the outbox")
            await stop.wait()
            logger.info("stopping: the pass in progress stays pending")
    finally:
        await manager.close()
