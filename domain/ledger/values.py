"""The ledger's value rules: money, currency codes, references and owners.

Values stay plain ``int`` and ``str`` so that they map to columns and JSON
without conversion; these functions are the single place that decides what
is acceptable, and every constructor in the domain goes through them.
"""

from __future__ import annotations

import re

from domain.ledger.errors import InvalidAmount, InvalidCurrency, InvalidOwner, InvalidReference
from domain.text import unsafe_character

MIN_AMOUNT = 1
MAX_AMOUNT = 10**12
MAX_BALANCE = 10**18
"""Keeps every balance inside a signed 64-bit column, with room to spare."""

MAX_REFERENCE_LENGTH = 100
MAX_OWNER_LENGTH = 200

_CURRENCY = re.compile(r"[A-Z]{3}")


def check_amount(amount: int) -> int:
    """An amount of money in minor units: an integer from 1 to 10**12."""
    # bool is an int subclass; True must not pass for one cent.
    if not isinstance(amount, int) or isinstance(amount, bool):
        raise InvalidAmount(f"amount must be an integer count of minor units, got {amount!r}")
    if not MIN_AMOUNT <= amount <= MAX_AMOUNT:
        raise InvalidAmount(f"amount must be between {MIN_AMOUNT} and {MAX_AMOUNT}, got {amount}")
    return amount


def check_currency(currency: str) -> str:
    """An ISO 4217-shaped code: three upper-case ASCII letters."""
    if not isinstance(currency, str) or _CURRENCY.fullmatch(currency) is None:
        raise InvalidCurrency(
            f"currency must be three upper-case letters (ISO 4217), got {currency!r}"
        )
    return currency


def check_reference(reference: str) -> str:
    """The client's idempotency key: 1 to 100 printable characters."""
    if not isinstance(reference, str) or not 1 <= len(reference) <= MAX_REFERENCE_LENGTH:
        raise InvalidReference(
            f"reference must be 1 to {MAX_REFERENCE_LENGTH} characters long, got {reference!r}"
        )
    if not reference.isprintable():
        raise InvalidReference(f"reference must be printable characters only, got {reference!r}")
    return reference


def check_owner(owner: str) -> str:
    """The account holder's name: 1 to 200 characters, none that text must not hold."""
    if not isinstance(owner, str) or not 1 <= len(owner) <= MAX_OWNER_LENGTH:
        raise InvalidOwner(f"owner must be 1 to {MAX_OWNER_LENGTH} characters long")
    if (problem := unsafe_character(owner)) is not None:
        raise InvalidOwner(f"owner must not contain {problem}")
    return owner
