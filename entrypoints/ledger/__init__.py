"""The example bounded context: a money ledger, as ``shared/contract/ledger-api.md`` specifies.

``context`` is all the kernel knows of it. Delete every folder named
``ledger`` (and take ``ledger`` out of ``KEEL_CONTEXTS``) and the kernel
still stands.
"""

from __future__ import annotations

from pathlib import Path

from adapters.ledger import orm, tables
from adapters.ledger.messages import register_messages
from adapters.ledger.unit_of_work import InMemoryLedgerUnitOfWork, SqlAlchemyLedgerUnitOfWork
from entrypoints.context import BoundedContext
from entrypoints.ledger import routes
from entrypoints.ledger.dependencies import CONTEXT_NAME
from entrypoints.ledger.messages import COMMANDS
from service_layer.ledger.handlers import COMMAND_HANDLERS
from service_layer.ledger.unit_of_work import LedgerUnitOfWork

context: BoundedContext[LedgerUnitOfWork] = BoundedContext(
    name=CONTEXT_NAME,
    unit_of_work=SqlAlchemyLedgerUnitOfWork,
    fake_unit_of_work=InMemoryLedgerUnitOfWork,
    start_mappers=orm.start_mappers,
    tables=(tables.accounts, tables.transfers, tables.entries),
    migrations=Path(orm.__file__).with_name("migrations"),
    commands=COMMAND_HANDLERS,
    register_messages=register_messages,
    subscriptions=(COMMANDS,),
    routers=(routes.router,),
)
