"""Bad input at scale: the OpenAPI document, fuzzed by schemathesis, never gets a 5xx.

For every operation, schemathesis generates requests that fit the schema
(positive) and requests that break it (negative: wrong types, missing
fields, out-of-range numbers, odd strings in paths and queries); for the
operations on an account or a transfer, once more with the id of one that
exists, so that the bodies reach the service instead of a 404. No response
may be a 5xx, and every error must be an ``application/problem+json``
document.

The run is bounded and repeatable: a fixed number of examples per
operation and mode, ``derandomize`` (the same examples on every run) and no
example database. Hypothesis drives the examples from a worker thread; each
request is sent on the test's event loop, where the app and its engine
live, through httpx's ASGITransport.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.core.result import Ok
from schemathesis.generation import GenerationMode
from schemathesis.generation.case import Case as GenericCase
from schemathesis.schemas import APIOperation as GenericOperation

from entrypoints.http.problems import PROBLEM_MEDIA_TYPE
from tests.ledger.faults.harness import LedgerApp

pytestmark = pytest.mark.e2e

EXAMPLES = 20
"""Per operation and generation mode: at most 420 requests in all, about ten seconds."""
REQUEST_SECONDS = 30.0
BASE_URL = "http://testserver"

Case = GenericCase[Any]
APIOperation = GenericOperation[Any, Any, Any, Any]
Send = Callable[[Case], httpx.Response]


def httpx_arguments(case: Case) -> dict[str, Any]:
    """The generated request as ``httpx.AsyncClient.request`` arguments.

    schemathesis describes it for ``requests``; httpx takes a raw body as
    ``content``, and cookies per request only as a header.
    """
    arguments = case.as_transport_kwargs(base_url=BASE_URL)
    cookies = arguments.pop("cookies", None) or {}
    if cookies:
        arguments.setdefault("headers", {})["Cookie"] = "; ".join(
            f"{name}={value}" for name, value in cookies.items()
        )
    if "data" in arguments:
        arguments["content"] = arguments.pop("data")
    return arguments


def check(case: Case, response: httpx.Response) -> None:
    where = f"{case.method} {case.formatted_path}\n{case.as_curl_command()}"
    assert response.status_code < 500, f"{response.status_code} for {where}\n{response.text}"
    if response.status_code >= 400:
        media_type = response.headers.get("content-type", "")
        assert media_type == PROBLEM_MEDIA_TYPE, f"{media_type!r} for {where}"


def fuzz(operation: APIOperation, mode: GenerationMode, send: Send, **fixed: Any) -> None:
    """Send ``EXAMPLES`` generated requests for ``operation``; runs in a worker thread."""

    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.filter_too_much,
            HealthCheck.data_too_large,
        ],
    )
    @given(case=operation.as_strategy(generation_mode=mode, **fixed))
    def one_request(case: Case) -> None:
        check(case, send(case))

    one_request()


async def test_no_fuzzed_request_gets_a_server_error_and_every_error_is_a_problem(
    ledger: LedgerApp,
) -> None:
    document = (await ledger.client.get("/openapi.json")).json()
    schema = schemathesis.openapi.from_dict(document)
    account_id = await ledger.open_account()
    deposited = await ledger.deposit(account_id, amount=1_000)
    assert deposited.status_code == 201
    target_id = await ledger.open_account()
    transfer = await ledger.client.post(
        "/transfers",
        json={"source_id": account_id, "target_id": target_id, "amount": 1, "reference": "fuzz"},
    )
    assert transfer.status_code == 201, transfer.text
    existing = {"account_id": account_id, "transfer_id": transfer.json()["id"]}
    loop = asyncio.get_running_loop()

    def send(case: Case) -> httpx.Response:
        request = ledger.client.request(**httpx_arguments(case))
        return asyncio.run_coroutine_threadsafe(request, loop).result(REQUEST_SECONDS)

    def run_all() -> None:
        for result in schema.get_all_operations():
            assert isinstance(result, Ok), f"the schema has an invalid operation: {result}"
            operation = result.ok()
            fuzz(operation, GenerationMode.POSITIVE, send)
            if list(operation.iter_parameters()) or len(operation.body):
                # Nothing to get wrong in a request without parameters or body.
                fuzz(operation, GenerationMode.NEGATIVE, send)
            names = {parameter.name for parameter in operation.path_parameters}
            if names & existing.keys():
                fixed = {name: existing[name] for name in names & existing.keys()}
                fuzz(operation, GenerationMode.POSITIVE, send, path_parameters=fixed)

    await asyncio.to_thread(run_all)
