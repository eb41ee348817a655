"""The page cursor: it round-trips every supported key type and refuses anything else."""

from __future__ import annotations

import base64
import json
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from enum import Enum
from uuid import UUID

import pytest

from service_layer.pagination import MAX_CURSOR_LENGTH, CursorCodec, InvalidCursor

pytestmark = pytest.mark.unit

ORDER = (("key", False), ("id", False))
SIGNED = CursorCodec(secret=b"a test secret of 32 bytes, ok!!")
ID = UUID("12345678-1234-5678-1234-567812345678")


class Colour(Enum):
    RED = "red"


def forge(payload: object) -> str:
    """A cursor built by hand, as a client tampering with one would."""
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).rstrip(b"=").decode()


@pytest.mark.parametrize(
    "value",
    [
        None,
        True,
        0,
        -(2**63),
        2**63 - 1,
        1.5,
        "naïve ☃ text",
        ID,
        datetime(2024, 5, 1, 12, 30, 15, 123456, tzinfo=UTC),
        datetime(2024, 5, 1, 12, 30, tzinfo=timezone(timedelta(hours=-5))),
        datetime(2024, 5, 1, 12, 30),
        date(2024, 5, 1),
        Decimal("12345678901234567890.000001"),
    ],
    ids=repr,
)
@pytest.mark.parametrize("codec", [CursorCodec(), SIGNED], ids=["unsigned", "signed"])
def test_every_supported_key_type_round_trips_exactly(codec: CursorCodec, value: object) -> None:
    decoded = codec.decode(codec.encode(ORDER, [value, ID]), ORDER)

    assert decoded == (value, ID)
    assert type(decoded[0]) is type(value)


def test_a_cursor_is_opaque_url_safe_text() -> None:
    cursor = SIGNED.encode(ORDER, ["a/b+c", ID])

    assert set(cursor) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.")


def test_a_signed_cursor_with_an_altered_value_is_refused() -> None:
    body, signature = SIGNED.encode(ORDER, [1, ID]).split(".")
    payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    payload["k"][0] = ["i", 2]

    with pytest.raises(InvalidCursor, match="signature"):
        SIGNED.decode(f"{forge(payload)}.{signature}", ORDER)


def test_a_cursor_signed_with_another_secret_is_refused() -> None:
    other = CursorCodec(secret=b"another secret, also long enough")

    with pytest.raises(InvalidCursor, match="signature"):
        SIGNED.decode(other.encode(ORDER, [1, ID]), ORDER)


def test_an_unsigned_cursor_is_refused_when_cursors_are_signed() -> None:
    with pytest.raises(InvalidCursor, match="signature"):
        SIGNED.decode(CursorCodec().encode(ORDER, [1, ID]), ORDER)


def test_a_signed_cursor_is_refused_when_no_secret_is_configured() -> None:
    with pytest.raises(InvalidCursor, match="no cursor secret"):
        CursorCodec().decode(SIGNED.encode(ORDER, [1, ID]), ORDER)


def test_an_integer_beyond_64_bits_is_refused() -> None:
    cursor = forge(
        {"v": 1, "o": [["key", False], ["id", False]], "k": [["i", 2**63], ["u", ID.hex]]}
    )

    with pytest.raises(InvalidCursor, match="out of range"):
        CursorCodec().decode(cursor, ORDER)


@pytest.mark.parametrize(
    "key",
    [
        ["i", "1"],
        ["i", True],
        ["u", "not-a-uuid"],
        ["t", "yesterday"],
        ["m", "NaN"],
        ["x", 1],
        [],
        "i",
    ],
    ids=repr,
)
def test_a_value_that_does_not_match_its_type_is_refused(key: object) -> None:
    cursor = forge({"v": 1, "o": [["key", False], ["id", False]], "k": [key, ["u", ID.hex]]})

    with pytest.raises(InvalidCursor):
        CursorCodec().decode(cursor, ORDER)


@pytest.mark.parametrize(
    "payload",
    [
        [],
        {"v": 1},
        {"v": 2, "o": [], "k": []},
        {"v": 1, "o": [["key", False], ["id", False]], "k": [["n"]]},
    ],
    ids=["list", "missing-fields", "future-version", "too-few-keys"],
)
def test_a_cursor_of_the_wrong_shape_is_refused(payload: object) -> None:
    with pytest.raises(InvalidCursor):
        CursorCodec().decode(forge(payload), ORDER)


@pytest.mark.parametrize("cursor", ["", "!!!", "bm90IGpzb24", "x" * (MAX_CURSOR_LENGTH + 1)])
def test_text_that_is_no_cursor_at_all_is_refused(cursor: str) -> None:
    with pytest.raises(InvalidCursor):
        CursorCodec().decode(cursor, ORDER)


def test_invalid_cursor_is_a_domain_error_with_a_stable_code() -> None:
    with pytest.raises(InvalidCursor) as raised:
        CursorCodec().decode("!!!", ORDER)

    assert raised.value.code == "invalid_cursor"


@pytest.mark.parametrize(
    "value", [Colour.RED, 2**64, float("nan"), Decimal("Infinity"), b"raw"], ids=repr
)
def test_a_key_value_that_cannot_go_in_a_cursor_is_refused_when_paging(value: object) -> None:
    with pytest.raises(ValueError, match="cannot page by 'key'"):
        CursorCodec().encode(ORDER, [value, ID])


def test_a_short_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 16 bytes"):
        CursorCodec(secret=b"short")
