"""A private PostgreSQL database for one benchmark run, dropped afterwards.

The server comes from ``KEEL_BENCH_POSTGRES_URL`` (any database on it; the
benchmark creates its own), by default the local server with trust auth.
Kept apart from ``tests/support`` so that ``bench`` never imports the tests.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncpg
from sqlalchemy.engine import URL, make_url

from adapters.database import safe_url

ENV_VAR = "KEEL_BENCH_POSTGRES_URL"
DEFAULT_SERVER_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


class BenchDatabaseError(RuntimeError):
    """No usable PostgreSQL server; the message names the URL without its password."""


@dataclass(frozen=True)
class BenchDatabase:
    """Where the run's database lives, in the two spellings the contenders need."""

    name: str
    url: URL

    @property
    def sqlalchemy_url(self) -> str:
        return self.url.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)

    @property
    def asyncpg_dsn(self) -> str:
        return self.url.set(drivername="postgresql").render_as_string(hide_password=False)

    def __str__(self) -> str:
        return safe_url(self.url)


def server_url() -> URL:
    """The server to benchmark against, as a plain ``postgresql://`` URL."""
    raw = os.environ.get(ENV_VAR, DEFAULT_SERVER_URL)
    try:
        url = make_url(raw)
    except Exception:
        raise BenchDatabaseError(f"{ENV_VAR} is not a database URL") from None
    if url.get_backend_name() != "postgresql":
        raise BenchDatabaseError(f"{ENV_VAR} must point at PostgreSQL, got {safe_url(url)}")
    return url.set(drivername="postgresql")


def _dsn(url: URL) -> str:
    return url.render_as_string(hide_password=False)


@contextlib.asynccontextmanager
async def fresh_database(prefix: str = "keel_bench") -> AsyncIterator[BenchDatabase]:
    """Create a uniquely named database, yield it, and drop it whatever happens."""
    admin = server_url()
    name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    try:
        connection = await asyncpg.connect(_dsn(admin), timeout=5.0)
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        raise BenchDatabaseError(
            f"cannot reach PostgreSQL at {safe_url(admin)} ({type(exc).__name__}); "
            f"set {ENV_VAR} to a reachable server"
        ) from None
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    try:
        yield BenchDatabase(name=name, url=admin.set(database=name))
    finally:
        connection = await asyncpg.connect(_dsn(admin), timeout=5.0)
        try:
            await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await connection.close()
