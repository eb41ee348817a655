"""Turn one run's ``--json`` results into ``docs/benchmarks.md`` and a chart of the ratios.

``make bench`` has every bench write its JSON into a scratch folder
(``out/bench/``); this reads that folder and nothing else, so what is
published is exactly what was measured, and the renderer can be tested on
small fixture files without running a bench. The folder holds:

- ``machine.json`` (``python -m bench.machine``) and ``kernel.json``, always;
- ``messaging.json`` (``bench.messaging``), when it ran;
- ``<context>-http.json`` and ``<context>-messaging.json``, per bounded context.

Each result names the command that produced it, in its ``command`` key or in
a ``<name>.command`` file beside it. A missing or malformed input stops the
run with an error naming the file (and the key).

    uv run --group bench python -m bench.publish out/bench docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from bench.chart import ChartError, Ratio, draw
from bench.machine import LABELS

MACHINE = "machine.json"
KERNEL = "kernel.json"
KERNEL_MESSAGING = "messaging.json"
HTTP_SUFFIX = "-http.json"
MESSAGING_SUFFIX = "-messaging.json"
CONSUMER_GOAL = 0.6
"""Issue 11: a context's consumer reaches this share of the bare redis-py + asyncpg loop.
Used when the messaging JSON carries no goal of its own."""
TWINS = {"sqlalchemy": "plain", "asyncpg": "asyncpg"}
"""Keel's HTTP ratios: the twin's variant name and the word the report uses for it."""
CEILING = "ceiling"


class PublishError(Exception):
    """An input is missing or malformed; the message names the file and what is wrong."""


# -- reading ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    """One JSON result file, with look-ups that fail naming the file and the key."""

    path: Path
    data: Mapping[str, Any]

    @classmethod
    def read(cls, path: Path) -> Source:
        if not path.is_file():
            raise PublishError(f"{path}: missing ({_HOW_TO_MAKE.get(path.name, 'see make bench')})")
        try:
            data = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise PublishError(f"{path}: not readable JSON ({exc})") from None
        if not isinstance(data, dict):
            raise PublishError(f"{path}: expected a JSON object, found {type(data).__name__}")
        return cls(path, data)

    def get(self, *keys: str) -> Any:
        """The value at ``keys``; :class:`PublishError` naming the dotted key if absent."""
        found: Any = self.data
        for depth, key in enumerate(keys):
            if not isinstance(found, Mapping) or key not in found:
                where = ".".join(keys[: depth + 1])
                raise PublishError(f"{self.path}: no '{where}'")
            found = found[key]
        return found

    def mapping(self, *keys: str) -> Mapping[str, Any]:
        found = self.get(*keys)
        if not isinstance(found, Mapping):
            raise PublishError(f"{self.path}: '{'.'.join(keys)}' is not an object")
        return found

    def number(self, *keys: str) -> float:
        found = self.get(*keys)
        if isinstance(found, bool) or not isinstance(found, int | float) or math.isnan(found):
            raise PublishError(f"{self.path}: '{'.'.join(keys)}' is not a number: {found!r}")
        return float(found)

    def ratio(self, label: str, *keys: str, goal: float | None = None) -> Ratio:
        """``keys`` with ``_low`` and ``_high`` beside it, as the benches save a ratio."""
        *parent, name = keys
        return Ratio(
            label,
            self.number(*keys),
            self.number(*parent, f"{name}_low"),
            self.number(*parent, f"{name}_high"),
            goal,
        )

    def interval_ratio(self, label: str, *keys: str, goal: float | None = None) -> Ratio:
        """A ``{"ratio": x, "interval": [low, high]}`` object, as the messaging benches save one."""
        interval = self.get(*keys, "interval")
        if not (isinstance(interval, list) and len(interval) == 2):
            raise PublishError(f"{self.path}: '{'.'.join(keys)}.interval' is not [low, high]")
        low, high = (self._as_number(value, (*keys, "interval")) for value in interval)
        return Ratio(label, self.number(*keys, "ratio"), low, high, goal)

    def command(self) -> str:
        """The command behind the result: its ``command`` key, else ``<name>.command``."""
        recorded = self.data.get("command")
        if isinstance(recorded, str) and recorded.strip():
            return recorded.strip()
        beside = self.path.with_suffix(".command")
        if beside.is_file():
            return beside.read_text().strip()
        raise PublishError(
            f"{self.path}: no 'command' key and no {beside.name} beside it: "
            "which command produced it?"
        )

    def _as_number(self, value: Any, keys: Sequence[str]) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise PublishError(f"{self.path}: '{'.'.join(keys)}' holds {value!r}, not a number")
        return float(value)


_HOW_TO_MAKE = {
    MACHINE: "python -m bench.machine out/bench/machine.json writes it",
    KERNEL: "python -m bench.kernel --json out/bench/kernel.json writes it",
}


# -- markdown -------------------------------------------------------------------------------


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown_table(
    headers: Sequence[str], rows: Iterable[Sequence[str]], text_columns: int = 1
) -> list[str]:
    """A GitHub table: the first ``text_columns`` left-aligned, the rest (figures) right."""
    aligns = [":---" if index < text_columns else "---:" for index in range(len(headers))]
    lines = ["| " + " | ".join(_cell(header) for header in headers) + " |"]
    lines.append("|" + "|".join(aligns) + "|")
    lines.extend("| " + " | ".join(_cell(cell) for cell in row) + " |" for row in rows)
    return lines


def with_interval(ratio: Ratio) -> str:
    return f"{ratio.value:.3f} ({ratio.low:.2f}-{ratio.high:.2f})"


def goal_text(ratio: Ratio) -> str:
    return "—" if ratio.goal is None else f"≥ {ratio.goal:.3g}"


@dataclass
class Section:
    """One bench's part of the document: a heading, its command, tables, and its ratios."""

    title: str
    command: str
    body: list[str] = field(default_factory=list)
    ratios: list[Ratio] = field(default_factory=list)

    def render(self) -> list[str]:
        return [f"## {self.title}", "", "```sh", self.command, "```", "", *self.body, ""]


# -- the sections -------------------------------------------------------------------------


def _http_goal(source: Source, endpoint: str, key: str) -> float | None:
    """The goal the HTTP bench saved for ``key`` on ``endpoint``, if it saved one."""
    if "goals" not in source.data or endpoint not in source.mapping("goals"):
        return None
    return (
        source.number("goals", endpoint, key) if key in source.mapping("goals", endpoint) else None
    )


def _python_load_caveat(source: Source) -> list[str]:
    if source.get("config", "load_tool") == "wrk":
        return []
    return [
        "",
        "**Caveat**: the load came from the Python generator (no `wrk`), which shares the "
        "CPU with the servers and may itself be the limit: a low ceiling says so, and then "
        "every ratio is pulled towards 1.",
    ]


def http_section(source: Source, context: str) -> Section:
    """Every variant's req/s and latency, Keel over each twin, each variant's share of the
    ceiling; Keel's ratios, marked invalid on an endpoint where any variant answered errors."""
    rounds, seconds, connections = (
        source.number("config", key) for key in ("rounds", "seconds", "connections")
    )
    variants = list(source.mapping("variants"))
    for required in ("keel", CEILING, *TWINS):
        if required not in variants:
            raise PublishError(f"{source.path}: 'variants' lacks {required!r}")
    section = Section(f"HTTP: {context}", source.command())
    rows = []
    for endpoint, label in source.mapping("endpoints").items():
        errors = sum(source.number("summary", endpoint, f"{v}_errors") for v in variants)
        for twin, word in TWINS.items():
            key = f"keel_over_{twin}"
            ratio = source.ratio(
                f"{context} {label} Keel/{word}",
                "summary",
                endpoint,
                key,
                goal=_http_goal(source, endpoint, key),
            )
            section.ratios.append(replace(ratio, valid=errors == 0))
        for variant in variants:
            share = (
                ""
                if variant == CEILING
                else with_interval(
                    source.ratio("", "summary", endpoint, f"{variant}_over_{CEILING}")
                )
            )
            against = {
                twin: with_interval(source.ratio("", "summary", endpoint, f"keel_over_{twin}"))
                if variant == twin
                else ""
                for twin in TWINS
            }
            rows.append(
                [
                    label,
                    variant,
                    f"{source.number('summary', endpoint, f'{variant}_req_s'):,.0f}",
                    f"{source.number('summary', endpoint, f'{variant}_p50_ms'):.1f}",
                    f"{source.number('summary', endpoint, f'{variant}_p99_ms'):.1f}",
                    f"{source.number('summary', endpoint, f'{variant}_errors'):.0f}",
                    *against.values(),
                    share,
                ]
            )
    section.body = [
        f"Load from `{source.get('config', 'load_tool')}`, {connections:g} connections, "
        f"{rounds:g} interleaved round{'s' * (rounds != 1)} of {seconds:g} s per variant and "
        "endpoint. `sqlalchemy` is the "
        "hand-written plain-`AsyncSession` twin, `asyncpg` the raw-asyncpg one: both send "
        "Keel's SQL, verify the same JWT, scope and ownership, and add the same security "
        "headers. `ceiling` answers constant bodies with no database and no auth: a "
        "variant's share of it says how close it comes to what FastAPI and uvicorn manage "
        "at all on this machine.",
        "",
        *markdown_table(
            [
                "endpoint",
                "variant",
                "req/s",
                "p50 ms",
                "p99 ms",
                "errors",
                "Keel/plain (95% CI)",
                "Keel/asyncpg (95% CI)",
                "share of ceiling (95% CI)",
            ],
            rows,
            text_columns=2,
        ),
        *_python_load_caveat(source),
        "",
        "Money conserved across all transfers: "
        + ("yes." if source.get("money_conserved") is True else "**NO**."),
    ]
    return section


KERNEL_CONTENDERS = {"keel": "Keel", "sqlalchemy": "plain", "asyncpg": "asyncpg"}


def kernel_section(source: Source) -> Section:
    """The unit of work's per-operation ratios and the bulk insert's, when each ran."""
    section = Section("Kernel: the unit of work", source.command())
    if "summary" not in source.data and "bulk" not in source.data:
        raise PublishError(f"{source.path}: neither 'summary' nor 'bulk': nothing was measured")
    if "summary" in source.data:
        target = source.number("config", "target")
        rows = []
        for op in source.mapping("summary"):
            keel_plain = source.ratio(
                f"kernel {op} Keel/plain", "summary", op, "keel_over_sqlalchemy", goal=1 / target
            )
            keel_raw = source.ratio(f"kernel {op} Keel/asyncpg", "summary", op, "keel_over_asyncpg")
            plain_raw = source.ratio("", "summary", op, "sqlalchemy_over_asyncpg")
            section.ratios += [keel_plain, keel_raw]
            rates = [
                f"{source.number('summary', op, f'{c}_ops_s'):,.0f}" for c in KERNEL_CONTENDERS
            ]
            cpu = [
                f"{source.number('summary', op, f'{c}_cpu_us_per_op'):.0f}"
                for c in KERNEL_CONTENDERS
            ]
            ratios = [with_interval(r) for r in (keel_plain, keel_raw, plain_raw)]
            rows.append([op, *rates, *ratios, " / ".join(cpu)])
        section.body += [
            f"`get`, `add` + commit and read-modify-write, one at a time; the kernel's own "
            f"floor is Keel ≥ plain / {target:g}.",
            "",
            *markdown_table(
                [
                    "op",
                    "Keel ops/s",
                    "plain ops/s",
                    "asyncpg ops/s",
                    "Keel/plain (95% CI)",
                    "Keel/asyncpg (95% CI)",
                    "plain/asyncpg (95% CI)",
                    "CPU µs/op Keel / plain / asyncpg",
                ],
                rows,
            ),
            "",
        ]
    if "bulk" in source.data:
        section.body += _bulk(source, section)
    return section


BULK_RATIOS = {
    "keel_add_many_over_asyncpg_executemany": "add_many / executemany",
    "keel_add_many_over_asyncpg_copy": "add_many / copy_records_to_table",
    "keel_add_many_over_orm_add_all": "add_many / ORM add_all",
    "orm_add_all_over_asyncpg_executemany": "ORM add_all / executemany",
}


def _bulk(source: Source, section: Section) -> list[str]:
    rows_per_insert = source.number("config", "bulk_rows")
    goal = source.number("config", "bulk_target")
    figures = source.mapping("bulk", "summary")
    contenders = [key.removesuffix("_rows_s") for key in figures if key.endswith("_rows_s")]
    rates = [
        [
            name,
            f"{source.number('bulk', 'summary', f'{name}_rows_s'):,.0f}",
            f"{source.number('bulk', 'summary', f'{name}_cpu_us_per_row'):.1f}",
        ]
        for name in contenders
    ]
    ratios = []
    for key, label in BULK_RATIOS.items():
        main = key == "keel_add_many_over_asyncpg_executemany"
        ratio = source.ratio(
            f"kernel bulk {label}", "bulk", "summary", key, goal=goal if main else None
        )
        if main:
            section.ratios.append(ratio)
        ratios.append([label, ratio.verdict, with_interval(ratio), goal_text(ratio)])
    return [
        f"Bulk insert of {rows_per_insert:,.0f} rows per unit of work.",
        "",
        *markdown_table(["contender", "rows/s", "CPU µs/row"], rates),
        "",
        *markdown_table(["ratio", "verdict", "value (95% CI)", "goal"], ratios, text_columns=2),
    ]


def kernel_messaging_section(source: Source) -> Section:
    """The outbox's cost on a commit, the relay's drain rates and the delivery latency."""
    section = Section("Kernel: messaging", source.command())
    commit = source.interval_ratio("kernel commit with outbox / without", "commit")
    section.ratios.append(commit)
    commit_rates = source.mapping("commit", "rates")
    relay = source.mapping("relay")
    section.body = [
        *markdown_table(
            ["commit with one published event", "commits/s"],
            [[name, f"{source.number('commit', 'rates', name):,.0f}"] for name in commit_rates],
        ),
        "",
        f"Outbox / plain commit throughput: {with_interval(commit)}.",
        "",
        *markdown_table(
            ["relay drain", "messages/s"],
            [[name, f"{source.number('relay', name):,.0f}"] for name in relay],
        ),
        "",
        f"Commit → subscriber latency through LISTEN/NOTIFY: median "
        f"{source.number('latency_ms', 'median'):.1f} ms, "
        f"p95 {source.number('latency_ms', 'p95'):.1f} ms.",
    ]
    return section


CONTEXT_MESSAGING = {
    "relay_vs_bare": ("relay", "events", None),
    "commands_vs_bare": ("consumer", "commands", CONSUMER_GOAL),
}


def context_messaging_section(source: Source, context: str) -> Section:
    """The context's relay and consumer beside bare redis-py + asyncpg loops."""
    section = Section(f"Messaging: {context}", source.command())
    results = source.get(context)
    if results is None:
        section.body = ["Skipped: no Redis answered when it ran."]
        return section
    if not isinstance(results, Mapping):
        raise PublishError(f"{source.path}: '{context}' is neither an object nor null")
    rows = []
    for key, (name, unit, default_goal) in CONTEXT_MESSAGING.items():
        saved = "goal" in source.mapping(context, key)
        goal = source.number(context, key, "goal") if saved else default_goal
        ratio = source.interval_ratio(f"{context} {name} Keel/bare", context, key, goal=goal)
        section.ratios.append(ratio)
        rates = [f"{source.number(context, key, 'rates', c):,.0f}" for c in ("keel", "bare")]
        cpu = [f"{source.number(context, key, 'cpu_ms_per_op', c):.2f}" for c in ("keel", "bare")]
        rows.append(
            [f"{name} ({unit})", *rates, " / ".join(cpu), with_interval(ratio), goal_text(ratio)]
        )
    section.body = [
        "The relay (outbox → Redis Streams, marked) and the consumer (stream → committed "
        "effect, acked), each beside a bare redis-py + asyncpg loop doing the same I/O.",
        "",
        *markdown_table(
            ["", "Keel /s", "bare /s", "CPU ms/op Keel / bare", "Keel/bare (95% CI)", "goal"],
            rows,
        ),
    ]
    return section


# -- the document ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    """Everything one folder of results says."""

    machine: Source
    sections: list[Section]

    @property
    def ratios(self) -> list[Ratio]:
        return [ratio for section in self.sections for ratio in section.ratios]


def load_run(folder: Path) -> Run:
    """Read ``folder``; :class:`PublishError` names a missing, unknown or malformed file."""
    if not folder.is_dir():
        raise PublishError(f"{folder}: no such folder of bench results")
    machine, kernel = Source.read(folder / MACHINE), Source.read(folder / KERNEL)
    http: list[Section] = []
    messaging: list[Section] = []
    kernel_messaging: list[Section] = []
    for path in sorted(folder.glob("*.json")):
        if path.name in (MACHINE, KERNEL):
            continue
        if path.name == KERNEL_MESSAGING:
            kernel_messaging.append(kernel_messaging_section(Source.read(path)))
        elif path.name.endswith(HTTP_SUFFIX):
            http.append(http_section(Source.read(path), path.name.removesuffix(HTTP_SUFFIX)))
        elif path.name.endswith(MESSAGING_SUFFIX):
            context = path.name.removesuffix(MESSAGING_SUFFIX)
            messaging.append(context_messaging_section(Source.read(path), context))
        else:
            raise PublishError(
                f"{path}: not a result this publisher knows; expected {MACHINE}, {KERNEL}, "
                f"{KERNEL_MESSAGING}, <context>{HTTP_SUFFIX} or <context>{MESSAGING_SUFFIX}"
            )
    return Run(machine, [*http, kernel_section(kernel), *kernel_messaging, *messaging])


def machine_lines(machine: Source) -> list[str]:
    rows = [[label, str(machine.get(key))] for key, label in LABELS.items()]
    return markdown_table(["", ""], rows, text_columns=2)


def render(run: Run, chart: str | None) -> str:
    """The whole document; ``chart`` is the chart's path relative to it, if one was drawn."""
    ratios = run.ratios
    lines = [
        "# Benchmarks",
        "",
        "Generated by `make bench` from the JSON results of one run "
        "(`python -m bench.publish out/bench docs/benchmarks.md`); do not edit by hand. "
        "Contenders run in interleaved rounds whose order rotates; a ratio is total "
        "operations over total time, with a bootstrap 95% interval over rounds. On a shared "
        "or small machine the interval is the figure to read. See `bench/README.md`.",
        "",
        "## Machine",
        "",
        *machine_lines(run.machine),
        "",
        "## Ratios and goals",
        "",
    ]
    if chart is not None:
        lines += [
            f"![Keel's ratios with their 95% intervals and goals]({chart})",
            "",
            "Green: the whole interval meets the goal; amber: the interval straddles it; "
            "red: the whole interval misses it; grey: no goal set. The dotted line is parity.",
            "",
        ]
    lines += markdown_table(
        ["ratio", "verdict", "value (95% CI)", "goal"],
        [[r.label, r.verdict, with_interval(r), goal_text(r)] for r in ratios],
        text_columns=2,
    )
    lines.append("")
    for section in run.sections:
        lines += section.render()
    return "\n".join(lines).rstrip() + "\n"


def publish(
    folder: Path,
    document: Path,
    chart: Path | None,
    drawer: Callable[[Sequence[Ratio], Path, str], None] = draw,
) -> Run:
    """Read ``folder``, draw the chart (unless ``chart`` is None), write ``document``."""
    run = load_run(folder)
    relative = None
    if chart is not None:
        chart.parent.mkdir(parents=True, exist_ok=True)
        drawer(run.ratios, chart, f"Keel's ratios, {run.machine.get('date_utc')}")
        relative = Path(os.path.relpath(chart, document.parent)).as_posix()
    document.parent.mkdir(parents=True, exist_ok=True)
    document.write_text(render(run, relative))
    return run


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.publish",
        description="Render the benches' JSON results as markdown and a chart of the ratios.",
    )
    parser.add_argument("results", type=Path, help="the folder the benches wrote (out/bench)")
    parser.add_argument("document", type=Path, help="the markdown to write (docs/benchmarks.md)")
    parser.add_argument(
        "--chart", type=Path, default=None, help="the chart's path (default: DOCUMENT as .svg)"
    )
    parser.add_argument("--no-chart", action="store_true", help="write the markdown only")
    args = parser.parse_args(argv)
    chart = None if args.no_chart else (args.chart or args.document.with_suffix(".svg"))
    try:
        run = publish(args.results, args.document, chart)
    except (PublishError, ChartError) as exc:
        print(f"bench.publish: {exc}", file=sys.stderr)
        return 2
    drawn = f" and {chart}" if chart is not None else ""
    print(f"bench.publish: wrote {args.document}{drawn} ({len(run.ratios)} ratios)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
