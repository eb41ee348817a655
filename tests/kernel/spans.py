"""Spans recorded in memory, for the tracing tests.

OpenTelemetry lets a process install its tracer provider once, so the tests
share one (with the SDK's ``InMemorySpanExporter``) whose sampler records only
while a test asks (:func:`recording`): the other tests of the run pay for
non-recording spans at most.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult
from opentelemetry.trace import Link, SpanKind
from opentelemetry.util.types import Attributes


class _Switch(Sampler):
    """Records every span while ``on``; drops them otherwise."""

    on = False

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: Any = None,
    ) -> SamplingResult:
        decision = Decision.RECORD_AND_SAMPLE if self.on else Decision.DROP
        return SamplingResult(decision, attributes if self.on else None)

    def get_description(self) -> str:
        return "keel-tests"


_exporter = InMemorySpanExporter()
_switch = _Switch()
_provider: TracerProvider | None = None


def _install() -> None:
    global _provider
    if _provider is not None:
        return
    provider = TracerProvider(sampler=_switch)
    provider.add_span_processor(SimpleSpanProcessor(_exporter))
    trace.set_tracer_provider(provider)
    if trace.get_tracer_provider() is not provider:
        pytest.skip("another tracer provider is installed in this process")
    _provider = provider


@contextlib.contextmanager
def recording() -> Iterator[InMemorySpanExporter]:
    """Record every span made inside the block; yields the exporter holding them."""
    _install()
    _exporter.clear()
    _switch.on = True
    try:
        yield _exporter
    finally:
        _switch.on = False
        _exporter.clear()


def named(spans: Sequence[ReadableSpan], name: str) -> list[ReadableSpan]:
    return [span for span in spans if span.name == name]
