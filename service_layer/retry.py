"""Re-run a unit of work that lost a race.

Optimistic version checks, serialization failures (40001) and deadlocks
(40P01) all mean the same thing: nothing was kept, and running the whole unit
of work again — reading fresh data — is safe. Anything else is not retried.

A duplicate key is retried once: the retry of a lost check-then-insert race
finds the winner's row. A duplicate that comes back on that retry is a
permanent clash, and surfaces at once as the domain's
:class:`~domain.errors.AlreadyExists` instead of burning the remaining
attempts and then reading as "retries ran out".

Hand-written rather than taken from tenacity or backoff: the policy is ten
lines, it must classify Keel's own errors, and it must re-create the unit of
work on every attempt, which the caller's closure already does.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import ParamSpec, TypeVar

from domain.errors import AlreadyExists, ConcurrencyError, DuplicateKeyError
from service_layer import observers

logger = logging.getLogger(__name__)

R = TypeVar("R")
P = ParamSpec("P")


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently to retry. ``attempts`` counts the first try."""

    attempts: int = 5
    base_delay: float = 0.005
    max_delay: float = 0.2

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError(f"attempts must be >= 1, got {self.attempts}")
        if self.base_delay < 0 or self.max_delay < self.base_delay:
            raise ValueError("need 0 <= base_delay <= max_delay")

    def delay(self, attempt: int) -> float:
        """Full jitter: a random pause up to an exponentially growing cap."""
        cap = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
        return random.uniform(0, cap)


_default = RetryPolicy()

sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
"""How :func:`retrying` pauses; a test replaces it to see the pauses without waiting."""


def use_default_policy(policy: RetryPolicy) -> None:
    """Set the policy :func:`retrying` and ``@retry_on_conflict()`` use when given none.

    The composition root calls it once with ``RETRY_ATTEMPTS``; until then the
    default is ``RetryPolicy()``. Process-wide on purpose, like logging's
    configuration: a decorator is applied at import, long before settings exist.
    """
    global _default
    _default = policy


def default_policy() -> RetryPolicy:
    """The policy in force when a caller passes none."""
    return _default


def is_retryable(exc: BaseException) -> bool:
    """Only the domain's conflict: adapters translate driver errors (40001, 40P01, stale
    versions) into :class:`ConcurrencyError` where they meet them."""
    return isinstance(exc, ConcurrencyError)


class _Attempts:
    """What a retry loop decides after a failure, the same for async and sync callers.

    :meth:`pause_after` raises the error when it is not to be retried (not a
    conflict, attempts spent) or a repeated duplicate key as :class:`AlreadyExists`,
    and otherwise reports the retry and answers how long to pause.
    """

    def __init__(self, policy: RetryPolicy) -> None:
        self.policy = policy
        self.attempt = 0
        self.duplicates = 0

    def start(self) -> None:
        self.attempt += 1

    def pause_after(self, exc: Exception) -> float:
        if isinstance(exc, DuplicateKeyError):
            self.duplicates += 1
            if self.duplicates > 1:
                raise AlreadyExists(
                    f"the key is already taken, not by a concurrent write: {exc.detail}"
                ) from exc
        if not is_retryable(exc) or self.attempt >= self.policy.attempts:
            raise exc
        pause = self.policy.delay(self.attempt)
        observers.retrying(self.attempt, exc)
        logger.warning(
            "retrying after a conflict",
            extra={
                "attempt": self.attempt,
                "of": self.policy.attempts,
                "cause": str(exc),
                "delay_s": round(pause, 4),
            },
        )
        return pause


async def retrying(operation: Callable[[], Awaitable[R]], policy: RetryPolicy | None = None) -> R:
    """Await ``operation()``, again on a retryable conflict, at most ``policy.attempts`` times.

    ``operation`` must open its own unit of work, so each attempt starts clean.
    The last conflict propagates when attempts run out; a second duplicate key
    raises :class:`AlreadyExists` (see the module's doc). Without ``policy``, the
    default in force at call time.
    """
    attempts = _Attempts(policy or _default)
    while True:
        attempts.start()
        try:
            return await operation()
        except Exception as exc:
            pause = attempts.pause_after(exc)
        await sleep(pause)


def retry_on_conflict(
    policy: RetryPolicy | None = None,
) -> Callable[[Callable[P, Awaitable[R]]], Callable[P, Awaitable[R]]]:
    """Decorator form of :func:`retrying` for service functions.

    Without ``policy`` each call uses the default in force at that moment
    (``RETRY_ATTEMPTS`` once bootstrapped), not the one at decoration time.
    """

    def decorate(function: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
        @functools.wraps(function)
        async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            return await retrying(lambda: function(*args, **kwargs), policy)

        return wrapper

    return decorate


# -- the same for synchronous code (scripts, tasks, ``def`` routes) ---------------------------


def retrying_sync(operation: Callable[[], R], policy: RetryPolicy | None = None) -> R:
    """:func:`retrying` for a synchronous ``operation``; pauses with ``time.sleep``.

    ``operation`` must open its own (sync) unit of work, so each attempt starts
    clean. The same decisions as the async loop: the default policy in force at
    call time, a repeated duplicate key as :class:`AlreadyExists`, observed retries.
    """
    attempts = _Attempts(policy or _default)
    while True:
        attempts.start()
        try:
            return operation()
        except Exception as exc:
            pause = attempts.pause_after(exc)
        time.sleep(pause)


def retry_on_conflict_sync(
    policy: RetryPolicy | None = None,
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorator form of :func:`retrying_sync` for synchronous service functions and tasks."""

    def decorate(function: Callable[P, R]) -> Callable[P, R]:
        if inspect.iscoroutinefunction(function):
            raise TypeError(
                f"{function.__qualname__} is async; decorate it with retry_on_conflict instead"
            )

        @functools.wraps(function)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            return retrying_sync(lambda: function(*args, **kwargs), policy)

        return wrapper

    return decorate
