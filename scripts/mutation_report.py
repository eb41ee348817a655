"""Summarise a ``mutmut run`` per module: the score, then every surviving mutant.

Run by ``make mutate`` after ``mutmut run``, from the project's root. The
score of a module is killed / (killed + survived + not covered), leaving out

- the equivalent mutants listed in ``scripts/mutation_equivalents.txt``
  (one name per line, ``#`` and the reason after it): mutants no test can
  kill because the program behaves the same;
- mutants outside the run's scope: the SQLAlchemy halves of
  ``adapters/unit_of_work.py`` and ``adapters/repository.py`` (the async and
  sync SQL repositories, their statement builders and the bulk writer),
  which the unit tests do not run (the integration tests do, on real
  databases). What the fakes run, and ``translate_sql_error``, stay in scope.

``--fail-under 95`` exits 1 when a module scores below 95 %.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EQUIVALENTS = ROOT / "scripts" / "mutation_equivalents.txt"

MODULES = {
    "service_layer/retry.py": (),
    "service_layer/unit_of_work.py": (),
    "service_layer/messagebus.py": (),
    "adapters/unit_of_work.py": ("ǁSqlAlchemyUnitOfWorkǁ", ".x__unique_key_of__"),
    "adapters/repository.py": (
        "ǁSqlAlchemyRepositoryǁ",
        "ǁSqlAlchemySyncRepositoryǁ",
        # the SELECT and COUNT statements: what they mean is the rows a database returns
        ".x__attribute__",
        ".x__condition__",
        ".x__equal__",
        ".x__beyond__",
        ".x__after__",
        ".x__conditions__",
        ".x_select_for__",
        ".x_count_for__",
        # the bulk writer: Core INSERT / COPY of mapped tables, and its refusals
        "ǁBulkPlanǁ",
        ".x_bulk_plan__",
        ".x__bulk_error__",
        ".x__translated__",
        ".x__parameters__",
        ".x__copy_rows__",
        "ǁBulkWrittenǁ",
        ".x__prepare_bulk__",
    ),
    "domain/ledger/account.py": (),
    "domain/ledger/transfer.py": (),
}
"""Each mutated module, with the name fragments of its mutants that are out of scope."""

KILLED = {1: "killed", 3: "killed", 36: "killed (timeout)", 37: "killed (type check)"}
KILLED.update({code: "killed (timeout)" for code in (-24, 24, 152, 255)})
SURVIVED, NOT_COVERED = 0, {5, 33}


@dataclass
class Module:
    path: str
    killed: int = 0
    survivors: list[str] = field(default_factory=list)
    not_covered: list[str] = field(default_factory=list)
    equivalent: int = 0
    out_of_scope: int = 0
    other: Counter[int | None] = field(default_factory=Counter)

    @property
    def score(self) -> float:
        counted = self.killed + len(self.survivors) + len(self.not_covered)
        return 100.0 * self.killed / counted if counted else 100.0


def load_equivalents() -> dict[str, str]:
    equivalents = {}
    for line in EQUIVALENTS.read_text().splitlines():
        name, _, reason = line.partition("#")
        if name.strip():
            equivalents[name.strip()] = reason.strip()
    return equivalents


def summarise(equivalents: dict[str, str]) -> list[Module]:
    modules = []
    for path, out_of_scope in MODULES.items():
        module = Module(path)
        meta = ROOT / "mutants" / f"{path}.meta"
        if not meta.exists():
            print(f"no results for {path}: run `mutmut run` first", file=sys.stderr)
            modules.append(module)
            continue
        results: dict[str, int | None] = json.loads(meta.read_text())["exit_code_by_key"]
        for name, code in sorted(results.items()):
            if any(fragment in name for fragment in out_of_scope):
                module.out_of_scope += 1
            elif name in equivalents:
                module.equivalent += 1
            elif code in KILLED:
                module.killed += 1
            elif code == SURVIVED:
                module.survivors.append(name)
            elif code in NOT_COVERED:
                module.not_covered.append(name)
            else:
                module.other[code] += 1
        modules.append(module)
    return modules


def diff_of(name: str, path: str) -> str:
    """The mutant's changed lines, as ``mutmut show`` prints them."""
    try:
        from mutmut.mutation.diff_apply import get_diff_for_mutant

        diff = get_diff_for_mutant(name, path=path)
    except Exception as exc:  # the report must not die on a tool's internals
        return f"    (no diff: {type(exc).__name__})"
    changed = [
        line
        for line in diff.splitlines()
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    ]
    return "\n".join(f"    {line}" for line in changed)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fail-under", type=float, default=None, metavar="PERCENT")
    parser.add_argument("--no-diffs", action="store_true", help="list survivors by name only")
    args = parser.parse_args()

    equivalents = load_equivalents()
    modules = summarise(equivalents)
    header = (
        f"{'module':34} {'score':>7} {'killed':>7} {'survived':>9} {'no test':>8} "
        f"{'equiv.':>7} {'out of scope':>13}"
    )
    print(header)
    print("-" * len(header))
    for m in modules:
        print(
            f"{m.path:34} {m.score:6.1f}% {m.killed:7} {len(m.survivors):9} "
            f"{len(m.not_covered):8} {m.equivalent:7} {m.out_of_scope:13}"
        )
        if m.other:
            print(f"    not judged (exit codes): {dict(m.other)}")
    for m in modules:
        for name in m.survivors + m.not_covered:
            state = "survived" if name in m.survivors else "no test covers it"
            print(f"\n{name}: {state}")
            if not args.no_diffs:
                print(diff_of(name, m.path))
    for name in equivalents:
        if not _exists(name):
            print(f"\nlisted as equivalent, but no such mutant any more: {name}")
    if args.fail_under is not None and any(m.score < args.fail_under for m in modules):
        return 1
    return 0


def _exists(name: str) -> bool:
    for path in MODULES:
        meta = ROOT / "mutants" / f"{path}.meta"
        if meta.exists() and name in json.loads(meta.read_text())["exit_code_by_key"]:
            return True
    return False


if __name__ == "__main__":
    sys.exit(main())
