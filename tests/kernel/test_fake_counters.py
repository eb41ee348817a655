"""The fake's counters mean what they say, so that tests asserting on them do too.

``commits`` counts commits that succeeded; ``rollbacks`` every transaction
that ended without one (an explicit rollback, a failed commit, a block left
with work since its last commit — whatever was staged); ``accessed`` every
repository reached.
"""

from __future__ import annotations

import pytest

from domain.errors import DuplicateKeyError
from tests.kernel.contract.steps import store
from tests.kernel.factories import ThingFactory
from tests.kernel.things import Thing
from tests.kernel.things_uow import InMemoryThingUnitOfWork

pytestmark = pytest.mark.unit


async def test_a_block_left_without_commit_counts_a_rollback_even_with_nothing_staged() -> None:
    uow = InMemoryThingUnitOfWork()

    async with uow:
        pass

    assert (uow.commits, uow.rollbacks) == (0, 1)


async def test_a_block_that_ends_on_its_commit_counts_no_rollback() -> None:
    uow = InMemoryThingUnitOfWork()

    async with uow:
        uow.things.add(ThingFactory.build())
        await uow.commit()

    assert (uow.commits, uow.rollbacks) == (1, 0)


async def test_a_block_that_reads_after_its_commit_counts_a_rollback_too() -> None:
    uow = InMemoryThingUnitOfWork()
    thing = ThingFactory.build()

    async with uow:
        uow.things.add(thing)
        await uow.commit()
        await uow.things.get(thing.id)

    assert (uow.commits, uow.rollbacks) == (1, 1)


async def test_an_explicit_rollback_is_counted_once() -> None:
    uow = InMemoryThingUnitOfWork()

    async with uow:
        uow.things.add(ThingFactory.build())
        await uow.rollback()

    assert (uow.commits, uow.rollbacks) == (0, 1)


async def test_each_failed_commit_counts_a_rollback() -> None:
    existing = ThingFactory.build()
    uow = InMemoryThingUnitOfWork()
    await store(lambda: uow, existing)

    for _ in range(2):
        async with uow:
            uow.things.add(ThingFactory.build(id=existing.id))
            with pytest.raises(DuplicateKeyError):
                await uow.commit()

    assert (uow.commits, uow.rollbacks) == (1, 2)


async def test_commits_are_counted_one_by_one() -> None:
    uow = InMemoryThingUnitOfWork()

    for _ in range(2):
        async with uow:
            uow.things.add(ThingFactory.build())
            await uow.commit()

    assert uow.commits == 2


async def test_every_repository_reached_is_recorded() -> None:
    uow = InMemoryThingUnitOfWork()

    async with uow:
        await uow.things.list()

    assert uow.accessed == [Thing]


async def test_a_unit_of_work_never_entered_records_no_access() -> None:
    uow = InMemoryThingUnitOfWork()

    assert (uow.accessed, uow.commits, uow.rollbacks) == ([], 0, 0)
