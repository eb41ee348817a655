"""Two units of work that lock A then B, and B then A: a deadlock, resolved by the retry.

The ledger's own transfer locks accounts in id order and cannot deadlock,
so the two units of work here are written for the occasion: each locks one
account, meets the other at a barrier, then locks the other account and
deposits into both. PostgreSQL aborts exactly one of them with 40P01 (after
its ``deadlock_timeout``, 1 s by default); the unit of work reports that as
a ``ConcurrencyError``, the retry helper logs it with its cause and runs the
loser again, and both end up committed.
"""

from __future__ import annotations

import asyncio
import logging
from uuid import UUID

import pytest

from domain.errors import ConcurrencyError
from service_layer.retry import RetryPolicy, retrying
from tests.ledger.faults.harness import FaultDatabase, LedgerApp

pytestmark = pytest.mark.integration

POLICY = RetryPolicy(attempts=3, base_delay=0.001, max_delay=0.01)


class CrossedLocks:
    """Two units of work locking the same two accounts in opposite orders."""

    def __init__(self, ledger: LedgerApp) -> None:
        self.ledger = ledger
        self.barrier = asyncio.Barrier(2)
        self.failures: list[str | None] = []

    async def lock_both(self, first: str, second: str, reference: str) -> None:
        attempt = 0

        async def once() -> None:
            nonlocal attempt
            attempt += 1
            try:
                uow = self.ledger.unit_of_work()
                async with uow:
                    locked_first = await uow.accounts.get_for_update(UUID(first))
                    if attempt == 1:
                        await asyncio.wait_for(self.barrier.wait(), 10)
                    locked_second = await uow.accounts.get_for_update(UUID(second))
                    assert locked_first is not None
                    assert locked_second is not None
                    uow.entries.add(locked_first.deposit(1, reference=reference))
                    uow.entries.add(locked_second.deposit(1, reference=reference))
                    await uow.commit()
            except ConcurrencyError as exc:
                self.failures.append(exc.sqlstate)
                raise

        await retrying(once, POLICY)


async def test_of_two_crossed_units_of_work_exactly_one_meets_a_deadlock(
    ledger: LedgerApp,
) -> None:
    a, b = await ledger.open_account(), await ledger.open_account()
    crossed = CrossedLocks(ledger)

    await asyncio.gather(
        crossed.lock_both(a, b, f"a-then-b-{a}"), crossed.lock_both(b, a, f"b-then-a-{b}")
    )

    assert crossed.failures == ["40P01"]


async def test_after_the_deadlock_the_retry_commits_both_units_of_work(
    ledger: LedgerApp, faults: FaultDatabase, caplog: pytest.LogCaptureFixture
) -> None:
    a, b = await ledger.open_account(), await ledger.open_account()
    crossed = CrossedLocks(ledger)
    forward, backward = f"a-then-b-{a}", f"b-then-a-{b}"

    with caplog.at_level(logging.WARNING, logger="service_layer.retry"):
        await asyncio.gather(crossed.lock_both(a, b, forward), crossed.lock_both(b, a, backward))

    assert await faults.entries_with(forward) == 2
    assert await faults.entries_with(backward) == 2
    assert [await ledger.balance(account) for account in (a, b)] == [2, 2]
    (retry,) = [r for r in caplog.records if r.name == "service_layer.retry"]
    assert (retry.__dict__["cause"], retry.__dict__["attempt"]) == ("deadlock detected", 1)
