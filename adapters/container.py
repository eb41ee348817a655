"""The ``DependencyContainer``: what a process needs, built once by the composition root.

FastAPI endpoints reach it through :func:`get_container`; background jobs and
CLI commands get it straight from ``bootstrap()``. It holds the *means* to make
sessions and units of work, never a session itself.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from adapters.database import DatabaseSessionManager
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


async def get_db_session(container: ContainerDep) -> AsyncIterator[AsyncSession]:
    """A request-scoped session from the container's factory, committed before the response.

    Declared with ``scope="function"`` in :data:`DbSessionDep` for the same
    reason as ``get_db``; FastAPI caches it per request, so every dependency
    of one request receives the same session.
    """
    async with container.db_session_factory() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise


DbSessionDep = Annotated[AsyncSession, Depends(get_db_session, scope="function")]
