"""``python -m bench.http``: the HTTP benchmark of a bounded context, by the name issue 11 uses.

The kernel has no routes of its own to load, so this runs
``bench/<context>/http.py`` of the first context in ``KEEL_CONTEXTS`` that has
one, or of the context ``--context NAME`` chooses, and passes every other
argument through to it. Without such a context it says so and exits 2.

    uv run python -m bench.http --rounds 1 --seconds 1 --no-profile
    uv run python -m bench.http --context orders --json out/bench/http.json
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

from adapters.settings import Settings
from entrypoints.context import running_context_names

BENCH = Path(__file__).resolve().parent
MODULE = "http"
"""The module a context's HTTP bench lives in: ``bench/<context>/http.py``."""


def has_http_bench(context: str, root: Path = BENCH) -> bool:
    return context.isidentifier() and (root / context / f"{MODULE}.py").is_file()


def configured_contexts() -> list[str]:
    """The contexts that run, as Keel reads them (``KEEL_CONTEXTS``; unset: every one under
    ``entrypoints/``), in order."""
    return list(running_context_names(Settings()))


def choose(requested: str | None, configured: Sequence[str], root: Path = BENCH) -> str:
    """The context to bench; :class:`LookupError` saying why when there is none."""
    if requested is not None:
        if not has_http_bench(requested, root):
            raise LookupError(f"--context {requested}: there is no bench/{requested}/{MODULE}.py")
        return requested
    for context in configured:
        if has_http_bench(context, root):
            return context
    listed = ", ".join(configured) or "none"
    raise LookupError(
        f"no context in KEEL_CONTEXTS ({listed}) has a bench/<context>/{MODULE}.py; "
        "name one with --context"
    )


def bench_module(context: str) -> ModuleType:
    return importlib.import_module(f"bench.{context}.{MODULE}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.http",
        description="Run a context's HTTP bench; other arguments go to it (try --help after "
        "choosing).",
        add_help=False,
        allow_abbrev=False,
    )
    parser.add_argument("--context", default=None, help="the context whose bench to run")
    args, rest = parser.parse_known_args(sys.argv[1:] if argv is None else argv)
    try:
        context = choose(args.context, configured_contexts())
    except LookupError as exc:
        print(f"bench.http: {exc}", file=sys.stderr)
        return 2
    run = getattr(bench_module(context), "main", None)
    if not callable(run):
        print(f"bench.http: bench.{context}.{MODULE} has no main(argv)", file=sys.stderr)
        return 2
    status: int = run(rest)
    return status


if __name__ == "__main__":
    raise SystemExit(main())
