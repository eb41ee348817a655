"""The ledger's own column type; timestamps use the kernel's ``adapters.audit.UtcDateTime``."""

from __future__ import annotations

from typing import Any

from sqlalchemy import String
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

from domain.ledger.account import EntryKind


class EntryKindType(TypeDecorator[EntryKind]):
    """An :class:`EntryKind` kept as its plain string value, portable across backends."""

    impl = String(20)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        return None if value is None else EntryKind(value).value

    def process_result_value(self, value: Any, dialect: Dialect) -> EntryKind | None:
        return None if value is None else EntryKind(value)
