"""Bring a database's schema up to the latest migration.

The ``keel serve`` and ``keel migrate`` commands call this; so do tests. The
database URL is always passed in (never read from ``alembic.ini``), the
Alembic scripts are found next to this module (so no ini file is needed
wherever Keel is installed), and nothing logged or raised here contains the
password.

    upgrade_to_head("postgresql+asyncpg://app@db/app")      # no event loop running
    await upgrade_to_head_async(url)                         # inside one
    await upgrade_to_head_async(session_manager.engine)      # e.g. in-memory SQLite
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection
from importlib import import_module
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.environment import (
    IncludeNameFn,
    IncludeObjectFn,
    NameFilterParentNames,
    NameFilterType,
)
from sqlalchemy import Table, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool
from sqlalchemy.schema import SchemaItem

from adapters.database import parse_database_url, safe_url

logger = logging.getLogger(__name__)

SCRIPT_LOCATION = Path(__file__).with_name("alembic")

MIGRATION_LOCK_KEY = 0x6B65656C_6D696772
"""The advisory lock every upgrade holds on PostgreSQL ('keelmigr'), so concurrent ones queue."""


class MigrationError(RuntimeError):
    """The migrations could not run; the message names the database without its password."""


def alembic_config(url: str | None = None) -> Config:
    """An Alembic ``Config`` for Keel's scripts, for ``alembic.command`` calls.

    With ``url``, migrations open their own connection to it; without one,
    pass a connection in ``config.attributes["connection"]``.
    """
    config = Config()
    # set_main_option interpolates "%"; a path may contain one.
    config.set_main_option("script_location", str(SCRIPT_LOCATION).replace("%", "%%"))
    config.set_main_option("path_separator", "os")
    # The caller owns logging; env.py must not reconfigure it from an ini file.
    config.attributes["configure_logger"] = False
    if url is not None:
        config.attributes["database_url"] = url
    return config


def upgrade_to_head(url: str) -> None:
    """Migrate the database at ``url`` to the newest revision (blocking).

    Call it where no event loop runs (a CLI command before the server
    starts); inside a loop, ``await upgrade_to_head_async(url)`` instead.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(upgrade_to_head_async(url))
        return
    raise RuntimeError(
        "upgrade_to_head() cannot run inside an event loop; use 'await upgrade_to_head_async(url)'"
    )


async def upgrade_to_head_async(target: str | AsyncEngine) -> None:
    """Migrate to the newest revision, over a URL or an existing engine.

    Pass the application's engine when the database only lives inside it
    (``sqlite+aiosqlite://`` in memory); a URL gets an engine of its own,
    disposed afterwards. Already at head: nothing happens. On PostgreSQL,
    concurrent upgrades (several ``keel migrate`` or ``keel serve`` starting
    at once) take turns on an advisory lock.
    """
    if isinstance(target, AsyncEngine):
        engine, owned = target, False
    else:
        engine, owned = create_async_engine(parse_database_url(target), poolclass=NullPool), True
    where = safe_url(engine.url)
    logger.info("migrating database schema to head", extra={"database": where})
    try:
        async with engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                # Two upgrades of a fresh database would both CREATE TABLE alembic_version
                # and one would fail on a duplicate pg_type key. A transaction-level lock
                # makes the others wait for the first one's COMMIT; they then find the
                # schema at head and do nothing. It is released by COMMIT or ROLLBACK, so
                # it can never outlive the migration, even if the process dies.
                await connection.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY}
                )
            await connection.run_sync(_upgrade_on, alembic_config())
    except (OSError, DBAPIError) as exc:
        password = engine.url.password
        reason = str(exc).replace(str(password), "***") if password else str(exc)
        raise MigrationError(f"cannot migrate {where}: {reason}") from exc
    finally:
        if owned:
            await engine.dispose()


def _upgrade_on(connection: Connection, config: Config) -> None:
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


def tables_defined_in(*modules: str) -> frozenset[str]:
    """Names of the ``Table`` objects that the named modules define at top level."""
    return frozenset(
        value.name
        for module in modules
        for value in vars(import_module(module)).values()
        if isinstance(value, Table)
    )


def schema_filters(tables: Collection[str]) -> tuple[IncludeNameFn, IncludeObjectFn]:
    """``include_name`` and ``include_object`` hooks that keep Alembic to ``tables``.

    Autogenerate then neither proposes to create tables that others mapped on
    the shared metadata nor to drop tables it does not own.
    """

    def include_name(
        name: str | None, type_: NameFilterType, parent_names: NameFilterParentNames
    ) -> bool:
        return name in tables if type_ == "table" else True

    def include_object(
        obj: SchemaItem,
        name: str | None,
        type_: NameFilterType,
        reflected: bool,
        compare_to: SchemaItem | None,
    ) -> bool:
        if type_ == "table":
            return name in tables
        table = getattr(obj, "table", None)
        return table is None or table.name in tables

    return include_name, include_object
