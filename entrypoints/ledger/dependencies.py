"""What a ledger route receives from FastAPI: its caller, the ledger's bus, or a unit of work.

``ReaderDep`` and ``WriterDep`` are the caller's principal, from a verified
bearer token with the ``ledger:read`` or ``ledger:write`` scope (writes also
count against ``RATE_LIMIT``); the kernel's ``entrypoints.http.auth`` answers
the 401, 403 and 429.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from domain.principal import Principal
from entrypoints.http.auth import authenticated
from entrypoints.http.dependencies import bus_of, read_unit_of_work_of
from service_layer.ledger.unit_of_work import LedgerUnitOfWork
from service_layer.messagebus import MessageBus

CONTEXT_NAME = "ledger"
READ_SCOPE = "ledger:read"
WRITE_SCOPE = "ledger:write"

ReaderDep = Annotated[Principal, Depends(authenticated(READ_SCOPE))]
WriterDep = Annotated[Principal, Depends(authenticated(WRITE_SCOPE, write=True))]

LedgerReadDep = Annotated[
    LedgerUnitOfWork, Depends(read_unit_of_work_of(CONTEXT_NAME, LedgerUnitOfWork))
]
"""For the GET routes: a replica's when ``DATABASE_REPLICA_URLS`` names healthy ones."""
LedgerBusDep = Annotated[
    MessageBus[LedgerUnitOfWork], Depends(bus_of(CONTEXT_NAME, LedgerUnitOfWork))
]
