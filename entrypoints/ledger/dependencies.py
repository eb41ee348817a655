"""What a ledger route receives from FastAPI: the ledger's bus, or a fresh unit of work."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from entrypoints.http.dependencies import bus_of, read_unit_of_work_of
from service_layer.ledger.unit_of_work import LedgerUnitOfWork
from service_layer.messagebus import MessageBus

CONTEXT_NAME = "ledger"

LedgerReadDep = Annotated[
    LedgerUnitOfWork, Depends(read_unit_of_work_of(CONTEXT_NAME, LedgerUnitOfWork))
]
"""For the GET routes: a replica's when ``DATABASE_REPLICA_URLS`` names healthy ones."""
LedgerBusDep = Annotated[
    MessageBus[LedgerUnitOfWork], Depends(bus_of(CONTEXT_NAME, LedgerUnitOfWork))
]
