"""What a ledger route receives from FastAPI: a fresh unit of work and the retry policy.

Both come from the container the app's lifespan (or a test) put on
``app.state.container``; routes never see a session or an engine.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from adapters.container import ContainerDep
from entrypoints.bootstrap import retry_policy
from service_layer.ledger.unit_of_work import LedgerUnitOfWork
from service_layer.retry import RetryPolicy


def ledger_unit_of_work(container: ContainerDep) -> LedgerUnitOfWork:
    """A new, not yet entered unit of work: the service function opens and closes it."""
    uow = container.uow_factory()
    if not isinstance(uow, LedgerUnitOfWork):
        raise TypeError(
            f"the container makes {type(uow).__name__}, the ledger routes need a "
            "LedgerUnitOfWork; build it with entrypoints.bootstrap.bootstrap()"
        )
    return uow


def conflict_retry_policy(container: ContainerDep) -> RetryPolicy:
    return retry_policy(container.settings)


LedgerUnitOfWorkDep = Annotated[LedgerUnitOfWork, Depends(ledger_unit_of_work)]
RetryPolicyDep = Annotated[RetryPolicy, Depends(conflict_retry_policy)]
