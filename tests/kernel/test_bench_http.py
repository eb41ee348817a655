"""``python -m bench.http`` picks a context's HTTP bench and hands it the arguments.

Fake bench folders and a fake bench module stand in, so nothing is benched and
no context is named: the kernel must run whichever contexts there are.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

import bench.http as bench_http

pytestmark = pytest.mark.unit


@pytest.fixture
def root(tmp_path: Path) -> Path:
    for context in ("billing", "orders"):
        (tmp_path / context).mkdir()
    (tmp_path / "orders" / "http.py").write_text("")
    return tmp_path


def test_the_first_configured_context_with_an_http_bench_is_chosen(root: Path) -> None:
    assert bench_http.choose(None, ["billing", "orders"], root) == "orders"


def test_context_names_the_one_to_run(root: Path) -> None:
    (root / "billing" / "http.py").write_text("")

    assert bench_http.choose("orders", ["billing", "orders"], root) == "orders"


def test_a_context_without_an_http_bench_is_refused_by_name(root: Path) -> None:
    with pytest.raises(LookupError, match=r"--context billing: there is no bench/billing/http\.py"):
        bench_http.choose("billing", ["billing", "orders"], root)


def test_no_context_with_an_http_bench_is_said_so(root: Path) -> None:
    with pytest.raises(LookupError, match=r"no context in KEEL_CONTEXTS \(billing\) has"):
        bench_http.choose(None, ["billing"], root)


def test_a_dotted_context_name_has_no_bench_folder(root: Path) -> None:
    assert not bench_http.has_http_bench("tests.orders", root)


def test_keel_contexts_is_read_as_keel_reads_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEEL_CONTEXTS", " orders, billing ,")

    assert bench_http.configured_contexts() == ["orders", "billing"]


def test_without_a_context_it_exits_2_and_says_why(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("KEEL_CONTEXTS", "")

    assert bench_http.main(["--rounds", "1"]) == 2
    assert "no context in KEEL_CONTEXTS (none) has a bench/<context>/http.py" in (
        capsys.readouterr().err
    )


def test_every_other_argument_goes_to_the_contexts_bench(monkeypatch: pytest.MonkeyPatch) -> None:
    received: list[list[str]] = []
    imported: list[str] = []

    def run(argv: list[str]) -> int:
        received.append(list(argv))
        return 7

    def load(context: str) -> SimpleNamespace:
        imported.append(context)
        return SimpleNamespace(main=run)

    monkeypatch.setattr(bench_http, "choose", lambda requested, configured: requested)
    monkeypatch.setattr(bench_http, "bench_module", load)

    status = bench_http.main(["--rounds", "1", "--context", "orders", "--json", "x.json"])

    assert status == 7
    assert imported == ["orders"]
    assert received == [["--rounds", "1", "--json", "x.json"]]
