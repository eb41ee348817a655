"""The sync retry helper: the async one's policy, for plain functions."""

from __future__ import annotations

import pytest

from domain.errors import ConcurrencyError, DomainError
from service_layer.retry import RetryPolicy, retry_on_conflict_sync, retrying_sync

pytestmark = pytest.mark.unit

NO_PAUSE = RetryPolicy(attempts=3, base_delay=0, max_delay=0)


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


def test_a_conflict_is_retried_until_the_operation_succeeds() -> None:
    operation = FlakyOperation(ConcurrencyError("lost"), ConcurrencyError("lost again"))

    assert retrying_sync(operation, NO_PAUSE) == 3


def test_attempts_are_bounded_and_the_last_conflict_propagates() -> None:
    last = ConcurrencyError("third")
    operation = FlakyOperation(ConcurrencyError("first"), ConcurrencyError("second"), last)

    with pytest.raises(ConcurrencyError) as raised:
        retrying_sync(operation, NO_PAUSE)

    assert raised.value is last
    assert operation.calls == 3


@pytest.mark.parametrize(
    "error", [ValueError("bug"), DomainError("refused")], ids=["bug", "domain"]
)
def test_a_non_retryable_error_propagates_at_once(error: Exception) -> None:
    operation = FlakyOperation(error)

    with pytest.raises(type(error)):
        retrying_sync(operation, NO_PAUSE)

    assert operation.calls == 1


def test_the_decorator_retries_the_whole_function_with_its_arguments() -> None:
    calls: list[tuple[int, str]] = []

    @retry_on_conflict_sync(NO_PAUSE)
    def transfer(amount: int, *, reference: str) -> str:
        calls.append((amount, reference))
        if len(calls) == 1:
            raise ConcurrencyError("lost the race")
        return reference

    assert transfer(5, reference="r-1") == "r-1"
    assert calls == [(5, "r-1"), (5, "r-1")]


def test_the_sync_decorator_refuses_an_async_function() -> None:
    async def service() -> None:
        pass

    with pytest.raises(TypeError, match="decorate it with retry_on_conflict instead"):
        retry_on_conflict_sync(NO_PAUSE)(service)
