"""``create_broker`` is the one broker factory, and ``BROKER_URL`` is checked before it runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.brokers import BrokerConfigurationError, InProcessBroker, create_broker
from adapters.brokers.rabbitmq import RabbitMQBroker
from adapters.brokers.redis_streams import RedisStreamsBroker
from adapters.settings import ConfigurationError, load_settings

pytestmark = pytest.mark.unit

PASSWORD = "hunter2-very-secret"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("BROKER_URL", raising=False)
    monkeypatch.chdir(tmp_path)  # no .env file of the machine's


def test_no_url_makes_the_in_process_broker_with_the_history_bound() -> None:
    broker = create_broker(None, prefix="p:", max_deliveries=7, history=50)

    assert isinstance(broker, InProcessBroker)
    assert (broker.wire_name("s"), broker.max_deliveries, broker.history) == ("p:s", 7, 50)


@pytest.mark.parametrize("scheme", ["redis", "rediss"])
def test_a_redis_url_makes_redis_streams_with_the_claim_timeout(scheme: str) -> None:
    broker = create_broker(f"{scheme}://cache:6379/0", prefix="p:", claim_idle_ms=1500)

    assert isinstance(broker, RedisStreamsBroker)
    assert (broker.wire_name("s"), broker.claim_idle_ms) == ("p:s", 1500)


@pytest.mark.parametrize("scheme", ["amqp", "amqps"])
def test_an_amqp_url_makes_rabbitmq_with_the_prefix_and_max_deliveries(scheme: str) -> None:
    broker = create_broker(f"{scheme}://app:{PASSWORD}@mq:5672/", prefix="p:", max_deliveries=3)

    assert isinstance(broker, RabbitMQBroker)
    assert (broker.wire_name("s"), broker.max_deliveries) == ("p:s", 3)


def test_an_unknown_scheme_names_the_accepted_ones_and_not_the_password() -> None:
    with pytest.raises(BrokerConfigurationError) as caught:
        create_broker(f"kafka://app:{PASSWORD}@mq:9092/")

    assert "redis://, rediss://, amqp://, amqps://" in str(caught.value)
    assert PASSWORD not in str(caught.value)


@pytest.mark.parametrize("scheme", ["amqp", "amqps"])
def test_the_settings_accept_an_amqp_broker_url(
    monkeypatch: pytest.MonkeyPatch, scheme: str
) -> None:
    monkeypatch.setenv("BROKER_URL", f"{scheme}://app:{PASSWORD}@mq:5672/vhost")

    assert load_settings().broker_url == f"{scheme}://app:{PASSWORD}@mq:5672/vhost"


@pytest.mark.parametrize(
    "url",
    [
        pytest.param(f"kafka://app:{PASSWORD}@mq:9092/", id="another scheme"),
        pytest.param(f"amqp://app:{PASSWORD}@", id="no host"),
        pytest.param(f"amqp://app:{PASSWORD}@mq:99999/", id="a port out of range"),
    ],
)
def test_a_bad_broker_url_names_the_accepted_schemes_and_hides_the_password(
    monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    monkeypatch.setenv("BROKER_URL", url)

    with pytest.raises(ConfigurationError, match="BROKER_URL") as caught:
        load_settings()

    assert "amqp://, amqps://" in str(caught.value)
    assert PASSWORD not in str(caught.value)
