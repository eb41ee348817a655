"""What a ledger route receives from FastAPI: the message bus, or a fresh unit of work.

Writes go through the bus as commands, exactly as the message consumer
sends them; reads call the service layer's query functions with a unit of
work. Both come from the container the app's lifespan (or a test) put on
``app.state.container``; routes never see a session or an engine.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from adapters.container import ContainerDep
from entrypoints.bootstrap import LedgerContainer
from service_layer.ledger.unit_of_work import LedgerUnitOfWork
from service_layer.messagebus import MessageBus


async def ledger_unit_of_work(container: ContainerDep) -> LedgerUnitOfWork:
    """A new, not yet entered unit of work: the service function opens and closes it.

    ``async`` though it does no I/O: a plain ``def`` dependency costs a worker
    thread hand-off on every request (measured by ``bench.http``).
    """
    uow = container.uow_factory()
    if not isinstance(uow, LedgerUnitOfWork):
        raise TypeError(
            f"the container makes {type(uow).__name__}, the ledger routes need a "
            "LedgerUnitOfWork; build it with entrypoints.bootstrap.bootstrap()"
        )
    return uow


async def ledger_bus(container: ContainerDep) -> MessageBus[LedgerUnitOfWork]:
    """The bus ``bootstrap`` wired: its units of work write the outbox, so events go out."""
    if not isinstance(container, LedgerContainer):
        raise TypeError(
            f"the container is a {type(container).__name__}, the ledger routes need the "
            "message bus of a LedgerContainer; build it with entrypoints.bootstrap.bootstrap()"
        )
    return container.bus


LedgerUnitOfWorkDep = Annotated[LedgerUnitOfWork, Depends(ledger_unit_of_work)]
LedgerBusDep = Annotated[MessageBus[LedgerUnitOfWork], Depends(ledger_bus)]
