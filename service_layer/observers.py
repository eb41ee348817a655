"""Hooks that let adapters watch units of work and retries without the service layer knowing them.

Metrics count commits, conflicts and retries, and tracing opens a span per
unit of work; both live in ``adapters``, which the service layer must not
import. So the service layer announces what happens to the observers that
the composition root attached (:func:`attach`), and knows nothing more. A
failing observer is logged and ignored: watching must never change what the
work does.

Process-wide, like ``retry.use_default_policy``: a unit of work is made by
code that has no container at hand.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from service_layer.unit_of_work import AbstractUnitOfWork

logger = logging.getLogger(__name__)


class UnitOfWorkObserver:
    """Told when a unit of work's block begins, commits and ends, and when work is retried.

    Every method does nothing here; override the ones you need.
    """

    def entered(self, uow: AbstractUnitOfWork) -> object:
        """The block began; what this returns is handed back to :meth:`exited`."""
        return None

    def committed(self, uow: AbstractUnitOfWork) -> None:
        """A commit succeeded (a block may commit more than once)."""

    def exited(self, uow: AbstractUnitOfWork, token: object, error: BaseException | None) -> None:
        """The block ended; ``error`` is what it raised (already translated), if anything."""

    def retrying(self, attempt: int, error: BaseException) -> None:
        """Attempt ``attempt`` lost a race (``error``) and the work runs again."""


_observers: list[UnitOfWorkObserver] = []


def attach(observer: UnitOfWorkObserver) -> None:
    """Start telling ``observer``; attaching the same one twice does nothing."""
    if observer not in _observers:
        _observers.append(observer)


def detach(observer: UnitOfWorkObserver) -> None:
    """Stop telling ``observer``; unknown ones are ignored."""
    if observer in _observers:
        _observers.remove(observer)


def entered(uow: AbstractUnitOfWork) -> list[tuple[UnitOfWorkObserver, object]]:
    """Tell every observer a block began; returns what :func:`exited` needs."""
    tokens = []
    for observer in list(_observers):
        try:
            tokens.append((observer, observer.entered(uow)))
        except Exception:
            logger.exception("unit-of-work observer failed", extra={"observer": repr(observer)})
    return tokens


def committed(uow: AbstractUnitOfWork) -> None:
    for observer in list(_observers):
        try:
            observer.committed(uow)
        except Exception:
            logger.exception("unit-of-work observer failed", extra={"observer": repr(observer)})


def exited(
    uow: AbstractUnitOfWork,
    tokens: list[tuple[UnitOfWorkObserver, object]],
    error: BaseException | None,
) -> None:
    # In reverse: an observer that made something current undoes it last-in first-out.
    for observer, token in reversed(tokens):
        try:
            observer.exited(uow, token, error)
        except Exception:
            logger.exception("unit-of-work observer failed", extra={"observer": repr(observer)})


def retrying(attempt: int, error: BaseException) -> None:
    for observer in list(_observers):
        try:
            observer.retrying(attempt, error)
        except Exception:
            logger.exception("unit-of-work observer failed", extra={"observer": repr(observer)})
