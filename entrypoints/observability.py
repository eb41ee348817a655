"""Metrics and tracing, switched on per process: the observers, the gauges' sampler, the port.

The composition root calls :func:`install` once it has an engine: it attaches
the unit-of-work observers (metrics unless ``METRICS_ENABLED=false``; spans
when ``OTEL_TRACES_EXPORTER`` configured tracing) and watches the pool.
:func:`observing` runs beside a process's work: the sampler that keeps the
outbox and dead-letter gauges current (those values live in the database and
the broker, so they are read every ``METRICS_INTERVAL`` seconds rather than
counted), and for ``keel consume`` and ``keel relay`` the ``/metrics`` port.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncEngine

from adapters import metrics, tracing
from adapters.dead_letters import DeadLetterBox
from adapters.outbox import InMemoryOutbox, SqlAlchemyOutboxStore
from adapters.settings import Settings
from service_layer import observers

if TYPE_CHECKING:
    from entrypoints.bootstrap import Container

logger = logging.getLogger(__name__)


def install(settings: Settings, engine: AsyncEngine) -> None:
    """Attach what this process observes; safe to call once per bootstrap."""
    if settings.metrics_enabled:
        observers.attach(metrics.UNIT_OF_WORK_METRICS)
        metrics.watch_pool(engine)
    if tracing.configure_tracing():
        observers.attach(UNIT_OF_WORK_TRACER)
        if not getattr(engine.sync_engine, "_keel_traced", False):
            tracing.instrument_engine(engine)
            engine.sync_engine._keel_traced = True  # type: ignore[attr-defined]


UNIT_OF_WORK_TRACER = tracing.UnitOfWorkTracer()


def consumed_streams(container: Container) -> list[str]:
    """The streams the running contexts consume: where dead letters can appear."""
    return [
        subscription.stream
        for wiring in container.contexts.values()
        for subscription in wiring.context.subscriptions
    ]


def outbox_store(container: Container) -> SqlAlchemyOutboxStore | InMemoryOutbox:
    """The outbox as the operator reads it: the database's table, or the fakes' list."""
    if isinstance(container.outbox, InMemoryOutbox):
        return container.outbox
    return SqlAlchemyOutboxStore(container.session_manager.engine)


async def sample(container: Container) -> None:
    """Read the outbox backlog and the dead letters once, into the gauges."""
    with tracing.suppress_instrumentation():  # a trace per sample would be noise
        backlog = await outbox_store(container).backlog()
    metrics.record_outbox(backlog, container.registry.published_streams())
    broker = container.broker
    if isinstance(broker, DeadLetterBox):
        try:
            counts = {
                stream: await broker.dead_letter_count(stream)
                for stream in consumed_streams(container)
            }
        except RuntimeError:  # the broker is not started in this process
            return
        metrics.record_dead_letters(counts)


async def _sample_forever(container: Container, interval: float) -> None:
    failing = False
    while True:
        try:
            await sample(container)
            failing = False
        except Exception as exc:
            # One warning per outage; the gauges keep their last values meanwhile.
            logger.log(
                logging.DEBUG if failing else logging.WARNING,
                "metrics sample failed; trying again",
                extra={"cause": type(exc).__name__},
            )
            failing = True
        await asyncio.sleep(interval)


@contextlib.asynccontextmanager
async def observing(container: Container, *, serve_port: bool = False) -> AsyncIterator[None]:
    """Sample the gauges while inside (and serve ``METRICS_PORT`` when ``serve_port``)."""
    settings = container.settings
    if not settings.metrics_enabled:
        yield
        return
    server = None
    if serve_port and settings.metrics_port is not None:
        server = metrics.serve_metrics(settings.metrics_port, settings.metrics_host)
        logger.info(
            "serving metrics",
            extra={"host": settings.metrics_host, "port": settings.metrics_port},
        )
    task = asyncio.create_task(
        _sample_forever(container, settings.metrics_interval), name="metrics-sampler"
    )
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        if server is not None:
            server.shutdown()
            server.server_close()
