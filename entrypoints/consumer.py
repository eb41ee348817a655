"""The message entrypoint: ledger commands from ``ledger.commands`` into the message bus.

Run it as ``keel consume`` (one or several processes, on Redis Streams), or
inside ``keel serve`` on the embedded in-process broker. For each entry:

1. The envelope is checked and the payload validated against the same
   pydantic constraints as the HTTP bodies (:data:`PAYLOADS` extends the
   request models with the ids a URL would carry). A message that fails
   here can never succeed: it goes to ``ledger.commands.dead`` at once,
   with the reason, and the entries behind it go on.
2. ``bus.handle(command, once=True)``: the handler's effect, its inbox row
   and its outbox rows commit in one transaction, so a redelivered command
   is applied once.
3. A command refused by a domain rule publishes ``CommandRejected`` through
   the outbox (once, however often it is delivered) and is acknowledged.
   Any other failure leaves the entry unacknowledged; after
   ``BROKER_MAX_DELIVERIES`` attempts it is dead-lettered.

Stopping (SIGTERM) stops reading, lets the message in hand finish within the
broker's graceful timeout, and leaves anything unfinished unacknowledged:
its transaction never committed, so its redelivery applies it whole.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ValidationError

from adapters.brokers import Delivery, DeliveryHandler
from adapters.brokers.consumer import deliver_to_bus
from adapters.database import DatabaseSessionManager
from adapters.ledger.messages import COMMANDS_STREAM
from adapters.serialization import MalformedMessage, MessageRegistry
from adapters.settings import Settings
from domain.errors import DomainError
from domain.messages import Command
from entrypoints.bootstrap import LedgerContainer, bootstrap
from entrypoints.http.schemas import MovementRequest, OpenAccountRequest, TransferRequest
from service_layer.ledger.handlers import EventOutbox, reject_command
from service_layer.ledger.unit_of_work import LedgerUnitOfWork
from service_layer.messagebus import Inbox, MessageBus

logger = logging.getLogger(__name__)

CONSUMER_GROUP = "ledger"
"""The Redis consumer group: every ``keel consume`` process shares the stream's entries."""


class OpenAccountPayload(OpenAccountRequest):
    account_id: UUID


class MovementPayload(MovementRequest):
    account_id: UUID


PAYLOADS: Mapping[str, type[BaseModel]] = {
    "OpenAccount": OpenAccountPayload,
    "Deposit": MovementPayload,
    "Withdraw": MovementPayload,
    "Transfer": TransferRequest,
}
"""The payload model of each command type on ``ledger.commands``; nothing else is taken."""


def check_payload(message: Mapping[str, Any]) -> None:
    """Raise :class:`MalformedMessage` naming each bad field, or the unknown type."""
    kind = message["type"]
    model = PAYLOADS.get(kind)
    if model is None:
        known = ", ".join(sorted(PAYLOADS))
        raise MalformedMessage(f"{COMMANDS_STREAM} takes {known}; got type {kind!r}")
    try:
        model.model_validate(message["payload"])
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or 'payload'}: {error['msg']}"
            for error in exc.errors(include_input=False, include_url=False)
        )
        raise MalformedMessage(f"{kind} is invalid: {problems}") from None


def command_handler(
    bus: MessageBus[LedgerUnitOfWork],
    registry: MessageRegistry,
    *,
    uow_factory: Callable[[], LedgerUnitOfWork],
    inbox: Inbox,
    outbox: EventOutbox,
) -> DeliveryHandler:
    """The delivery handler of ``ledger.commands``: validate, dispatch once, announce refusals."""

    async def on_rejected(command: Command, error: DomainError) -> None:
        await reject_command(command, error, uow=uow_factory(), inbox=inbox, outbox=outbox)

    deliver = deliver_to_bus(bus, registry, on_rejected=on_rejected)

    async def handle(delivery: Delivery) -> None:
        check_payload(delivery.message)
        await deliver(delivery)

    return handle


def subscribe_commands(container: LedgerContainer) -> None:
    """Make ``container.broker`` feed ``ledger.commands`` to the bus; call before it starts."""
    handler = command_handler(
        container.bus,
        container.registry,
        uow_factory=container.uow_factory,
        inbox=container.inbox,
        outbox=container.outbox,
    )
    container.broker.subscribe(COMMANDS_STREAM, handler, group=CONSUMER_GROUP)


async def consume(settings: Settings, stop: asyncio.Event) -> None:
    """``keel consume``: consume until ``stop`` is set, then stop gracefully."""
    manager = DatabaseSessionManager()
    container = bootstrap(settings, manager=manager)
    try:
        subscribe_commands(container)
        async with container.broker:
            logger.info(
                "consuming commands",
                extra={"stream": container.broker.wire_name(COMMANDS_STREAM)},
            )
            await stop.wait()
            logger.info("stopping: finishing the message in hand")
    finally:
        await manager.close()
