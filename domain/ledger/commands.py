"""What the ledger can be asked to do, and how it announces that it refused.

The four commands are the ledger's writes as messages. The message consumer
rebuilds them from ``ledger.commands`` and the HTTP routes build them from
request bodies; both hand them to the same message bus, so a deposit is one
code path whichever way it arrived. Like the events, they are plain data:
validation of the wire format happens at the entrypoints, and the domain
checks every value again when it acts on it.

Every command carries the ``principal`` it is made for: HTTP takes it from
the bearer token, the consumer from the signed envelope. The use cases
decide with it which accounts the command may touch.

``CommandRejected`` is an event that no aggregate raises: the consumer writes
it to the outbox when a domain rule refuses a command that came from the
broker, since the sender has no HTTP response to read the refusal from.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from uuid import UUID, uuid4

from domain.aggregate import Event
from domain.messages import Command
from domain.principal import Principal


@dataclass(frozen=True, kw_only=True)
class OpenAccount(Command):
    """Open an empty account.

    A command from the broker names the ``account_id``, so that a replay opens
    the same account rather than a second one; one made in-process (an HTTP
    request) gets a fresh id here, as it gets a fresh ``message_id``. The
    owner is the principal.
    """

    principal: Principal
    currency: str
    account_id: UUID = field(default_factory=uuid4)


@dataclass(frozen=True, kw_only=True)
class Deposit(Command):
    principal: Principal
    account_id: UUID
    amount: int
    reference: str


@dataclass(frozen=True, kw_only=True)
class Withdraw(Command):
    principal: Principal
    account_id: UUID
    amount: int
    reference: str


@dataclass(frozen=True, kw_only=True)
class TransferFunds(Command):
    """Move money between two accounts; travels as type ``Transfer`` on the wire.

    The principal must own the source; anyone may be paid.
    """

    principal: Principal
    source_id: UUID
    target_id: UUID
    amount: int
    reference: str


@dataclass(frozen=True, kw_only=True)
class CommandRejected(Event):
    """A command from the broker that a domain rule refused; ``code`` is the error's code."""

    command_message_id: str
    code: str
    detail: str
