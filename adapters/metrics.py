"""Prometheus metrics: every metric Keel exports, defined here and nowhere else.

prometheus-client does the work: the metric types, the text format, and
several processes' metrics summed into one answer when
``PROMETHEUS_MULTIPROC_DIR`` names a directory (each process writes its
values there; :func:`exposition` merges them). That variable must be in the
process environment before the first import of ``prometheus_client`` — a
``.env`` entry is read too late — and the directory must be emptied between
runs of the service (``docs/operations.md``).

Labels never carry ids: routes are templates (``/accounts/{account_id}``),
streams and unit-of-work classes are declared in code, outcomes are a fixed
set. Gauges that several processes sample from the same database
(``keel_outbox_*``, ``keel_dead_letters``) take the most recent live value;
connections checked out are summed over the live processes.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
    start_http_server,
)
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from domain.errors import ConcurrencyError
from service_layer.observers import UnitOfWorkObserver
from service_layer.unit_of_work import AbstractUnitOfWork

if TYPE_CHECKING:  # the outbox imports the brokers, which count with this module
    from adapters.outbox import StreamBacklog

MULTIPROC_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
UNMATCHED_ROUTE: Final = "unmatched"
"""The route label of a request no route matched (a 404 on an unknown path)."""
OTHER_METHOD: Final = "other"
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
MESSAGE_OUTCOMES = ("applied", "duplicate", "rejected", "dead")

HTTP_REQUEST_DURATION = Histogram(
    "keel_http_request_duration_seconds",
    "Time to answer an HTTP request, by route template, method and status.",
    ["route", "method", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
UOW_COMMITS = Counter(
    "keel_uow_commits_total", "Successful unit-of-work commits.", ["unit_of_work"]
)
UOW_CONFLICTS = Counter(
    "keel_uow_conflicts_total",
    "Unit-of-work blocks that lost a race: stale version, serialization failure or deadlock.",
    ["unit_of_work"],
)
UOW_RETRIES = Counter(
    "keel_uow_retries_total", "Re-runs of a unit of work after a conflict (first runs excluded)."
)
DB_POOL_CHECKED_OUT = Gauge(
    "keel_db_pool_checked_out",
    "Database connections in use (checked out of the pool), summed over live processes.",
    multiprocess_mode="livesum",
)
OUTBOX_PENDING = Gauge(
    "keel_outbox_pending",
    "Outbox rows committed and not yet published, per stream.",
    ["stream"],
    multiprocess_mode="livemostrecent",
)
OUTBOX_OLDEST_PENDING = Gauge(
    "keel_outbox_oldest_pending_seconds",
    "Age of the oldest unpublished outbox row, per stream (0 when none waits).",
    ["stream"],
    multiprocess_mode="livemostrecent",
)
RELAY_PUBLISHED = Counter(
    "keel_relay_published_total", "Outbox rows the relay published, per stream.", ["stream"]
)
MESSAGES = Counter(
    "keel_messages_total",
    "Delivered messages by what became of them: applied, duplicate, rejected, dead.",
    ["stream", "outcome"],
)
DEAD_LETTERS = Gauge(
    "keel_dead_letters",
    "Messages waiting in a stream's dead-letter stream (<stream>.dead).",
    ["stream"],
    multiprocess_mode="livemostrecent",
)


def multiprocess_dir() -> str | None:
    """The directory several processes share their metrics through, when configured."""
    return os.environ.get(MULTIPROC_DIR_VARIABLE) or None


def registry() -> CollectorRegistry:
    """What to expose: every process's metrics in multiprocess mode, else this process's."""
    if multiprocess_dir() is None:
        return REGISTRY
    merged = CollectorRegistry()
    multiprocess.MultiProcessCollector(merged)  # type: ignore[no-untyped-call]
    return merged


def exposition() -> tuple[bytes, str]:
    """The text format of the metrics and its content type."""
    return generate_latest(registry()), CONTENT_TYPE_LATEST


def serve_metrics(port: int, host: str) -> Any:
    """Serve ``/metrics`` on ``host:port`` from a thread; returns the server (``shutdown()``)."""
    server, _thread = start_http_server(port, addr=host, registry=registry())
    return server


def mark_process_dead(pid: int) -> None:
    """Drop a stopped worker's live gauges (multiprocess mode; e.g. gunicorn's ``child_exit``)."""
    if multiprocess_dir() is not None:
        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]


# -- recording --------------------------------------------------------------------------------


def route_label(route: str | None) -> str:
    """The route template, or :data:`UNMATCHED_ROUTE` when routing found none."""
    return route if route else UNMATCHED_ROUTE


def method_label(method: str) -> str:
    return method if method in KNOWN_METHODS else OTHER_METHOD


def observe_request(route: str | None, method: str, status: int, seconds: float) -> None:
    HTTP_REQUEST_DURATION.labels(
        route=route_label(route), method=method_label(method), status=str(status)
    ).observe(seconds)


def count_message(stream: str, outcome: str) -> None:
    """One delivered message's fate; ``outcome`` is one of :data:`MESSAGE_OUTCOMES`."""
    if outcome not in MESSAGE_OUTCOMES:
        raise ValueError(f"unknown message outcome {outcome!r}; one of {MESSAGE_OUTCOMES}")
    _message_counter(stream, outcome).inc()


# Once per label set: on every message's path, and prometheus_client's ``labels()``
# checks its arguments and takes a lock each time. The labels are few (streams and
# outcomes; unit-of-work classes).
@functools.lru_cache(maxsize=1024)
def _message_counter(stream: str, outcome: str) -> Any:
    return MESSAGES.labels(stream=stream, outcome=outcome)


@functools.lru_cache(maxsize=256)
def _commit_counter(unit_of_work: str) -> Any:
    return UOW_COMMITS.labels(unit_of_work=unit_of_work)


def count_published(stream: str) -> None:
    RELAY_PUBLISHED.labels(stream=stream).inc()


def record_outbox(backlog: Iterable[StreamBacklog], streams: Iterable[str] = ()) -> None:
    """Set the outbox gauges; ``streams`` with nothing pending read 0."""
    now = datetime.now(UTC)
    seen = {entry.stream: entry for entry in backlog}
    for stream in {*streams, *seen}:
        entry = seen.get(stream)
        OUTBOX_PENDING.labels(stream=stream).set(entry.pending if entry else 0)
        OUTBOX_OLDEST_PENDING.labels(stream=stream).set(entry.oldest_age(now) if entry else 0.0)


def record_dead_letters(counts: Mapping[str, int]) -> None:
    """Set the dead-letter gauge: messages waiting in each stream's ``.dead`` stream."""
    for stream, count in counts.items():
        DEAD_LETTERS.labels(stream=stream).set(count)


class UnitOfWorkMetrics(UnitOfWorkObserver):
    """Counts commits, conflicts and retries; attached by the composition root."""

    def committed(self, uow: AbstractUnitOfWork) -> None:
        _commit_counter(type(uow).__name__).inc()

    def exited(self, uow: AbstractUnitOfWork, token: object, error: BaseException | None) -> None:
        # Once per conflict: the same error may leave nested blocks one after the other.
        if isinstance(error, ConcurrencyError) and not getattr(error, "_keel_counted", False):
            error._keel_counted = True  # type: ignore[attr-defined]
            UOW_CONFLICTS.labels(unit_of_work=type(uow).__name__).inc()

    def retrying(self, attempt: int, error: BaseException) -> None:
        UOW_RETRIES.inc()


UNIT_OF_WORK_METRICS = UnitOfWorkMetrics()
"""The one instance: attaching it twice counts once."""


def watch_pool(engine: AsyncEngine) -> None:
    """Keep :data:`DB_POOL_CHECKED_OUT` current from ``engine``'s pool events."""
    sync_engine = engine.sync_engine
    if getattr(sync_engine, "_keel_pool_watched", False):
        return

    def checked_out(*_args: Any) -> None:
        DB_POOL_CHECKED_OUT.inc()

    def checked_in(*_args: Any) -> None:
        DB_POOL_CHECKED_OUT.dec()

    event.listen(sync_engine, "checkout", checked_out)
    event.listen(sync_engine, "checkin", checked_in)
    sync_engine._keel_pool_watched = True  # type: ignore[attr-defined]
