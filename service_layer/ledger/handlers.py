"""The ledger's command handlers, and the bus that routes commands to them.

Every write reaches the service layer through :func:`build_bus`'s bus: the
HTTP routes ``await bus.handle(Deposit(...))`` and the message consumer
``await bus.handle(command, once=True)``. A handler only unpacks its command
into the matching service function, so the two entrypoints cannot drift
apart: same checks, same retries, same events, same outbox rows.

Each handler is registered under a stable name (:data:`ROUTES`), which is
the key of its rows in the inbox. Renaming or moving a function must not make
a redelivered command look new, so the name is spelled out, not derived.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from domain.aggregate import Event
from domain.errors import DomainError
from domain.ledger.commands import CommandRejected, Deposit, OpenAccount, Transfer, Withdraw
from domain.messages import Command
from service_layer.ledger import services
from service_layer.ledger.unit_of_work import LedgerUnitOfWork
from service_layer.ledger.views import AccountView, EntryView, Outcome, TransferView
from service_layer.messagebus import Inbox, MessageBus
from service_layer.retry import RetryPolicy
from service_layer.unit_of_work import AbstractUnitOfWork


async def open_account(
    command: OpenAccount, uow: LedgerUnitOfWork, policy: RetryPolicy
) -> AccountView:
    return await services.open_account(
        uow,
        owner=command.owner,
        currency=command.currency,
        account_id=command.account_id,
        policy=policy,
    )


async def deposit(
    command: Deposit, uow: LedgerUnitOfWork, policy: RetryPolicy
) -> Outcome[EntryView]:
    return await services.deposit(
        uow,
        account_id=command.account_id,
        amount=command.amount,
        reference=command.reference,
        policy=policy,
    )


async def withdraw(
    command: Withdraw, uow: LedgerUnitOfWork, policy: RetryPolicy
) -> Outcome[EntryView]:
    return await services.withdraw(
        uow,
        account_id=command.account_id,
        amount=command.amount,
        reference=command.reference,
        policy=policy,
    )


async def transfer(
    command: Transfer, uow: LedgerUnitOfWork, policy: RetryPolicy
) -> Outcome[TransferView]:
    return await services.transfer(
        uow,
        source_id=command.source_id,
        target_id=command.target_id,
        amount=command.amount,
        reference=command.reference,
        policy=policy,
    )


ROUTES: dict[type[Command], tuple[Callable[..., Any], str]] = {
    OpenAccount: (open_account, "ledger.open_account"),
    Deposit: (deposit, "ledger.deposit"),
    Withdraw: (withdraw, "ledger.withdraw"),
    Transfer: (transfer, "ledger.transfer"),
}
"""Each command's handler and the name its inbox rows are kept under."""


def inbox_name(kind: type[Command]) -> str:
    """The inbox key of ``kind``'s handler; a rejection is recorded under it too."""
    return ROUTES[kind][1]


def build_bus(
    uow_factory: Callable[[], LedgerUnitOfWork],
    *,
    policy: RetryPolicy,
    inbox: Inbox | None = None,
) -> MessageBus[LedgerUnitOfWork]:
    """The ledger's bus; ``uow_factory`` should write the outbox (``with_outbox``)."""
    bus = MessageBus(uow_factory, dependencies={"policy": policy}, inbox=inbox)
    for kind, (handler, name) in ROUTES.items():
        bus.register_command(kind, handler, name=name)
    return bus


class EventOutbox(Protocol):
    """Where an event that no aggregate raised is written, in an open unit of work."""

    async def put(
        self, uow: AbstractUnitOfWork, event: Event, *, key: str | None = None
    ) -> None: ...


async def reject_command(
    command: Command,
    error: DomainError,
    *,
    uow: LedgerUnitOfWork,
    inbox: Inbox,
    outbox: EventOutbox,
) -> None:
    """Announce that a domain rule refused ``command``: a ``CommandRejected`` in the outbox.

    The refusal is recorded in the inbox under the command handler's own
    key, in the same transaction. So a command message is settled once,
    applied or refused: a redelivery of a refused command is neither run
    again (its funds may have arrived meanwhile) nor announced twice — the
    second attempt's commit raises ``DuplicateMessage``.
    """
    inbox.guard(uow, command.message_id, inbox_name(type(command)))
    rejected = CommandRejected(
        command_message_id=command.message_id, code=error.code, detail=error.detail
    )
    async with uow:
        await outbox.put(uow, rejected, key=f"Command:{command.message_id}")
        await uow.commit()
