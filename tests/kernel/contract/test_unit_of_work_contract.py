"""The unit-of-work contract: the fake, PostgreSQL and SQLite behave alike.

Marks come from the ``backend`` fixture's parameters (``unit`` for the fake,
``integration`` for the databases).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

import pytest

from domain.errors import DuplicateKeyError
from service_layer.unit_of_work import UnitOfWorkError
from tests.kernel.contract.conftest import AsyncUowFactory, UowFactory
from tests.kernel.contract.recording import hooked
from tests.kernel.contract.steps import in_failing_savepoint, load, names, store
from tests.kernel.factories import ThingFactory
from tests.kernel.things import ThingRenamed
from tests.kernel.things_uow import ThingUnitOfWork


class Boom(Exception):
    """Raised by a test on purpose."""


async def test_leaving_the_block_without_commit_keeps_nothing(uow_factory: UowFactory) -> None:
    async with uow_factory() as uow:
        uow.things.add(ThingFactory.build(name="uncommitted"))

    assert await names(uow_factory) == set()


async def test_changes_to_a_loaded_aggregate_without_commit_are_not_kept(
    uow_factory: UowFactory,
) -> None:
    thing = ThingFactory.build(name="before")
    await store(uow_factory, thing)

    async with uow_factory() as uow:
        found = await uow.things.get(thing.id)
        assert found is not None
        found.name = "after"

    assert await names(uow_factory) == {"before"}


async def test_an_exception_inside_the_block_rolls_back_and_propagates(
    uow_factory: UowFactory,
) -> None:
    async def add_then_fail() -> None:
        async with uow_factory() as uow:
            uow.things.add(ThingFactory.build())
            raise Boom

    with pytest.raises(Boom):
        await add_then_fail()

    assert await names(uow_factory) == set()


async def test_an_exception_after_commit_keeps_what_was_committed_only(
    uow_factory: UowFactory,
) -> None:
    async def commit_stage_then_fail() -> None:
        async with uow_factory() as uow:
            uow.things.add(ThingFactory.build(name="committed"))
            await uow.commit()
            uow.things.add(ThingFactory.build(name="staged"))
            raise Boom

    with pytest.raises(Boom):
        await commit_stage_then_fail()

    assert await names(uow_factory) == {"committed"}


async def test_aggregates_read_in_a_block_stay_readable_after_it(
    uow_factory: UowFactory,
) -> None:
    thing = ThingFactory.build(name="readable", count=7)
    await store(uow_factory, thing)

    found = await load(uow_factory, thing.id)

    assert found is not None
    assert (found.name, found.count) == ("readable", 7)


async def test_repositories_refuse_to_work_after_the_block(uow_factory: UowFactory) -> None:
    uow = uow_factory()
    async with uow:
        pass

    with pytest.raises(UnitOfWorkError, match=r"inside '(async )?with uow:'"):
        uow.things.add(ThingFactory.build())


async def test_repositories_refuse_to_work_before_the_block(uow_factory: UowFactory) -> None:
    with pytest.raises(UnitOfWorkError, match="needs an active unit of work"):
        await uow_factory().things.get(ThingFactory.build().id)


async def test_commit_is_refused_outside_the_block(uow_factory: UowFactory) -> None:
    uow = uow_factory()
    async with uow:
        pass

    with pytest.raises(UnitOfWorkError, match="commit needs an active unit of work"):
        await uow.commit()


async def test_blocks_do_not_nest(uow_factory: UowFactory) -> None:
    uow = uow_factory()
    async with uow:
        with pytest.raises(UnitOfWorkError, match="already active"):
            await uow.__aenter__()


async def test_entering_again_starts_a_fresh_transaction(uow_factory: UowFactory) -> None:
    uow = uow_factory()
    async with uow:
        uow.things.add(ThingFactory.build(name="abandoned"))

    async with uow:
        assert await uow.things.list() == []
        uow.things.add(ThingFactory.build(name="second"))
        await uow.commit()

    assert await names(uow_factory) == {"second"}


async def test_explicit_rollback_discards_staged_work_and_the_block_goes_on(
    uow_factory: UowFactory,
) -> None:
    async with uow_factory() as uow:
        uow.things.add(ThingFactory.build(name="discarded"))
        await uow.rollback()
        uow.things.add(ThingFactory.build(name="kept"))
        await uow.commit()

    assert await names(uow_factory) == {"kept"}


async def test_after_explicit_rollback_get_returns_the_committed_values(
    uow_factory: UowFactory,
) -> None:
    thing = ThingFactory.build(name="committed")
    await store(uow_factory, thing)

    async with uow_factory() as uow:
        found = await uow.things.get(thing.id)
        assert found is not None
        found.name = "changed"
        await uow.rollback()
        again = await uow.things.get(thing.id)

    assert again is not None
    assert again.name == "committed"


async def test_on_commit_callbacks_run_after_a_successful_commit(
    uow_factory: UowFactory,
) -> None:
    calls: list[str] = []

    async def notify() -> None:
        calls.append("async")

    async with uow_factory() as uow:
        uow.things.add(ThingFactory.build())
        uow.on_commit(lambda: calls.append("sync"))
        uow.on_commit(notify)
        assert calls == []
        await uow.commit()

    assert calls == ["sync", "async"]


async def test_on_commit_callbacks_never_run_after_leaving_without_commit(
    uow_factory: UowFactory,
) -> None:
    calls: list[str] = []
    async with uow_factory() as uow:
        uow.on_commit(lambda: calls.append("ran"))

    assert calls == []


async def test_on_commit_callbacks_are_dropped_by_an_explicit_rollback(
    uow_factory: UowFactory,
) -> None:
    calls: list[str] = []
    async with uow_factory() as uow:
        uow.on_commit(lambda: calls.append("ran"))
        await uow.rollback()
        await uow.commit()

    assert calls == []


async def test_on_commit_callbacks_never_run_when_the_commit_fails(
    uow_factory: UowFactory,
) -> None:
    existing = ThingFactory.build()
    await store(uow_factory, existing)
    calls: list[str] = []

    async with uow_factory() as uow:
        uow.things.add(ThingFactory.build(id=existing.id))
        uow.on_commit(lambda: calls.append("ran"))
        with pytest.raises(DuplicateKeyError):
            await uow.commit()

    assert calls == []


async def test_a_failing_on_commit_callback_does_not_undo_the_commit(
    uow_factory: UowFactory, caplog: pytest.LogCaptureFixture
) -> None:
    def broken() -> None:
        raise Boom

    async with uow_factory() as uow:
        uow.things.add(ThingFactory.build(name="kept"))
        uow.on_commit(broken)
        await uow.commit()

    assert await names(uow_factory) == {"kept"}
    assert "on_commit callback" in caplog.text


async def test_collect_new_events_drains_the_events_of_seen_aggregates(
    uow_factory: UowFactory,
) -> None:
    loaded, added = ThingFactory.build(), ThingFactory.build()
    await store(uow_factory, loaded)

    async with uow_factory() as uow:
        found = await uow.things.get(loaded.id)
        assert found is not None
        found.rename("loaded")
        uow.things.add(added)
        added.rename("added")
        await uow.commit()
        events = list(uow.collect_new_events())
        again = list(uow.collect_new_events())

    assert {(e.thing_id, e.name) for e in events if isinstance(e, ThingRenamed)} == {
        (loaded.id, "loaded"),
        (added.id, "added"),
    }
    assert again == []


async def test_events_of_aggregates_found_by_list_are_collected(
    uow_factory: UowFactory,
) -> None:
    await store(uow_factory, ThingFactory.build())

    async with uow_factory() as uow:
        (found,) = await uow.things.list()
        found.rename("listed")
        events = list(uow.collect_new_events())

    assert [e.name for e in events if isinstance(e, ThingRenamed)] == ["listed"]


async def test_a_savepoint_that_fails_undoes_only_its_own_work(uow_factory: UowFactory) -> None:
    thing = ThingFactory.build(name="committed", count=0)
    await store(uow_factory, thing)

    async with uow_factory() as uow:
        found = await uow.things.get(thing.id)
        assert found is not None
        found.count = 1

        async def change_in_savepoint_then_fail() -> None:
            async with uow.savepoint():
                found.count = 2
                found.name = "inside savepoint"
                uow.things.add(ThingFactory.build(name="added in savepoint"))
                raise Boom

        with pytest.raises(Boom):
            await change_in_savepoint_then_fail()
        assert (found.name, found.count) == ("committed", 1)
        await uow.commit()

    stored = await load(uow_factory, thing.id)
    assert stored is not None
    assert (stored.name, stored.count) == ("committed", 1)
    assert await names(uow_factory) == {"committed"}


async def test_work_of_a_released_savepoint_is_kept_on_commit(uow_factory: UowFactory) -> None:
    async with uow_factory() as uow:
        async with uow.savepoint():
            uow.things.add(ThingFactory.build(name="in savepoint"))
        await uow.commit()

    assert await names(uow_factory) == {"in savepoint"}


async def test_work_of_a_released_savepoint_is_discarded_without_commit(
    uow_factory: UowFactory,
) -> None:
    thing = ThingFactory.build(name="committed")
    await store(uow_factory, thing)

    async with uow_factory() as uow:
        found = await uow.things.get(thing.id)
        assert found is not None
        async with uow.savepoint():
            found.name = "released"

    assert await names(uow_factory) == {"committed"}


@pytest.mark.parametrize(
    ("what", "use"),
    [
        ("rollback", lambda uow: uow.rollback()),
        ("on_commit", lambda uow: uow.on_commit(lambda: None)),
        ("savepoint", lambda uow: uow.savepoint().__aenter__()),
        ("a repository", lambda uow: uow.things),
    ],
    ids=["rollback", "on_commit", "savepoint", "repository"],
)
async def test_the_transaction_controls_are_refused_outside_the_block_by_name(
    async_uow_factory: AsyncUowFactory, what: str, use: Callable[[ThingUnitOfWork], object]
) -> None:
    uow = async_uow_factory()
    async with uow:
        pass

    async def attempt() -> None:
        done = use(uow)
        if inspect.isawaitable(done):
            await done

    with pytest.raises(UnitOfWorkError) as raised:
        await attempt()

    assert str(raised.value) == (
        f"{what} needs an active unit of work; use it inside 'async with uow:'"
    )


async def test_nesting_a_block_is_refused_with_the_way_out(uow_factory: UowFactory) -> None:
    uow = uow_factory()
    async with uow:
        with pytest.raises(UnitOfWorkError) as raised:
            await uow.__aenter__()

    assert str(raised.value) == (
        "this unit of work is already active; blocks do not nest (use savepoint())"
    )


async def test_an_on_commit_callback_of_a_block_left_without_commit_never_runs_later(
    uow_factory: UowFactory,
) -> None:
    calls: list[str] = []
    uow = uow_factory()
    async with uow:
        uow.on_commit(lambda: calls.append("abandoned"))

    async with uow:
        uow.things.add(ThingFactory.build())
        await uow.commit()

    assert calls == []


async def test_a_second_commit_in_one_block_hands_only_the_new_events_to_the_hooks(
    async_uow_factory: AsyncUowFactory,
) -> None:
    thing = ThingFactory.build()
    await store(async_uow_factory, thing)
    uow, hook = hooked(async_uow_factory())

    async with uow:
        found = await uow.things.get(thing.id)
        assert found is not None
        found.rename("first")
        await uow.commit()
        found.rename("second")
        await uow.commit()

    assert [[entry.split(":")[1] for entry in handed] for handed in hook.handed] == [
        ["first"],
        ["second"],
    ]
    assert [e.name for e in uow.collect_committed_events() if isinstance(e, ThingRenamed)] == [
        "first",
        "second",
    ]


async def test_a_second_commit_in_one_block_keeps_the_second_change_too(
    uow_factory: UowFactory,
) -> None:
    thing = ThingFactory.build(count=0)
    await store(uow_factory, thing)

    async with uow_factory() as uow:
        found = await uow.things.get(thing.id)
        assert found is not None
        found.increment()
        await uow.commit()
        found.increment()
        await uow.commit()

    stored = await load(uow_factory, thing.id)
    assert stored is not None
    assert (stored.count, stored.version) == (2, 3)


async def test_an_aggregate_reached_by_get_and_then_list_hands_its_events_once(
    async_uow_factory: AsyncUowFactory,
) -> None:
    thing = ThingFactory.build()
    await store(async_uow_factory, thing)
    uow, hook = hooked(async_uow_factory())

    async with uow:
        found = await uow.things.get(thing.id)
        assert found is not None
        (listed,) = await uow.things.list()
        assert listed is found
        found.rename("once")
        await uow.commit()

    assert hook.handed == [[f"{thing.id}:once"]]


async def test_collecting_committed_events_leaves_the_uncommitted_ones_to_collect_new_events(
    async_uow_factory: AsyncUowFactory,
) -> None:
    thing = ThingFactory.build()
    await store(async_uow_factory, thing)

    async with async_uow_factory() as uow:
        found = await uow.things.get(thing.id)
        assert found is not None
        found.rename("committed")
        await uow.commit()
        found.rename("staged")
        committed = uow.collect_committed_events()
        new = list(uow.collect_new_events())

    assert [e.name for e in committed if isinstance(e, ThingRenamed)] == ["committed"]
    assert [e.name for e in new if isinstance(e, ThingRenamed)] == ["staged"]


async def test_a_remove_inside_a_failed_savepoint_is_undone(
    async_uow_factory: AsyncUowFactory,
) -> None:
    thing = ThingFactory.build(name="survivor")
    await store(async_uow_factory, thing)

    async with async_uow_factory() as uow:
        found = await uow.things.get(thing.id)
        assert found is not None
        await in_failing_savepoint(uow, lambda: uow.things.remove(found))
        assert await uow.things.get(thing.id) is found
        await uow.commit()

    assert await names(async_uow_factory) == {"survivor"}


async def test_a_repository_first_used_in_a_failed_savepoint_undoes_its_work_and_error_escapes(
    async_uow_factory: AsyncUowFactory,
) -> None:
    async with async_uow_factory() as uow:
        await in_failing_savepoint(uow, lambda: uow.things.add(ThingFactory.build(name="undone")))
        uow.things.add(ThingFactory.build(name="kept"))
        await uow.commit()

    assert await names(async_uow_factory) == {"kept"}


async def test_changes_after_a_failed_savepoint_to_an_aggregate_read_before_it_are_kept(
    async_uow_factory: AsyncUowFactory,
) -> None:
    thing = ThingFactory.build(count=0)
    await store(async_uow_factory, thing)

    async with async_uow_factory() as uow:
        found = await uow.things.get(thing.id)
        assert found is not None
        await in_failing_savepoint(uow, found.increment)
        found.increment(5)
        await uow.commit()

    stored = await load(async_uow_factory, thing.id)
    assert stored is not None
    assert stored.count == 5


async def test_a_failing_on_commit_callback_is_logged_by_name(
    async_uow_factory: AsyncUowFactory, caplog: pytest.LogCaptureFixture
) -> None:
    def broken_notification() -> None:
        raise Boom

    async with async_uow_factory() as uow:
        uow.on_commit(broken_notification)
        await uow.commit()

    (record,) = [r for r in caplog.records if r.name == "service_layer.unit_of_work"]
    assert record.getMessage() == (
        f"on_commit callback {broken_notification!r} failed after a successful commit"
    )
    assert record.exc_info is not None


async def test_a_refused_duplicate_carries_the_unique_violation_sqlstate(
    async_uow_factory: AsyncUowFactory,
) -> None:
    existing = ThingFactory.build()
    await store(async_uow_factory, existing)

    async with async_uow_factory() as uow:
        uow.things.add(ThingFactory.build(id=existing.id))
        with pytest.raises(DuplicateKeyError) as raised:
            await uow.commit()

    assert raised.value.sqlstate == "23505"
    assert uow.conflicts == 1
