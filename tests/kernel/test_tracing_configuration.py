"""Tracing is configured by the standard ``OTEL_*`` variables, and a wrong one is named at start."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters import tracing
from entrypoints.cli import EXIT_USAGE, main

pytestmark = pytest.mark.unit


def test_without_otel_traces_exporter_no_exporter_is_configured() -> None:
    assert tracing.exporter_names({}) == []
    assert tracing.exporter_names({"OTEL_TRACES_EXPORTER": "none"}) == []


def test_otel_traces_exporter_may_name_several_exporters() -> None:
    assert tracing.exporter_names({"OTEL_TRACES_EXPORTER": "console, otlp"}) == [
        "console",
        "otlp",
    ]


def test_an_exporter_no_installed_package_provides_stops_keel_with_one_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "zipkin-by-carrier-pigeon")

    code = main(["migrate"])

    assert code == EXIT_USAGE
    error = capsys.readouterr().err
    assert error.startswith("keel: OTEL_TRACES_EXPORTER names 'zipkin-by-carrier-pigeon'")
    assert "console" in error  # what is installed
    assert error.count("\n") == 1


TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
INCOMING = {"traceparent": f"00-{TRACE_ID}-00f067aa0ba902b7-01"}


def test_with_tracing_off_a_consumed_messages_trace_is_carried_on_to_what_it_sends() -> None:
    assert not tracing.active()
    with tracing.consuming("orders.commands", "redis", INCOMING):
        carried = tracing.inject_context()
    assert carried["traceparent"].split("-")[1] == TRACE_ID


def test_with_tracing_off_a_message_without_a_trace_starts_none() -> None:
    assert not tracing.active()
    with tracing.consuming("orders.commands", "redis", {"sig": "00"}) as span:
        assert tracing.inject_context() == {}
    assert not span.is_recording()
