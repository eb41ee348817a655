"""How the ledger's unit of work reads the database's unique-key refusals.

A violated idempotency key means a concurrent twin won the race: it becomes
a retryable ``ConcurrencyError``. Any other integrity error is a bug and
propagates as it is. Checked on both backends, whose errors look different.
"""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import uuid4

import pytest
from sqlalchemy.exc import IntegrityError

from domain.errors import ConcurrencyError
from domain.ledger.account import Entry, EntryKind
from domain.ledger.commands import TransferFunds
from domain.ledger.transfer import Transfer
from service_layer.ledger import handlers
from tests.ledger.conftest import SqlUowFactory
from tests.ledger.factories import TransferArgs, open_funded_account

pytestmark = pytest.mark.integration


async def _store(uow_factory: SqlUowFactory, record: Transfer | Entry) -> None:
    async with uow_factory() as uow:
        if isinstance(record, Transfer):
            uow.transfers.add(record)
        else:
            uow.entries.add(record)
        await uow.commit()


async def test_a_duplicate_transfer_reference_is_a_retryable_conflict(
    sql_uow_factory: SqlUowFactory,
) -> None:
    source = await open_funded_account(sql_uow_factory(), 100)
    target = await open_funded_account(sql_uow_factory())
    first = await handlers.transfer(
        TransferFunds(source_id=source.id, target_id=target.id, **TransferArgs.build()),
        sql_uow_factory(),
    )
    twin = Transfer(
        id=uuid4(),
        source_id=source.id,
        target_id=target.id,
        amount=1,
        currency="EUR",
        reference=first.value.reference,
        created_at=datetime.now(UTC),
    )

    with pytest.raises(ConcurrencyError, match="uq_ledger_transfers_source_reference") as caught:
        await _store(sql_uow_factory, twin)

    assert caught.value.sqlstate == "23505"


async def test_an_entry_for_a_missing_account_is_not_mistaken_for_a_race(
    sql_uow_factory: SqlUowFactory,
) -> None:
    orphan = Entry(
        id=uuid4(),
        account_id=uuid4(),
        sequence=1,
        kind=EntryKind.DEPOSIT,
        amount=1,
        balance_after=1,
        reference="orphan",
        transfer_id=None,
        created_at=datetime.now(UTC),
    )

    with pytest.raises(IntegrityError):
        await _store(sql_uow_factory, orphan)
