"""Re-wiring the ledger inside a bootstrapped container, for tests that inject faults."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

from adapters.outbox import with_outbox
from entrypoints.bootstrap import Container, wire_context
from entrypoints.ledger import context as ledger_context
from service_layer.ledger.unit_of_work import LedgerUnitOfWork
from service_layer.unit_of_work import CommitHook

assert ledger_context.migrations is not None
LEDGER_MIGRATIONS = [ledger_context.migrations]
"""What ``upgrade_to_head_async`` needs to bring the ledger's branch up, beside the kernel's."""


def with_unit_of_work(
    container: Container, uow_factory: Callable[[], LedgerUnitOfWork]
) -> Container:
    """The same container, its ledger's units of work (and bus) made by ``uow_factory``."""
    wiring = wire_context(
        ledger_context, uow_factory, dependencies=container.dependencies, inbox=container.inbox
    )
    return replace(container, contexts={**container.contexts, ledger_context.name: wiring})


def with_hooks(container: Container, hooks: Sequence[CommitHook]) -> Container:
    """The same container, every ledger unit of work also running ``hooks`` after the outbox."""
    factory = ledger_context.wiring(container).uow_factory
    for hook in hooks:
        factory = with_outbox(factory, hook)
    return with_unit_of_work(container, factory)
