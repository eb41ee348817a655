"""The ledger's message entrypoint: commands from ``ledger.commands`` into its bus.

For each entry:

0. On a real broker, the entry's ``sig`` must be the HMAC of its ``data``
   under ``COMMAND_SIGNING_KEY`` (``entrypoints.signed_commands``); else it
   goes to ``ledger.commands.dead`` as ``unauthenticated``. Without the key
   the consumer does not start.
1. The envelope is checked (it must name the ``principal``; the command is
   made for it and the use cases apply its ownership) and the payload validated against the same
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
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ValidationError

from adapters.brokers import Delivery, DeliveryHandler
from adapters.brokers.consumer import deliver_to_bus
from adapters.ledger.messages import COMMANDS_STREAM
from adapters.serialization import MalformedMessage
from domain.errors import DomainError
from domain.messages import Command
from entrypoints.bootstrap import Container, ContextWiring
from entrypoints.context import Subscription
from entrypoints.ledger.schemas import MovementRequest, OpenAccountRequest, TransferRequest
from entrypoints.signed_commands import (
    principal_of,
    require_signature,
    signing_key,
    with_principal,
)
from service_layer.ledger.handlers import reject_command
from service_layer.ledger.unit_of_work import LedgerUnitOfWork

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
    wiring: ContextWiring[LedgerUnitOfWork], container: Container
) -> DeliveryHandler:
    """The delivery handler of ``ledger.commands``: check the signature, validate, dispatch
    once, announce refusals. Raises ``ConfigurationError`` on a broker without a key."""
    key = signing_key(container.settings)

    async def on_rejected(command: Command, error: DomainError) -> None:
        await reject_command(
            command,
            error,
            uow=wiring.uow_factory(),
            inbox=container.inbox,
            outbox=container.outbox,
        )

    deliver = deliver_to_bus(wiring.bus, container.registry, on_rejected=on_rejected)

    async def handle(delivery: Delivery) -> None:
        check_payload(delivery.message)
        principal = principal_of(delivery)
        await deliver(with_principal(delivery, principal))

    return require_signature(handle, key)


COMMANDS = Subscription(stream=COMMANDS_STREAM, group=CONSUMER_GROUP, handler=command_handler)
