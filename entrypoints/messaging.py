"""What ``keel serve`` runs beside HTTP: the outbox relay and, on the embedded broker, the consumer.

- No ``BROKER_URL`` (the embedded default): the broker lives in this
  process, so this process must both relay the outbox and consume the
  contexts' subscribed streams — events flow with no server installed.
- ``BROKER_URL=redis://...``: ``keel serve`` still relays by default
  (``SERVE_RELAY=true``), so a single process is a complete deployment and
  no event waits for a relay nobody started; relays running elsewhere
  (``keel relay``) share the work safely. Commands are consumed by
  ``keel consume`` processes unless ``SERVE_CONSUMER=true``.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from entrypoints.bootstrap import Container, consumes_in_serve
from entrypoints.consumer import subscribe_all
from entrypoints.relay import relaying

logger = logging.getLogger(__name__)


@contextlib.asynccontextmanager
async def serving_messages(container: Container) -> AsyncIterator[None]:
    """Run the relay and the consumer the settings ask for while inside the block.

    A broker that cannot be reached at start-up stops start-up: better a
    clear failure than a service that silently never publishes.
    """
    consume, relay = consumes_in_serve(container.settings), container.settings.serve_relay
    async with contextlib.AsyncExitStack() as running:
        if consume:
            subscribe_all(container)
        if consume or relay:
            await container.broker.ping()  # BrokerUnavailable names it, password masked
            await running.enter_async_context(container.broker)
        if relay:
            await running.enter_async_context(relaying(container.relay))
        logger.info("messaging started", extra={"consumer": consume, "relay": relay})
        yield
