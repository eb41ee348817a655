"""Settings: defaults, and errors that name the variable and never repeat a secret."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.settings import DEFAULT_DATABASE_URL, ConfigurationError, load_settings

pytestmark = pytest.mark.unit

PASSWORD = "hunter2-very-secret"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No stray variables or ``.env`` file from the machine running the tests."""
    for name in ("DATABASE_URL", "DB_POOL_SIZE", "RETRY_ATTEMPTS", "BROKER_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


def test_defaults_suit_a_laptop() -> None:
    settings = load_settings()

    assert settings.database_url == DEFAULT_DATABASE_URL
    assert settings.engine_options() == {"hide_parameters": True}


def test_sql_parameters_are_hidden_from_errors_unless_asked_for(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert load_settings().engine_options()["hide_parameters"] is True
    monkeypatch.setenv("DB_LOG_PARAMETERS", "true")

    assert load_settings().engine_options()["hide_parameters"] is False


def test_database_url_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql+asyncpg://app@db/app")

    assert load_settings().database_url == "postgresql+asyncpg://app@db/app"


def test_a_bad_database_url_names_the_variable_and_hides_the_password(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DATABASE_URL", f"mysql://app:{PASSWORD}@db/app")

    with pytest.raises(ConfigurationError) as raised:
        load_settings()

    assert "DATABASE_URL" in str(raised.value)
    assert "unsupported database driver" in str(raised.value)
    assert PASSWORD not in str(raised.value)


def test_an_out_of_range_number_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DB_POOL_SIZE", "0")

    with pytest.raises(ConfigurationError, match="DB_POOL_SIZE"):
        load_settings()


def test_a_value_that_is_not_a_number_names_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RETRY_ATTEMPTS", "many")

    with pytest.raises(ConfigurationError, match="RETRY_ATTEMPTS"):
        load_settings()


def test_a_value_read_from_a_dotenv_file_is_checked_too(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(f"DATABASE_URL=postgresql://app:{PASSWORD}@db/app\n")

    with pytest.raises(ConfigurationError) as raised:
        load_settings()

    assert "DATABASE_URL" in str(raised.value)
    assert PASSWORD not in str(raised.value)


def test_postgres_pool_settings_reach_the_engine_options(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql+asyncpg://app@db/app")
    monkeypatch.setenv("DB_POOL_SIZE", "3")

    options = load_settings().engine_options()

    assert options["pool_size"] == 3
    assert options["connect_args"] == {
        "timeout": 5.0,
        "server_settings": {"application_name": "keel", "statement_timeout": "15000"},
    }


def test_a_metrics_port_out_of_range_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("METRICS_PORT", "70000")

    with pytest.raises(ConfigurationError, match="METRICS_PORT"):
        load_settings()


def test_metrics_are_on_and_the_workers_serve_no_port_by_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("METRICS_ENABLED", "METRICS_PORT"):
        monkeypatch.delenv(name, raising=False)

    settings = load_settings()

    assert (settings.metrics_enabled, settings.metrics_port) == (True, None)
