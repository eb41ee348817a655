"""A duplicate key under the retry, on the fake, PostgreSQL and SQLite.

A lost check-then-insert race is resolved by one retry; a duplicate that is
still there on that retry is a permanent clash and surfaces as the domain's
``AlreadyExists`` naming the key, without burning the other attempts.
"""

from __future__ import annotations

import pytest

from domain.errors import AlreadyExists, DuplicateKeyError
from service_layer.retry import RetryPolicy, retrying
from tests.kernel.contract.conftest import UowFactory
from tests.kernel.contract.steps import store
from tests.kernel.factories import ThingFactory

PATIENT = RetryPolicy(attempts=5, base_delay=0, max_delay=0)


async def test_a_permanent_duplicate_surfaces_as_already_exists_after_one_retry(
    uow_factory: UowFactory,
) -> None:
    existing = ThingFactory.build()
    await store(uow_factory, existing)
    attempts = 0

    async def insert_the_same_id() -> None:
        nonlocal attempts
        attempts += 1
        async with uow_factory() as uow:
            uow.things.add(ThingFactory.build(id=existing.id))
            await uow.commit()

    with pytest.raises(AlreadyExists) as raised:
        await retrying(insert_the_same_id, PATIENT)

    assert attempts == 2
    assert isinstance(raised.value.__cause__, DuplicateKeyError)


async def test_a_duplicate_key_error_names_the_refused_key(uow_factory: UowFactory) -> None:
    existing = ThingFactory.build()
    await store(uow_factory, existing)

    async with uow_factory() as uow:
        uow.things.add(ThingFactory.build(id=existing.id))
        with pytest.raises(DuplicateKeyError) as raised:
            await uow.commit()

    assert any(
        key in raised.value.detail for key in ("kernel_things_pkey", "kernel_things.id", "Thing")
    )
