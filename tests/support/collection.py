"""Collection shortcuts for a run narrowed with ``-m`` (``make test-unit``).

pytest applies ``-m`` only after it has imported every test module, so the unit loop
used to import all the integration and end-to-end modules (and what they import: the
HTTP app, schemathesis, hypothesis...) just to deselect every test in them.
:func:`cannot_match` decides, from a module's source and without importing it,
that ``-m`` would deselect every test in it; ``tests/conftest.py`` then leaves the
module out of the collection. The selected tests are exactly the same; only the
"deselected" count shrinks.

This is hand-written because pytest has no such option: marks live on imported
objects, so only the module-level ``pytestmark = pytest.mark.<name>`` line can be
known in advance, and a module is skipped only when the ``-m`` expression is false
for *every* test that carries that mark, whatever other marks the test has.
"""

from __future__ import annotations

import functools
import itertools
import re
from pathlib import Path

# The parser that ``-m`` itself uses; pytest does not export it. Going through it (and
# not a parser of our own) keeps the shortcut and pytest's own selection in agreement.
from _pytest.mark.expression import Expression, ExpressionMatcher

_MODULE_MARK = re.compile(r"^pytestmark = pytest\.mark\.(\w+)$", re.MULTILINE)

_MOST_FREE_NAMES = 8
"""Above this many marks in ``-m`` that a module does not fix, do not try (2**n cases)."""


class _Undecided(Exception):
    """``-m`` asks for a mark's arguments (``name(key=value)``): not decided statically."""


def module_marks(path: Path) -> frozenset[str] | None:
    """The marks every test of the module at ``path`` carries, read without importing it.

    Only a single top-level ``pytestmark = pytest.mark.<name>`` line counts; if the
    source names ``pytestmark`` anywhere else (a list, a class attribute, a second
    assignment), the answer is ``None``: unknown, and the module is collected as usual.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    found = _MODULE_MARK.findall(text)
    if len(found) != 1 or text.count("pytestmark") != 1:
        return None
    return frozenset(found)


@functools.cache
def compiled(markexpr: str) -> Expression | None:
    """``markexpr`` compiled as ``-m`` compiles it; ``None`` if it does not parse (pytest
    then reports the error itself, later)."""
    try:
        return Expression.compile(markexpr)
    except SyntaxError:
        return None


def cannot_match(expression: Expression, marks: frozenset[str]) -> bool:
    """Whether ``expression`` is false for every test that carries ``marks``.

    Such a test may carry any other marks too (its own, its class's, its parameters'),
    so every mark that the expression names and ``marks`` does not fix is tried both
    present and absent. ``False`` (do collect) whenever that cannot be decided.
    """
    free = sorted(expression.idents() - marks)
    if len(free) > _MOST_FREE_NAMES:
        return False
    for present in itertools.product((False, True), repeat=len(free)):
        names = marks | {name for name, is_present in zip(free, present, strict=True) if is_present}
        try:
            if expression.evaluate(_carrying(names)):
                return False
        except _Undecided:
            return False
    return True


def _carrying(names: frozenset[str]) -> ExpressionMatcher:
    """What ``-m`` sees of a test whose marks are ``names`` (``MarkMatcher``, by name only)."""

    def matcher(name: str, /, **kwargs: str | int | bool | None) -> bool:
        if kwargs:
            raise _Undecided
        return name in names

    return matcher


def deselected_as_a_whole(path: Path, markexpr: str) -> bool:
    """Whether ``-m markexpr`` would deselect every test of the test module at ``path``."""
    if not markexpr or path.suffix != ".py" or not path.name.startswith("test_"):
        return False
    expression = compiled(markexpr)
    if expression is None:
        return False
    marks = module_marks(path)
    return marks is not None and cannot_match(expression, marks)
