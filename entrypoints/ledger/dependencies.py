"""What a ledger route receives from FastAPI: the ledger's bus, or a fresh unit of work.

Writes go through the bus as commands, exactly as the message consumer sends
them; reads call the service layer's query functions with a unit of work.
Both come from the ledger's wiring in the container that the app's lifespan
(or a test) put on ``app.state.container``; routes never see a session.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from adapters.container import ContainerDep
from entrypoints.bootstrap import Container, ContextWiring
from service_layer.ledger.unit_of_work import LedgerUnitOfWork
from service_layer.messagebus import MessageBus

CONTEXT_NAME = "ledger"


def _wiring(container: object) -> ContextWiring[LedgerUnitOfWork]:
    if not isinstance(container, Container):
        raise TypeError(
            f"the container is a {type(container).__name__}; the ledger's routes need the "
            "one entrypoints.bootstrap.bootstrap() builds"
        )
    wiring: ContextWiring[LedgerUnitOfWork] = container.wiring(CONTEXT_NAME)
    return wiring


async def ledger_unit_of_work(container: ContainerDep) -> LedgerUnitOfWork:
    """A new, not yet entered unit of work: the query function opens and closes it.

    ``async`` though it does no I/O: a plain ``def`` dependency costs a worker
    thread hand-off on every request (measured by ``bench.ledger.http``).
    """
    return _wiring(container).uow_factory()


async def ledger_bus(container: ContainerDep) -> MessageBus[LedgerUnitOfWork]:
    """The ledger's bus: its units of work write the outbox, so events go out."""
    return _wiring(container).bus


LedgerUnitOfWorkDep = Annotated[LedgerUnitOfWork, Depends(ledger_unit_of_work)]
LedgerBusDep = Annotated[MessageBus[LedgerUnitOfWork], Depends(ledger_bus)]
