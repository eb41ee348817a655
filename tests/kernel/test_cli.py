"""The ``keel`` command's kernel behaviour: help, configuration errors, unknown contexts."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import uvloop

from adapters.settings import Settings
from entrypoints.cli import EXIT_OK, EXIT_USAGE, _run_worker, main

pytestmark = pytest.mark.unit


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for variable in ("DATABASE_URL", "BROKER_URL", "RETRY_ATTEMPTS"):
        monkeypatch.delenv(variable, raising=False)
    # The kernel alone: these tests must pass with the example deleted too.
    monkeypatch.setenv("KEEL_CONTEXTS", "")
    monkeypatch.chdir(tmp_path)  # no stray .env


def test_bare_keel_lists_its_commands(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == EXIT_OK

    shown = capsys.readouterr().out
    for command in ("serve", "migrate", "consume", "relay", "revision", "new"):
        assert command in shown


def test_an_unknown_context_stops_start_up_naming_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("KEEL_CONTEXTS", "nosuchcontext")

    assert main(["migrate"]) == EXIT_USAGE

    error = capsys.readouterr().err
    assert "'nosuchcontext'" in error
    assert "entrypoints.nosuchcontext" in error


def test_a_module_that_is_no_context_is_refused_naming_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("KEEL_CONTEXTS", "tests.kernel.things")

    assert main(["migrate"]) == EXIT_USAGE

    assert "exports no BoundedContext" in capsys.readouterr().err


def test_a_malformed_context_name_is_a_configuration_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("KEEL_CONTEXTS", "tests.catalog,9lives")

    assert main(["migrate"]) == EXIT_USAGE

    error = capsys.readouterr().err
    assert "KEEL_CONTEXTS" in error
    assert "'9lives'" in error


def test_configuration_errors_carry_no_pydantic_prefix(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", "mysql://root@db/app")

    assert main(["migrate"]) == EXIT_USAGE

    error = capsys.readouterr().err
    assert "DATABASE_URL: unsupported database driver" in error
    assert "Value error" not in error


def test_a_worker_runs_on_uvloop_as_the_server_does() -> None:
    seen: list[type[asyncio.AbstractEventLoop]] = []

    async def worker(settings: Settings, stop: asyncio.Event) -> None:
        seen.append(type(asyncio.get_running_loop()))

    _run_worker(worker, Settings())

    assert seen == [uvloop.Loop]
