"""Errors the domain and the kernel raise, free of any framework type.

Every error carries a stable snake_case ``code`` (what a client switches on)
and a :class:`ErrorKind` (what the entrypoints map to an HTTP status or a
rejection), so a context adds error classes without touching kernel code.
"""

from __future__ import annotations

import enum


class ErrorKind(enum.Enum):
    """What sort of refusal an error is; entrypoints map kinds, never codes."""

    NOT_FOUND = "not_found"
    """The thing asked for does not exist (or is not the caller's to see)."""
    CONFLICT = "conflict"
    """The request clashes with the current state: funds short, a key already used."""
    REFUSED = "refused"
    """A rule refuses the request as such, whatever the state: two currencies, one account."""
    INVALID = "invalid"
    """A value is malformed or out of range."""


class DomainError(Exception):
    """A business rule refused the operation. Never retried."""

    code: str = "domain_error"
    kind: ErrorKind = ErrorKind.REFUSED

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class NotFound(DomainError):
    code = "not_found"
    kind = ErrorKind.NOT_FOUND


class Conflict(DomainError):
    code = "conflict"
    kind = ErrorKind.CONFLICT


class InvalidValue(DomainError):
    """A value the domain refuses on its own, whatever the entrypoint validated before."""

    code = "invalid_value"
    kind = ErrorKind.INVALID


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
    work finds the winner's row, so it is retried — once. A duplicate that
    is still there on the retry is no race: the retry answers
    :class:`AlreadyExists` instead. ``constraint`` names the unique key when
    the backend says which. The in-memory fake raises it for a duplicate id
    exactly as the databases do.
    """

    def __init__(
        self, detail: str, *, sqlstate: str | None = None, constraint: str | None = None
    ) -> None:
        super().__init__(detail, sqlstate=sqlstate)
        self.constraint = constraint


class AlreadyExists(Conflict):
    """A unique key is taken for good: the write clashes with data, not with a race.

    Raised by :func:`service_layer.retry.retrying` when a
    :class:`DuplicateKeyError` comes back on the retry that should have
    resolved a race; its detail says which key.
    """

    code = "already_exists"
