"""One picture of every published ratio: a bar, its 95% interval and its goal.

``bench.publish`` hands over :class:`Ratio` values and a path; the chart is an
SVG (or PNG, by the suffix) drawn with matplotlib's object API, so no global
pyplot state and no display are involved. matplotlib is in the ``bench``
dependency group only, hence imported when a chart is drawn, with an error
that says how to get it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

FORMATS = ("svg", "png")
COLOURS = {"meets": "#4c9a5b", "close": "#d9a13b", "misses": "#c8553d", "none": "#8c8c8c"}


@dataclass(frozen=True)
class Ratio:
    """A throughput ratio with its bootstrap 95% interval and, when it has one, its goal."""

    label: str
    value: float
    low: float
    high: float
    goal: float | None = None
    valid: bool = True
    """False when a contender answered errors: the figure says nothing then."""

    @property
    def verdict(self) -> str:
        if not self.valid:
            return "INVALID: error responses"
        if self.goal is None:
            return "no goal set"
        if self.value >= self.goal:
            return "meets" if self.low >= self.goal else "meets; the interval reaches below"
        return "misses; the interval reaches the goal" if self.high >= self.goal else "misses"

    @property
    def colour(self) -> str:
        if not self.valid or self.goal is None:
            return COLOURS["none"]
        if self.low >= self.goal:
            return COLOURS["meets"]
        return COLOURS["close"] if self.high >= self.goal else COLOURS["misses"]


class ChartError(RuntimeError):
    """The chart cannot be drawn; the message says what to do."""


def draw(ratios: Sequence[Ratio], path: Path, title: str) -> None:
    """Write the chart of ``ratios`` to ``path`` (``.svg`` or ``.png``)."""
    suffix = path.suffix.lstrip(".").lower()
    if suffix not in FORMATS:
        raise ChartError(f"{path}: the chart must be .svg or .png, not {path.suffix or 'none'}")
    if not ratios:
        raise ChartError("no ratio to chart: the inputs hold none")
    try:
        import matplotlib  # type: ignore[import-not-found, unused-ignore]
        from matplotlib.figure import Figure  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        raise ChartError(
            "matplotlib is not installed; it is in the 'bench' dependency group: "
            "./scripts/uv.sh run --group bench python -m bench.publish ..."
        ) from None
    rows = list(range(len(ratios)))
    figure = Figure(figsize=(9.0, 1.4 + 0.42 * len(ratios)), layout="constrained")
    axes = figure.subplots()
    axes.barh(
        rows,
        [ratio.value for ratio in ratios],
        xerr=[
            [max(ratio.value - ratio.low, 0.0) for ratio in ratios],
            [max(ratio.high - ratio.value, 0.0) for ratio in ratios],
        ],
        color=[ratio.colour for ratio in ratios],
        capsize=3,
        height=0.6,
    )
    goals = [(row, ratio.goal) for row, ratio in zip(rows, ratios, strict=True) if ratio.goal]
    if goals:
        axes.scatter(
            [goal for _, goal in goals],
            [row for row, _ in goals],
            marker="|",
            s=500,
            linewidths=2.5,
            color="black",
            zorder=3,
            label="goal",
        )
        axes.legend(loc="lower right")
    axes.axvline(1.0, linestyle=":", color="#555555", linewidth=1)
    axes.set_yticks(rows, [ratio.label for ratio in ratios])
    axes.invert_yaxis()
    reach = max(max(ratio.high, ratio.value, ratio.goal or 0.0) for ratio in ratios)
    axes.set_xlim(0, max(1.1, reach * 1.08))
    axes.set_xlabel("Keel's throughput / the other's (whiskers: 95% interval; black tick: goal)")
    axes.set_title(title)
    axes.grid(axis="x", alpha=0.3)
    path.parent.mkdir(parents=True, exist_ok=True)
    # A fixed hash salt and no date: the same figures give the same file. Text stays text.
    with matplotlib.rc_context({"svg.hashsalt": "keel-bench", "svg.fonttype": "none"}):
        metadata = {"Date": None} if suffix == "svg" else {}
        figure.savefig(path, format=suffix, metadata=metadata)
