"""The journal's opaque pagination cursor."""

from __future__ import annotations

import base64
import random
import string

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


def _base64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).rstrip(b"=").decode()


@pytest.mark.parametrize(
    "position", ["9999999999999999999", str(2**63), "9223372036854775808"], ids=str
)
def test_a_cursor_beyond_a_64_bit_position_is_invalid(position: str) -> None:
    with pytest.raises(InvalidCursor):
        decode_cursor(_base64(f"v1:{position}"))


def test_the_largest_64_bit_position_is_a_valid_cursor() -> None:
    assert decode_cursor(_base64(f"v1:{2**63 - 1}")) == 2**63 - 1


def _random_cursor(rng: random.Random) -> str:
    """Noise, near-misses of the format, and well-formed ones at the edges of the range."""
    choice = rng.randrange(4)
    if choice == 0:
        alphabet = string.ascii_letters + string.digits + "-_=+/!%. "
        return "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 70)))
    if choice == 1:
        return _base64(f"v1:{rng.randrange(0, 10 ** rng.randrange(1, 25))}")
    if choice == 2:
        prefix = rng.choice(["v1:", "v2:", "v1:-", "v1: ", "V1:", "v1:0", ""])
        return _base64(prefix + "".join(rng.choice(string.printable) for _ in range(20)))
    return base64.urlsafe_b64encode(rng.randbytes(rng.randrange(1, 40))).decode()


def test_fuzzed_cursors_decode_to_a_64_bit_position_or_are_invalid() -> None:
    rng = random.Random(20261201)

    for _ in range(5000):
        cursor = _random_cursor(rng)
        try:
            position = decode_cursor(cursor)
        except InvalidCursor:
            continue
        assert 0 <= position <= 2**63 - 1, cursor
