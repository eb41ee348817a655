"""The messaging settings: BROKER_URL is checked at start-up and picks the broker."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.brokers import InProcessBroker
from adapters.brokers.redis_streams import RedisStreamsBroker
from adapters.settings import ConfigurationError, Settings, load_settings
from entrypoints.bootstrap import consumes_in_serve, make_broker

pytestmark = pytest.mark.unit

PASSWORD = "hunter2-very-secret"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No stray variables or ``.env`` file from the machine running the tests."""
    for name in ("BROKER_URL", "STREAM_PREFIX", "SERVE_CONSUMER", "BROKER_CLAIM_IDLE_MS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


@pytest.mark.parametrize(
    "url",
    [
        pytest.param(f"kafka://app:{PASSWORD}@mq:5672/", id="another scheme"),
        pytest.param(f"redis://app:{PASSWORD}@cache:99999/0", id="a port out of range"),
        pytest.param(f"app:{PASSWORD}@cache", id="no scheme at all"),
        pytest.param("redis://", id="no host"),
    ],
)
def test_a_bad_broker_url_names_the_variable_and_hides_the_password(
    monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    monkeypatch.setenv("BROKER_URL", url)

    with pytest.raises(ConfigurationError, match="BROKER_URL") as caught:
        load_settings()

    assert PASSWORD not in str(caught.value)


def test_an_unsupported_scheme_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BROKER_URL", "kafka://mq:5672/")

    with pytest.raises(ConfigurationError, match="unsupported scheme 'kafka'"):
        load_settings()


def test_an_empty_broker_url_means_the_in_process_broker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BROKER_URL", "")

    assert isinstance(make_broker(load_settings()), InProcessBroker)


def test_a_rediss_url_with_a_password_is_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BROKER_URL", f"rediss://:{PASSWORD}@cache.example:6380/0")

    assert load_settings().broker_url == f"rediss://:{PASSWORD}@cache.example:6380/0"


def test_a_redis_url_makes_a_redis_streams_broker_with_the_configured_prefix_and_timeouts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BROKER_URL", "redis://cache:6379/0")
    monkeypatch.setenv("STREAM_PREFIX", "staging:")
    monkeypatch.setenv("BROKER_CLAIM_IDLE_MS", "1500")

    broker = make_broker(load_settings())

    assert isinstance(broker, RedisStreamsBroker)
    assert (broker.wire_name("ledger.commands"), broker.claim_idle_ms) == (
        "staging:ledger.commands",
        1500,
    )


@pytest.mark.parametrize(
    ("broker_url", "serve_consumer", "consumes"),
    [
        (None, None, True),
        ("redis://cache:6379/0", None, False),
        ("redis://cache:6379/0", True, True),
        (None, False, False),
    ],
)
def test_keel_serve_consumes_commands_by_default_only_on_the_in_process_broker(
    broker_url: str | None, serve_consumer: bool | None, consumes: bool
) -> None:
    settings = Settings(broker_url=broker_url, serve_consumer=serve_consumer)

    assert consumes_in_serve(settings) is consumes


async def test_the_embedded_broker_keeps_only_its_recent_history() -> None:
    broker = make_broker(Settings(broker_url=None))
    assert isinstance(broker, InProcessBroker)
    assert broker.history is not None

    for number in range(broker.history + 5):
        await broker.publish("ledger.events", {"number": number})

    kept = broker.published["ledger.events"]
    assert [message["number"] for message in (kept[0], kept[-1])] == [5, broker.history + 4]
    assert len(kept) == broker.history
