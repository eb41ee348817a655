"""The composition root: the one place that picks concrete adapters for the ports.

Every entrypoint — the HTTP app, ``keel consume``, ``keel relay`` — starts by
calling :func:`bootstrap` and then only talks to the container it returns, so
the choice of database, mapping, broker and retry policy is made once, here,
and tests can make the same choice against their own database.

The container holds the messaging side built and wired but idle: the bus
(what HTTP routes and the consumer hand commands to), the broker, and the
outbox relay. Each entrypoint starts the pieces it runs — see
``entrypoints.consumer`` and ``entrypoints.relay``.
"""

from __future__ import annotations

from dataclasses import dataclass

from adapters.brokers import Broker, InProcessBroker
from adapters.container import DependencyContainer
from adapters.database import DatabaseSessionManager, session_manager
from adapters.inbox import SqlAlchemyInbox
from adapters.ledger.messages import ledger_registry
from adapters.ledger.orm import start_mappers
from adapters.outbox import SqlAlchemyOutbox, with_outbox
from adapters.relay import OutboxRelay, create_relay
from adapters.serialization import MessageRegistry
from adapters.settings import Settings
from service_layer.ledger.handlers import build_bus
from service_layer.ledger.unit_of_work import LedgerUnitOfWork, SqlAlchemyLedgerUnitOfWork
from service_layer.messagebus import MessageBus
from service_layer.retry import RetryPolicy

IN_PROCESS_HISTORY = 1000
"""Messages per stream the embedded broker keeps for inspection; older ones are dropped."""


@dataclass(frozen=True)
class LedgerContainer(DependencyContainer[LedgerUnitOfWork]):
    """The kernel's container plus the ledger's messaging, all built by :func:`bootstrap`.

    ``uow_factory`` makes units of work that write the outbox, so an event
    leaves the service whichever entrypoint caused it.
    """

    registry: MessageRegistry
    outbox: SqlAlchemyOutbox
    inbox: SqlAlchemyInbox
    bus: MessageBus[LedgerUnitOfWork]
    broker: Broker
    relay: OutboxRelay


def bootstrap(
    settings: Settings, *, manager: DatabaseSessionManager | None = None
) -> LedgerContainer:
    """Initialise ``manager`` (default: the process-wide one) and wire the ledger to it.

    Nothing connects yet: the broker and the relay start when an entrypoint
    runs them. The caller owns the manager's life: it must
    ``await manager.close()`` when the process (or test) is done with the container.
    """
    manager = session_manager if manager is None else manager
    manager.init(settings.database_url, **settings.engine_options())
    start_mappers()
    session_factory = manager.session_factory

    def make_unit_of_work() -> LedgerUnitOfWork:
        return SqlAlchemyLedgerUnitOfWork(session_factory)

    registry = ledger_registry()
    outbox = SqlAlchemyOutbox(registry)
    inbox = SqlAlchemyInbox()
    uow_factory = with_outbox(make_unit_of_work, outbox)
    broker = make_broker(settings)
    return LedgerContainer(
        settings=settings,
        session_manager=manager,
        uow_factory=uow_factory,
        registry=registry,
        outbox=outbox,
        inbox=inbox,
        bus=build_bus(uow_factory, policy=retry_policy(settings), inbox=inbox),
        broker=broker,
        # The outbox's doorbell wakes an in-process relay the moment a write commits.
        relay=create_relay(
            manager.engine,
            broker,
            doorbell=outbox.doorbell,
            batch_size=settings.relay_batch_size,
        ),
    )


def make_broker(settings: Settings) -> Broker:
    """The in-process broker without ``BROKER_URL``, else Redis Streams.

    Not ``adapters.brokers.create_broker``: that one cannot pass the claim
    timeout on. The settings already checked the URL's scheme.
    """
    if settings.broker_url is None:
        return InProcessBroker(
            prefix=settings.stream_prefix,
            max_deliveries=settings.broker_max_deliveries,
            history=IN_PROCESS_HISTORY,
        )
    # Imported only when asked for, so the embedded default needs no Redis client.
    from adapters.brokers.redis_streams import RedisStreamsBroker

    return RedisStreamsBroker(
        settings.broker_url,
        prefix=settings.stream_prefix,
        max_deliveries=settings.broker_max_deliveries,
        claim_idle_ms=settings.broker_claim_idle_ms,
    )


def consumes_in_serve(settings: Settings) -> bool:
    """Whether ``keel serve`` consumes commands: ``SERVE_CONSUMER``, by default only
    on the in-process broker, whose streams no other process can read."""
    if settings.serve_consumer is not None:
        return settings.serve_consumer
    return settings.broker_url is None


def retry_policy(settings: Settings) -> RetryPolicy:
    """How often a service call re-runs after losing a race, from ``RETRY_ATTEMPTS``."""
    return RetryPolicy(attempts=settings.retry_attempts)
