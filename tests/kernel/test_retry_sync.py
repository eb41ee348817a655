"""The sync retry twin: the same schedule, logging and policy as the async helper.

``retrying_sync`` pauses with ``time.sleep``; these tests replace it, so
they see each pause without waiting.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Iterator

import pytest

from domain.errors import AlreadyExists, ConcurrencyError, DuplicateKeyError
from service_layer import observers
from service_layer.retry import (
    RetryPolicy,
    default_policy,
    retry_on_conflict_sync,
    retrying_sync,
    use_default_policy,
)

pytestmark = pytest.mark.unit


class FlakyOperation:
    """Fails with the given errors in turn, then returns how many calls it took."""

    def __init__(self, *failures: Exception) -> None:
        self.failures = list(failures)
        self.calls = 0

    def __call__(self) -> int:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        return self.calls


@pytest.fixture
def pauses(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """``time.sleep`` replaced: records each pause instead of taking it."""
    taken: list[float] = []
    monkeypatch.setattr(time, "sleep", taken.append)
    return taken


@pytest.fixture
def jitter_at_its_cap(monkeypatch: pytest.MonkeyPatch) -> list[tuple[float, float]]:
    """``random.uniform`` answering the top of its range; records the ranges asked for."""
    ranges: list[tuple[float, float]] = []

    def top(low: float, high: float) -> float:
        ranges.append((low, high))
        return high

    monkeypatch.setattr(random, "uniform", top)
    return ranges


@pytest.fixture
def restored_default() -> Iterator[None]:
    before = default_policy()
    try:
        yield
    finally:
        use_default_policy(before)


def test_the_pause_before_each_sync_retry_doubles_up_to_the_cap(
    pauses: list[float], jitter_at_its_cap: list[tuple[float, float]]
) -> None:
    operation = FlakyOperation(*(ConcurrencyError("lost") for _ in range(5)))

    assert retrying_sync(operation, RetryPolicy(attempts=6, base_delay=0.01, max_delay=0.05)) == 6

    assert pauses == [0.01, 0.02, 0.04, 0.05, 0.05]
    assert jitter_at_its_cap == [(0, 0.01), (0, 0.02), (0, 0.04), (0, 0.05), (0, 0.05)]


def test_sync_attempts_are_bounded_and_no_pause_follows_the_last(pauses: list[float]) -> None:
    operation = FlakyOperation(*(ConcurrencyError(f"lost {n}") for n in range(10)))

    with pytest.raises(ConcurrencyError, match=r"^lost 3$"):
        retrying_sync(operation, RetryPolicy(attempts=4, base_delay=0.01, max_delay=0.01))

    assert operation.calls == 4
    assert len(pauses) == 3


def test_each_sync_retry_is_logged_with_its_attempt_cause_and_pause(
    pauses: list[float],
    jitter_at_its_cap: list[tuple[float, float]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    operation = FlakyOperation(ConcurrencyError("row 7 changed"))

    with caplog.at_level(logging.WARNING, logger="service_layer.retry"):
        retrying_sync(operation, RetryPolicy(attempts=3, base_delay=0.0123456, max_delay=1))

    (record,) = caplog.records
    assert record.getMessage() == "retrying after a conflict"
    assert (record.attempt, record.of, record.cause, record.delay_s) == (  # type: ignore[attr-defined]
        1,
        3,
        "row 7 changed",
        0.0123,
    )
    assert pauses == [0.0123456]


def test_a_duplicate_key_that_the_sync_retry_resolves_is_no_error(pauses: list[float]) -> None:
    operation = FlakyOperation(DuplicateKeyError("lost the race on uq_things_name"))

    assert retrying_sync(operation, RetryPolicy(attempts=3, base_delay=0, max_delay=0)) == 2


# The three below failed before the sync twin shared the async loop's decisions.


@pytest.mark.usefixtures("restored_default", "pauses")
def test_the_sync_decorator_without_a_policy_follows_the_default_in_force_at_call_time() -> None:
    calls = 0

    @retry_on_conflict_sync()
    def always_conflicting() -> None:
        nonlocal calls
        calls += 1
        raise ConcurrencyError("lost again")

    use_default_policy(RetryPolicy(attempts=2, base_delay=0, max_delay=0))

    with pytest.raises(ConcurrencyError):
        always_conflicting()

    assert calls == 2


@pytest.mark.usefixtures("pauses")
def test_a_duplicate_key_that_comes_back_on_the_sync_retry_is_already_exists_at_once() -> None:
    operation = FlakyOperation(
        DuplicateKeyError("first"), DuplicateKeyError("uq_things_name taken"), ConcurrencyError("x")
    )

    with pytest.raises(AlreadyExists) as raised:
        retrying_sync(operation, RetryPolicy(attempts=5, base_delay=0, max_delay=0))

    assert operation.calls == 2
    assert "uq_things_name taken" in raised.value.detail


class RecordingObserver(observers.UnitOfWorkObserver):
    def __init__(self) -> None:
        self.retries: list[tuple[int, BaseException]] = []

    def retrying(self, attempt: int, error: BaseException) -> None:
        self.retries.append((attempt, error))


@pytest.mark.usefixtures("pauses")
def test_the_observers_hear_of_each_sync_retry() -> None:
    first, second = ConcurrencyError("one"), ConcurrencyError("two")
    observer = RecordingObserver()
    observers.attach(observer)
    try:
        retrying_sync(FlakyOperation(first, second), RetryPolicy(attempts=3, base_delay=0))
    finally:
        observers.detach(observer)

    assert observer.retries == [(1, first), (2, second)]
