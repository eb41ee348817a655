"""Bounded contexts as plug-ins: the one object a context hands the kernel.

A context (the example is the money context) lives in folders named after it on every
floor (``domain/<name>``, ``adapters/<name>``, ``service_layer/<name>``,
``entrypoints/<name>``, ``tests/<name>``) and exports a :class:`BoundedContext`
as ``context`` from ``entrypoints/<name>/__init__.py``. It declares everything
the kernel needs: its unit of work on each backend, its mappers and tables, its
Alembic branch, its handlers, the messages it consumes and publishes, its HTTP
routers and CLI commands. ``KEEL_CONTEXTS`` names the contexts that run (unset:
every one under ``entrypoints/``); the kernel's bootstrap, app factory, consumer,
relay and migrations take the loaded list and never name one.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from fastapi import APIRouter
from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from adapters.brokers import DeliveryHandler
from adapters.repository import InMemoryStore
from adapters.serialization import MessageRegistry
from domain.aggregate import Event
from domain.messages import Command
from service_layer.messagebus import Handler
from service_layer.unit_of_work import AbstractUnitOfWork

if TYPE_CHECKING:
    from adapters.settings import Settings
    from entrypoints.bootstrap import Container, ContextWiring

UowT = TypeVar("UowT", bound=AbstractUnitOfWork)

CONTEXT_ATTRIBUTE = "context"
"""The name a context's entrypoints package exports its :class:`BoundedContext` under."""


class ContextLoadError(ImportError):
    """A name in ``KEEL_CONTEXTS`` does not lead to a usable bounded context."""


@dataclass(frozen=True)
class Subscription:
    """A stream this context consumes: its consumer group and how to handle a delivery.

    ``handler`` receives the context's wiring (bus, unit-of-work factory) and
    the kernel's container, and returns the broker's delivery handler.
    """

    stream: str
    group: str
    handler: Callable[[ContextWiring[Any], Container], DeliveryHandler]


@dataclass(frozen=True)
class CliCommand:
    """A ``keel`` sub-command a context adds; ``run`` gets the bootstrapped container."""

    name: str
    help: str
    run: Callable[[Container, argparse.Namespace], Awaitable[int]]
    arguments: Callable[[argparse.ArgumentParser], None] = lambda parser: None


def _nothing(*_args: Any) -> None:
    return None


@dataclass(frozen=True)
class BoundedContext(Generic[UowT]):
    """Everything the kernel needs from one bounded context.

    ``name`` is the import name in ``KEEL_CONTEXTS`` and the label of the
    context's Alembic branch; ``migrations`` is that branch's versions folder.
    ``register_messages`` puts the commands it consumes and the events it
    publishes (with their streams and ordering keys) on the shared registry.
    """

    name: str
    unit_of_work: Callable[[async_sessionmaker[AsyncSession]], UowT]
    fake_unit_of_work: Callable[[InMemoryStore], UowT]
    start_mappers: Callable[[], None] = _nothing
    tables: Sequence[Table] = ()
    migrations: Path | None = None
    commands: Mapping[type[Command], Handler] = field(default_factory=dict)
    events: Mapping[type[Event], Sequence[Handler]] = field(default_factory=dict)
    register_messages: Callable[[MessageRegistry], None] = _nothing
    subscriptions: Sequence[Subscription] = ()
    routers: Sequence[APIRouter] = ()
    cli: Sequence[CliCommand] = ()

    def __post_init__(self) -> None:
        if not self.name.isidentifier():
            raise ValueError(f"a context's name must be an identifier, got {self.name!r}")

    def wiring(self, container: Container) -> ContextWiring[UowT]:
        """This context's bus and unit-of-work factory in ``container``, typed."""
        found: ContextWiring[UowT] = container.wiring(self.name)
        return found


def module_of(name: str) -> str:
    """The module a ``KEEL_CONTEXTS`` entry names: ``orders`` → ``entrypoints.orders``.

    A dotted name is taken as it is, for contexts that live elsewhere (tests).
    """
    return name if "." in name else f"entrypoints.{name}"


def load_context(name: str) -> BoundedContext[Any]:
    """Import one context by its ``KEEL_CONTEXTS`` name; :class:`ContextLoadError` if unusable."""
    module_name = module_of(name)
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and module_name.startswith(exc.name):
            raise ContextLoadError(
                f"KEEL_CONTEXTS names {name!r}, but there is no module {module_name!r}"
            ) from None
        raise
    found = getattr(module, CONTEXT_ATTRIBUTE, None)
    if not isinstance(found, BoundedContext):
        raise ContextLoadError(
            f"KEEL_CONTEXTS names {name!r}, but {module_name} exports no BoundedContext "
            f"as {CONTEXT_ATTRIBUTE!r}"
        )
    return found


def running_contexts(settings: Settings) -> list[BoundedContext[Any]]:
    """The contexts ``settings`` runs, loaded (:func:`running_context_names`)."""
    return load_contexts(running_context_names(settings))


def running_context_names(settings: Settings) -> tuple[str, ...]:
    """The contexts that run: those ``KEEL_CONTEXTS`` names, in its order; when it is unset,
    every one found under ``entrypoints/`` (:func:`discovered`)."""
    names = settings.context_names
    return discovered() if names is None else names


def discovered() -> tuple[str, ...]:
    """Every package under ``entrypoints/`` that exports a :class:`BoundedContext` as
    ``context``, by name: a context's folders are all it takes to run, and deleting
    them (the example's, say) is all it takes to stop."""
    import entrypoints

    found = []
    for package in pkgutil.iter_modules(entrypoints.__path__):
        if not package.ispkg:
            continue
        module = importlib.import_module(f"entrypoints.{package.name}")
        if isinstance(getattr(module, CONTEXT_ATTRIBUTE, None), BoundedContext):
            found.append(package.name)
    return tuple(sorted(found))


def load_contexts(names: Sequence[str]) -> list[BoundedContext[Any]]:
    """The contexts ``names`` lists, in order; a name given twice is an error."""
    loaded = [load_context(name) for name in names]
    seen: set[str] = set()
    for context in loaded:
        if context.name in seen:
            raise ContextLoadError(f"KEEL_CONTEXTS names the context {context.name!r} twice")
        seen.add(context.name)
    return loaded
