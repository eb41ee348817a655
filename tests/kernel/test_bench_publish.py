"""``bench.publish`` renders what the benches' JSON says, and refuses what it cannot read.

Small fixture files stand in for one run's ``out/bench`` folder, so no bench,
server or database runs here. The context is called ``orders``: the publisher
knows no context by name.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from bench.chart import Ratio
from bench.machine import LABELS
from bench.publish import PublishError, load_run, main, markdown_table, publish

pytestmark = pytest.mark.unit

MACHINE: dict[str, Any] = {
    "benchmark": "machine",
    "cpu": "Test CPU 9000",
    "cores": "2 logical",
    "ram": "8.0 GiB",
    "os": "Debian GNU/Linux 12 (bookworm)",
    "kernel": "Linux 6.1.0",
    "python": "CPython 3.11.7",
    "postgresql": "15.20",
    "redis": "7.0.15",
    "load_average": "0.10 0.20 0.30",
    "date_utc": "2030-01-02 03:04:05 UTC",
    "git_commit": "0123abcd",
}


def _ratio(key: str, value: float, low: float, high: float) -> dict[str, float]:
    return {key: value, f"{key}_low": low, f"{key}_high": high}


def _kernel() -> dict[str, Any]:
    ops = {
        "keel_ops_s": 900.0,
        "sqlalchemy_ops_s": 1000.0,
        "asyncpg_ops_s": 3000.0,
        "keel_cpu_us_per_op": 700.0,
        "sqlalchemy_cpu_us_per_op": 650.0,
        "asyncpg_cpu_us_per_op": 150.0,
        **_ratio("keel_over_sqlalchemy", 0.9, 0.85, 0.95),
        **_ratio("keel_over_asyncpg", 0.3, 0.25, 0.35),
        **_ratio("sqlalchemy_over_asyncpg", 0.333, 0.3, 0.36),
    }
    bulk = {
        "keel_add_many_rows_s": 90_000.0,
        "keel_add_many_cpu_us_per_row": 5.0,
        "asyncpg_executemany_rows_s": 100_000.0,
        "asyncpg_executemany_cpu_us_per_row": 3.0,
        **_ratio("keel_add_many_over_asyncpg_executemany", 0.9, 0.7, 1.1),
        **_ratio("keel_add_many_over_asyncpg_copy", 0.6, 0.5, 0.7),
        **_ratio("keel_add_many_over_orm_add_all", 3.0, 2.8, 3.2),
        **_ratio("orm_add_all_over_asyncpg_executemany", 0.3, 0.28, 0.32),
    }
    return {
        "benchmark": "kernel",
        "command": "python -m bench.kernel --json out/bench/kernel.json",
        "config": {"target": 1.10, "bulk_rows": 10_000, "bulk_target": 0.8},
        "summary": {"get": ops},
        "bulk": {"summary": bulk},
    }


def _http(errors: int = 0) -> dict[str, Any]:
    figures: dict[str, float] = {}
    for name, rate in (("keel", 600.0), ("sqlalchemy", 500.0), ("asyncpg", 1000.0)):
        figures |= {f"{name}_req_s": rate, f"{name}_p50_ms": 12.5, f"{name}_p99_ms": 40.0}
        figures |= {f"{name}_errors": 0.0, **_ratio(f"{name}_over_ceiling", rate / 4000, 0.1, 0.3)}
    figures |= {"ceiling_req_s": 4000.0, "ceiling_p50_ms": 2.0, "ceiling_p99_ms": 5.0}
    figures |= {"ceiling_errors": float(errors)}
    figures |= _ratio("keel_over_sqlalchemy", 1.2, 1.1, 1.3)
    figures |= _ratio("keel_over_asyncpg", 0.6, 0.55, 0.65)
    return {
        "benchmark": "http",
        "context": "orders",
        "command": "python -m bench.http --json out/bench/orders-http.json",
        "config": {"load_tool": "wrk", "connections": 8, "rounds": 6, "seconds": 1},
        "endpoints": {"account": "GET /accounts/{id}"},
        "variants": {"keel": "a:b", "sqlalchemy": "c:d", "asyncpg": "e:f", "ceiling": "g:h"},
        "goals": {"account": {"keel_over_sqlalchemy": 1.0, "keel_over_asyncpg": 0.7}},
        "summary": {"account": figures},
        "money_conserved": True,
    }


def _messaging() -> dict[str, Any]:
    def compared(ratio: float) -> dict[str, Any]:
        return {
            "rates": {"keel": 300.0, "bare": 500.0},
            "cpu_ms_per_op": {"keel": 2.5, "bare": 1.0},
            "ratio": ratio,
            "interval": [ratio - 0.05, ratio + 0.05],
        }

    return {"orders": {"relay_vs_bare": compared(0.8), "commands_vs_bare": compared(0.5)}}


def _write(folder: Path, name: str, data: Any) -> Path:
    path = folder / name
    path.write_text(json.dumps(data))
    return path


@pytest.fixture
def results(tmp_path: Path) -> Path:
    folder = tmp_path / "bench"
    folder.mkdir()
    _write(folder, "machine.json", MACHINE)
    _write(folder, "kernel.json", _kernel())
    _write(folder, "orders-http.json", _http())
    _write(folder, "orders-messaging.json", _messaging())
    (folder / "orders-messaging.command").write_text("python -m bench.orders.messaging\n")
    return folder


class Drawn:
    """Stands in for the matplotlib chart: remembers what it was asked to draw."""

    def __init__(self) -> None:
        self.calls: list[tuple[list[Ratio], Path, str]] = []

    def __call__(self, ratios: Sequence[Ratio], path: Path, title: str) -> None:
        self.calls.append((list(ratios), path, title))
        path.write_text("<svg/>")


def _publish(results: Path, drawer: Callable[[Sequence[Ratio], Path, str], None]) -> str:
    document = results.parent / "docs" / "benchmarks.md"
    publish(results, document, document.with_suffix(".svg"), drawer)
    return document.read_text()


# -- what the document says ---------------------------------------------------------------


def test_the_http_table_has_every_variant_with_its_figures_and_ratios(results: Path) -> None:
    text = _publish(results, Drawn())

    assert "## HTTP: orders" in text
    assert "python -m bench.http --json out/bench/orders-http.json" in text
    assert "| GET /accounts/{id} | keel | 600 | 12.5 | 40.0 | 0 |  |  | 0.150 (0.10-0.30) |" in text
    assert "| GET /accounts/{id} | sqlalchemy | 500 | 12.5 | 40.0 | 0 | 1.200 (1.10-1.30) |" in text
    assert "| GET /accounts/{id} | ceiling | 4,000 | 2.0 | 5.0 | 0 |  |  |  |" in text
    assert "Load from `wrk`, 8 connections, 6 interleaved rounds of 1 s" in text
    assert "Money conserved across all transfers: yes." in text


def test_the_summary_table_gives_each_ratio_its_goal_and_verdict(results: Path) -> None:
    text = _publish(results, Drawn())

    assert "| orders GET /accounts/{id} Keel/plain | meets | 1.200 (1.10-1.30) | ≥ 1 |" in text
    assert "| orders GET /accounts/{id} Keel/asyncpg | misses | 0.600 (0.55-0.65) | ≥ 0.7 |" in text
    assert (
        "| kernel bulk add_many / executemany | meets; the interval reaches below "
        "| 0.900 (0.70-1.10) | ≥ 0.8 |"
    ) in text
    assert "| kernel get Keel/plain | misses; the interval reaches the goal" in text
    assert "| orders consumer Keel/bare | misses | 0.500 (0.45-0.55) | ≥ 0.6 |" in text
    assert "| orders relay Keel/bare | no goal set | 0.800 (0.75-0.85) | — |" in text


def test_the_kernel_and_messaging_sections_carry_their_tables_and_commands(results: Path) -> None:
    text = _publish(results, Drawn())

    assert "python -m bench.kernel --json out/bench/kernel.json" in text
    assert "| get | 900 | 1,000 | 3,000 | 0.900 (0.85-0.95) | 0.300 (0.25-0.35)" in text
    assert "| keel_add_many | 90,000 | 5.0 |" in text
    assert "Bulk insert of 10,000 rows per unit of work." in text
    assert "## Messaging: orders" in text
    assert "python -m bench.orders.messaging" in text  # from the .command file beside it
    assert "| consumer (commands) | 300 | 500 | 2.50 / 1.00 | 0.500 (0.45-0.55) | ≥ 0.6 |" in text


def test_the_machine_section_names_everything_the_figures_depend_on(results: Path) -> None:
    text = _publish(results, Drawn())

    machine = text.split("## Machine", 1)[1].split("## ", 1)[0]
    for key, label in LABELS.items():
        assert f"| {label} | {MACHINE[key]} |" in machine


def test_the_chart_gets_every_ratio_and_the_document_links_it(results: Path) -> None:
    drawn = Drawn()

    text = _publish(results, drawn)

    [(ratios, path, title)] = drawn.calls
    assert path == results.parent / "docs" / "benchmarks.svg"
    assert path.read_text() == "<svg/>"
    assert "2030-01-02 03:04:05 UTC" in title
    assert [r.label for r in ratios][:2] == [
        "orders GET /accounts/{id} Keel/plain",
        "orders GET /accounts/{id} Keel/asyncpg",
    ]
    assert {r.label: r.goal for r in ratios}["orders consumer Keel/bare"] == 0.6
    assert "](benchmarks.svg)" in text


def test_an_endpoint_with_error_responses_makes_its_ratios_invalid(results: Path) -> None:
    _write(results, "orders-http.json", _http(errors=3))

    text = _publish(results, Drawn())

    assert "| orders GET /accounts/{id} Keel/plain | INVALID: error responses |" in text


def test_load_from_the_python_generator_comes_with_its_caveat(results: Path) -> None:
    assert "Python generator" not in _publish(results, Drawn())
    slow = _http()
    slow["config"]["load_tool"] = "python"
    _write(results, "orders-http.json", slow)

    assert "the load came from the Python generator" in _publish(results, Drawn())


def test_a_context_whose_messaging_bench_was_skipped_says_so(results: Path) -> None:
    _write(results, "orders-messaging.json", {"orders": None})

    text = _publish(results, Drawn())

    assert "Skipped: no Redis answered when it ran." in text
    assert "orders consumer" not in text


@pytest.mark.integration  # matplotlib takes a second to import and draw: not for the unit loop
def test_a_chart_file_is_written(results: Path) -> None:
    pytest.importorskip("matplotlib", reason="matplotlib is in the bench dependency group")
    from bench.chart import draw

    document = results.parent / "docs" / "benchmarks.md"
    publish(results, document, document.with_suffix(".svg"), draw)

    chart = document.with_suffix(".svg").read_text()
    assert chart.lstrip().startswith("<?xml")
    assert "<svg" in chart
    assert "Keel/plain" in chart


# -- what it refuses ------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["machine.json", "kernel.json"])
def test_a_missing_input_is_named(results: Path, name: str) -> None:
    (results / name).unlink()

    with pytest.raises(PublishError, match=rf"{results / name}: missing"):
        load_run(results)


def test_a_missing_key_is_named_with_its_file(results: Path) -> None:
    broken = _http()
    del broken["summary"]["account"]["keel_over_asyncpg_low"]
    _write(results, "orders-http.json", broken)

    with pytest.raises(PublishError, match=r"orders-http.json: no 'summary.account.keel_over"):
        load_run(results)


def test_a_result_without_its_command_is_refused(results: Path) -> None:
    (results / "orders-messaging.command").unlink()

    with pytest.raises(PublishError, match=r"orders-messaging.json: no 'command' key"):
        load_run(results)


def test_an_unknown_file_is_refused_rather_than_ignored(results: Path) -> None:
    _write(results, "surprise.json", {})

    with pytest.raises(PublishError, match=r"surprise.json: not a result this publisher knows"):
        load_run(results)


def test_a_file_that_is_not_json_is_named(results: Path) -> None:
    (results / "kernel.json").write_text("{not json")

    with pytest.raises(PublishError, match=r"kernel.json: not readable JSON"):
        load_run(results)


def test_the_command_line_reports_a_missing_input_and_exits_2(
    results: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (results / "machine.json").unlink()

    status = main([str(results), str(results.parent / "out.md"), "--no-chart"])

    assert status == 2
    assert f"{results / 'machine.json'}: missing" in capsys.readouterr().err
    assert not (results.parent / "out.md").exists()


# -- the pieces -----------------------------------------------------------------------------


def test_a_markdown_table_escapes_pipes_and_aligns_figures_right() -> None:
    lines = markdown_table(["name", "value"], [["a|b", "1"]])

    assert lines == ["| name | value |", "|:---|---:|", "| a\\|b | 1 |"]


@pytest.mark.parametrize(
    ("ratio", "verdict"),
    [
        (Ratio("x", 1.2, 1.1, 1.3, goal=1.0), "meets"),
        (Ratio("x", 1.05, 0.9, 1.2, goal=1.0), "meets; the interval reaches below"),
        (Ratio("x", 0.95, 0.9, 1.1, goal=1.0), "misses; the interval reaches the goal"),
        (Ratio("x", 0.5, 0.4, 0.6, goal=1.0), "misses"),
        (Ratio("x", 0.5, 0.4, 0.6), "no goal set"),
        (Ratio("x", 1.2, 1.1, 1.3, goal=1.0, valid=False), "INVALID: error responses"),
    ],
)
def test_a_ratio_is_judged_by_its_interval_against_its_goal(ratio: Ratio, verdict: str) -> None:
    assert ratio.verdict == verdict
