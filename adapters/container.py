"""The ``DependencyContainer``: what a process needs, built once by the composition root.

FastAPI endpoints reach it through :func:`get_container`; background jobs and
CLI commands get it straight from ``bootstrap()``. It holds the *means* to make
sessions and units of work, never a session itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from adapters.database import AsyncSessionDep, DatabaseSessionManager, get_db
from adapters.settings import Settings


@dataclass(frozen=True)
class DependencyContainer:
    """The settings and the means to make sessions; ``entrypoints.bootstrap.Container``
    adds messaging and the bounded contexts' units of work on top."""

    settings: Settings
    session_manager: DatabaseSessionManager

    @property
    def db_session_factory(self) -> async_sessionmaker[AsyncSession]:
        """The configured ``async_sessionmaker``, for work outside a request."""
        return self.session_manager.session_factory


async def get_container(request: Request) -> DependencyContainer:
    """The container that the app's lifespan put on ``app.state.container``.

    ``async`` although it does no I/O: FastAPI runs a plain ``def`` dependency
    in a worker thread, and that hand-off cost a fifth of a request's throughput
    in ``bench.http``.
    """
    container: DependencyContainer | None = getattr(request.app.state, "container", None)
    if container is None:
        raise RuntimeError(
            "no DependencyContainer on app.state.container; build the app with "
            "entrypoints.http.app.create_app() or set it in your lifespan"
        )
    return container


ContainerDep = Annotated[DependencyContainer, Depends(get_container)]


get_db_session = get_db
"""The seed's name for :func:`adapters.database.get_db`, which already prefers the container."""

DbSessionDep = AsyncSessionDep
"""The seed's name for :data:`adapters.database.AsyncSessionDep`."""
