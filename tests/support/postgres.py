"""A PostgreSQL server and a private database for one test run.

Order of preference: ``KEEL_TEST_POSTGRES_URL`` if set; else the server on
127.0.0.1:5432 (trust auth, user ``postgres``); else a throwaway cluster from
the PostgreSQL binaries on this machine. Under CI a missing server is an
error, never a skip.
"""

from __future__ import annotations

import os
import uuid

import asyncpg

DEFAULT_ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"


def admin_dsn() -> str:
    return os.environ.get("KEEL_TEST_POSTGRES_URL", DEFAULT_ADMIN_DSN)


async def server_answers(dsn: str) -> bool:
    try:
        connection = await asyncpg.connect(dsn, timeout=3.0)
    except (TimeoutError, OSError, asyncpg.PostgresError):
        return False
    await connection.close()
    return True


async def create_database(dsn: str, prefix: str = "keel_test") -> str:
    """Create a uniquely named database and return its name."""
    name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    return name


async def drop_database(dsn: str, name: str) -> None:
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()


def sqlalchemy_url(dsn: str, database: str) -> str:
    """The asyncpg SQLAlchemy URL for ``database`` on the server behind ``dsn``."""
    from sqlalchemy.engine import make_url

    url = make_url(dsn).set(drivername="postgresql+asyncpg", database=database)
    return url.render_as_string(hide_password=False)
