"""The kernel's safe text: what no stored string may hold, and the 422 that names the field."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from domain.text import check_safe_text, unsafe_character
from entrypoints.http.types import RequestModel, SafeStr

pytestmark = pytest.mark.unit


class Note(RequestModel):
    title: SafeStr


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("A\u0000B", "a control character (U+0000) at position 1"),
        ("bell\u0007", "a control character (U+0007) at position 4"),
        ("\ud800", "a lone surrogate (U+D800) at position 0"),
        ("abc\u202edcba", "a bidirectional control (U+202E) at position 3"),
        ("x\u2066y", "a bidirectional control (U+2066) at position 1"),
        ("\ufdd0", "a Unicode non-character (U+FDD0) at position 0"),
        ("end\uffff", "a Unicode non-character (U+FFFF) at position 3"),
        ("\U0001fffe", "a Unicode non-character (U+1FFFE) at position 0"),
    ],
)
def test_unsafe_characters_are_named_with_their_position(text: str, named: str) -> None:
    assert unsafe_character(text) == named


@pytest.mark.parametrize("text", ["Ada Lovelace", "Zoë Ørsted", "李小龍", "a-b_c.d e", "🙂"])
def test_ordinary_text_passes_unchanged(text: str) -> None:
    assert check_safe_text(text) == text


def test_a_tab_is_a_control_character_like_any_other() -> None:
    with pytest.raises(ValueError, match="control character"):
        check_safe_text("a\tb")


def test_a_request_field_of_safe_text_refuses_a_nul_naming_the_field() -> None:
    with pytest.raises(ValidationError) as refused:
        Note.model_validate({"title": "A\u0000B"})

    (error,) = refused.value.errors()
    assert error["loc"] == ("title",)
    assert "must not contain a control character (U+0000)" in error["msg"]
