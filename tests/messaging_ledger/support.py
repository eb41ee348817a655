"""Helpers of the ledger messaging tests: the in-memory wiring, and Redis and SQL probes."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import redis.asyncio as aioredis
from sqlalchemy import func, select

from adapters.brokers import DeliveryHandler
from adapters.inbox import InMemoryInbox, inbox_table
from adapters.ledger.messages import COMMANDS_STREAM, EVENTS_STREAM, ledger_registry
from adapters.ledger.tables import entries
from adapters.outbox import InMemoryOutbox, SqlAlchemyOutboxStore, with_outbox
from adapters.repository import InMemoryStore
from adapters.serialization import MessageRegistry, encode
from domain.messages import Message
from entrypoints.bootstrap import LedgerContainer
from entrypoints.consumer import CONSUMER_GROUP, command_handler, subscribe_commands
from entrypoints.relay import relaying
from service_layer.ledger import services
from service_layer.ledger.handlers import build_bus
from service_layer.ledger.unit_of_work import InMemoryLedgerUnitOfWork, LedgerUnitOfWork
from service_layer.messagebus import MessageBus
from service_layer.retry import RetryPolicy
from tests.messaging.support import stream_entries


@dataclass
class MemoryLedger:
    """The ledger wired as ``bootstrap`` wires it, on the in-memory fakes."""

    store: InMemoryStore = field(default_factory=InMemoryStore)
    registry: MessageRegistry = field(default_factory=ledger_registry)
    inbox: InMemoryInbox = field(default_factory=InMemoryInbox)

    def __post_init__(self) -> None:
        self.outbox = InMemoryOutbox(self.registry)
        self.uow_factory: Callable[[], LedgerUnitOfWork] = with_outbox(
            lambda: InMemoryLedgerUnitOfWork(self.store), self.outbox
        )
        self.bus: MessageBus[LedgerUnitOfWork] = build_bus(
            self.uow_factory, policy=RetryPolicy(), inbox=self.inbox
        )

    def command_handler(self) -> DeliveryHandler:
        return command_handler(
            self.bus,
            self.registry,
            uow_factory=self.uow_factory,
            inbox=self.inbox,
            outbox=self.outbox,
        )

    def published(self) -> list[dict[str, Any]]:
        """Every message the outbox holds, in the wire form the relay would send."""
        return [record.as_message() for record in self.outbox.records]

    def published_types(self) -> list[str]:
        return [message["type"] for message in self.published()]

    async def balance(self, account_id: UUID) -> int:
        return (await services.get_account(self.uow_factory(), account_id)).balance


REGISTRY = ledger_registry()
"""Built once: a registry makes a pydantic adapter per message type, which is not free."""


def wire(message: Message) -> dict[str, Any]:
    """The message as the contract puts it on the wire."""
    return REGISTRY.to_message(message)


async def send(client: aioredis.Redis, prefix: str, message: Message | str) -> None:
    """``XADD <prefix>ledger.commands * data <json>``, as any client would."""
    text = message if isinstance(message, str) else encode(wire(message))
    await client.xadd(prefix + COMMANDS_STREAM, {"data": text})


async def commands_settled(client: aioredis.Redis, prefix: str) -> bool:
    """Every entry of ``ledger.commands`` read by the consumer group and acknowledged."""
    groups = await client.xinfo_groups(prefix + COMMANDS_STREAM)
    [group] = [g for g in groups if g["name"].decode() == CONSUMER_GROUP]
    return bool(group["lag"] == 0 and group["pending"] == 0)


async def outbox_pending(container: LedgerContainer) -> int:
    return await SqlAlchemyOutboxStore(container.session_manager.engine).pending_count()


async def everything_done(container: LedgerContainer, client: aioredis.Redis, prefix: str) -> bool:
    """Every command handled and every event it caused published."""
    return await commands_settled(client, prefix) and await outbox_pending(container) == 0


async def published_events(client: aioredis.Redis, prefix: str) -> list[dict[str, Any]]:
    return [
        json.loads(fields["data"])
        for fields in await stream_entries(client, prefix + EVENTS_STREAM)
    ]


async def dead_letters(client: aioredis.Redis, prefix: str) -> list[dict[str, str]]:
    return await stream_entries(client, prefix + COMMANDS_STREAM + ".dead")


@contextlib.asynccontextmanager
async def consuming(container: LedgerContainer) -> AsyncIterator[None]:
    """What ``keel consume`` and ``keel relay`` run, in this process, while inside the block."""
    subscribe_commands(container)
    async with container.broker, relaying(container.relay):
        yield


async def entry_count(container: LedgerContainer, account_id: UUID) -> int:
    async with container.session_manager.session() as session:
        count = await session.scalar(
            select(func.count()).select_from(entries).where(entries.c.account_id == account_id)
        )
    return int(count or 0)


async def inbox_count(container: LedgerContainer) -> int:
    async with container.session_manager.session() as session:
        count = await session.scalar(select(func.count()).select_from(inbox_table))
    return int(count or 0)
