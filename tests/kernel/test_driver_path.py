"""The driver path: a unit of work's hot statements straight on asyncpg (``adapters.driver``).

The contract suite runs every repository and unit-of-work behaviour on
PostgreSQL, where this path is taken; these tests pin what only it could get
wrong: that it is taken at all, that the objects it reads and writes are left
in the session as the ORM leaves them, and that a driver error reads as
SQLAlchemy's would.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from adapters.driver import ONE_STATEMENT_ARGS, Driver, Fetched
from domain.errors import ConcurrencyError, DuplicateKeyError
from tests.kernel.factories import ThingFactory
from tests.kernel.things import Thing
from tests.kernel.things_uow import SqlAlchemyThingUnitOfWork
from tests.support.databases import SqlDatabase, own_postgres_database

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def postgres_database(postgres_admin_dsn: str) -> AsyncIterator[SqlDatabase]:
    """A database of this module's own: its tests commit, and the contract suite's
    exact listings must never see their rows."""
    async with own_postgres_database(postgres_admin_dsn, "keel_test_driver") as database:
        yield database


@pytest.fixture
def driver_statements(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The first words of every statement sent on the driver path during the test."""
    sent: list[str] = []
    fetch, executemany = Driver.fetch, Driver.executemany

    async def fetching(driver: Driver, sql: str, args: Sequence[Any]) -> Fetched:
        sent.append(" ".join(sql.split()[:3]))
        return await fetch(driver, sql, args)

    async def executing(driver: Driver, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        sent.append(" ".join(sql.split()[:3]))
        await executemany(driver, sql, rows)

    monkeypatch.setattr(Driver, "fetch", fetching)
    monkeypatch.setattr(Driver, "executemany", executing)
    return sent


async def committed(database: SqlDatabase, thing: Thing) -> Thing:
    async with SqlAlchemyThingUnitOfWork(database.session_factory) as uow:
        uow.things.add(thing)
        await uow.commit()
    return thing


async def test_a_locked_read_a_change_and_an_insert_take_the_driver_path(
    postgres_database: SqlDatabase, driver_statements: list[str]
) -> None:
    thing = await committed(postgres_database, ThingFactory.build())
    driver_statements.clear()

    async with SqlAlchemyThingUnitOfWork(postgres_database.session_factory) as uow:
        found = await uow.things.get_for_update(thing.id)
        assert found is not None
        found.increment()
        uow.things.add(ThingFactory.build())
        await uow.commit()

    assert driver_statements == [
        "SELECT kernel_things.id, kernel_things.name,",
        "WITH w0 AS",  # the insert, then the update: one statement, one round trip
    ]


async def test_an_engine_whose_statements_are_watched_keeps_to_sqlalchemys_cursor(
    postgres_database: SqlDatabase, driver_statements: list[str]
) -> None:
    engine = postgres_database.manager.engine.sync_engine
    watched: list[str] = []

    def watch(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        watched.append(statement.split()[0])

    event.listen(engine, "before_cursor_execute", watch)
    try:
        await committed(postgres_database, ThingFactory.build())
    finally:
        event.remove(engine, "before_cursor_execute", watch)

    assert (driver_statements, watched) == ([], ["INSERT"])


async def reread(database: SqlDatabase, thing: Thing) -> tuple[int, int]:
    """The count and version committed for ``thing``."""
    async with SqlAlchemyThingUnitOfWork(database.session_factory) as uow:
        found = await uow.things.get(thing.id)
    assert found is not None
    return found.count, found.version


async def test_a_change_on_the_driver_path_is_kept_with_the_next_version(
    postgres_database: SqlDatabase,
) -> None:
    thing = await committed(postgres_database, ThingFactory.build(count=1))

    async with SqlAlchemyThingUnitOfWork(postgres_database.session_factory) as uow:
        found = await uow.things.get_for_update(thing.id)
        assert found is not None
        found.increment(by=4)
        await uow.commit()

    assert await reread(postgres_database, thing) == (5, 2)


async def test_a_second_commit_in_one_block_writes_against_the_version_of_the_first(
    postgres_database: SqlDatabase,
) -> None:
    thing = await committed(postgres_database, ThingFactory.build(count=0))

    async with SqlAlchemyThingUnitOfWork(postgres_database.session_factory) as uow:
        found = await uow.things.get_for_update(thing.id)
        assert found is not None
        found.increment()
        await uow.commit()
        found.increment()
        await uow.commit()

    assert await reread(postgres_database, thing) == (2, 3)


async def test_an_aggregate_written_by_a_flush_is_forgotten_by_a_rollback(
    postgres_database: SqlDatabase,
) -> None:
    thing = ThingFactory.build()

    async with SqlAlchemyThingUnitOfWork(postgres_database.session_factory) as uow:
        uow.things.add(thing)
        await uow.flush()
        await uow.rollback()
        assert await uow.things.get(thing.id) is None


async def test_a_locked_read_returns_the_held_object_with_the_values_committed_since(
    postgres_database: SqlDatabase,
) -> None:
    thing = await committed(postgres_database, ThingFactory.build(count=1))

    async with SqlAlchemyThingUnitOfWork(postgres_database.session_factory) as uow:
        held = await uow.things.get(thing.id)
        async with postgres_database.manager.engine.begin() as other:
            await other.execute(
                text("UPDATE kernel_things SET count = 7, version = version + 1 WHERE id = :id"),
                {"id": thing.id},
            )
        locked = await uow.things.get_for_update(thing.id)

    assert locked is held
    assert held is not None
    assert (held.count, held.version) == (7, 2)


async def test_a_duplicate_written_on_the_driver_path_is_a_duplicate_key_error(
    postgres_database: SqlDatabase,
) -> None:
    thing = await committed(postgres_database, ThingFactory.build())

    async with SqlAlchemyThingUnitOfWork(postgres_database.session_factory) as uow:
        uow.things.add(ThingFactory.build(id=thing.id))
        with pytest.raises(DuplicateKeyError, match="kernel_things_pkey"):
            await uow.commit()


async def test_a_driver_error_reads_as_sqlalchemys_error(
    postgres_database: SqlDatabase,
) -> None:
    async with postgres_database.session_factory() as session:
        driver = await Driver.of(session)
        assert driver is not None
        with pytest.raises(DBAPIError) as refused:
            await driver.fetch("SELECT 1 / $1::integer", [0])

    assert "division by zero" in str(refused.value)


async def test_a_get_reads_on_the_driver_path_once_then_answers_from_the_session(
    postgres_database: SqlDatabase, driver_statements: list[str]
) -> None:
    thing = await committed(postgres_database, ThingFactory.build())
    driver_statements.clear()

    async with SqlAlchemyThingUnitOfWork(postgres_database.session_factory) as uow:
        first = await uow.things.get(thing.id)
        again = await uow.things.get(thing.id)

    assert first is again
    assert driver_statements == ["SELECT kernel_things.id, kernel_things.name,"]


async def test_a_read_takes_one_connection_for_its_driver_and_its_session_alike(
    postgres_database: SqlDatabase,
) -> None:
    manager = postgres_database.manager
    backend = "SELECT pg_backend_pid()"

    async with SqlAlchemyThingUnitOfWork(manager.read_session_factory) as uow:
        driver = await uow.driver()
        assert driver is not None
        through_driver = (await driver.fetch(backend, [])).rows[0][0]
        through_session = await uow.session.scalar(text(backend))

    assert through_driver == through_session
    assert manager.engine.pool.checkedout() == 0  # type: ignore[attr-defined]


async def test_a_driver_error_shows_no_parameters_when_the_engine_hides_them(
    postgres_database: SqlDatabase,
) -> None:
    engine = create_async_engine(postgres_database.url, hide_parameters=True)
    secret = "s3cret-value"
    try:
        async with AsyncSession(engine) as session:
            driver = await Driver.of(session)
            assert driver is not None
            with pytest.raises(DBAPIError) as refused:
                # Division by zero: the server's message does not repeat the value.
                await driver.fetch("SELECT 1 / (length($1::text) - 12)", [secret])
    finally:
        await engine.dispose()

    assert "division by zero" in str(refused.value)
    assert secret not in str(refused.value)


async def test_a_new_value_longer_than_its_column_is_refused_not_cut(
    postgres_database: SqlDatabase,
) -> None:
    too_long = "x" * 101  # the column is String(100)

    async with SqlAlchemyThingUnitOfWork(postgres_database.session_factory) as uow:
        uow.things.add(ThingFactory.build(name=too_long))
        with pytest.raises(DBAPIError, match="value too long"):
            await uow.commit()


async def test_a_changed_value_longer_than_its_column_is_refused_not_cut(
    postgres_database: SqlDatabase,
) -> None:
    thing = await committed(postgres_database, ThingFactory.build())

    async with SqlAlchemyThingUnitOfWork(postgres_database.session_factory) as uow:
        found = await uow.things.get_for_update(thing.id)
        assert found is not None
        found.rename("x" * 101)
        with pytest.raises(DBAPIError, match="value too long"):
            await uow.commit()


# A changed thing is 5 values (4 columns and the version read), a new one 4: so many
# changed and so many new make exactly the limit.
CHANGED = ONE_STATEMENT_ARGS % 4 or 4
ADDED_AT_THE_LIMIT = (ONE_STATEMENT_ARGS - 5 * CHANGED) // 4


@pytest.mark.parametrize(
    ("added", "statements"),
    [
        (ADDED_AT_THE_LIMIT, ["WITH w0 AS"]),
        (ADDED_AT_THE_LIMIT + 1, ["INSERT INTO kernel_things", "UPDATE kernel_things AS"]),
    ],
    ids=["at-the-limit", "over-it"],
)
async def test_a_commit_goes_as_one_statement_up_to_its_limit_of_values_and_as_several_above(
    postgres_database: SqlDatabase, driver_statements: list[str], added: int, statements: list[str]
) -> None:
    things = [
        await committed(postgres_database, thing) for thing in ThingFactory.build_batch(CHANGED)
    ]

    async with SqlAlchemyThingUnitOfWork(postgres_database.session_factory) as uow:
        locked = [await uow.things.get_for_update(thing.id) for thing in things]
        for found in locked:  # after the reads, which would flush each change before them
            assert found is not None
            found.increment()
        for new in ThingFactory.build_batch(added):
            uow.things.add(new)
        driver_statements.clear()
        await uow.commit()

    assert driver_statements == statements


async def test_a_commit_that_changes_more_rows_than_one_statement_takes_keeps_them_all(
    postgres_database: SqlDatabase,
) -> None:
    # 5 values per changed row: 7,000 rows are more than PostgreSQL's 32,767 parameters.
    things = ThingFactory.build_batch(7000, name="many")
    async with SqlAlchemyThingUnitOfWork(postgres_database.session_factory) as uow:
        await uow.things.add_many(things)
        await uow.commit()

    async with SqlAlchemyThingUnitOfWork(postgres_database.session_factory) as uow:
        found = await uow.things.list(where={"name": "many"})
        for thing in found:
            thing.increment()
        await uow.commit()

    async with SqlAlchemyThingUnitOfWork(postgres_database.session_factory) as uow:
        counts = {thing.count for thing in await uow.things.list(where={"name": "many"})}
    assert (len(found), counts) == (7000, {1})


async def test_a_read_on_a_watched_engine_runs_its_session_on_the_connection_it_holds(
    postgres_database: SqlDatabase,
) -> None:
    manager = postgres_database.manager
    pool = manager.engine.pool
    engine = manager.engine.sync_engine
    watched: list[str] = []

    def watch(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        watched.append(statement)

    event.listen(engine, "before_cursor_execute", watch)
    try:
        async with SqlAlchemyThingUnitOfWork(manager.read_session_factory) as uow:
            driver = await uow.driver()  # none, but the read has taken its connection
            await uow.session.scalar(text("SELECT 1"))
            connections = pool.checkedout()  # type: ignore[attr-defined]
    finally:
        event.remove(engine, "before_cursor_execute", watch)

    assert (driver, connections, watched) == (None, 1, ["SELECT 1"])
    assert pool.checkedout() == 0  # type: ignore[attr-defined]


async def test_a_stale_change_written_in_one_statement_with_an_insert_keeps_neither(
    postgres_database: SqlDatabase, driver_statements: list[str]
) -> None:
    thing = await committed(postgres_database, ThingFactory.build(count=1))
    newcomer = ThingFactory.build()

    async with SqlAlchemyThingUnitOfWork(postgres_database.session_factory) as uow:
        found = await uow.things.get(thing.id)
        assert found is not None
        async with postgres_database.manager.engine.begin() as other:
            await other.execute(
                text("UPDATE kernel_things SET version = version + 1 WHERE id = :id"),
                {"id": thing.id},
            )
        found.increment()
        uow.things.add(newcomer)
        with pytest.raises(ConcurrencyError):
            await uow.commit()

    assert driver_statements[-1] == "WITH w0 AS"  # the insert and the update, together
    async with SqlAlchemyThingUnitOfWork(postgres_database.session_factory) as uow:
        assert await uow.things.get(newcomer.id) is None
    assert await reread(postgres_database, thing) == (1, 2)
