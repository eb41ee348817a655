"""``keel token``: a development token that ``keel serve`` accepts, or a clear refusal."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.auth import token_verifier
from adapters.settings import load_settings
from entrypoints.cli import EXIT_OK, EXIT_USAGE, main

pytestmark = pytest.mark.unit


@pytest.fixture
def development_key(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """The embedded default: no public key, no JWKS; the key file in a temporary folder."""
    monkeypatch.delenv("AUTH_PUBLIC_KEY", raising=False)
    monkeypatch.delenv("AUTH_JWKS_URL", raising=False)
    monkeypatch.setenv("KEEL_CONTEXTS", "")
    path = tmp_path / "keel-dev-key.pem"
    monkeypatch.setenv("AUTH_DEV_KEY_FILE", str(path))
    return path


async def test_keel_token_prints_a_token_the_service_accepts(
    development_key: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["token", "alice", "--scope", "ledger:read", "--ttl", "60"]) == EXIT_OK

    token = capsys.readouterr().out.strip()
    principal = await token_verifier(load_settings()).verify(token)
    assert (principal.subject, principal.scopes) == ("alice", frozenset({"ledger:read"}))


def test_keel_token_makes_the_development_key_on_first_use(
    development_key: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert not development_key.exists()

    main(["token", "alice"])

    assert development_key.exists()


def test_keel_token_refuses_where_only_a_public_key_is_configured(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("KEEL_CONTEXTS", "")  # AUTH_PUBLIC_KEY: the test key, from conftest

    assert main(["token", "alice"]) == EXIT_USAGE

    error = capsys.readouterr().err
    assert "AUTH_PUBLIC_KEY is set" in error
    assert "-----BEGIN" not in error


def test_keel_token_refuses_where_a_jwks_url_is_configured(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("KEEL_CONTEXTS", "")
    monkeypatch.setenv("AUTH_JWKS_URL", "https://idp.example/jwks.json")

    assert main(["token", "alice"]) == EXIT_USAGE
    assert "AUTH_JWKS_URL is set" in capsys.readouterr().err


def test_keel_consume_on_redis_without_a_signing_key_refuses_to_start(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("KEEL_CONTEXTS", "")
    monkeypatch.setenv("BROKER_URL", "redis://127.0.0.1:6379/0")
    monkeypatch.delenv("COMMAND_SIGNING_KEY")

    assert main(["consume"]) == EXIT_USAGE
    assert "COMMAND_SIGNING_KEY is not set" in capsys.readouterr().err


def test_keel_serve_consuming_on_redis_without_a_signing_key_refuses_to_start(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("KEEL_CONTEXTS", "")
    monkeypatch.setenv("BROKER_URL", "redis://127.0.0.1:6379/0")
    monkeypatch.setenv("SERVE_CONSUMER", "true")
    monkeypatch.delenv("COMMAND_SIGNING_KEY")

    assert main(["serve"]) == EXIT_USAGE
    assert "serve refuses to start" in capsys.readouterr().err
