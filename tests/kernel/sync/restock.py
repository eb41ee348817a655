"""The worked example: a synchronous task on the same domain objects and mappings.

Think of a Celery task or a cron script. It uses :class:`Part` and its
mapping (``tests/kernel/parts_orm``) exactly as the async services do, through
the synchronous unit of work, on the same database. Conflicts with async
writers are settled by the optimistic version check and
:func:`retry_on_conflict_sync`, the same way two async writers settle theirs.
"""

from __future__ import annotations

from uuid import UUID

from adapters.sync_database import SessionLocal
from service_layer.repository import IsNull, Range
from service_layer.retry import RetryPolicy, retry_on_conflict_sync
from tests.kernel.parts_uow import SqlAlchemySyncPartUnitOfWork, SyncPartUnitOfWork

POLICY = RetryPolicy(attempts=5, base_delay=0.001, max_delay=0.01)


@retry_on_conflict_sync(POLICY)
def restock_low_parts(uow: SyncPartUnitOfWork, *, below: int, by: int) -> list[UUID]:
    """Restock every active part whose stock is under ``below``; the ids restocked."""
    with uow:
        low = uow.parts.list(where={"stock": Range(lt=below), "retired_at": IsNull()})
        for part in low:
            part.restock(by)
        uow.commit()
        return sorted(part.id for part in low)


def restock_task(below: int, by: int) -> int:
    """The task as a worker registers it: the process's ``SessionLocal``, one unit of work.

    The worker calls ``sync_session_manager.init(url)`` once at start-up,
    like an async service's lifespan does for ``session_manager``.
    """
    return len(restock_low_parts(SqlAlchemySyncPartUnitOfWork(SessionLocal), below=below, by=by))
