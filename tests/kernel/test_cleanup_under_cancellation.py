"""A cancellation always propagates after cleanup, even when the cleanup fails.

The rollback and close that end a transaction run to completion when the
caller is cancelled meanwhile (``run_to_completion``). If that cleanup then
fails — the database went away — its error is logged, and the cancellation
is what the caller gets: a task that cannot be cancelled while its database
is down would hang a server's shutdown.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from adapters.database import DatabaseSessionManager, run_to_completion
from tests.kernel.things_uow import InMemoryThingUnitOfWork

pytestmark = pytest.mark.unit


class Cleanup:
    """A cleanup the test lets finish, with ``error`` or not, once a cancellation arrived."""

    def __init__(self, error: Exception | None = None) -> None:
        self.error = error
        self.started = asyncio.Event()
        self.release = asyncio.Event()
        self.finished = False

    async def __call__(self) -> str:
        self.started.set()
        await self.release.wait()
        self.finished = True
        if self.error is not None:
            raise self.error
        return "cleaned up"


async def cancel_while_cleaning(cleanup: Cleanup) -> asyncio.Task[str]:
    task = asyncio.create_task(run_to_completion(cleanup()))
    await cleanup.started.wait()
    task.cancel()
    await asyncio.sleep(0)
    cleanup.release.set()
    return task


async def test_a_cancellation_during_a_failing_cleanup_propagates_and_the_failure_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    cleanup = Cleanup(OSError("connection lost during rollback"))

    task = await cancel_while_cleaning(cleanup)

    with pytest.raises(asyncio.CancelledError):
        await task
    assert cleanup.finished
    assert "connection lost during rollback" in caplog.text


async def test_a_cancellation_during_a_cleanup_waits_for_the_cleanup_to_finish() -> None:
    cleanup = Cleanup()

    task = await cancel_while_cleaning(cleanup)

    with pytest.raises(asyncio.CancelledError):
        await task
    assert cleanup.finished


async def test_a_failing_cleanup_without_a_cancellation_raises_its_own_error() -> None:
    cleanup = Cleanup(OSError("connection lost during close"))
    cleanup.release.set()

    with pytest.raises(OSError, match="connection lost during close"):
        await run_to_completion(cleanup())


async def test_a_cleanup_without_a_cancellation_returns_its_result() -> None:
    cleanup = Cleanup()
    cleanup.release.set()

    assert await run_to_completion(cleanup()) == "cleaned up"


class SessionThatCannotRollBack:
    """Stands in for an ``AsyncSession`` whose connection died."""

    def __init__(self) -> None:
        self.closed = False

    async def rollback(self) -> None:
        raise OSError("connection lost during rollback")

    async def close(self) -> None:
        self.closed = True


@pytest.fixture
async def manager(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[DatabaseSessionManager]:
    manager = DatabaseSessionManager()
    manager.init("sqlite+aiosqlite://")
    sessions: list[SessionThatCannotRollBack] = []

    def make_session() -> Any:
        sessions.append(SessionThatCannotRollBack())
        return sessions[-1]

    monkeypatch.setattr(manager, "_sessionmaker", make_session)
    yield manager
    await manager.close()


async def test_a_cancelled_session_whose_rollback_fails_propagates_the_cancellation(
    manager: DatabaseSessionManager, caplog: pytest.LogCaptureFixture
) -> None:
    started = asyncio.Event()
    used: list[Any] = []

    async def request() -> None:
        async with manager.session() as session:
            used.append(session)
            started.set()
            await asyncio.Event().wait()

    task = asyncio.create_task(request())
    await started.wait()
    task.cancel()

    with pytest.raises(asyncio.CancelledError):
        await task
    assert used[0].closed
    assert "connection lost during rollback" in caplog.text


async def test_a_session_whose_rollback_fails_after_an_error_reports_that_error(
    manager: DatabaseSessionManager,
) -> None:
    with pytest.raises(LookupError, match="the caller's error"):
        async with manager.session():
            raise LookupError("the caller's error")


class UnitOfWorkThatCannotClose(InMemoryThingUnitOfWork):
    async def _close(self) -> None:
        raise OSError("connection lost during close")


async def test_a_cancelled_unit_of_work_whose_close_fails_propagates_the_cancellation(
    caplog: pytest.LogCaptureFixture,
) -> None:
    started = asyncio.Event()

    async def work() -> None:
        async with UnitOfWorkThatCannotClose():
            started.set()
            await asyncio.Event().wait()

    task = asyncio.create_task(work())
    await started.wait()
    task.cancel()

    with pytest.raises(asyncio.CancelledError):
        await task
    assert "connection lost during close" in caplog.text


async def test_a_unit_of_work_whose_close_fails_after_a_clean_block_raises_that_failure() -> None:
    with pytest.raises(OSError, match="connection lost during close"):
        async with UnitOfWorkThatCannotClose():
            pass
