"""Which contexts run: the ones ``KEEL_CONTEXTS`` names; unset, all under ``entrypoints/``."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

import entrypoints
from adapters.settings import Settings
from entrypoints.context import discovered, running_context_names

pytestmark = pytest.mark.unit


@pytest.fixture
def extra_packages(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A folder searched as part of ``entrypoints/``; the modules imported from it are
    forgotten afterwards."""
    monkeypatch.setattr(entrypoints, "__path__", [*entrypoints.__path__, str(tmp_path)])
    before = set(sys.modules)
    yield tmp_path
    for name in set(sys.modules) - before:
        if name.startswith("entrypoints."):
            del sys.modules[name]


def package(root: Path, body: str) -> str:
    name = f"extra_{uuid.uuid4().hex[:8]}"
    (root / name).mkdir()
    (root / name / "__init__.py").write_text(body)
    return name


def test_a_package_under_entrypoints_that_exports_a_context_is_discovered(
    extra_packages: Path,
) -> None:
    name = package(extra_packages, "from tests.catalog import context\n")

    assert name in discovered()


def test_a_package_under_entrypoints_without_a_context_is_not(extra_packages: Path) -> None:
    name = package(extra_packages, "routes = []\n")

    assert name not in discovered()


def test_unset_keel_contexts_runs_every_discovered_context(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("KEEL_CONTEXTS", raising=False)

    assert running_context_names(Settings(_env_file=None)) == discovered()  # type: ignore[call-arg]


def test_empty_keel_contexts_runs_the_kernel_alone() -> None:
    assert running_context_names(Settings(keel_contexts="")) == ()


def test_listed_contexts_run_in_the_order_listed() -> None:
    assert running_context_names(Settings(keel_contexts="tests.catalog, orders")) == (
        "tests.catalog",
        "orders",
    )
