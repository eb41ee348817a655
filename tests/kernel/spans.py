"""Spans recorded in memory for one test, with the SDK's ``InMemorySpanExporter``.

OpenTelemetry lets a process install its global tracer provider once; the
tests reset that global afterwards the way OpenTelemetry's own test utilities
do (``reset_trace_globals``), and detach Keel's unit-of-work tracer, so that
no test after a tracing one runs with tracing on.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.util._once import Once

from entrypoints.observability import UNIT_OF_WORK_TRACER
from service_layer import observers


def _reset_trace_globals() -> None:
    trace._TRACER_PROVIDER_SET_ONCE = Once()
    trace._TRACER_PROVIDER = None


@contextlib.contextmanager
def recording() -> Iterator[InMemorySpanExporter]:
    """Trace (everything, in memory) inside the block; yields the exporter holding the spans."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    _reset_trace_globals()
    trace.set_tracer_provider(provider)
    try:
        yield exporter
    finally:
        observers.detach(UNIT_OF_WORK_TRACER)
        _reset_trace_globals()
        provider.shutdown()


def named(spans: Sequence[ReadableSpan], name: str) -> list[ReadableSpan]:
    return [span for span in spans if span.name == name]
