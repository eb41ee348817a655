"""Outbox backlog benchmark: does a relay pass cost the same however long the backlog is?

A relay that falls behind (a broker outage, a burst) must catch up in time
proportional to the backlog. If each pass scanned the whole backlog, as the
claim query once did (grouping every pending row by key), draining N rows
would cost O(N²). For each backlog size this fills the outbox with pending
rows (spread round-robin over ``--keys`` aggregate keys), drains it with one
relay into a publisher that does nothing, and prints:

- the drain time per row (flat when a pass costs O(batch));
- the mean time of the first passes, at the full backlog, and of the last
  ones, when the index is full of rows the drain already published;
- for contrast, one run of the old whole-backlog claim query at that size.

    uv run python -m bench.outbox_backlog                  # 10k, 50k, 200k rows
    uv run python -m bench.outbox_backlog --large          # and 1M
    uv run python -m bench.outbox_backlog --sizes 1000 5000

It migrates a fresh database of its own (``KEEL_BENCH_POSTGRES_URL``, see
``bench/README.md``) and drops it afterwards. Figures, never assertions.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from adapters.migrate import upgrade_to_head_async
from adapters.outbox import ADVISORY_LOCK_CLASS, SqlAlchemyOutboxStore
from adapters.relay import OutboxRelay
from bench.postgres import BenchDatabaseError, fresh_database
from bench.report import table

DEFAULT_SIZES = (10_000, 50_000, 200_000)
LARGE_SIZE = 1_000_000
FIRST_PASSES = 20
"""Passes timed at the start of a drain, when the backlog is at its full size."""

FILL = text(
    """
    INSERT INTO outbox (message_id, stream, aggregate_key, type, occurred_at, payload)
    SELECT gen_random_uuid(), 'bench.events', 'Thing:' || (n % :keys), 'Bumped', now(), '{}'
    FROM generate_series(1, :rows) AS n
    """
)

OLD_CLAIM = text(
    """
    WITH candidates AS MATERIALIZED (
        SELECT aggregate_key, min(id) AS first_id
        FROM outbox
        WHERE published_at IS NULL
        GROUP BY aggregate_key
        ORDER BY first_id
        LIMIT :candidates
    )
    SELECT aggregate_key FROM candidates
    WHERE pg_try_advisory_xact_lock(:lock_class, hashtext(aggregate_key))
    LIMIT :limit
    """
)
"""The claim query before kernel_0002, kept here only to show what it cost."""


class NullPublisher:
    """Accepts everything at once: the figures are the database's side only."""

    async def publish(
        self, stream: str, message: Mapping[str, Any], headers: Mapping[str, str] | None = None
    ) -> None:
        return None


@dataclass(frozen=True)
class Drained:
    rows: int
    seconds: float
    first_pass_ms: float
    last_pass_ms: float
    old_claim_ms: float

    @property
    def us_per_row(self) -> float:
        return self.seconds / self.rows * 1e6


async def fill(engine: AsyncEngine, rows: int, keys: int) -> None:
    async with engine.begin() as connection:
        await connection.execute(text("TRUNCATE outbox RESTART IDENTITY"))
        await connection.execute(FILL, {"rows": rows, "keys": keys})
    # Fresh statistics and visibility map, as autovacuum would give a real table.
    async with engine.connect() as connection:
        connection = await connection.execution_options(isolation_level="AUTOCOMMIT")
        await connection.execute(text("VACUUM ANALYZE outbox"))


async def time_old_claim(engine: AsyncEngine, batch_size: int) -> float:
    async with engine.connect() as connection, connection.begin():
        started = time.perf_counter()
        await connection.execute(
            OLD_CLAIM,
            {"candidates": batch_size * 4, "lock_class": ADVISORY_LOCK_CLASS, "limit": batch_size},
        )
        elapsed = time.perf_counter() - started
        await connection.rollback()
    return elapsed * 1000


async def drain(engine: AsyncEngine, rows: int, batch_size: int) -> tuple[float, float, float]:
    """Seconds to drain everything, and the mean ms of the first and of the last passes."""
    relay = OutboxRelay(SqlAlchemyOutboxStore(engine), NullPublisher(), batch_size=batch_size)
    passes: list[float] = []
    published = 0
    started = time.perf_counter()
    while True:
        pass_started = time.perf_counter()
        outcome = await relay.publish_pending()
        passes.append(time.perf_counter() - pass_started)
        published += outcome.published
        if outcome.published == 0:
            break
    seconds = time.perf_counter() - started
    if published != rows:
        raise RuntimeError(f"drained {published} rows of {rows}: the relay stopped early")
    first, last = passes[:FIRST_PASSES], passes[-FIRST_PASSES - 1 : -1]
    return seconds, sum(first) / len(first) * 1000, sum(last) / len(last) * 1000


async def run(sizes: Sequence[int], keys: int, batch_size: int) -> list[Drained]:
    results: list[Drained] = []
    async with fresh_database("keel_bench_backlog") as database:
        await upgrade_to_head_async(database.sqlalchemy_url)
        engine = create_async_engine(database.sqlalchemy_url, pool_size=2)
        try:
            for rows in sizes:
                print(f"  {rows:>9,} rows: filling", file=sys.stderr, flush=True)
                await fill(engine, rows, keys)
                old_claim_ms = await time_old_claim(engine, batch_size)
                print(f"  {rows:>9,} rows: draining", file=sys.stderr, flush=True)
                seconds, first_pass_ms, last_pass_ms = await drain(engine, rows, batch_size)
                results.append(Drained(rows, seconds, first_pass_ms, last_pass_ms, old_claim_ms))
        finally:
            await engine.dispose()
    return results


def report(results: Sequence[Drained], keys: int, batch_size: int) -> str:
    rows = [
        [
            f"{result.rows:,}",
            f"{result.seconds:.1f}",
            f"{result.us_per_row:.0f}",
            f"{result.first_pass_ms:.1f}",
            f"{result.last_pass_ms:.1f}",
            f"{result.old_claim_ms:.1f}",
        ]
        for result in results
    ]
    headers = [
        "pending rows",
        "drain s",
        "µs per row",
        f"first {FIRST_PASSES} passes, ms/pass",
        f"last {FIRST_PASSES}, ms/pass",
        "old claim query, ms",
    ]
    return f"one relay, batch {batch_size}, {keys} keys, a publisher that does nothing\n" + table(
        headers, rows
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.outbox_backlog", description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=list(DEFAULT_SIZES))
    parser.add_argument("--large", action="store_true", help=f"also {LARGE_SIZE:,} rows")
    parser.add_argument("--keys", type=int, default=1000, help="distinct aggregate keys")
    parser.add_argument("--batch-size", type=int, default=100)
    args = parser.parse_args(argv)
    sizes = [*args.sizes, *([LARGE_SIZE] if args.large else [])]
    try:
        results = asyncio.run(run(sizes, args.keys, args.batch_size))
    except BenchDatabaseError as exc:
        print(f"bench.outbox_backlog: {exc}", file=sys.stderr)
        return 2
    print(report(results, args.keys, args.batch_size))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
