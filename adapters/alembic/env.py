"""Alembic's environment: async, and generic over the modules listed in ``MODULES``.

Migrations run on an async engine (asyncpg or aiosqlite) through
``run_sync``. Two ways in:

- the ``alembic`` command line: the URL comes from ``DATABASE_URL`` (or
  ``.env``), read by the same settings loader as the service;
- :mod:`adapters.migrate`: the caller passes an open connection in
  ``config.attributes["connection"]`` (and never a URL through the ini file,
  whose interpolation would mangle ``%`` in passwords).

Autogenerate compares only the tables that ``MODULES`` define, so tables
mapped elsewhere on the shared ``metadata`` (tests, benchmarks) or present
in the database for other reasons are left alone.
"""

from __future__ import annotations

import asyncio
from importlib import import_module
from logging.config import fileConfig

from alembic import context
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from adapters.database import metadata, parse_database_url
from adapters.migrate import schema_filters, tables_defined_in

MODULES = ("adapters.ledger.tables", "adapters.outbox", "adapters.inbox")
"""Modules whose tables these migrations manage; importing one puts its tables on
``metadata``. Remove a line together with the package it names."""

config = context.config
if config.config_file_name is not None and config.attributes.get("configure_logger", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

for module in MODULES:
    import_module(module)
include_name, include_object = schema_filters(tables_defined_in(*MODULES))


def _database_url() -> str:
    url = config.attributes.get("database_url")
    if url is None:
        from adapters.settings import load_settings

        url = load_settings().database_url
    parse_database_url(url)
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
