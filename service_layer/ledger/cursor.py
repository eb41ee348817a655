"""The opaque pagination cursor of an account's journal.

It encodes the sequence number of the last entry a page showed. Clients
must treat it as opaque; the ``v1:`` prefix leaves room to change it.
"""

from __future__ import annotations

import base64
import binascii
import re

from domain.ledger.errors import InvalidCursor

_PREFIX = "v1:"
MAX_SEQUENCE = 2**63 - 1
"""The largest position a BIGINT column holds; beyond it the driver fails (a 500)."""
_SHAPE = re.compile(r"[A-Za-z0-9_-]{1,64}")
_PAYLOAD = re.compile(r"v1:(0|[1-9][0-9]{0,18})")


def encode_cursor(sequence: int) -> str:
    raw = f"{_PREFIX}{sequence}".encode("ascii")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def decode_cursor(cursor: str) -> int:
    """The sequence number in ``cursor``; :class:`InvalidCursor` for anything not made here."""
    # urlsafe_b64decode silently drops characters outside its alphabet, so
    # the shape is checked first: "abc!" must not pass for "abc".
    if not isinstance(cursor, str) or _SHAPE.fullmatch(cursor) is None:
        raise InvalidCursor(f"cursor {cursor!r} is not one this service handed out")
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
    except (binascii.Error, UnicodeDecodeError):
        raise InvalidCursor(f"cursor {cursor!r} is not one this service handed out") from None
    match = _PAYLOAD.fullmatch(text)
    if match is None or int(match.group(1)) > MAX_SEQUENCE:
        raise InvalidCursor(f"cursor {cursor!r} is not one this service handed out")
    return int(match.group(1))
