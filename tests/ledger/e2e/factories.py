"""Request bodies for the ledger API, as factory-boy factories of plain dicts.

Every body gets a fresh ``reference`` so that tests sharing one database never
replay each other's requests by accident; a test that wants a replay sends the
same dict twice. Call ``.build(**overrides)``, which is typed as returning the
dict; factory-boy's declarations are untyped, hence the ignores.
"""

from __future__ import annotations

from typing import Any
from uuid import uuid4

from factory.base import Factory
from factory.declarations import LazyFunction
from factory.faker import Faker


def _reference() -> str:
    return f"ref-{uuid4()}"


class _Body(Factory[dict[str, Any]]):
    class Meta:
        model = dict
        abstract = True


class OpenAccountBody(_Body):
    """The owner is the token's subject; the body names the currency only."""

    currency = "EUR"


class MovementBody(_Body):
    """A deposit or withdrawal."""

    amount = Faker("pyint", min_value=1, max_value=10_000)  # type: ignore[no-untyped-call]
    reference = LazyFunction(_reference)  # type: ignore[no-untyped-call]


class TransferBody(_Body):
    """Pass ``source_id`` and ``target_id``: they must name accounts the test opened."""

    source_id = None
    target_id = None
    amount = Faker("pyint", min_value=1, max_value=1_000)  # type: ignore[no-untyped-call]
    reference = LazyFunction(_reference)  # type: ignore[no-untyped-call]
