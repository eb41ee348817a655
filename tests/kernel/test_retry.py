"""The retry helper: which errors it retries, how often, and what escapes when it gives up."""

from __future__ import annotations

import logging
import random
from collections.abc import Iterator

import pytest

from adapters.database import DatabaseSessionManager
from adapters.settings import Settings
from domain.errors import AlreadyExists, ConcurrencyError, DomainError, DuplicateKeyError, ErrorKind
from entrypoints.bootstrap import bootstrap
from service_layer import retry
from service_layer.retry import (
    RetryPolicy,
    default_policy,
    retry_on_conflict,
    retrying,
    use_default_policy,
)

pytestmark = pytest.mark.unit

NO_PAUSE = RetryPolicy(attempts=3, base_delay=0, max_delay=0)


class FlakyOperation:
    """Fails with the given errors in turn, then returns how many calls it took."""

    def __init__(self, *failures: Exception) -> None:
        self.failures = list(failures)
        self.calls = 0

    async def __call__(self) -> int:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        return self.calls


class DriverError(Exception):
    """Stands in for a driver exception that carries only a SQLSTATE."""

    def __init__(self, sqlstate: str) -> None:
        super().__init__(f"sqlstate {sqlstate}")
        self.sqlstate = sqlstate


async def test_a_conflict_is_retried_until_the_operation_succeeds() -> None:
    operation = FlakyOperation(ConcurrencyError("lost"), ConcurrencyError("lost again"))

    assert await retrying(operation, NO_PAUSE) == 3


async def test_attempts_are_bounded_and_the_last_conflict_propagates() -> None:
    last = ConcurrencyError("third")
    operation = FlakyOperation(ConcurrencyError("first"), ConcurrencyError("second"), last)

    with pytest.raises(ConcurrencyError) as raised:
        await retrying(operation, NO_PAUSE)

    assert raised.value is last
    assert operation.calls == 3


async def test_a_duplicate_key_that_the_retry_resolves_is_no_error() -> None:
    operation = FlakyOperation(DuplicateKeyError("lost the race on uq_things_name"))

    assert await retrying(operation, NO_PAUSE) == 2


async def test_a_duplicate_key_that_comes_back_on_the_retry_is_already_exists_at_once() -> None:
    operation = FlakyOperation(
        DuplicateKeyError("first"), DuplicateKeyError("uq_things_name taken"), ConcurrencyError("x")
    )

    with pytest.raises(AlreadyExists) as raised:
        await retrying(operation, RetryPolicy(attempts=5, base_delay=0, max_delay=0))

    assert operation.calls == 2
    assert (raised.value.kind, raised.value.code) == (ErrorKind.CONFLICT, "already_exists")
    assert "uq_things_name taken" in raised.value.detail
    assert isinstance(raised.value.__cause__, DuplicateKeyError)


async def test_a_duplicate_key_is_retried_once_even_after_other_conflicts() -> None:
    operation = FlakyOperation(
        ConcurrencyError("stale"), DuplicateKeyError("raced"), ConcurrencyError("stale again")
    )

    assert await retrying(operation, RetryPolicy(attempts=4, base_delay=0, max_delay=0)) == 4


async def test_a_second_duplicate_is_already_exists_even_after_other_conflicts() -> None:
    operation = FlakyOperation(
        DuplicateKeyError("raced"), ConcurrencyError("stale"), DuplicateKeyError("taken")
    )

    with pytest.raises(AlreadyExists):
        await retrying(operation, RetryPolicy(attempts=5, base_delay=0, max_delay=0))

    assert operation.calls == 3


async def test_a_duplicate_key_on_the_last_attempt_propagates_as_the_conflict_it_is() -> None:
    last = DuplicateKeyError("raced on the last attempt")
    operation = FlakyOperation(ConcurrencyError("stale"), last)

    with pytest.raises(DuplicateKeyError) as raised:
        await retrying(operation, RetryPolicy(attempts=2, base_delay=0, max_delay=0))

    assert raised.value is last


@pytest.mark.parametrize(
    "error", [ValueError("bug"), DomainError("refused")], ids=["bug", "domain"]
)
async def test_a_non_retryable_error_propagates_at_once(error: Exception) -> None:
    operation = FlakyOperation(error)

    with pytest.raises(type(error)):
        await retrying(operation, NO_PAUSE)

    assert operation.calls == 1


async def test_a_single_attempt_policy_never_retries() -> None:
    operation = FlakyOperation(ConcurrencyError("lost"))

    with pytest.raises(ConcurrencyError):
        await retrying(operation, RetryPolicy(attempts=1, base_delay=0, max_delay=0))

    assert operation.calls == 1


async def test_a_driver_error_the_adapters_did_not_translate_is_not_retried() -> None:
    # Translating SQLSTATEs 40001/40P01 is the unit of work's job (see
    # test_sql_errors.py); the service layer only knows the domain's conflict.
    operation = FlakyOperation(DriverError("40001"))

    with pytest.raises(DriverError):
        await retrying(operation, NO_PAUSE)

    assert operation.calls == 1


async def test_the_decorator_retries_the_whole_function_with_its_arguments() -> None:
    seen: list[int] = []

    @retry_on_conflict(NO_PAUSE)
    async def record(value: int) -> str:
        seen.append(value)
        if len(seen) < 2:
            raise ConcurrencyError("lost")
        return f"stored {value}"

    assert await record(7) == "stored 7"
    assert seen == [7, 7]
    assert record.__name__ == "record"


@pytest.mark.parametrize(
    ("attempts", "base_delay", "max_delay", "problem"),
    [
        (0, 0.01, 0.1, "attempts must be >= 1"),
        (3, -0.01, 0.1, "0 <= base_delay <= max_delay"),
        (3, 0.5, 0.1, "0 <= base_delay <= max_delay"),
    ],
    ids=["no-attempts", "negative-delay", "cap-below-base"],
)
def test_a_policy_refuses_nonsense(
    attempts: int, base_delay: float, max_delay: float, problem: str
) -> None:
    with pytest.raises(ValueError, match=problem):
        RetryPolicy(attempts=attempts, base_delay=base_delay, max_delay=max_delay)


@pytest.mark.parametrize("attempt", [1, 5, 30])
def test_a_pause_never_exceeds_the_cap(attempt: int) -> None:
    policy = RetryPolicy(attempts=40, base_delay=0.01, max_delay=0.05)

    assert 0 <= policy.delay(attempt) <= 0.05


@pytest.fixture
def restored_default() -> Iterator[None]:
    before = default_policy()
    try:
        yield
    finally:
        use_default_policy(before)


@pytest.mark.usefixtures("restored_default")
async def test_the_decorator_without_a_policy_follows_the_default_in_force_at_call_time() -> None:
    calls = 0

    @retry_on_conflict()
    async def always_conflicting() -> None:
        nonlocal calls
        calls += 1
        raise ConcurrencyError("lost again")

    use_default_policy(RetryPolicy(attempts=2, base_delay=0, max_delay=0))

    with pytest.raises(ConcurrencyError):
        await always_conflicting()

    assert calls == 2


@pytest.mark.usefixtures("restored_default")
async def test_bootstrap_sets_the_default_policy_from_retry_attempts() -> None:
    manager = DatabaseSessionManager()
    try:
        bootstrap(
            Settings(database_url="sqlite+aiosqlite://", retry_attempts=3), [], manager=manager
        )
    finally:
        await manager.close()

    assert default_policy().attempts == 3


class Pauses:
    """Stands in for ``asyncio.sleep`` in the retry helper: records each pause."""

    def __init__(self) -> None:
        self.taken: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.taken.append(seconds)


@pytest.fixture
def pauses(monkeypatch: pytest.MonkeyPatch) -> Pauses:
    recorded = Pauses()
    monkeypatch.setattr(retry, "sleep", recorded)
    return recorded


@pytest.fixture
def jitter_at_its_cap(monkeypatch: pytest.MonkeyPatch) -> list[tuple[float, float]]:
    """``random.uniform`` answering the top of its range; records the ranges asked for."""
    ranges: list[tuple[float, float]] = []

    def top(low: float, high: float) -> float:
        ranges.append((low, high))
        return high

    monkeypatch.setattr(random, "uniform", top)
    return ranges


async def test_the_pause_before_each_retry_doubles_up_to_the_cap(
    pauses: Pauses, jitter_at_its_cap: list[tuple[float, float]]
) -> None:
    operation = FlakyOperation(*(ConcurrencyError("lost") for _ in range(5)))

    await retrying(operation, RetryPolicy(attempts=6, base_delay=0.01, max_delay=0.05))

    assert pauses.taken == [0.01, 0.02, 0.04, 0.05, 0.05]
    assert jitter_at_its_cap == [(0, 0.01), (0, 0.02), (0, 0.04), (0, 0.05), (0, 0.05)]


async def test_no_pause_follows_the_last_attempt(pauses: Pauses) -> None:
    operation = FlakyOperation(ConcurrencyError("lost"), ConcurrencyError("lost again"))

    with pytest.raises(ConcurrencyError):
        await retrying(operation, RetryPolicy(attempts=2, base_delay=0.01, max_delay=0.01))

    assert len(pauses.taken) == 1


async def test_each_retry_is_logged_with_its_attempt_cause_and_pause(
    pauses: Pauses,
    jitter_at_its_cap: list[tuple[float, float]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    operation = FlakyOperation(ConcurrencyError("row 7 changed"))

    with caplog.at_level(logging.WARNING, logger="service_layer.retry"):
        await retrying(operation, RetryPolicy(attempts=3, base_delay=0.0123456, max_delay=1))

    (record,) = caplog.records
    assert record.getMessage() == "retrying after a conflict"
    assert (record.attempt, record.of, record.cause, record.delay_s) == (  # type: ignore[attr-defined]
        1,
        3,
        "row 7 changed",
        0.0123,
    )


def test_a_policy_with_a_cap_below_its_base_names_the_rule() -> None:
    with pytest.raises(ValueError, match=r"^need 0 <= base_delay <= max_delay$"):
        RetryPolicy(attempts=3, base_delay=0.5, max_delay=0.1)


def test_a_policy_without_attempts_names_the_value() -> None:
    with pytest.raises(ValueError, match=r"^attempts must be >= 1, got 0$"):
        RetryPolicy(attempts=0)


def test_the_default_policy_tries_five_times_pausing_5_ms_then_up_to_200_ms() -> None:
    assert RetryPolicy() == RetryPolicy(attempts=5, base_delay=0.005, max_delay=0.2)
