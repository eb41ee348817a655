"""``keel consume`` and ``keel relay`` refuse a configuration they cannot run with, in one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from entrypoints.cli import EXIT_USAGE, main

pytestmark = pytest.mark.unit

PASSWORD = "hunter2-very-secret"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("BROKER_URL", "DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no .env from the repository


@pytest.mark.parametrize("command", ["consume", "relay"])
def test_a_worker_without_a_broker_url_stops_with_exit_2_saying_why(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main([command])

    assert code == EXIT_USAGE
    error = capsys.readouterr().err
    assert error.startswith(f"keel: {command} needs BROKER_URL")
    assert error.count("\n") == 1


def test_a_broker_url_with_another_scheme_stops_with_exit_2_without_its_password(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("BROKER_URL", f"kafka://app:{PASSWORD}@mq:5672/")

    code = main(["consume"])

    assert code == EXIT_USAGE
    error = capsys.readouterr().err
    assert "BROKER_URL" in error
    assert PASSWORD not in error
