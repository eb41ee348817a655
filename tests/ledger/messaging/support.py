"""Helpers of the ledger messaging tests: the in-memory wiring, and Redis and SQL probes."""

from __future__ import annotations

import contextlib
import functools
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import redis.asyncio as aioredis
from sqlalchemy import func, select

from adapters.brokers import DeliveryHandler
from adapters.database import DatabaseSessionManager
from adapters.inbox import inbox_table
from adapters.ledger.messages import COMMANDS_STREAM, EVENTS_STREAM, ledger_registry
from adapters.ledger.tables import entries
from adapters.outbox import InMemoryOutbox, SqlAlchemyOutboxStore
from adapters.repository import InMemoryStore
from adapters.serialization import MessageRegistry, encode
from adapters.settings import Settings
from domain.messages import Command, Message
from entrypoints.bootstrap import Container, bootstrap
from entrypoints.consumer import subscribe_all
from entrypoints.ledger import context as ledger_context
from entrypoints.ledger.messages import CONSUMER_GROUP, command_handler
from entrypoints.relay import relaying
from entrypoints.signed_commands import command_envelope, sign
from service_layer.ledger import reads
from service_layer.ledger.unit_of_work import LedgerUnitOfWork
from service_layer.messagebus import MessageBus
from tests.ledger.messaging.factories import SENDER
from tests.messaging.support import stream_entries
from tests.support.tokens import SIGNING_KEY


@functools.cache
def memory_settings() -> Settings:
    """The in-memory ledger's settings, read once: they are frozen, and reading them (the
    environment and ``.env``, checked field by field) takes milliseconds each time."""
    return Settings(database_url="sqlite+aiosqlite://")


@dataclass
class MemoryLedger:
    """The ledger wired by ``bootstrap`` itself, on the in-memory fakes."""

    store: InMemoryStore = field(default_factory=InMemoryStore)

    def __post_init__(self) -> None:
        self.container = bootstrap(
            memory_settings(),
            [ledger_context],
            manager=DatabaseSessionManager(),
            store=self.store,
        )
        wiring = ledger_context.wiring(self.container)
        self.registry: MessageRegistry = self.container.registry
        self.inbox = self.container.inbox
        assert isinstance(self.container.outbox, InMemoryOutbox)
        self.outbox: InMemoryOutbox = self.container.outbox
        self.uow_factory: Callable[[], LedgerUnitOfWork] = wiring.uow_factory
        self.bus: MessageBus[LedgerUnitOfWork] = wiring.bus

    def command_handler(self) -> DeliveryHandler:
        return command_handler(ledger_context.wiring(self.container), self.container)

    def published(self) -> list[dict[str, Any]]:
        """Every message the outbox holds, in the wire form the relay would send."""
        return [record.as_message() for record in self.outbox.records]

    def published_types(self) -> list[str]:
        return [message["type"] for message in self.published()]

    async def balance(self, account_id: UUID) -> int:
        return (await reads.get_account(self.uow_factory(), account_id, SENDER)).balance


REGISTRY = ledger_registry()
"""Built once: a registry makes a pydantic adapter per message type, which is not free."""


def wire(message: Message) -> dict[str, Any]:
    """The message as the contract puts it on the wire (a command's principal in its envelope)."""
    if isinstance(message, Command):
        return command_envelope(REGISTRY, message)
    return REGISTRY.to_message(message)


async def send(
    client: aioredis.Redis, prefix: str, message: Message | str, *, signed: bool = True
) -> None:
    """``XADD <prefix>ledger.commands * data <json> sig <hmac>``, as any sender would."""
    text = message if isinstance(message, str) else encode(wire(message))
    fields = {"data": text, "sig": sign(text, SIGNING_KEY)} if signed else {"data": text}
    await client.xadd(prefix + COMMANDS_STREAM, fields)  # type: ignore[arg-type]


async def commands_settled(client: aioredis.Redis, prefix: str) -> bool:
    """Every entry of ``ledger.commands`` read by the consumer group and acknowledged."""
    groups = await client.xinfo_groups(prefix + COMMANDS_STREAM)
    [group] = [g for g in groups if g["name"].decode() == CONSUMER_GROUP]
    return bool(group["lag"] == 0 and group["pending"] == 0)


async def outbox_pending(container: Container) -> int:
    return await SqlAlchemyOutboxStore(container.session_manager.engine).pending_count()


async def everything_done(container: Container, client: aioredis.Redis, prefix: str) -> bool:
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
async def consuming(container: Container) -> AsyncIterator[None]:
    """What ``keel consume`` and ``keel relay`` run, in this process, while inside the block."""
    subscribe_all(container)
    async with container.broker, relaying(container.relay):
        yield


async def entry_count(container: Container, account_id: UUID) -> int:
    async with container.session_manager.session() as session:
        count = await session.scalar(
            select(func.count()).select_from(entries).where(entries.c.account_id == account_id)
        )
    return int(count or 0)


async def inbox_count(container: Container) -> int:
    async with container.session_manager.session() as session:
        count = await session.scalar(select(func.count()).select_from(inbox_table))
    return int(count or 0)
