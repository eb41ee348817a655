"""Small helpers both benchmarks use to summarise rounds and print tables.

Hand-written rather than pulled from a table library: a dozen lines of
fixed-width formatting do not justify a dependency in the project's lock file.
"""

from __future__ import annotations

import json
import random
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def ratio_of_totals(
    numerator: Sequence[tuple[float, float]], denominator: Sequence[tuple[float, float]]
) -> float:
    """Throughput ratio of two contenders from their per-round ``(ops, seconds)``."""
    return _rate(numerator) / _rate(denominator)


def bootstrap_interval(
    numerator: Sequence[tuple[float, float]],
    denominator: Sequence[tuple[float, float]],
    resamples: int = 2000,
    confidence: float = 0.95,
) -> tuple[float, float]:
    """A percentile-bootstrap interval for :func:`ratio_of_totals`, resampling whole rounds.

    Rounds are resampled as pairs, so the interval reflects how much the
    ratio moves with the noise the two contenders shared round by round.
    Seeded: the same samples always give the same interval.
    """
    pairs = list(zip(numerator, denominator, strict=True))
    if len(pairs) < 2:
        ratio = ratio_of_totals(numerator, denominator)
        return ratio, ratio
    rng = random.Random(0)
    estimates = []
    for _ in range(resamples):
        drawn = rng.choices(pairs, k=len(pairs))
        estimates.append(ratio_of_totals([a for a, _ in drawn], [b for _, b in drawn]))
    estimates.sort()
    tail = (1 - confidence) / 2
    low = estimates[int(tail * (resamples - 1))]
    high = estimates[int((1 - tail) * (resamples - 1))]
    return low, high


def _rate(samples: Sequence[tuple[float, float]]) -> float:
    seconds = sum(elapsed for _, elapsed in samples)
    return sum(ops for ops, _ in samples) / seconds if seconds > 0 else float("nan")


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A plain fixed-width table: first column left-aligned, the rest right-aligned."""
    widths = [
        max(len(headers[i]), *(len(row[i]) for row in rows)) if rows else len(headers[i])
        for i in range(len(headers))
    ]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i])
            for i, cell in enumerate(cells)
        )

    rule = "  ".join("-" * width for width in widths)
    return "\n".join([line(headers), rule, *(line(row) for row in rows)])


def write_json(path: Path, payload: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, sort_keys=False, default=str) + "\n")


def command_line() -> str:
    """How this process was started, as a reader would retype it: ``python -m MODULE ARGS``.

    Benches save it in their ``--json`` so a published table names the exact
    command behind it.
    """
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    program = ["python", "-m", spec.name] if spec is not None else ["python", sys.argv[0]]
    return shlex.join([*program, *sys.argv[1:]])
