"""cProfile, summarised by layer: how much of each operation's CPU each library takes.

Times are wall-clock, as cProfile measures by default; the time the event
loop spends blocked in ``epoll`` waiting for PostgreSQL is its own "idle"
layer, so that the rest reads as the CPU work of each layer.

Own time only. With greenlets (SQLAlchemy's async bridge) and coroutines,
cProfile's cumulative figures double-count — every resumption of a coroutine
is recorded as a new call — while own times still add up to the total.
cProfile rather than pyinstrument: it is in the standard library, and own
time grouped by file is all these reports need.
"""

from __future__ import annotations

import contextlib
import cProfile
import io
import os
import pstats
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from bench.report import table

Layer = tuple[str, tuple[str, ...]]
"""A layer's name and the path fragments that put a source file in it; first match wins."""

KERNEL = f"{os.sep}domain{os.sep}", f"{os.sep}adapters{os.sep}", f"{os.sep}service_layer{os.sep}"

IDLE = "idle: waiting in epoll for the database or the client"

COMMON_LAYERS: tuple[Layer, ...] = (
    (IDLE, ("~:<method 'poll' of 'select.epoll' objects>",)),
    ("bench driver", (f"{os.sep}bench{os.sep}",)),
    ("sqlalchemy", (f"{os.sep}sqlalchemy{os.sep}",)),
    ("asyncpg", (f"{os.sep}asyncpg{os.sep}",)),
    ("asyncio + selectors", (f"{os.sep}asyncio{os.sep}", "selectors.py")),
    ("C builtins (socket I/O, greenlet switch, ...)", ("~",)),
)

ProfileEntries = dict[tuple[str, int, str], tuple[int, int, float, float, Any]]
"""``pstats.Stats.stats``: (file, line, function) -> (primitive calls, calls, own, cum, callers)."""


class Profile:
    """The entries of one profiled stretch, once it has ended."""

    entries: ProfileEntries

    def __init__(self) -> None:
        self.entries = {}


@contextlib.contextmanager
def profiled() -> Iterator[Profile]:
    """Profile the body of the ``with``; the result is filled in when it ends."""
    result = Profile()
    profiler = cProfile.Profile()
    profiler.enable()
    try:
        yield result
    finally:
        profiler.disable()
        stats = pstats.Stats(profiler, stream=io.StringIO())
        result.entries = stats.stats  # type: ignore[attr-defined]


def layer_of(key: tuple[str, int, str], layers: Sequence[Layer]) -> str:
    """The first layer with a marker in ``file:function`` of a profile entry."""
    where = f"{key[0]}:{key[2]}"
    for layer, markers in layers:
        if any(marker in where for marker in markers):
            return layer
    return "other"


def render_profile(
    entries: ProfileEntries,
    ops: int,
    layers: Sequence[Layer],
    detail_layers: Sequence[str],
    detail_limit: int = 25,
) -> str:
    """Own time per operation grouped by layer, then the top functions of ``detail_layers``."""
    total = sum(entry[2] for entry in entries.values())
    calls = sum(entry[1] for entry in entries.values())
    by_layer: dict[str, float] = {}
    for key, entry in entries.items():
        layer = layer_of(key, layers)
        by_layer[layer] = by_layer.get(layer, 0.0) + entry[2]
    idle = by_layer.get(IDLE, 0.0)

    def share(seconds: float) -> list[str]:
        return [f"{seconds / ops * 1e6:.1f}", f"{100 * seconds / total:.1f}"]

    layer_rows = [
        [layer, *share(seconds)]
        for layer, seconds in sorted(by_layer.items(), key=lambda item: item[1], reverse=True)
    ]
    detail = sorted(
        (item for item in entries.items() if layer_of(item[0], layers) in detail_layers),
        key=lambda item: item[1][2],
        reverse=True,
    )[:detail_limit]
    detail_rows = [
        [f"{Path(filename).parent.name}/{Path(filename).name}:{line}({function})", *share(own)]
        for (filename, line, function), (_p, _c, own, _cum, _callers) in detail
    ]
    return "\n".join(
        [
            f"profiled wall time {total / ops * 1e6:.0f} us/op: {idle / ops * 1e6:.0f} idle, "
            f"{(total - idle) / ops * 1e6:.0f} busy; {calls / ops:.0f} function calls/op "
            "(coroutine resumptions count as calls)",
            table(["layer", "own us/op", "own %"], layer_rows),
            "",
            table(
                [f"top functions in: {', '.join(detail_layers)}", "own us/op", "own %"],
                detail_rows or [["(none)", "", ""]],
            ),
        ]
    )
