"""Keyset pagination: a page of aggregates and the opaque cursor to the next one.

A cursor holds the ordering it was made for and the sort-key values of the
last item of its page, nothing else: the caller passes ``where`` again with
every request, so a cursor can never widen what a query may see. Decoding is
strict (every field, type and integer range is checked) and, when a secret is
configured, the cursor is HMAC-signed too. Anything wrong raises
:class:`InvalidCursor`, a ``DomainError``, so entrypoints answer 4xx.

The default codec is unsigned on purpose: a per-process random key would
turn every cursor into an error on the next worker behind the load balancer.
Set ``Repository.cursors = CursorCodec(secret=...)`` at start-up to sign.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from enum import Enum
from typing import Any, Generic, TypeVar
from uuid import UUID

from domain.errors import InvalidValue

T = TypeVar("T")

SortKey = tuple[str, bool]
"""An attribute name and whether it sorts descending."""

CURSOR_VERSION = 1
MAX_CURSOR_LENGTH = 2048
_INT64 = (-(2**63), 2**63 - 1)
_SIGNATURE_BYTES = 16


class InvalidCursor(InvalidValue):
    """The cursor was not made by this service for this query, or was altered."""

    code = "invalid_cursor"


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of results; ``next`` is ``None`` on the last page."""

    items: list[T]
    next: str | None


def _encode_value(name: str, value: object) -> list[Any]:
    # Tagged, so that decoding restores the exact type the database compares.
    if value is None:
        return ["n"]
    if isinstance(value, Enum):
        raise ValueError(
            f"cannot page by {name!r}: enum values ({type(value).__name__}) cannot go in a cursor"
        )
    if isinstance(value, bool):
        return ["b", value]
    if isinstance(value, int):
        if not _INT64[0] <= value <= _INT64[1]:
            raise ValueError(f"cannot page by {name!r}: {value} does not fit in 64 bits")
        return ["i", value]
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"cannot page by {name!r}: {value} is not a finite number")
        return ["f", value]
    if isinstance(value, str):
        return ["s", value]
    if isinstance(value, UUID):
        return ["u", value.hex]
    if isinstance(value, datetime):
        return ["t", value.isoformat()]
    if isinstance(value, date):
        return ["d", value.isoformat()]
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"cannot page by {name!r}: {value} is not a finite number")
        return ["m", str(value)]
    raise ValueError(
        f"cannot page by {name!r}: values of type {type(value).__name__} cannot go in a cursor"
    )


def _decode_value(encoded: object) -> object:
    if not isinstance(encoded, list) or not encoded or not isinstance(encoded[0], str):
        raise InvalidCursor("cursor value is malformed")
    tag, *rest = encoded
    if tag == "n" and not rest:
        return None
    if len(rest) != 1:
        raise InvalidCursor("cursor value is malformed")
    raw = rest[0]
    try:
        if tag == "b" and isinstance(raw, bool):
            return raw
        if tag == "i" and isinstance(raw, int) and not isinstance(raw, bool):
            if not _INT64[0] <= raw <= _INT64[1]:
                raise InvalidCursor("cursor integer is out of range")
            return raw
        if tag == "f" and isinstance(raw, float) and math.isfinite(raw):
            return raw
        if tag == "s" and isinstance(raw, str):
            return raw
        if tag == "u" and isinstance(raw, str) and len(raw) == 32:
            return UUID(hex=raw)
        if tag == "t" and isinstance(raw, str):
            return datetime.fromisoformat(raw)
        if tag == "d" and isinstance(raw, str):
            return date.fromisoformat(raw)
        if tag == "m" and isinstance(raw, str):
            number = Decimal(raw)
            if number.is_finite():
                return number
    except (ValueError, InvalidOperation):
        pass
    raise InvalidCursor(f"cursor value of type {tag!r} is malformed")


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise InvalidCursor("cursor is not valid base64") from None


class CursorCodec:
    """Turns (ordering, last item's key values) into an opaque string and back.

    With ``secret`` the cursor carries an HMAC-SHA256 tag and a cursor made
    with another secret, or altered, is refused; without it only the strict
    structural checks apply.
    """

    def __init__(self, secret: bytes | None = None) -> None:
        if secret is not None and len(secret) < 16:
            raise ValueError("a cursor secret needs at least 16 bytes")
        self._secret = secret

    def encode(self, order: Sequence[SortKey], values: Sequence[object]) -> str:
        payload = {
            "v": CURSOR_VERSION,
            "o": [[name, descending] for name, descending in order],
            "k": [
                _encode_value(name, value) for (name, _), value in zip(order, values, strict=True)
            ],
        }
        body = _b64encode(json.dumps(payload, separators=(",", ":")).encode())
        if self._secret is None:
            return body
        return f"{body}.{_b64encode(self._sign(body))}"

    def decode(self, cursor: str, order: Sequence[SortKey]) -> tuple[object, ...]:
        """The key values in ``cursor``, if it was made for exactly ``order``."""
        if not isinstance(cursor, str) or not cursor or len(cursor) > MAX_CURSOR_LENGTH:
            raise InvalidCursor(f"cursor must be a non-empty string of at most {MAX_CURSOR_LENGTH}")
        body, dot, signature = cursor.partition(".")
        if self._secret is not None:
            if not dot or not hmac.compare_digest(_b64decode(signature), self._sign(body)):
                raise InvalidCursor("cursor signature does not match")
        elif dot:
            raise InvalidCursor("cursor is signed but no cursor secret is configured")
        try:
            payload = json.loads(_b64decode(body))
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise InvalidCursor("cursor is not valid JSON") from None
        if not isinstance(payload, dict) or set(payload) != {"v", "o", "k"}:
            raise InvalidCursor("cursor fields are malformed")
        if payload["v"] != CURSOR_VERSION:
            raise InvalidCursor(f"cursor version {payload['v']!r} is not supported")
        if payload["o"] != [[name, descending] for name, descending in order]:
            raise InvalidCursor("cursor was made for another ordering")
        keys = payload["k"]
        if not isinstance(keys, list) or len(keys) != len(order):
            raise InvalidCursor("cursor holds the wrong number of key values")
        return tuple(_decode_value(key) for key in keys)

    def _sign(self, body: str) -> bytes:
        assert self._secret is not None
        return hmac.new(self._secret, body.encode(), hashlib.sha256).digest()[:_SIGNATURE_BYTES]
