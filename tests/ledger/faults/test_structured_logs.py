"""The logs ``keel serve`` writes: one JSON line per request, retries with their cause, no password.

Logging is configured exactly as ``keel serve`` configures it
(``entrypoints.http.logging.logging_config``), with the stream pointed at
a buffer, and put back as it was after each test.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import logging.config
from collections.abc import Iterator, Sequence
from typing import Any
from uuid import uuid4

import httpx
import pytest

from adapters.settings import Settings
from domain.aggregate import Aggregate, Event
from domain.errors import ConcurrencyError
from entrypoints.bootstrap import bootstrap
from entrypoints.http.app import create_app
from entrypoints.http.logging import REQUEST_ID_HEADER, logging_config
from service_layer.unit_of_work import AbstractUnitOfWork
from tests.faults.harness import LeakCheck
from tests.ledger.faults.harness import (
    SLOW_INSERT,
    FaultDatabase,
    LedgerApp,
    TunedSessionManager,
    fault_reference,
)
from tests.support.postgres import free_port
from tests.support.tokens import bearer_for, new_subject

pytestmark = pytest.mark.e2e

PASSWORD = "S3cret-pa55word"
UNREACHABLE_URL = f"postgresql+asyncpg://keel:{PASSWORD}@127.0.0.1:{{port}}/keel"
CONFIGURED_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access")


class JsonLines:
    """What the configured logging wrote, one parsed object per line."""

    def __init__(self) -> None:
        self.stream = io.StringIO()

    @property
    def text(self) -> str:
        return self.stream.getvalue()

    def records(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.text.splitlines()]

    def of(self, logger: str) -> list[dict[str, Any]]:
        return [record for record in self.records() if record["logger"] == logger]


@pytest.fixture
def json_lines() -> Iterator[JsonLines]:
    """Logging as ``keel serve`` sets it up, into a buffer; restored afterwards."""
    lines = JsonLines()
    yield from configured(lines, database_url=f"postgresql+asyncpg://keel:{PASSWORD}@db/keel")


def configured(lines: JsonLines, *, database_url: str) -> Iterator[JsonLines]:
    root = logging.getLogger()
    saved_root = (root.level, root.handlers[:])
    saved = {
        name: (logger.level, logger.handlers[:], logger.propagate, logger.disabled)
        for name in CONFIGURED_LOGGERS
        for logger in [logging.getLogger(name)]
    }
    config = logging_config(database_url, level="DEBUG")
    config["handlers"]["stderr"]["stream"] = lines.stream
    logging.config.dictConfig(config)
    try:
        yield lines
    finally:
        ours = [handler for handler in root.handlers if handler not in saved_root[1]]
        root.setLevel(saved_root[0])
        root.handlers[:] = saved_root[1]
        for handler in ours:
            handler.close()
        for name, (level, handlers, propagate, disabled) in saved.items():
            logger = logging.getLogger(name)
            logger.setLevel(level)
            logger.handlers[:] = handlers
            logger.propagate, logger.disabled = propagate, disabled


class ConflictOnce:
    """A commit hook that loses one race: the retry helper runs the deposit again."""

    def __init__(self) -> None:
        self.raised = False

    async def before_commit(
        self, uow: AbstractUnitOfWork, raised: Sequence[tuple[Aggregate[Any], Event]]
    ) -> None:
        if not self.raised:
            self.raised = True
            raise ConcurrencyError("the test's commit hook lost a race")


async def test_a_request_is_logged_as_one_json_line_with_its_id_outcome_and_duration(
    ledger: LedgerApp, json_lines: JsonLines
) -> None:
    response = await ledger.client.post(
        "/accounts",
        json={"currency": "EUR"},
        headers={REQUEST_ID_HEADER: "req-42"},
    )

    assert response.headers[REQUEST_ID_HEADER] == "req-42"
    (line,) = json_lines.of("keel.access")
    assert {key: line[key] for key in ("request_id", "method", "path", "status", "outcome")} == {
        "request_id": "req-42",
        "method": "POST",
        "path": "/accounts",
        "status": 201,
        "outcome": "ok",
    }
    assert isinstance(line["duration_ms"], float)
    assert line["duration_ms"] >= 0


async def test_a_request_without_a_usable_id_gets_a_new_one_in_its_header_and_log_line(
    ledger: LedgerApp, json_lines: JsonLines
) -> None:
    response = await ledger.client.get(
        f"/accounts/{uuid4()}", headers={REQUEST_ID_HEADER: "not a token\tat all"}
    )

    assert response.status_code == 404
    given = response.headers[REQUEST_ID_HEADER]
    assert len(given) == 32
    (line,) = json_lines.of("keel.access")
    assert (line["request_id"], line["status"], line["outcome"]) == (given, 404, "rejected")


async def test_a_retry_is_logged_with_its_cause_and_the_request_id(
    ledger: LedgerApp, json_lines: JsonLines
) -> None:
    account_id = await ledger.open_account()
    ledger.hooks.append(ConflictOnce())

    response = await ledger.client.post(
        f"/accounts/{account_id}/deposits",
        json={"amount": 5, "reference": f"retried-{account_id}"},
        headers={REQUEST_ID_HEADER: "req-retried"},
    )

    assert response.status_code == 201, response.text
    (retry,) = json_lines.of("service_layer.retry")
    assert {key: retry[key] for key in ("request_id", "attempt", "of", "cause")} == {
        "request_id": "req-retried",
        "attempt": 1,
        "of": 5,
        "cause": "the test's commit hook lost a race",
    }
    assert isinstance(retry["delay_s"], float)


async def test_a_request_whose_client_went_away_is_logged_as_cancelled(
    ledger: LedgerApp, faults: FaultDatabase, json_lines: JsonLines
) -> None:
    account_id = await ledger.open_account()
    request = asyncio.create_task(
        ledger.client.post(
            f"/accounts/{account_id}/deposits",
            json={"amount": 5, "reference": fault_reference(SLOW_INSERT)},
            headers={REQUEST_ID_HEADER: "req-gone"},
        )
    )
    async with faults.probe() as probe:
        await probe.wait_for_session(ledger.application_name, wait_event="PgSleep")
    request.cancel()
    with pytest.raises(asyncio.CancelledError):
        await request

    (line,) = [r for r in json_lines.of("keel.access") if r["request_id"] == "req-gone"]
    assert (line["status"], line["outcome"], line["level"]) == (None, "cancelled", "WARNING")


async def test_the_database_password_is_in_no_log_line_when_the_database_cannot_be_reached(
    json_lines: JsonLines, leak_check: LeakCheck
) -> None:
    settings = Settings(
        database_url=UNREACHABLE_URL.format(port=free_port()), db_connect_timeout=2.0
    )
    manager = TunedSessionManager()
    container = bootstrap(settings, manager=manager)
    leak_check.watch(manager.engine, admin_dsn=None, application_name="unreachable")
    transport = httpx.ASGITransport(create_app(container=container), raise_app_exceptions=False)
    try:
        async with httpx.AsyncClient(
            transport=transport, base_url="http://testserver", headers=bearer_for(new_subject())
        ) as client:
            ready = await client.get("/ready")
            opened = await client.post("/accounts", json={"currency": "EUR"})
        # And a careless line that logs the whole configuration.
        logging.getLogger("keel.test").error("settings in use: %r", settings)
        await leak_check.verify()
    finally:
        await manager.close()

    assert (ready.status_code, opened.status_code) == (503, 503)
    assert PASSWORD not in ready.text + opened.text
    assert len(json_lines.of("keel.access")) == 2
    assert len(json_lines.of("keel.test")) == 1
    assert PASSWORD not in json_lines.text
