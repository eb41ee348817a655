"""A product catalog: the kernel's own second bounded context, for its tests only.

``KEEL_CONTEXTS=tests.catalog`` serves it; it is wired through the same
bootstrap as the example, end to end: HTTP route → handler → unit of work →
outbox → relay → broker → its own consumer of ``catalog.events`` → inbox.
"""

from __future__ import annotations

from pathlib import Path

from adapters.brokers import DeliveryHandler
from adapters.brokers.consumer import deliver_to_bus
from adapters.serialization import MessageRegistry
from entrypoints.bootstrap import Container, ContextWiring
from entrypoints.context import BoundedContext, Subscription
from service_layer.messagebus import MessageBus
from tests.catalog import orm, routes
from tests.catalog.domain import AddProduct, ReserveStock, StockReserved
from tests.catalog.handlers import COMMAND_HANDLERS, CONSUMED_EVENTS
from tests.catalog.unit_of_work import (
    CatalogUnitOfWork,
    InMemoryCatalogUnitOfWork,
    SqlAlchemyCatalogUnitOfWork,
)

COMMANDS_STREAM = "catalog.commands"
EVENTS_STREAM = "catalog.events"


def register_messages(registry: MessageRegistry) -> None:
    registry.register(AddProduct)
    registry.register(ReserveStock)
    registry.register(StockReserved, stream=EVENTS_STREAM)


def _commands(wiring: ContextWiring[CatalogUnitOfWork], container: Container) -> DeliveryHandler:
    return deliver_to_bus(wiring.bus, container.registry)


def _events(wiring: ContextWiring[CatalogUnitOfWork], container: Container) -> DeliveryHandler:
    """The consumed events' own bus: they arrive from the broker only, through the inbox."""
    bus = MessageBus(wiring.uow_factory, dependencies=container.dependencies, inbox=container.inbox)
    for kind, handlers in CONSUMED_EVENTS.items():
        for handler in handlers:
            bus.register_event(kind, handler.function, name=handler.name)
    return deliver_to_bus(bus, container.registry)


context: BoundedContext[CatalogUnitOfWork] = BoundedContext(
    name=routes.NAME,
    unit_of_work=SqlAlchemyCatalogUnitOfWork,
    fake_unit_of_work=InMemoryCatalogUnitOfWork,
    start_mappers=orm.start_mappers,
    tables=(orm.products, orm.reservations),
    migrations=Path(__file__).with_name("migrations"),
    commands=COMMAND_HANDLERS,
    register_messages=register_messages,
    subscriptions=(
        Subscription(stream=COMMANDS_STREAM, group="catalog", handler=_commands),
        Subscription(stream=EVENTS_STREAM, group="catalog-reservations", handler=_events),
    ),
    routers=(routes.router,),
)
