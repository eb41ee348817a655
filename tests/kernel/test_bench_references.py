"""Every module a benchmark names in a string (uvicorn factories, ``-m`` runs) exists.

The benches are not run by the test command (they need a quiet machine), so
a module they start by name could move without any test noticing.
"""

from __future__ import annotations

import ast
import functools
import importlib.util
import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

BENCH = Path(__file__).resolve().parents[2] / "bench"


@functools.cache
def _parsed(path: Path) -> ast.Module:
    """The syntax tree of a bench module, parsed once per run: several tests read it."""
    return ast.parse(path.read_text())


@functools.cache
def _bench_nodes() -> tuple[tuple[str, tuple[ast.AST, ...]], ...]:
    """Each bench module's name and every node of its syntax tree."""
    return tuple(
        (path.name, tuple(ast.walk(_parsed(path)))) for path in sorted(BENCH.rglob("*.py"))
    )


def _named_modules() -> list[tuple[str, str]]:
    """``module:function`` strings, and the string after ``"-m"`` in a command list."""
    found = []
    for name, nodes in _bench_nodes():
        for node in nodes:
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                module, colon, _function = node.value.partition(":")
                if colon and module.startswith("bench.") and " " not in node.value:
                    found.append((name, module))
            elif isinstance(node, ast.List | ast.Tuple):
                texts = [e.value if isinstance(e, ast.Constant) else None for e in node.elts]
                found.extend(
                    (name, str(texts[index + 1]))
                    for index, text in enumerate(texts[:-1])
                    if text == "-m" and isinstance(texts[index + 1], str)
                )
    return found


@pytest.mark.parametrize(("where", "module"), _named_modules())
def test_a_module_a_bench_starts_by_name_exists(where: str, module: str) -> None:
    assert importlib.util.find_spec(module) is not None, f"{where} names {module}"


def _factories() -> list[tuple[str, str]]:
    """The ``module:function`` strings the benches hand to ``uvicorn --factory``."""
    return [
        (where, text)
        for where, text in _strings()
        if text.split(".")[0] in ("bench", "entrypoints") and ":" in text and " " not in text
    ]


def _strings() -> list[tuple[str, str]]:
    return [
        (name, node.value)
        for name, nodes in _bench_nodes()
        for node in nodes
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    ]


@pytest.mark.parametrize(("where", "factory"), _factories())
def test_an_app_factory_a_bench_names_is_defined_there(where: str, factory: str) -> None:
    module, _, function = factory.partition(":")
    spec = importlib.util.find_spec(module)
    assert spec is not None, f"{where} names {module}"
    assert spec.origin is not None, f"{module} is no source file"
    defined = {
        node.name
        for node in ast.parse(Path(spec.origin).read_text()).body
        if isinstance(node, ast.FunctionDef)
    }
    assert function in defined, f"{where} names {factory}, but {module} defines no {function}"


MAKEFILE = BENCH.parent / "Makefile"


def _makefile_modules() -> list[str]:
    return sorted(set(re.findall(r"python -m (bench(?:\.\w+)+)", MAKEFILE.read_text())))


@pytest.mark.parametrize("module", _makefile_modules())
def test_a_module_make_bench_runs_exists(module: str) -> None:
    assert importlib.util.find_spec(module) is not None, f"the Makefile runs {module}"


def test_make_bench_writes_the_files_the_publisher_reads() -> None:
    from bench import publish

    recipe = MAKEFILE.read_text().split("\nbench:", 1)[1].split("\n\n", 1)[0]

    for name in (publish.MACHINE, publish.KERNEL, publish.KERNEL_MESSAGING):
        assert f"$(BENCH_OUT)/{name}" in recipe, f"make bench does not write {name}"
    assert "$(BENCH_OUT)/$$context-$$kind.json" in recipe
    assert {publish.HTTP_SUFFIX, publish.MESSAGING_SUFFIX} == {"-http.json", "-messaging.json"}
    assert "for kind in http messaging" in recipe
    assert "python -m bench.publish $(BENCH_OUT) docs/benchmarks.md" in recipe


def test_every_context_http_bench_has_the_main_bench_http_calls() -> None:
    for path in sorted(BENCH.glob("*/http.py")):
        names = {n.name for n in _parsed(path).body if isinstance(n, ast.FunctionDef)}
        assert "main" in names, f"{path.relative_to(BENCH.parent)} has no main(argv)"
