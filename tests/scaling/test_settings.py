"""The scaling settings: DB_PGBOUNCER, DATABASE_DIRECT_URL, DATABASE_REPLICA_URLS."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.settings import ConfigurationError, load_settings

pytestmark = pytest.mark.unit

PASSWORD = "hunter2-very-secret"
POOLER = "postgresql+asyncpg://app@pooler:6432/app"
DIRECT = f"postgresql+asyncpg://app:{PASSWORD}@db:5432/app"
VARIABLES = (
    "DATABASE_URL",
    "DB_PGBOUNCER",
    "DATABASE_DIRECT_URL",
    "DATABASE_REPLICA_URLS",
    "DB_REPLICA_MAX_LAG_SECONDS",
    "DB_STATEMENT_TIMEOUT_MS",
)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no .env file of the machine's


def test_behind_pgbouncer_statements_are_not_cached_and_get_unique_names(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DATABASE_URL", POOLER)
    monkeypatch.setenv("DB_PGBOUNCER", "true")

    connect_args = load_settings().engine_options()["connect_args"]

    assert (
        connect_args["statement_cache_size"],
        connect_args["prepared_statement_cache_size"],
    ) == (
        0,
        0,
    )
    name = connect_args["prepared_statement_name_func"]
    assert name() != name()


def test_behind_pgbouncer_the_statement_timeout_is_a_command_timeout_not_a_startup_parameter(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DATABASE_URL", POOLER)
    monkeypatch.setenv("DB_PGBOUNCER", "true")
    monkeypatch.setenv("DB_STATEMENT_TIMEOUT_MS", "2500")

    connect_args = load_settings().engine_options()["connect_args"]

    assert connect_args["server_settings"] == {"application_name": "keel"}
    assert connect_args["command_timeout"] == 2.5


def test_without_pgbouncer_the_statement_timeout_is_a_server_setting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DATABASE_URL", DIRECT)

    connect_args = load_settings().engine_options()["connect_args"]

    assert connect_args["server_settings"]["statement_timeout"] == "15000"
    assert "statement_cache_size" not in connect_args


def test_the_direct_url_falls_back_to_the_database_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", POOLER)

    assert load_settings().direct_database_url == POOLER


def test_the_direct_url_is_used_and_gets_no_pooler_options(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", POOLER)
    monkeypatch.setenv("DB_PGBOUNCER", "true")
    monkeypatch.setenv("DATABASE_DIRECT_URL", DIRECT)

    settings = load_settings()

    assert settings.direct_database_url == DIRECT
    assert "statement_cache_size" not in settings.direct_engine_options()["connect_args"]


def test_replica_urls_are_a_comma_separated_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "DATABASE_REPLICA_URLS",
        "postgresql+asyncpg://app@replica-1/app, postgresql+asyncpg://app@replica-2/app",
    )

    assert load_settings().replica_urls == [
        "postgresql+asyncpg://app@replica-1/app",
        "postgresql+asyncpg://app@replica-2/app",
    ]


def test_no_replica_urls_means_no_replicas() -> None:
    assert load_settings().replica_urls == []


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        pytest.param(
            "DATABASE_REPLICA_URLS",
            f"postgresql+asyncpg://app@r1/app,postgresql://app:{PASSWORD}@r2/app",
            "URL 2: unsupported database driver",
            id="a replica with a synchronous driver",
        ),
        pytest.param(
            "DATABASE_REPLICA_URLS",
            f"sqlite+aiosqlite:///{PASSWORD}.db",
            "URL 1: replicas are PostgreSQL streaming replicas",
            id="a replica that is not PostgreSQL",
        ),
        pytest.param(
            "DATABASE_DIRECT_URL",
            f"postgresql+asyncpg://app:{PASSWORD}@db/",
            "no database name",
            id="a direct URL without a database",
        ),
    ],
)
def test_a_bad_url_names_the_variable_and_the_problem_but_not_the_password(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, expected: str
) -> None:
    monkeypatch.setenv(variable, value)

    with pytest.raises(ConfigurationError, match=variable) as caught:
        load_settings()

    assert expected in str(caught.value)
    assert PASSWORD not in str(caught.value)
