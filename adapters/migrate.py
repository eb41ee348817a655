"""Bring a database's schema up to the latest migration.

The history is a set of Alembic branches: the kernel's own (``kernel``: the
outbox and the inbox, in ``adapters/alembic/versions``) and one per bounded
context, in the folder its ``BoundedContext.migrations`` names, labelled with
the context's name and depending on the kernel's branch. Upgrading goes to
every branch's head, so adding or dropping a context needs no edit here.

The ``keel serve`` and ``keel migrate`` commands call this; so do tests. The
database URL is always passed in (never read from an ini file), the kernel's
scripts are found next to this module, and nothing logged or raised here
contains the password.

    upgrade_to_head("postgresql+asyncpg://app@db/app", locations)   # no event loop running
    await upgrade_to_head_async(url, locations)                      # inside one
    await upgrade_to_head_async(session_manager.engine, locations)   # e.g. in-memory SQLite
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import os
from collections.abc import Collection, Sequence
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
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.script.revision import ResolutionError
from sqlalchemy import Table, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool
from sqlalchemy.schema import SchemaItem

from adapters.database import parse_database_url, safe_url

logger = logging.getLogger(__name__)

SCRIPT_LOCATION = Path(__file__).with_name("alembic")
KERNEL_VERSIONS = SCRIPT_LOCATION / "versions"
KERNEL_BRANCH = "kernel"
KERNEL_TABLE_MODULES = ("adapters.outbox", "adapters.inbox")
"""Modules defining the kernel's own tables, which its branch manages."""

MIGRATION_LOCK_KEY = 0x6B65656C_6D696772
"""The advisory lock every upgrade holds on PostgreSQL ('keelmigr'), so concurrent ones queue."""


class MigrationError(RuntimeError):
    """The migrations could not run; the message names the database without its password."""


def alembic_config(
    url: str | None = None,
    locations: Sequence[Path] = (),
    tables: Collection[str] = (),
) -> Config:
    """An Alembic ``Config`` for the kernel's branch plus the contexts' ``locations``.

    With ``url``, migrations open their own connection to it; without one,
    pass a connection in ``config.attributes["connection"]``. ``tables`` are
    the contexts' table names, which autogenerate compares besides the kernel's.
    """
    config = Config()
    # set_main_option interpolates "%"; a path may contain one.
    config.set_main_option("script_location", str(SCRIPT_LOCATION).replace("%", "%%"))
    config.set_main_option("path_separator", "os")
    folders = [KERNEL_VERSIONS, *locations]
    config.set_main_option(
        "version_locations", os.pathsep.join(str(folder).replace("%", "%%") for folder in folders)
    )
    config.attributes["tables"] = frozenset(tables) | tables_defined_in(*KERNEL_TABLE_MODULES)
    if importlib.util.find_spec("ruff") is not None:
        # A new revision leaves `keel revision` already linted and formatted
        # as the project's own code is (ruff is a development dependency).
        config.set_section_option("post_write_hooks", "hooks", "ruff_fix, ruff_format")
        config.set_section_option("post_write_hooks", "ruff_fix.type", "module")
        config.set_section_option("post_write_hooks", "ruff_fix.module", "ruff")
        config.set_section_option(
            "post_write_hooks", "ruff_fix.options", "check --fix REVISION_SCRIPT_FILENAME"
        )
        config.set_section_option("post_write_hooks", "ruff_format.type", "module")
        config.set_section_option("post_write_hooks", "ruff_format.module", "ruff")
        config.set_section_option(
            "post_write_hooks", "ruff_format.options", "format REVISION_SCRIPT_FILENAME"
        )
    # The caller owns logging; env.py must not reconfigure it from an ini file.
    config.attributes["configure_logger"] = False
    if url is not None:
        config.attributes["database_url"] = url
    return config


def upgrade_to_head(url: str, locations: Sequence[Path] = ()) -> None:
    """Migrate the database at ``url`` to the head of every branch (blocking).

    Call it where no event loop runs (a CLI command before the server
    starts); inside a loop, ``await upgrade_to_head_async(url)`` instead.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(upgrade_to_head_async(url, locations))
        return
    raise RuntimeError(
        "upgrade_to_head() cannot run inside an event loop; use 'await upgrade_to_head_async(url)'"
    )


async def upgrade_to_head_async(target: str | AsyncEngine, locations: Sequence[Path] = ()) -> None:
    """Migrate to the head of the kernel's branch and of each context's in ``locations``.

    Over a URL or an existing engine.

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
            await connection.run_sync(_upgrade_on, alembic_config(locations=locations))
    except (OSError, DBAPIError) as exc:
        password = engine.url.password
        reason = str(exc).replace(str(password), "***") if password else str(exc)
        raise MigrationError(f"cannot migrate {where}: {reason}") from exc
    finally:
        if owned:
            await engine.dispose()


def _upgrade_on(connection: Connection, config: Config) -> None:
    config.attributes["connection"] = connection
    _refuse_unknown_revisions(connection, ScriptDirectory.from_config(config))
    command.upgrade(config, "heads")


def _refuse_unknown_revisions(connection: Connection, script: ScriptDirectory) -> None:
    """Stop with a clear message when the database is at a revision no branch here provides.

    That is what a removed context leaves behind. Forgetting its revision
    silently would make a context taken out by mistake impossible to bring
    back (its tables exist, its first revision would run again), so the
    operator decides, with the statement to run.
    """
    unknown = []
    for revision in MigrationContext.configure(connection).get_current_heads():
        try:
            script.revision_map.get_revision(revision)
        except ResolutionError:
            unknown.append(revision)
    if unknown:
        listed = ", ".join(repr(revision) for revision in unknown)
        raise MigrationError(
            f"the database is at revision {listed}, which no installed context provides "
            "(KEEL_CONTEXTS); if that context was removed on purpose, forget it with "
            f"DELETE FROM alembic_version WHERE version_num IN ({listed}) — its tables are kept"
        )


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
