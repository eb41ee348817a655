"""FastAPI dependencies that hand a context's routes its bus or a fresh unit of work.

Routes never see a session or an engine: writes go through the context's bus as
commands (exactly as its message consumer sends them), reads get a unit of work
to pass to a query function. Both come from the container that the app's
lifespan (or a test) put on ``app.state.container``.

    OrdersBusDep = Annotated[
        MessageBus[OrdersUnitOfWork], Depends(bus_of("orders", OrdersUnitOfWork))
    ]

By name rather than by the context object, so that a context's routes can be
imported by the module that declares its ``BoundedContext``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from adapters.container import ContainerDep, DependencyContainer
from entrypoints.bootstrap import Container, ContextWiring
from service_layer.messagebus import MessageBus
from service_layer.unit_of_work import AbstractUnitOfWork

UowT = TypeVar("UowT", bound=AbstractUnitOfWork)


def _wiring(name: str, kind: type[UowT], container: DependencyContainer) -> ContextWiring[UowT]:
    if not isinstance(container, Container):
        raise TypeError(
            f"the container is a {type(container).__name__}; the {name} routes need the "
            "one entrypoints.bootstrap.bootstrap() builds"
        )
    wiring: ContextWiring[UowT] = container.wiring(name)
    return wiring


def bus_of(name: str, kind: type[UowT]) -> Callable[..., Awaitable[MessageBus[UowT]]]:
    """A dependency answering the bus of the context ``name``; its units of work are ``kind``."""

    async def bus(container: ContainerDep) -> MessageBus[UowT]:
        return _wiring(name, kind, container).bus

    return bus


def unit_of_work_of(name: str, kind: type[UowT]) -> Callable[..., Awaitable[UowT]]:
    """A dependency answering a new, not yet entered unit of work of the context ``name``.

    ``async`` though it does no I/O: a plain ``def`` dependency costs a worker
    thread hand-off on every request (measured by a context's HTTP bench).
    """

    async def unit_of_work(container: ContainerDep) -> UowT:
        return _wiring(name, kind, container).uow_factory()

    return unit_of_work


def read_unit_of_work_of(name: str, kind: type[UowT]) -> Callable[..., Awaitable[UowT]]:
    """Like :func:`unit_of_work_of`, for read-only queries: on a replica when there are any.

    Only for reads that need not see the caller's own latest write (a replica
    lags by up to ``DB_REPLICA_MAX_LAG_SECONDS``); a read inside a write, or a
    read-your-write, takes :func:`unit_of_work_of`.
    """

    async def unit_of_work(container: ContainerDep) -> UowT:
        return _wiring(name, kind, container).read_unit_of_work()

    return unit_of_work


__all__ = ["bus_of", "read_unit_of_work_of", "unit_of_work_of"]
