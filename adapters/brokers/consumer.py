"""Turns broker deliveries into message-bus calls: the consuming side of the wiring.

    broker.subscribe("orders.commands", deliver_to_bus(bus, registry), group="orders")

Each delivery is parsed with the registry (unparseable: dead letter at once),
handled with ``bus.handle(message, once=True)`` so the inbox applies it once,
and acknowledged. A redelivery of an applied message is acknowledged without
effect. A command refused by a domain rule is final — running it again would
give the same answer — so it is acknowledged too, after ``on_rejected``
(e.g. to publish a rejection through the outbox). Any other error leaves the
message unacknowledged, to be delivered again.

Each outcome counts in ``keel_messages_total``: ``applied``, ``duplicate``
(a redelivery absorbed by the inbox) or ``rejected``; the broker counts
``dead`` itself.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from adapters import metrics
from adapters.brokers.base import Delivery, DeliveryHandler
from adapters.serialization import MessageRegistry
from domain.errors import DomainError
from domain.messages import Command
from service_layer.messagebus import DuplicateMessage, MessageBus

logger = logging.getLogger(__name__)

OnRejected = Callable[[Command, DomainError], Awaitable[None]]


def deliver_to_bus(
    bus: MessageBus[Any],
    registry: MessageRegistry,
    *,
    on_rejected: OnRejected | None = None,
) -> DeliveryHandler:
    """A delivery handler that hands each message to ``bus``, once per message id."""

    async def handle(delivery: Delivery) -> None:
        message = registry.from_envelope(delivery.message)
        outcome = "applied"
        try:
            try:
                await bus.handle(message, once=True)
            except DomainError as exc:
                if not isinstance(message, Command):
                    raise
                outcome = "rejected"
                logger.info(
                    "command refused by a domain rule",
                    extra={"message_id": message.message_id, "code": exc.code},
                )
                if on_rejected is not None:
                    await on_rejected(message, exc)
        except DuplicateMessage:
            # Also from on_rejected, when it records the refusal in the inbox.
            outcome = "duplicate"
            logger.info(
                "message already applied; acknowledged without effect",
                extra={"message_id": delivery.message["message_id"], "stream": delivery.stream},
            )
        metrics.count_message(delivery.stream, outcome)

    return handle
