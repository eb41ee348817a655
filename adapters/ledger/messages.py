"""The ledger's messages on the wire: which commands it takes, which events it publishes.

Stream names are logical; the broker puts ``STREAM_PREFIX`` in front of them.
Every published event is ordered by the aggregate that raised it
(``Account:<id>`` for the account events, ``Transfer:<id>`` for a
transfer); a ``CommandRejected`` is keyed by the command it answers.
"""

from __future__ import annotations

from adapters.serialization import MessageRegistry
from domain.aggregate import Event
from domain.ledger.commands import (
    CommandRejected,
    Deposit,
    OpenAccount,
    Transfer,
    Withdraw,
)
from domain.ledger.events import AccountOpened, Deposited, TransferCompleted, Withdrawn
from domain.messages import Command

COMMANDS_STREAM = "ledger.commands"
EVENTS_STREAM = "ledger.events"

COMMANDS: tuple[type[Command], ...] = (OpenAccount, Deposit, Withdraw, Transfer)
EVENTS: tuple[type[Event], ...] = (
    AccountOpened,
    Deposited,
    Withdrawn,
    TransferCompleted,
    CommandRejected,
)


def ledger_registry() -> MessageRegistry:
    """A fresh registry: the commands under their class names, the events on ``ledger.events``."""
    registry = MessageRegistry()
    for command in COMMANDS:
        registry.register(command)
    for event in EVENTS:
        registry.register(event, stream=EVENTS_STREAM)
    return registry
