"""Errors the domain and the kernel raise, free of any framework type.

Every error carries a stable snake_case ``code`` so that entrypoints can map it
to an HTTP status or a rejection message without parsing prose.
"""

from __future__ import annotations


class DomainError(Exception):
    """A business rule refused the operation. Never retried."""

    code: str = "domain_error"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class NotFound(DomainError):
    code = "not_found"


class ConcurrencyError(Exception):
    """Another writer changed the data first; nothing of this unit of work was kept.

    Raised for a stale optimistic version, a serialization failure (SQLSTATE
    40001) and a deadlock (40P01). It is safe to re-run the whole unit of work,
    which is what :func:`service_layer.retry.retrying` does.
    """

    code = "concurrent_update"

    def __init__(self, detail: str, *, sqlstate: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.sqlstate = sqlstate


class DuplicateKeyError(ConcurrencyError):
    """Another writer stored a row with the same unique key first.

    Usually the loser of a check-then-insert race: re-running the unit of
    work finds the winner's row, so it is retried like any other conflict.
    The in-memory fake raises it for a duplicate id exactly as the databases do.
    """
