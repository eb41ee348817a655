"""The message bus: routes commands to their one handler and events to all of theirs.

    bus = MessageBus(uow_factory, dependencies={"publisher": broker})
    bus.register_command(OpenAccount, open_account)
    bus.register_event(AccountOpened, send_welcome)
    account_id = await bus.handle(OpenAccount(owner="Ada", currency="EUR"))

Handlers are plain async functions. The first parameter receives the message;
every other parameter is injected by name when the handler is registered
(:func:`bind`): ``uow`` is a fresh unit of work from the bus's factory for
each run, anything else comes from ``dependencies``. A parameter nobody can
supply is an error at registration, not at the first message.

Events are dispatched only after the transaction that raised them committed
(:meth:`AbstractUnitOfWork.collect_committed_events`): an event of rolled-back
work never reaches a handler. Each event handler runs in its own unit of work;
a failing one is retried on a conflict, then logged and recorded in
``bus.failures``; it neither undoes the command nor stops the other handlers.
Events meant for other services do not depend on this dispatch at all: the
outbox wrote them in the command's own transaction.

``handle(message, once=True)`` is for messages that came from a broker and
may be delivered again: with an :class:`Inbox`, each handler applies a given
message id at most once, and a redelivery raises :class:`DuplicateMessage`
(for a command) or is skipped (for an event handler). The inbox's record is
part of the handler's own transaction — on SQL its first statement — so a
delivery costs one transaction, inbox included.
"""

from __future__ import annotations

import inspect
import logging
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Generic, Protocol, TypeVar

from domain.aggregate import Event
from domain.messages import Command, Message, message_id_of
from service_layer import correlation
from service_layer.retry import RetryPolicy, retrying
from service_layer.unit_of_work import AbstractUnitOfWork

logger = logging.getLogger(__name__)

UowT = TypeVar("UowT", bound=AbstractUnitOfWork)

UOW_PARAMETER = "uow"


class HandlerBindingError(TypeError):
    """A handler asks for a dependency the bus cannot supply, or is registered twice."""


class UnknownMessage(LookupError):
    """No handler is registered for this command type."""


class DuplicateMessage(Exception):
    """This message id was already applied by this handler; nothing was done again."""

    def __init__(self, message_id: str, handler: str) -> None:
        super().__init__(f"message {message_id} was already processed by {handler}")
        self.message_id = message_id
        self.handler = handler


class Inbox(Protocol):
    """Remembers which message ids each handler applied, in the handler's own transaction."""

    async def already_processed(
        self, uow: AbstractUnitOfWork, message_id: str, handler: str
    ) -> bool:
        """Whether a committed transaction recorded the message (its own short block of
        ``uow``). The bus does not ask: :meth:`guard` refuses a redelivery by itself."""
        ...

    def guard(self, uow: AbstractUnitOfWork, message_id: str, handler: str) -> None:
        """Make ``uow``'s transaction record the message, or fail with :class:`DuplicateMessage`.

        The record is written under a unique key in the transaction that
        commits the handler's work, which is what makes two concurrent
        deliveries safe: the second finds the first one's row and rolls back.
        A redelivery is refused as early as the backend can, at the latest
        at commit: on SQL by the transaction's first statement, in memory
        here and now — so the bus needs no separate look-up beforehand.
        """
        ...


@dataclass(frozen=True)
class Handler:
    """A use case for one message type, under the stable name its inbox rows carry.

    The name is spelled out, never derived from the function, so that moving or
    renaming the function does not make a redelivered message look new.
    """

    function: Callable[..., Any]
    name: str


@dataclass(frozen=True)
class BoundHandler:
    """A handler with its dependencies resolved; call it with a message and a unit of work."""

    name: str
    function: Callable[..., Any]
    dependencies: Mapping[str, Any]
    wants_uow: bool

    async def __call__(self, message: Message, uow: AbstractUnitOfWork) -> Any:
        arguments = dict(self.dependencies)
        if self.wants_uow:
            arguments[UOW_PARAMETER] = uow
        result = self.function(message, **arguments)
        if inspect.isawaitable(result):
            result = await result
        return result


def handler_name(function: Callable[..., Any]) -> str:
    module = getattr(function, "__module__", None) or "?"
    qualname = getattr(function, "__qualname__", None) or type(function).__qualname__
    return f"{module}.{qualname}"


def bind(
    function: Callable[..., Any],
    dependencies: Mapping[str, Any],
    *,
    name: str | None = None,
) -> BoundHandler:
    """Resolve ``function``'s parameters after the first one, by name.

    ``uow`` is supplied per run; other names come from ``dependencies``;
    a parameter with a default may be left out. Raises
    :class:`HandlerBindingError` naming whatever cannot be supplied.
    """
    label = name or handler_name(function)
    parameters = list(inspect.signature(function).parameters.values())
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    if not parameters or parameters[0].kind not in positional:
        raise HandlerBindingError(f"handler {label} must take the message as its first parameter")
    resolved: dict[str, Any] = {}
    wants_uow = False
    for parameter in parameters[1:]:
        if parameter.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
            continue
        if parameter.name == UOW_PARAMETER:
            wants_uow = True
        elif parameter.name in dependencies:
            resolved[parameter.name] = dependencies[parameter.name]
        elif parameter.default is inspect.Parameter.empty:
            known = ", ".join(sorted({UOW_PARAMETER, *dependencies}))
            raise HandlerBindingError(
                f"handler {label} needs {parameter.name!r}, which the bus was not given "
                f"(it can supply: {known})"
            )
    return BoundHandler(label, function, resolved, wants_uow)


@dataclass(frozen=True)
class HandlerFailure:
    """An event handler that failed for good; kept on the bus for inspection."""

    handler: str
    message: Message
    error: Exception
    at: datetime = field(default_factory=lambda: datetime.now(UTC))


class MessageBus(Generic[UowT]):
    """Dispatches commands and events; built once by the composition root."""

    def __init__(
        self,
        uow_factory: Callable[[], UowT],
        *,
        dependencies: Mapping[str, Any] | None = None,
        inbox: Inbox | None = None,
        event_retry: RetryPolicy | None = None,
        failures_kept: int = 100,
    ) -> None:
        self.uow_factory = uow_factory
        self.dependencies: dict[str, Any] = dict(dependencies or {})
        self.inbox = inbox
        self.event_retry = event_retry if event_retry is not None else RetryPolicy()
        self.failures: deque[HandlerFailure] = deque(maxlen=failures_kept)
        self._commands: dict[type[Command], BoundHandler] = {}
        self._events: dict[type[Event], list[BoundHandler]] = {}

    # -- registration ----------------------------------------------------------------------

    def register_command(
        self, kind: type[Command], handler: Callable[..., Any], *, name: str | None = None
    ) -> None:
        """Make ``handler`` the one handler of ``kind``. ``name`` keys its inbox entries."""
        if kind in self._commands:
            raise HandlerBindingError(
                f"{kind.__name__} already has a handler ({self._commands[kind].name}); "
                "a command has exactly one"
            )
        self._commands[kind] = bind(handler, self.dependencies, name=name)

    def register_event(
        self, kind: type[Event], *handlers: Callable[..., Any], name: str | None = None
    ) -> None:
        """Add handlers for ``kind`` and its subclasses; they run in registration order."""
        if name is not None and len(handlers) != 1:
            raise ValueError("name= applies to exactly one handler")
        bound = self._events.setdefault(kind, [])
        bound.extend(bind(handler, self.dependencies, name=name) for handler in handlers)

    # -- dispatch --------------------------------------------------------------------------

    async def handle(self, message: Message, *, once: bool = False) -> Any:
        """Handle a command (returning its handler's result) or an event (returning ``None``).

        A command's exception propagates after the events it had already
        committed were dispatched. ``once`` needs an inbox; see the module doc.
        """
        if once and self.inbox is None:
            raise RuntimeError("handle(once=True) needs a MessageBus built with an inbox")
        if isinstance(message, Command):
            return await self._handle_command(message, once)
        await self._dispatch([message], delivered=message if once else None)
        return None

    async def _handle_command(self, command: Command, once: bool) -> Any:
        handler = self._commands.get(type(command))
        if handler is None:
            raise UnknownMessage(f"no handler is registered for {type(command).__name__}")
        uow = self.uow_factory()
        if once:
            self._guard(uow, message_id_of(command), handler.name)
        # Served outside any request or delivery (a script, a test): the command starts
        # its own conversation. Inside one, the entrypoint has already said what caused it.
        context = correlation.current() or correlation.MessageContext.of_message(command.message_id)
        with correlation.caused_by(context):
            try:
                result = await handler(command, uow)
            except Exception:
                await self._dispatch(uow.collect_committed_events())
                raise
            await self._dispatch(uow.collect_committed_events())
        return result

    def _guard(self, uow: AbstractUnitOfWork, message_id: str, handler: str) -> None:
        # No look-up of its own: one transaction per delivery, whose first statement
        # (on SQL) claims the message and refuses a redelivery before any work.
        assert self.inbox is not None
        self.inbox.guard(uow, message_id, handler)

    def handlers_for(self, event: Event) -> list[BoundHandler]:
        """Every handler of the event's class and of its base classes, most specific first."""
        return [
            handler
            for kind in type(event).__mro__
            if issubclass(kind, Event)
            for handler in self._events.get(kind, ())
        ]

    async def _dispatch(self, events: Iterable[Event], *, delivered: Event | None = None) -> None:
        """Run the handlers of ``events`` and of the events they commit in turn.

        Only ``delivered`` — an event that came from a broker — goes through
        the inbox; events raised here are new and happen once by construction.
        """
        queue = deque(events)
        while queue:
            event = queue.popleft()
            for handler in self.handlers_for(event):
                queue.extend(await self._run_event_handler(handler, event, event is delivered))

    async def _run_event_handler(
        self, handler: BoundHandler, event: Event, once: bool
    ) -> list[Event]:
        made: list[UowT] = []

        async def attempt() -> None:
            uow = self.uow_factory()
            made.append(uow)
            if once:
                self._guard(uow, message_id_of(event), handler.name)
            await handler(event, uow)

        try:
            # The events this handler raises were caused by the event it handles.
            event_id = str(event.event_id)
            current = correlation.current()
            context = (
                current.caused_by(event_id)
                if current is not None
                else correlation.MessageContext.of_message(event_id)
            )
            with correlation.caused_by(context):
                await retrying(attempt, self.event_retry)
        except DuplicateMessage:
            logger.info(
                "event already handled; skipped",
                extra={"handler": handler.name, "message_id": str(event.event_id)},
            )
        except Exception as exc:
            logger.exception(
                "event handler failed; the command and the other handlers are unaffected",
                extra={"handler": handler.name, "event": type(event).__name__},
            )
            self.failures.append(HandlerFailure(handler.name, event, exc))
        return [raised for uow in made for raised in uow.collect_committed_events()]
