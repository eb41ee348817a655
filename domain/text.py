"""Which characters no stored text may hold, whatever the context.

NUL breaks PostgreSQL's text type (the driver raises, a route answers 500);
other control characters, lone surrogates (JSON can smuggle ``\\ud800`` in,
UTF-8 cannot encode it), bidirectional controls (they make a name display as
another: "Trojan Source") and Unicode non-characters are never meaningful in a
name, a reference or a note. One function decides, so the HTTP type, message
payloads and the domain's own checks agree.
"""

from __future__ import annotations

import unicodedata

BIDI_CONTROLS = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)


def _is_noncharacter(code: int) -> bool:
    return 0xFDD0 <= code <= 0xFDEF or (code & 0xFFFE) == 0xFFFE


def unsafe_character(value: str) -> str | None:
    """A description of the first character ``value`` must not hold, or ``None``."""
    for position, char in enumerate(value):
        category = unicodedata.category(char)
        if category == "Cc":
            what = "a control character"
        elif category == "Cs":
            what = "a lone surrogate"
        elif char in BIDI_CONTROLS:
            what = "a bidirectional control"
        elif _is_noncharacter(ord(char)):
            what = "a Unicode non-character"
        else:
            continue
        return f"{what} (U+{ord(char):04X}) at position {position}"
    return None


def check_safe_text(value: str) -> str:
    """``value`` unchanged, or ``ValueError`` naming the character it must not hold."""
    problem = unsafe_character(value)
    if problem is not None:
        raise ValueError(f"must not contain {problem}")
    return value
