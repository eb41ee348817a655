"""Optimistic versioning: the same guarantees from the fake, PostgreSQL and SQLite.

Tests with two units of work at once use ``committing_uow_factory``: they need
two real transactions, which one shared outer transaction cannot provide.
Marks come from the backend fixtures' parameters (``unit`` for the fake,
``integration`` for the databases).
"""

from __future__ import annotations

from uuid import UUID

import pytest

from domain.errors import ConcurrencyError, DuplicateKeyError
from tests.kernel.contract.conftest import AsyncUowFactory, UowFactory
from tests.kernel.contract.steps import load, names, store
from tests.kernel.factories import ThingFactory
from tests.kernel.things_uow import ThingUnitOfWork


async def test_version_is_1_after_the_first_commit(uow_factory: UowFactory) -> None:
    thing = ThingFactory.build()
    await store(uow_factory, thing)

    stored = await load(uow_factory, thing.id)

    assert stored is not None
    assert (thing.version, stored.version) == (1, 1)


async def test_version_goes_up_by_one_with_each_committed_change(
    uow_factory: UowFactory,
) -> None:
    thing = ThingFactory.build()
    await store(uow_factory, thing)

    for _ in range(2):
        async with uow_factory() as uow:
            found = await uow.things.get(thing.id)
            assert found is not None
            found.increment()
            await uow.commit()

    stored = await load(uow_factory, thing.id)
    assert stored is not None
    assert (stored.count, stored.version) == (2, 3)


async def test_committing_an_unchanged_aggregate_keeps_its_version(
    uow_factory: UowFactory,
) -> None:
    thing = ThingFactory.build()
    await store(uow_factory, thing)

    async with uow_factory() as uow:
        found = await uow.things.get(thing.id)
        assert found is not None
        await uow.commit()

    stored = await load(uow_factory, thing.id)
    assert stored is not None
    assert stored.version == 1


async def test_a_stale_write_raises_concurrency_error_and_keeps_nothing(
    committing_uow_factory: UowFactory,
) -> None:
    thing = ThingFactory.build(count=0)
    await store(committing_uow_factory, thing)

    async with committing_uow_factory() as loser:
        stale = await loser.things.get(thing.id)
        assert stale is not None

        async with committing_uow_factory() as winner:
            fresh = await winner.things.get(thing.id)
            assert fresh is not None
            fresh.increment(10)
            await winner.commit()

        stale.increment(1)
        loser.things.add(ThingFactory.build(name="staged by the loser"))
        with pytest.raises(ConcurrencyError) as raised:
            await loser.commit()

    assert raised.value.code == "concurrent_update"
    stored = await load(committing_uow_factory, thing.id)
    assert stored is not None
    assert (stored.count, stored.version) == (10, 2)
    assert "staged by the loser" not in await names(committing_uow_factory)


async def test_removing_a_stale_aggregate_raises_concurrency_error(
    committing_uow_factory: UowFactory,
) -> None:
    thing = ThingFactory.build(count=0)
    await store(committing_uow_factory, thing)

    async with committing_uow_factory() as loser:
        stale = await loser.things.get(thing.id)
        assert stale is not None

        async with committing_uow_factory() as winner:
            fresh = await winner.things.get(thing.id)
            assert fresh is not None
            fresh.increment(10)
            await winner.commit()

        await loser.things.remove(stale)
        with pytest.raises(ConcurrencyError):
            await loser.commit()

    stored = await load(committing_uow_factory, thing.id)
    assert stored is not None
    assert stored.count == 10


async def test_a_released_savepoint_keeps_nothing_when_the_block_ends_without_commit(
    committing_uow_factory: UowFactory,
) -> None:
    # Run with real commits: on SQLite a savepoint opened before any write used
    # to become the outermost transaction, and its release committed for good.
    thing = ThingFactory.build(name="committed")
    await store(committing_uow_factory, thing)

    async with committing_uow_factory() as uow:
        found = await uow.things.get(thing.id)
        assert found is not None
        async with uow.savepoint():
            found.name = "released"

    assert await names(committing_uow_factory) == {"committed"}


async def _lose_a_race(
    factory: AsyncUowFactory,
    thing_id: UUID,
    *,
    add_first: bool,
    loser: ThingUnitOfWork | None = None,
) -> None:
    """Read ``thing_id``, let another writer change it, then write it: the stale write."""
    loser = loser or factory()
    async with loser:
        if add_first:
            loser.things.add(ThingFactory.build(name="added before the stale write"))
        stale = await loser.things.get(thing_id)
        assert stale is not None
        async with factory() as winner:
            fresh = await winner.things.get(thing_id)
            assert fresh is not None
            fresh.increment(10)
            await winner.commit()
        stale.increment(1)
        await loser.commit()


async def test_a_stale_write_is_a_plain_conflict_counted_once_not_a_duplicate_key(
    async_committing_uow_factory: AsyncUowFactory,
) -> None:
    thing = ThingFactory.build(count=0)
    await store(async_committing_uow_factory, thing)
    loser = async_committing_uow_factory()

    with pytest.raises(ConcurrencyError) as raised:
        await _lose_a_race(async_committing_uow_factory, thing.id, add_first=False, loser=loser)

    assert not isinstance(raised.value, DuplicateKeyError)
    assert "was changed" in str(raised.value) or "changed or removed" in str(raised.value)
    assert loser.conflicts == 1


async def test_a_stale_write_is_refused_after_a_new_aggregate_was_added_earlier_in_the_block(
    row_locking_uow_factory: AsyncUowFactory,
) -> None:
    factory = row_locking_uow_factory
    thing = ThingFactory.build(count=0)
    await store(factory, thing)

    with pytest.raises(ConcurrencyError):
        await _lose_a_race(factory, thing.id, add_first=True)

    stored = await load(factory, thing.id)
    assert stored is not None
    assert stored.count == 10
    assert "added before the stale write" not in await names(factory)


async def test_a_unit_of_work_that_lost_no_race_counts_no_conflict(
    async_uow_factory: AsyncUowFactory,
) -> None:
    uow = async_uow_factory()
    async with uow:
        uow.things.add(ThingFactory.build())
        await uow.commit()

    assert uow.conflicts == 0
