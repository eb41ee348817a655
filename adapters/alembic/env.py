"""Alembic's environment: async, and generic over the branches it is given.

Migrations run on an async engine (asyncpg or aiosqlite) through ``run_sync``.
:mod:`adapters.migrate` builds the configuration: the kernel's branch and each
bounded context's versions folder, the names of the tables they own (so
autogenerate compares only those, and leaves alone tables mapped elsewhere on
the shared ``metadata`` or present in the database for other reasons), and
either an open connection (``config.attributes["connection"]``) or the URL
(never through an ini file, whose interpolation would mangle ``%`` in
passwords). Run it through ``keel migrate`` and ``keel revision``.
"""

from __future__ import annotations

import asyncio
from logging.config import fileConfig

from alembic import context
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from adapters.database import metadata, parse_database_url
from adapters.migrate import schema_filters

config = context.config
if config.config_file_name is not None and config.attributes.get("configure_logger", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

if "tables" not in config.attributes:
    raise RuntimeError(
        "run Keel's migrations with 'keel migrate' or 'keel revision' (or through "
        "adapters.migrate.alembic_config()), which know the installed contexts' branches"
    )
include_name, include_object = schema_filters(config.attributes["tables"])


def _database_url() -> str:
    url = config.attributes.get("database_url")
    if url is None:
        from adapters.settings import load_settings

        url = load_settings().database_url
    parse_database_url(str(url))
    return str(url)


def run_migrations_offline() -> None:
    """Write the SQL to stdout (``alembic upgrade head --sql``) instead of running it."""
    url = _database_url()
    context.configure(
        url=url,
        target_metadata=metadata,
        include_name=include_name,
        include_object=include_object,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        render_as_batch=url.startswith("sqlite"),
    )
    with context.begin_transaction():
        context.run_migrations()


def do_run_migrations(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        include_name=include_name,
        include_object=include_object,
        compare_type=True,
        # SQLite cannot ALTER most things; batch mode rebuilds the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


async def run_async_migrations() -> None:
    engine = create_async_engine(_database_url(), poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(do_run_migrations)
    finally:
        await engine.dispose()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is None:
        asyncio.run(run_async_migrations())
    else:
        do_run_migrations(connection)


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
