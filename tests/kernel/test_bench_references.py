"""Every module a benchmark names in a string (uvicorn factories, ``-m`` runs) exists.

The benches are not run by the test command (they need a quiet machine), so
a module they start by name could move without any test noticing.
"""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

BENCH = Path(__file__).resolve().parents[2] / "bench"


def _named_modules() -> list[tuple[str, str]]:
    """``module:function`` strings, and the string after ``"-m"`` in a command list."""
    found = []
    for path in sorted(BENCH.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                module, colon, _function = node.value.partition(":")
                if colon and module.startswith("bench.") and " " not in node.value:
                    found.append((path.name, module))
            elif isinstance(node, ast.List | ast.Tuple):
                texts = [e.value if isinstance(e, ast.Constant) else None for e in node.elts]
                found.extend(
                    (path.name, str(texts[index + 1]))
                    for index, text in enumerate(texts[:-1])
                    if text == "-m" and isinstance(texts[index + 1], str)
                )
    return found


@pytest.mark.parametrize(("where", "module"), _named_modules())
def test_a_module_a_bench_starts_by_name_exists(where: str, module: str) -> None:
    assert importlib.util.find_spec(module) is not None, f"{where} names {module}"
