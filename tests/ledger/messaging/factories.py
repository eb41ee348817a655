"""factory-boy factories for the ledger's commands.

Every movement gets a fresh ``reference`` and every command a fresh
``message_id``, so tests sharing a database never replay each other by
accident; a test that wants a redelivery sends the same command twice.
Commands are made for the principal :data:`SENDER` unless told otherwise.
Call ``.build()``; factory-boy's declarations are untyped, hence the ignores.
"""

from __future__ import annotations

from uuid import uuid4

from factory.base import Factory
from factory.declarations import LazyFunction

from domain.ledger.commands import Deposit, OpenAccount, TransferFunds, Withdraw
from domain.principal import Principal

SENDER = Principal(subject="sender-of-the-test-commands")


def new_reference() -> str:
    return f"ref-{uuid4()}"


class OpenAccountFactory(Factory[OpenAccount]):
    class Meta:
        model = OpenAccount

    principal = SENDER
    account_id = LazyFunction(uuid4)  # type: ignore[no-untyped-call]
    currency = "EUR"


class DepositFactory(Factory[Deposit]):
    """Pass the ``account_id`` of an account the test opened."""

    class Meta:
        model = Deposit

    principal = SENDER
    account_id = LazyFunction(uuid4)  # type: ignore[no-untyped-call]
    amount = 100
    reference = LazyFunction(new_reference)  # type: ignore[no-untyped-call]


class WithdrawFactory(Factory[Withdraw]):
    """Pass the ``account_id`` of an account the test opened."""

    class Meta:
        model = Withdraw

    principal = SENDER
    account_id = LazyFunction(uuid4)  # type: ignore[no-untyped-call]
    amount = 100
    reference = LazyFunction(new_reference)  # type: ignore[no-untyped-call]


class TransferFactory(Factory[TransferFunds]):
    """Pass ``source_id`` and ``target_id``: accounts the test opened."""

    class Meta:
        model = TransferFunds

    principal = SENDER
    source_id = LazyFunction(uuid4)  # type: ignore[no-untyped-call]
    target_id = LazyFunction(uuid4)  # type: ignore[no-untyped-call]
    amount = 100
    reference = LazyFunction(new_reference)  # type: ignore[no-untyped-call]
