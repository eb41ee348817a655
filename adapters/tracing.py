"""OpenTelemetry tracing: off unless the standard ``OTEL_*`` variables ask for an exporter.

:func:`configure_tracing` reads ``OTEL_TRACES_EXPORTER`` (comma-separated
exporter names, as the OpenTelemetry SDK's own auto-configuration reads it;
unset or ``none``: tracing stays off and costs nothing) and installs an SDK
tracer provider whose exporters are found by name among the installed
packages' ``opentelemetry_traces_exporter`` entry points: ``console`` comes
with the SDK, ``otlp`` with ``opentelemetry-exporter-otlp``. Everything else —
``OTEL_SERVICE_NAME`` (default here: ``keel``), ``OTEL_RESOURCE_ATTRIBUTES``,
``OTEL_TRACES_SAMPLER``, ``OTEL_EXPORTER_OTLP_ENDPOINT``, ``OTEL_BSP_*``,
``OTEL_PROPAGATORS`` — the SDK reads itself.

The spans Keel makes: the HTTP request (:func:`http_middleware`), each unit
of work (:class:`UnitOfWorkTracer`) and its SQL (:func:`instrument_engine`,
OpenTelemetry's SQLAlchemy instrumentation, which covers asyncpg and aiosqlite
alike — the asyncpg instrumentation would trace every statement twice), the
relay's publish (:func:`publishing`) and the consumer's handling
(:func:`consuming`). The trace context is written into the outbox row with the
event (:func:`inject_context`) and travels in the message headers, so one
trace runs from the request through the event to the consumer's effect.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from importlib.metadata import EntryPoint, entry_points
from typing import Any, cast

from opentelemetry import context as otel_context
from opentelemetry import metrics as otel_metrics
from opentelemetry import propagate, trace
from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer
from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from opentelemetry.util.http import get_excluded_urls, parse_excluded_urls
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.types import ASGIApp

from service_layer.observers import UnitOfWorkObserver
from service_layer.unit_of_work import AbstractUnitOfWork

TRACER_NAME = "keel"
DEFAULT_SERVICE_NAME = "keel"
EXPORTER_GROUP = "opentelemetry_traces_exporter"
EXCLUDED_URLS = "/metrics,/health,/ready"
"""Probes and scrapes are not worth a trace each; ``OTEL_PYTHON_EXCLUDED_URLS`` overrides."""

__all__ = ["suppress_instrumentation"]


class TracingConfigurationError(ValueError):
    """``OTEL_TRACES_EXPORTER`` names an exporter no installed package provides."""


def tracer() -> trace.Tracer:
    """Keel's tracer; follows the provider installed later, if any."""
    return trace.get_tracer(TRACER_NAME)


def active() -> bool:
    """Whether a real tracer provider is installed (by :func:`configure_tracing`, or by a test)."""
    provider = trace.get_tracer_provider()
    return not isinstance(provider, trace.ProxyTracerProvider | trace.NoOpTracerProvider)


def exporter_names(environ: Mapping[str, str] | None = None) -> list[str]:
    """The exporters ``OTEL_TRACES_EXPORTER`` names; empty when tracing is off."""
    environ = os.environ if environ is None else environ
    names = [name.strip() for name in environ.get("OTEL_TRACES_EXPORTER", "").split(",")]
    return [name for name in names if name and name != "none"]


def _exporter_entry(name: str) -> EntryPoint:
    found = entry_points(group=EXPORTER_GROUP, name=name)
    if not found:
        installed = ", ".join(sorted(e.name for e in entry_points(group=EXPORTER_GROUP)))
        hint = " (pip install opentelemetry-exporter-otlp)" if name.startswith("otlp") else ""
        raise TracingConfigurationError(
            f"OTEL_TRACES_EXPORTER names {name!r}, which no installed package provides{hint}; "
            f"installed: {installed or 'none'}"
        )
    return next(iter(found))


def configure_tracing(environ: Mapping[str, str] | None = None) -> bool:
    """Install an SDK tracer provider when ``OTEL_TRACES_EXPORTER`` asks for one.

    Idempotent, and leaves a provider installed before (a test's) alone.
    Returns whether tracing is on. Raises :class:`TracingConfigurationError`
    for an exporter that is not installed, before anything is installed.
    """
    entries = [_exporter_entry(name) for name in exporter_names(environ)]
    if not entries or active():
        return active()
    resource = Resource.create()
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: DEFAULT_SERVICE_NAME}))
    provider = TracerProvider(resource=resource)
    for entry in entries:
        exporter: SpanExporter = entry.load()()
        provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    return True


# -- HTTP ---------------------------------------------------------------------------------


def _span_details(scope: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    # The method alone at first: a path holds ids. name_server_span() adds the
    # route template once routing has found one.
    return str(scope.get("method", "HTTP")), {}


def http_middleware(app: ASGIApp) -> ASGIApp:
    """The server span of each HTTP request, continuing an incoming ``traceparent``.

    The ASGI middleware rather than the FastAPI instrumentor: that one expects
    Starlette's error middleware outermost, where Keel keeps its request log.
    """
    configured = any(
        os.environ.get(name)
        for name in ("OTEL_PYTHON_ASGI_EXCLUDED_URLS", "OTEL_PYTHON_EXCLUDED_URLS")
    )
    excluded = get_excluded_urls("ASGI") if configured else parse_excluded_urls(EXCLUDED_URLS)
    middleware: ASGIApp = OpenTelemetryMiddleware(
        app,
        excluded_urls=excluded,
        default_span_details=_span_details,
        exclude_spans=["receive", "send"],
    )
    return middleware


def name_server_span(method: str, route: str, request_id: str | None) -> None:
    """Name the current server span after the route template, and tag the request id."""
    span = trace.get_current_span()
    if not span.is_recording():
        return
    span.update_name(f"{method} {route}")
    span.set_attribute("http.route", route)
    if request_id is not None:
        span.set_attribute("keel.request_id", request_id)


# -- units of work and SQL ------------------------------------------------------------------


class UnitOfWorkTracer(UnitOfWorkObserver):
    """One span per unit-of-work block, current while it runs, so its SQL nests under it."""

    def entered(self, uow: AbstractUnitOfWork) -> object:
        span = tracer().start_span(
            "unit of work", attributes={"keel.unit_of_work": type(uow).__name__}
        )
        token = otel_context.attach(trace.set_span_in_context(span))
        return span, token

    def committed(self, uow: AbstractUnitOfWork) -> None:
        trace.get_current_span().add_event("commit")

    def exited(self, uow: AbstractUnitOfWork, token: object, error: BaseException | None) -> None:
        span, attached = cast(tuple[Span, object], token)
        # Detach only in the context that attached (the usual case): elsewhere
        # OpenTelemetry would log a failure, and the span still ends.
        if trace.get_current_span() is span:
            otel_context.detach(attached)  # type: ignore[arg-type]
        if error is not None:
            span.set_status(Status(StatusCode.ERROR, type(error).__name__))
            span.set_attribute("error.type", type(error).__name__)
        span.end()


def instrument_engine(engine: AsyncEngine) -> None:
    """Trace every statement ``engine`` runs (a span per statement, under the current one)."""
    meter = otel_metrics.get_meter(TRACER_NAME)
    EngineTracer(  # type: ignore[no-untyped-call]
        trace.get_tracer("opentelemetry.instrumentation.sqlalchemy"),
        engine.sync_engine,
        meter.create_up_down_counter("db.client.connections.usage"),
    )


# -- messages -------------------------------------------------------------------------------


def inject_context() -> dict[str, str]:
    """The current trace context as text fields (W3C ``traceparent``, ``tracestate``)."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier


@contextlib.contextmanager
def publishing(
    stream: str, message_id: str, parent: Mapping[str, str] | None
) -> Iterator[dict[str, str]]:
    """A producer span under the context the outbox row kept; yields the headers to send."""
    with tracer().start_as_current_span(
        f"publish {stream}",
        context=propagate.extract(dict(parent or {})),
        kind=SpanKind.PRODUCER,
        attributes={
            "messaging.operation.type": "send",
            "messaging.destination.name": stream,
            "messaging.message.id": message_id,
        },
    ):
        yield inject_context()


@contextlib.contextmanager
def consuming(stream: str, system: str, headers: Mapping[str, str]) -> Iterator[Span]:
    """A consumer span continuing the trace of the message's headers (a new one without)."""
    if not (active() or propagate.get_global_textmap().fields & headers.keys()):
        # Tracing is off and there is no trace to carry on: on every message's path,
        # where the no-op span and the header parsing would still cost a few percent.
        yield trace.INVALID_SPAN
        return
    with tracer().start_as_current_span(
        f"process {stream}",
        context=propagate.extract(dict(headers)),
        kind=SpanKind.CONSUMER,
        attributes={
            "messaging.system": system,
            "messaging.operation.type": "process",
            "messaging.destination.name": stream,
        },
    ) as span:
        yield span


def current_ids() -> tuple[str, str] | None:
    """The current trace and span ids in hex, for log lines; ``None`` outside a span."""
    span_context = trace.get_current_span().get_span_context()
    if not span_context.is_valid:
        return None
    return format(span_context.trace_id, "032x"), format(span_context.span_id, "016x")
