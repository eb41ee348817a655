"""The composition root: the one place that picks concrete adapters for the ports.

Every entrypoint — the HTTP app, the CLI, the message consumer — starts by
calling :func:`bootstrap` and then only talks to the container it returns, so
the choice of database, mapping and retry policy is made once, here, and
tests can make the same choice against their own database.
"""

from __future__ import annotations

from adapters.container import DependencyContainer
from adapters.database import DatabaseSessionManager, session_manager
from adapters.ledger.orm import start_mappers
from adapters.settings import Settings
from service_layer.ledger.unit_of_work import LedgerUnitOfWork, SqlAlchemyLedgerUnitOfWork
from service_layer.retry import RetryPolicy


def bootstrap(
    settings: Settings, *, manager: DatabaseSessionManager | None = None
) -> DependencyContainer[LedgerUnitOfWork]:
    """Initialise ``manager`` (default: the process-wide one) and wire the ledger to it.

    The caller owns the manager's life: it must ``await manager.close()`` when
    the process (or test) is done with the container.
    """
    manager = session_manager if manager is None else manager
    manager.init(settings.database_url, **settings.engine_options())
    start_mappers()
    session_factory = manager.session_factory

    def make_unit_of_work() -> LedgerUnitOfWork:
        return SqlAlchemyLedgerUnitOfWork(session_factory)

    return DependencyContainer(
        settings=settings, session_manager=manager, uow_factory=make_unit_of_work
    )


def retry_policy(settings: Settings) -> RetryPolicy:
    """How often a service call re-runs after losing a race, from ``RETRY_ATTEMPTS``."""
    return RetryPolicy(attempts=settings.retry_attempts)
