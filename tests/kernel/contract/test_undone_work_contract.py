"""Undone work leaves nothing behind: no event, no callback — on the fake, PostgreSQL and SQLite.

A ``rollback()``, a failed ``commit()`` and a savepoint whose body raised each
undo some work; the events raised and the ``on_commit`` callbacks registered
by that work must go with it, or the outbox would announce a change that
never happened. :class:`RecordingHook` stands in for the outbox.
"""

from __future__ import annotations

import pytest

from domain.errors import DuplicateKeyError
from tests.kernel.contract.conftest import AsyncUowFactory
from tests.kernel.contract.recording import hooked
from tests.kernel.contract.steps import in_failing_savepoint, load, store
from tests.kernel.factories import ThingFactory


async def test_events_raised_in_a_rolled_back_savepoint_are_never_published(
    async_uow_factory: AsyncUowFactory,
) -> None:
    thing = ThingFactory.build(name="committed")
    await store(async_uow_factory, thing)
    uow, hook = hooked(async_uow_factory())

    async with uow:
        found = await uow.things.get(thing.id)
        assert found is not None
        await in_failing_savepoint(uow, lambda: found.rename("undone"))
        await uow.commit()

    assert hook.handed == [[]]
    assert hook.published == []
    assert uow.collect_committed_events() == []


async def test_events_raised_before_a_failed_savepoint_are_still_published(
    async_uow_factory: AsyncUowFactory,
) -> None:
    thing = ThingFactory.build()
    await store(async_uow_factory, thing)
    uow, hook = hooked(async_uow_factory())

    async with uow:
        found = await uow.things.get(thing.id)
        assert found is not None
        found.rename("kept")
        await in_failing_savepoint(uow, lambda: found.rename("undone"))
        await uow.commit()

    assert hook.published_names() == ["kept"]


async def test_events_raised_in_a_released_savepoint_are_published(
    async_uow_factory: AsyncUowFactory,
) -> None:
    thing = ThingFactory.build()
    await store(async_uow_factory, thing)
    uow, hook = hooked(async_uow_factory())

    async with uow:
        found = await uow.things.get(thing.id)
        assert found is not None
        async with uow.savepoint():
            found.rename("released")
        await uow.commit()

    assert hook.published_names() == ["released"]


async def test_an_aggregate_added_in_a_failed_savepoint_publishes_nothing(
    async_uow_factory: AsyncUowFactory,
) -> None:
    uow, hook = hooked(async_uow_factory())

    async with uow:
        added = ThingFactory.build()

        def rename_and_add() -> None:
            added.rename("never added")
            uow.things.add(added)

        await in_failing_savepoint(uow, rename_and_add)
        await uow.commit()

    assert hook.published == []


async def test_events_raised_before_rollback_are_never_published(
    async_uow_factory: AsyncUowFactory,
) -> None:
    thing = ThingFactory.build()
    await store(async_uow_factory, thing)
    uow, hook = hooked(async_uow_factory())

    async with uow:
        found = await uow.things.get(thing.id)
        assert found is not None
        found.rename("undone")
        await uow.rollback()
        await uow.commit()

    assert hook.handed == [[]]
    assert hook.published == []


async def test_after_rollback_an_aggregate_read_again_publishes_its_new_events(
    async_uow_factory: AsyncUowFactory,
) -> None:
    thing = ThingFactory.build(name="committed")
    await store(async_uow_factory, thing)
    uow, hook = hooked(async_uow_factory())

    async with uow:
        found = await uow.things.get(thing.id)
        assert found is not None
        found.rename("undone")
        await uow.rollback()
        again = await uow.things.get(thing.id)
        assert again is not None
        assert again.name == "committed"
        again.rename("done")
        await uow.commit()

    assert hook.published_names() == ["done"]
    stored = await load(async_uow_factory, thing.id)
    assert stored is not None
    assert stored.name == "done"


async def test_events_of_a_failed_commit_are_not_published_by_a_later_commit(
    async_uow_factory: AsyncUowFactory,
) -> None:
    existing = ThingFactory.build()
    await store(async_uow_factory, existing)
    uow, hook = hooked(async_uow_factory())

    async with uow:
        refused = ThingFactory.build(id=existing.id)
        refused.rename("refused")
        uow.things.add(refused)
        with pytest.raises(DuplicateKeyError):
            await uow.commit()
        fresh = ThingFactory.build()
        fresh.rename("fresh")
        uow.things.add(fresh)
        await uow.commit()

    assert hook.handed == [[f"{existing.id}:refused"], [f"{fresh.id}:fresh"]]
    assert hook.published_names() == ["fresh"]


async def test_on_commit_callbacks_of_a_failed_commit_never_run_after_a_later_commit(
    async_uow_factory: AsyncUowFactory,
) -> None:
    existing = ThingFactory.build()
    await store(async_uow_factory, existing)
    calls: list[str] = []

    async with async_uow_factory() as uow:
        uow.things.add(ThingFactory.build(id=existing.id))
        uow.on_commit(lambda: calls.append("of the failed commit"))
        with pytest.raises(DuplicateKeyError):
            await uow.commit()
        uow.things.add(ThingFactory.build())
        uow.on_commit(lambda: calls.append("of the later commit"))
        await uow.commit()

    assert calls == ["of the later commit"]


async def test_callbacks_a_hook_queued_for_a_failed_commit_are_dropped_with_it(
    async_uow_factory: AsyncUowFactory,
) -> None:
    existing = ThingFactory.build()
    await store(async_uow_factory, existing)
    uow, hook = hooked(async_uow_factory())

    async with uow:
        refused = ThingFactory.build(id=existing.id)
        refused.rename("refused")
        uow.things.add(refused)
        with pytest.raises(DuplicateKeyError):
            await uow.commit()
        await uow.commit()

    assert len(hook.handed) == 2
    assert hook.published == []


async def test_on_commit_callbacks_registered_in_a_failed_savepoint_never_run(
    async_uow_factory: AsyncUowFactory,
) -> None:
    calls: list[str] = []

    async with async_uow_factory() as uow:
        uow.on_commit(lambda: calls.append("before"))
        await in_failing_savepoint(uow, lambda: uow.on_commit(lambda: calls.append("inside")))
        await uow.commit()

    assert calls == ["before"]
