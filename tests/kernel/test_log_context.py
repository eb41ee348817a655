"""Log lines carry the ids that let an operator follow one request or message across processes."""

from __future__ import annotations

import logging

import pytest

from adapters import tracing
from entrypoints.http.logging import RequestIdFilter
from service_layer import correlation
from tests.kernel.spans import recording

pytestmark = pytest.mark.unit


def _stamped() -> logging.LogRecord:
    record = logging.LogRecord("keel.test", logging.INFO, __file__, 1, "something", None, None)
    RequestIdFilter().filter(record)
    return record


def test_a_line_logged_while_a_message_is_served_carries_its_correlation_and_causation_ids() -> (
    None
):
    with correlation.caused_by(correlation.MessageContext.of_message("m-9", "conv-1")):
        record = _stamped()

    assert (getattr(record, "correlation_id", None), getattr(record, "causation_id", None)) == (
        "conv-1",
        "m-9",
    )


def test_a_line_logged_outside_any_request_or_message_carries_no_correlation_id() -> None:
    assert not hasattr(_stamped(), "correlation_id")


def test_a_line_logged_inside_a_span_carries_its_trace_and_span_ids() -> None:
    with recording(), tracing.tracer().start_as_current_span("work") as span:
        record = _stamped()
        context = span.get_span_context()

    assert getattr(record, "trace_id", None) == format(context.trace_id, "032x")
    assert getattr(record, "span_id", None) == format(context.span_id, "016x")
