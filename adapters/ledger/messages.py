"""The ledger's messages on the wire: which commands it takes, which events it publishes.

Stream names are logical; the broker puts ``STREAM_PREFIX`` in front of them.
Every published event is ordered by the account it is about (``Account:<id>``),
so one account's events share a key and keep their order: the account events
by the account that raised them, a ``TransferCompleted`` by its *source*
account. A ``CommandRejected`` is keyed by the command it answers.
"""

from __future__ import annotations

from adapters.serialization import MessageRegistry
from domain.aggregate import Event
from domain.ledger.commands import (
    CommandRejected,
    Deposit,
    OpenAccount,
    TransferFunds,
    Withdraw,
)
from domain.ledger.events import AccountOpened, Deposited, TransferCompleted, Withdrawn
from domain.messages import Command

COMMANDS_STREAM = "ledger.commands"
EVENTS_STREAM = "ledger.events"

COMMANDS: dict[str, type[Command]] = {
    "OpenAccount": OpenAccount,
    "Deposit": Deposit,
    "Withdraw": Withdraw,
    # The contract's wire name; the class is TransferFunds so that it is not
    # confused with the Transfer aggregate.
    "Transfer": TransferFunds,
}
"""The commands ``ledger.commands`` carries, by their wire name."""
EVENTS: tuple[type[Event], ...] = (
    AccountOpened,
    Deposited,
    Withdrawn,
    TransferCompleted,
    CommandRejected,
)


def source_account_key(event: TransferCompleted) -> str:
    """A transfer is ordered with its source account's other events."""
    return f"Account:{event.source_id}"


def register_messages(registry: MessageRegistry) -> None:
    """Put the ledger's commands and its events (on ``ledger.events``) on ``registry``."""
    for name, command in COMMANDS.items():
        registry.register(command, name=name)
    for event in EVENTS:
        key = source_account_key if event is TransferCompleted else None
        registry.register(event, stream=EVENTS_STREAM, key=key)


def ledger_registry() -> MessageRegistry:
    """A fresh registry holding the ledger's messages alone (tests, tools)."""
    registry = MessageRegistry()
    register_messages(registry)
    return registry
