"""factory-boy factories for the ledger tests.

- ``AccountFactory``: domain accounts, for the domain's own rules (no I/O).
  ``AccountFactory.build(funded=500)`` gives an account holding 500.
- ``OpenAccountArgs``, ``MovementArgs``, ``TransferArgs``: keyword arguments
  for the commands, made for the principal :data:`OWNER` (pass ``principal=``
  for another). Every one gets a fresh ``reference``, so tests sharing a
  database never replay each other's requests by accident; a test that wants
  a replay passes the same dict twice.

Call ``.build()``; factory-boy's declarations are untyped, hence the ignores.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

from factory.base import DictFactory, Factory
from factory.declarations import LazyFunction, PostGeneration, Sequence

from domain.ledger.account import Account
from domain.ledger.commands import Deposit, OpenAccount
from domain.principal import Principal
from service_layer.ledger import handlers, reads
from service_layer.ledger.unit_of_work import LedgerUnitOfWork
from service_layer.ledger.views import AccountView

OWNER = Principal(subject="owner-of-the-test-accounts", scopes=frozenset({"ledger:write"}))
"""The principal the factories' commands are made for, and the reads of the tests."""


def new_principal() -> Principal:
    return Principal(subject=f"principal-{uuid4()}")


def new_reference() -> str:
    return f"ref-{uuid4()}"


def _fund(account: Account, create: bool, extracted: int | None, **_: Any) -> None:
    if extracted:
        account.deposit(extracted, reference=new_reference())


class AccountFactory(Factory[Account]):
    class Meta:
        model = Account

    id = LazyFunction(uuid4)  # type: ignore[no-untyped-call]
    owner = Sequence(lambda n: f"owner-{n:04d}")  # type: ignore[no-untyped-call]
    currency = "EUR"
    created_at = LazyFunction(lambda: datetime.now(UTC))  # type: ignore[no-untyped-call]
    funded = PostGeneration(_fund)  # type: ignore[no-untyped-call]


class OpenAccountArgs(DictFactory):
    principal = OWNER
    currency = "EUR"


class MovementArgs(DictFactory):
    """A deposit or a withdrawal; add ``account_id``."""

    principal = OWNER
    amount = 100
    reference = LazyFunction(new_reference)  # type: ignore[no-untyped-call]


class TransferArgs(DictFactory):
    """Add ``source_id`` and ``target_id``."""

    principal = OWNER
    amount = 100
    reference = LazyFunction(new_reference)  # type: ignore[no-untyped-call]


async def open_funded_account(
    uow: LedgerUnitOfWork,
    balance: int = 0,
    *,
    currency: str = "EUR",
    principal: Principal = OWNER,
) -> AccountView:
    """An account of ``principal``, opened and funded by one deposit, by the service layer."""
    account = await handlers.open_account(
        OpenAccount(**OpenAccountArgs.build(currency=currency, principal=principal)), uow
    )
    if balance:
        await handlers.deposit(
            Deposit(
                account_id=account.id, **MovementArgs.build(amount=balance, principal=principal)
            ),
            uow,
        )
        account = await reads.get_account(uow, account.id, principal)
    return account
