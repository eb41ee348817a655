"""The journal's opaque pagination cursor."""

from __future__ import annotations

import base64

import pytest

from domain.ledger.errors import InvalidCursor
from service_layer.ledger.cursor import decode_cursor, encode_cursor

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("sequence", [0, 1, 42, 10**18])
def test_a_cursor_decodes_to_the_sequence_it_was_made_from(sequence: int) -> None:
    assert decode_cursor(encode_cursor(sequence)) == sequence


def test_a_cursor_is_safe_in_a_query_string() -> None:
    cursor = encode_cursor(10**18)

    assert cursor.replace("-", "").replace("_", "").isalnum()


@pytest.mark.parametrize(
    "cursor",
    [
        "",
        "not a cursor",
        "abc!",
        "%%%",
        base64.urlsafe_b64encode(b"v1:-1").decode(),
        base64.urlsafe_b64encode(b"v2:5").decode(),
        base64.urlsafe_b64encode(b"v1:05").decode(),
        base64.urlsafe_b64encode(b"\xff\xfe").decode(),
        "A" * 65,
    ],
)
def test_anything_else_is_an_invalid_cursor(cursor: str) -> None:
    with pytest.raises(InvalidCursor):
        decode_cursor(cursor)
