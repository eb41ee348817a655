"""The composition root: the one place that picks concrete adapters for the ports.

Every entrypoint — the HTTP app, ``keel consume``, ``keel relay`` — starts by
calling :func:`bootstrap` and then only talks to the container it returns, so
the choice of database, broker and retry policy is made once, here, and tests
can make the same choice against their own database, or against the fakes.

It is generic over the bounded contexts it wires (``KEEL_CONTEXTS``): each gets
a unit-of-work factory whose units of work write the shared outbox, and a
message bus of its own whose handlers receive their dependencies by parameter
name. The broker and the relay are built but idle; each entrypoint starts the
pieces it runs (``entrypoints.consumer``, ``entrypoints.relay``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Generic, TypeVar

from adapters.auth import TokenVerifier, token_verifier
from adapters.brokers import Broker, create_broker
from adapters.container import DependencyContainer
from adapters.database import DatabaseSessionManager, session_manager
from adapters.inbox import InMemoryInbox, SqlAlchemyInbox
from adapters.outbox import InMemoryOutbox, SqlAlchemyOutbox, with_outbox
from adapters.rate_limit import RateLimiter, rate_limiter
from adapters.relay import OutboxRelay, create_relay
from adapters.replicas import ReplicaRouter
from adapters.repository import InMemoryStore
from adapters.serialization import MessageRegistry
from adapters.settings import Settings
from entrypoints import observability
from entrypoints.context import BoundedContext, running_contexts
from service_layer import retry
from service_layer.messagebus import Inbox, MessageBus
from service_layer.retry import RetryPolicy
from service_layer.unit_of_work import AbstractUnitOfWork, CommitHook

UowT = TypeVar("UowT", bound=AbstractUnitOfWork)

IN_PROCESS_HISTORY = 1000
"""Messages per stream the embedded broker keeps for inspection; older ones are dropped."""


@dataclass(frozen=True)
class ContextWiring(Generic[UowT]):
    """One context as bootstrap wired it: units of work that write the outbox, and its bus."""

    context: BoundedContext[UowT]
    uow_factory: Callable[[], UowT]
    bus: MessageBus[UowT]
    read_uow_factory: Callable[[], UowT] | None = None
    """Units of work for read-only queries: on a healthy replica when ``DATABASE_REPLICA_URLS``
    names any, else on the primary. They must not write (nothing they stage is published)."""

    def read_unit_of_work(self) -> UowT:
        """A unit of work for reads that need not see the caller's own latest write."""
        return (self.read_uow_factory or self.uow_factory)()


@dataclass(frozen=True)
class Container(DependencyContainer):
    """The kernel's container: database, messaging, and every context's wiring."""

    registry: MessageRegistry
    outbox: SqlAlchemyOutbox | InMemoryOutbox
    inbox: Inbox
    broker: Broker
    relay: OutboxRelay
    contexts: Mapping[str, ContextWiring[Any]]
    dependencies: Mapping[str, Any]
    """What handlers may ask for by parameter name, besides ``uow``."""
    store: InMemoryStore | None = None
    """The fakes' shared store when bootstrapped with one; ``None`` on a database."""
    replicas: ReplicaRouter | None = None
    """Routes read-only units of work to replicas; run it (``async with``) while serving."""
    authenticator: TokenVerifier | None = None
    """Checks bearer tokens (``AUTH_*``); routes reach it through ``entrypoints.http.auth``."""
    rate_limiter: RateLimiter | None = None
    """Counts each principal's writes (``RATE_LIMIT``); ``None``: no limit."""

    def wiring(self, name: str) -> ContextWiring[Any]:
        """The wiring of the context called ``name``; a clear error when it is not running."""
        try:
            return self.contexts[name]
        except KeyError:
            running = ", ".join(self.contexts) or "none"
            raise LookupError(
                f"the context {name!r} is not running (KEEL_CONTEXTS); running: {running}"
            ) from None


def bootstrap(
    settings: Settings,
    contexts: Sequence[BoundedContext[Any]] | None = None,
    *,
    manager: DatabaseSessionManager | None = None,
    store: InMemoryStore | None = None,
    hooks: Sequence[CommitHook] = (),
) -> Container:
    """Initialise ``manager`` (default: the process-wide one) and wire ``contexts`` to it.

    ``contexts`` defaults to the ones ``KEEL_CONTEXTS`` names. With ``store``,
    everything runs on the in-memory fakes instead (units of work, outbox,
    inbox), for fast tests of the whole wiring. ``hooks`` are extra commit hooks
    every unit of work runs (tests use them to inject faults). Nothing connects
    yet; the caller owns the manager's life and must ``await manager.close()``.
    """
    contexts = running_contexts(settings) if contexts is None else list(contexts)
    manager = session_manager if manager is None else manager
    manager.init(
        settings.database_url,
        direct_url=settings.database_direct_url,
        direct_options=settings.direct_engine_options(),
        ping_after_idle=settings.db_ping_after_idle_seconds,
        transaction_pooler=settings.db_pgbouncer,
        **settings.engine_options(),
    )
    observability.install(settings, manager.engine)
    for context in contexts:
        context.start_mappers()
    policy = retry_policy(settings)
    retry.use_default_policy(policy)
    registry = MessageRegistry()
    for context in contexts:
        context.register_messages(registry)
    outbox: SqlAlchemyOutbox | InMemoryOutbox
    inbox: Inbox
    if store is None:
        outbox, inbox = SqlAlchemyOutbox(registry), SqlAlchemyInbox()
    else:
        outbox, inbox = InMemoryOutbox(registry), InMemoryInbox()
    broker = make_broker(settings)
    dependencies = {"policy": policy, "outbox": outbox, "inbox": inbox, "settings": settings}
    replicas = None
    if store is None and settings.replica_urls:
        replicas = ReplicaRouter.from_urls(
            manager.engine,
            settings.replica_urls,
            settings.engine_options(),
            ping_after_idle=settings.db_ping_after_idle_seconds,
            transaction_pooler=settings.db_pgbouncer,
            max_lag=settings.db_replica_max_lag_seconds,
        )
    wirings = {
        context.name: replace(
            wire_context(
                context,
                _unit_of_work_factory(context, manager, store, [outbox, *hooks]),
                dependencies=dependencies,
                inbox=inbox,
            ),
            read_uow_factory=_read_factory(context, manager, store, replicas),
        )
        for context in contexts
    }
    if isinstance(outbox, InMemoryOutbox):
        relay = OutboxRelay(
            outbox, broker, batch_size=settings.relay_batch_size, doorbell=outbox.doorbell
        )
    else:
        # The outbox's doorbell wakes an in-process relay the moment a write commits.
        # The direct engine: the relay's LISTEN and its per-key locks need a
        # session of their own, which a transaction pooler would not keep.
        relay = create_relay(
            manager.direct_engine,
            broker,
            doorbell=outbox.doorbell,
            batch_size=settings.relay_batch_size,
            publish_timeout=settings.relay_publish_timeout_seconds,
            retention=settings.retention_policy(),
        )
    return Container(
        settings=settings,
        session_manager=manager,
        registry=registry,
        outbox=outbox,
        inbox=inbox,
        broker=broker,
        relay=relay,
        contexts=wirings,
        dependencies=dependencies,
        store=store,
        replicas=replicas,
        authenticator=token_verifier(settings),
        rate_limiter=rate_limiter(settings),
    )


def _unit_of_work_factory(
    context: BoundedContext[UowT],
    manager: DatabaseSessionManager,
    store: InMemoryStore | None,
    hooks: Sequence[CommitHook],
) -> Callable[[], UowT]:
    session_factory = manager.session_factory

    def make() -> UowT:
        if store is None:
            return context.unit_of_work(session_factory)
        return context.fake_unit_of_work(store)

    uow_factory = make
    for hook in hooks:
        uow_factory = with_outbox(uow_factory, hook)
    return uow_factory


def _read_factory(
    context: BoundedContext[UowT],
    manager: DatabaseSessionManager,
    store: InMemoryStore | None,
    replicas: ReplicaRouter | None,
) -> Callable[[], UowT] | None:
    if store is not None:
        return None  # the fake's reads are its writes' store
    if replicas is None:
        sessions = manager.read_session_factory
        return lambda: context.unit_of_work(sessions)
    # The router's factory is asked at each call: it names a healthy replica then.
    return lambda: context.unit_of_work(replicas.session_factory)


def wire_context(
    context: BoundedContext[UowT],
    uow_factory: Callable[[], UowT],
    *,
    dependencies: Mapping[str, Any],
    inbox: Inbox,
) -> ContextWiring[UowT]:
    """A bus over ``uow_factory`` with the context's handlers, bound by parameter name."""
    bus = MessageBus(uow_factory, dependencies=dependencies, inbox=inbox)
    for kind, handler in context.commands.items():
        bus.register_command(kind, handler.function, name=handler.name)
    for event_kind, handlers in context.events.items():
        for handler in handlers:
            bus.register_event(event_kind, handler.function, name=handler.name)
    return ContextWiring(context, uow_factory, bus)


def make_broker(settings: Settings) -> Broker:
    """The broker ``BROKER_URL`` names (unset: in-process), through the one broker factory."""
    return create_broker(
        settings.broker_url,
        prefix=settings.stream_prefix,
        max_deliveries=settings.broker_max_deliveries,
        claim_idle_ms=settings.broker_claim_idle_ms,
        history=IN_PROCESS_HISTORY,
        maxlen=settings.stream_maxlen or None,
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
