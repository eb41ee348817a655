"""The JSON log lines every ``keel`` process writes."""

from __future__ import annotations

import json
import logging

import pytest

from entrypoints.http.logging import JsonFormatter

pytestmark = pytest.mark.unit


def _record(**extra: object) -> logging.LogRecord:
    record = logging.LogRecord("uvicorn.error", logging.INFO, __file__, 1, "Started", None, None)
    record.__dict__.update(extra)
    return record


def test_uvicorns_coloured_copy_of_the_message_stays_out_of_the_line() -> None:
    line = json.loads(JsonFormatter().format(_record(color_message="\x1b[32mStarted\x1b[0m")))

    assert "color_message" not in line
    assert line["message"] == "Started"


def test_fields_passed_as_extra_are_kept() -> None:
    line = json.loads(JsonFormatter().format(_record(contexts=["ledger"])))

    assert line["contexts"] == ["ledger"]
