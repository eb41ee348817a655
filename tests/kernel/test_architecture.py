"""The layout's rules, checked on the source: dependencies point inwards, one name per class.

An AST walk rather than import-linter: the rules are three, and they read
better as the few lines that check them than as a configuration file.
"""

from __future__ import annotations

import ast
import functools
import sys
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("domain", "adapters", "service_layer", "entrypoints")


@functools.cache
def _modules(package: str) -> tuple[tuple[Path, ast.Module], ...]:
    """Every module of ``package``, parsed once per run: the tests below read the same files."""
    return tuple(
        (path, ast.parse(path.read_text(), filename=str(path)))
        for path in sorted((ROOT / package).rglob("*.py"))
        # Alembic revisions are frozen records, not part of the graph
        if "migrations" not in path.parts and "versions" not in path.parts
    )


@functools.cache
def _imports(tree: ast.Module) -> tuple[str, ...]:
    return tuple(_walk_imports(tree))


def _statements(nodes: list[ast.AST]) -> Iterator[ast.AST]:
    """Every statement under ``nodes``, at any depth (functions, classes, ``if``, ``try``...).

    An import is a statement, so it is only ever found in a list of them; walking those
    lists alone, and not every expression (most of a tree), finds the same imports.
    """
    for node in nodes:
        yield node
        for field in ("body", "orelse", "finalbody", "handlers", "cases"):
            children = getattr(node, field, None)
            if isinstance(children, list):
                yield from _statements(children)


def _walk_imports(tree: ast.Module) -> Iterator[str]:
    for node in _statements(list(tree.body)):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module


def _offences(package: str, allowed: set[str]) -> list[str]:
    return [
        f"{path.relative_to(ROOT)} imports {name}"
        for path, tree in _modules(package)
        for name in _imports(tree)
        if name.split(".")[0] not in allowed
    ]


def test_the_service_layer_imports_neither_adapters_nor_entrypoints() -> None:
    found = [
        offence
        for offence in _offences(
            "service_layer", set(sys.stdlib_module_names) | {"service_layer", "domain"}
        )
    ]

    assert found == []


def test_the_domain_imports_the_standard_library_alone() -> None:
    assert _offences("domain", set(sys.stdlib_module_names) | {"domain"}) == []


def test_adapters_never_import_entrypoints() -> None:
    imports = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path, tree in _modules("adapters")
        for name in _imports(tree)
        if name.split(".")[0] == "entrypoints"
    ]

    assert imports == []


def test_no_two_classes_share_a_name() -> None:
    where: defaultdict[str, list[str]] = defaultdict(list)
    for package in PACKAGES:
        for path, tree in _modules(package):
            for node in tree.body:
                if isinstance(node, ast.ClassDef):
                    where[node.name].append(str(path.relative_to(ROOT)))

    assert {name: paths for name, paths in where.items() if len(paths) > 1} == {}
