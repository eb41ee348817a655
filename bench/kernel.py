"""Kernel benchmark: what a Keel unit of work costs per operation.

Three contenders do the same operations on the same PostgreSQL table:

- ``keel``: a ``SqlAlchemyUnitOfWork`` subclass with a ``repository`` attribute,
  used the way a service function uses it;
- ``sqlalchemy``: a plain ``AsyncSession`` from an ``async_sessionmaker`` on the
  same engine, the same mapped class, written the way the seeds write it;
- ``asyncpg``: a connection pool and hand-written SQL.

Operations: ``get`` (by primary key), ``add`` (insert one aggregate, commit) and
``rmw`` (read-modify-write: load by id, change a field, commit under the
optimistic version check).

A separate bulk case inserts ``--bulk-rows`` (10,000) aggregates per unit of
work: Keel's ``add_many`` + commit against ``AsyncSession.add_all`` + commit
(the ORM's insertmanyvalues) and asyncpg's ``executemany`` and
``copy_records_to_table`` of the same rows, interleaved the same way. Keel's
target there is at least 0.8x asyncpg ``executemany``.

Rounds are interleaved — every round runs every contender on every operation,
and the contenders' order rotates from round to round — so machine noise hits
all of them alike. Segments are short (0.08 s) so that the pairing is tight;
throughput is total operations over total time, and each ratio carries a
bootstrap 95% interval over rounds, because on a shared machine one run's
ratio can move by several percent.

    uv run python -m bench.kernel                 # ~30 s, prints the table and a verdict
    uv run python -m bench.kernel --ops 2000 --rounds 7 --json out/kernel.json
    uv run python -m bench.kernel --concurrency 8 # several tasks share the pool
    uv run python -m bench.kernel --profile rmw   # cProfile of Keel versus plain session
    uv run python -m bench.kernel --bulk-only     # only the 10k-row bulk insert case (~20 s)
    uv run python -m bench.kernel --bulk-rounds 0 # skip it
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from uuid import UUID, uuid4

import asyncpg
from sqlalchemy import BigInteger, Column, Integer, String, Table, Uuid
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import registry

from adapters.database import DatabaseSessionManager
from adapters.unit_of_work import SqlAlchemyUnitOfWork
from bench.postgres import BenchDatabase, BenchDatabaseError, fresh_database
from bench.profiling import COMMON_LAYERS, KERNEL, Layer, profiled, render_profile
from bench.report import bootstrap_interval, command_line, ratio_of_totals, table, write_json
from domain.aggregate import Aggregate
from domain.errors import ConcurrencyError, NotFound
from service_layer.unit_of_work import AbstractUnitOfWork, repository

TARGET = 1.10
"""Keel must reach at least 1/TARGET of the plain session's throughput."""

OPERATIONS = ("get", "add", "rmw")
CONTENDERS = ("keel", "sqlalchemy", "asyncpg")
SEEDED_ROWS = 2000
WARMUP_OPS = 100


# -- the bench-only aggregate, on its own registry so Alembic never sees it ------------


class BenchItem(Aggregate[UUID]):
    """A name and a counter; versioned like every aggregate."""

    def __init__(self, id: UUID, name: str, counter: int = 0) -> None:
        self.id = id
        self.name = name
        self.counter = counter

    def bump(self) -> None:
        self.counter += 1


bench_registry = registry()
bench_items = Table(
    "bench_items",
    bench_registry.metadata,
    Column("id", Uuid, primary_key=True),
    Column("name", String(100), nullable=False),
    Column("counter", BigInteger, nullable=False),
    Column("version", Integer, nullable=False),
)
bench_registry.map_imperatively(BenchItem, bench_items, version_id_col=bench_items.c.version)


class BenchUnitOfWork(AbstractUnitOfWork):
    items = repository(BenchItem, UUID)


class SqlAlchemyBenchUnitOfWork(BenchUnitOfWork, SqlAlchemyUnitOfWork):
    pass


# -- the contenders ---------------------------------------------------------------------


class Contender(Protocol):
    name: str

    async def get(self, ident: UUID) -> object: ...

    async def add(self, ident: UUID) -> None: ...

    async def rmw(self, ident: UUID) -> None: ...


class KeelContender:
    """The code a Keel service function would contain."""

    name = "keel"

    def __init__(self, session_factory: async_sessionmaker[AsyncSession]) -> None:
        self.session_factory = session_factory

    def uow(self) -> SqlAlchemyBenchUnitOfWork:
        return SqlAlchemyBenchUnitOfWork(self.session_factory)

    async def get(self, ident: UUID) -> object:
        async with self.uow() as uow:
            return await uow.items.get(ident)

    async def add(self, ident: UUID) -> None:
        async with self.uow() as uow:
            uow.items.add(BenchItem(ident, "added"))
            await uow.commit()

    async def rmw(self, ident: UUID) -> None:
        async with self.uow() as uow:
            item = await uow.items.get(ident)
            if item is None:
                raise NotFound(f"bench item {ident} is missing")
            item.bump()
            await uow.commit()


class SessionContender:
    """Hand-written SQLAlchemy: a plain ``AsyncSession`` per operation."""

    name = "sqlalchemy"

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions

    async def get(self, ident: UUID) -> object:
        async with self.sessions() as session:
            return await session.get(BenchItem, ident)

    async def add(self, ident: UUID) -> None:
        async with self.sessions() as session:
            session.add(BenchItem(ident, "added"))
            await session.commit()

    async def rmw(self, ident: UUID) -> None:
        async with self.sessions() as session:
            item = await session.get(BenchItem, ident)
            if item is None:
                raise NotFound(f"bench item {ident} is missing")
            item.bump()
            await session.commit()


SELECT_ITEM = "SELECT id, name, counter, version FROM bench_items WHERE id = $1"
INSERT_ITEM = "INSERT INTO bench_items (id, name, counter, version) VALUES ($1, $2, $3, 1)"
UPDATE_ITEM = (
    "UPDATE bench_items SET counter = $2, version = version + 1 WHERE id = $1 AND version = $3"
)


class AsyncpgContender:
    """Raw asyncpg with the idiomatic pool calls; returns records, not objects."""

    name = "asyncpg"

    def __init__(self, pool: Any) -> None:
        self.pool = pool

    async def get(self, ident: UUID) -> object:
        return await self.pool.fetchrow(SELECT_ITEM, ident)

    async def add(self, ident: UUID) -> None:
        await self.pool.execute(INSERT_ITEM, ident, "added", 0)

    async def rmw(self, ident: UUID) -> None:
        async with self.pool.acquire() as connection, connection.transaction():
            row = await connection.fetchrow(SELECT_ITEM, ident)
            if row is None:
                raise NotFound(f"bench item {ident} is missing")
            counter, version = row["counter"] + 1, row["version"]
            status = await connection.execute(UPDATE_ITEM, ident, counter, version)
            if status != "UPDATE 1":
                raise ConcurrencyError(f"bench item {ident} changed since it was read")


def operation(contender: Contender, name: str) -> Callable[[UUID], Awaitable[object]]:
    """The contender's coroutine for ``name``; ``add`` gets a fresh id instead of a row's."""
    if name == "add":
        return lambda _row: contender.add(uuid4())
    method: Callable[[UUID], Awaitable[object]] = getattr(contender, name)
    return method


# -- measuring --------------------------------------------------------------------------


@dataclass(frozen=True)
class Budget:
    """How long one segment runs: a number of operations, or a number of seconds."""

    ops: int | None = None
    seconds: float | None = None


@dataclass(frozen=True)
class Sample:
    ops: int
    seconds: float
    cpu_seconds: float

    @property
    def rate(self) -> float:
        return self.ops / self.seconds

    @property
    def cpu_us_per_op(self) -> float:
        return self.cpu_seconds / self.ops * 1e6


async def run_segment(
    call: Callable[[UUID], Awaitable[object]],
    rows: Sequence[UUID],
    budget: Budget,
    concurrency: int,
) -> Sample:
    """Run ``call`` from ``concurrency`` tasks, each on its own slice of rows.

    Disjoint slices keep read-modify-write free of version conflicts, so the
    benchmark measures overhead rather than retries.
    """

    async def worker(slice_: Sequence[UUID], deadline: float) -> int:
        if budget.ops is not None:
            count = max(1, budget.ops // concurrency)
            for index in range(count):
                await call(slice_[index % len(slice_)])
            return count
        done = 0
        while time.perf_counter() < deadline:
            await call(slice_[done % len(slice_)])
            done += 1
        return done

    slices = [rows[worker_index::concurrency] for worker_index in range(concurrency)]
    cpu_start, start = time.process_time(), time.perf_counter()
    deadline = start + (budget.seconds or 0.0)
    counts = await asyncio.gather(*(worker(slice_, deadline) for slice_ in slices))
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    return Sample(ops=sum(counts), seconds=elapsed, cpu_seconds=cpu)


@dataclass
class Results:
    """Samples per operation and contender, in round order."""

    samples: dict[str, dict[str, list[Sample]]] = field(default_factory=dict)

    def record(self, op: str, contender: str, sample: Sample) -> None:
        self.samples.setdefault(op, {}).setdefault(contender, []).append(sample)

    def rounds(self, op: str, contender: str) -> list[tuple[float, float]]:
        return [(sample.ops, sample.seconds) for sample in self.samples[op][contender]]

    def rate(self, op: str, contender: str) -> float:
        samples = self.samples[op][contender]
        return sum(s.ops for s in samples) / sum(s.seconds for s in samples)

    def cpu_us_per_op(self, op: str, contender: str) -> float:
        samples = self.samples[op][contender]
        return sum(s.cpu_seconds for s in samples) / sum(s.ops for s in samples) * 1e6


@dataclass(frozen=True)
class Config:
    budget: Budget
    rounds: int
    concurrency: int
    pre_ping: bool


# -- setting up -------------------------------------------------------------------------


async def create_schema(manager: DatabaseSessionManager) -> list[UUID]:
    """Create the table and seed the rows that ``get`` and ``rmw`` work on."""
    async with manager.connect() as connection:
        await connection.run_sync(bench_registry.metadata.create_all)
    ids = [uuid4() for _ in range(SEEDED_ROWS)]
    async with manager.connect() as connection:
        await connection.execute(
            bench_items.insert(),
            [{"id": ident, "name": "seeded", "counter": 0, "version": 1} for ident in ids],
        )
    return ids


@dataclass
class Arena:
    """The engine, pool and contenders of one run."""

    manager: DatabaseSessionManager
    pool: Any
    contenders: list[Contender]
    rows: list[UUID]

    async def close(self) -> None:
        await self.pool.close()
        await self.manager.close()


async def open_arena(database: BenchDatabase, config: Config) -> Arena:
    pool_size = max(5, config.concurrency)
    manager = DatabaseSessionManager()
    # Keel's defaults (connections checked without a round trip, adapters.liveness),
    # or SQLAlchemy's pool_pre_ping with --pre-ping. Both contenders share the engine:
    # this bench measures the unit of work's own cost.
    options: dict[str, Any] = {"pool_pre_ping": True} if config.pre_ping else {}
    manager.init(database.sqlalchemy_url, pool_size=pool_size, **options)
    rows = await create_schema(manager)
    pool = await asyncpg.create_pool(database.asyncpg_dsn, min_size=1, max_size=pool_size)
    plain_sessions = async_sessionmaker(manager.engine, expire_on_commit=False)
    contenders: list[Contender] = [
        KeelContender(manager.session_factory),
        SessionContender(plain_sessions),
        AsyncpgContender(pool),
    ]
    return Arena(manager=manager, pool=pool, contenders=contenders, rows=rows)


# -- the run ----------------------------------------------------------------------------


async def benchmark(database: BenchDatabase, config: Config) -> Results:
    arena = await open_arena(database, config)
    try:
        for contender in arena.contenders:
            for op in OPERATIONS:
                await run_segment(
                    operation(contender, op),
                    arena.rows,
                    Budget(ops=WARMUP_OPS * config.concurrency),
                    config.concurrency,
                )
        results = Results()
        for round_index in range(config.rounds):
            shift = round_index % len(arena.contenders)
            order = arena.contenders[shift:] + arena.contenders[:shift]
            for op in OPERATIONS:
                for contender in order:
                    sample = await run_segment(
                        operation(contender, op), arena.rows, config.budget, config.concurrency
                    )
                    results.record(op, contender.name, sample)
            print(f"  round {round_index + 1}/{config.rounds} done", file=sys.stderr)
        return results
    finally:
        await arena.close()


PAIRS = (("keel", "sqlalchemy"), ("keel", "asyncpg"), ("sqlalchemy", "asyncpg"))


def summarise(results: Results) -> dict[str, dict[str, float]]:
    """Throughput over all rounds, ratios with a bootstrap 95% interval, client CPU per op."""
    summary: dict[str, dict[str, float]] = {}
    for op in OPERATIONS:
        figures: dict[str, float] = {}
        for name in CONTENDERS:
            figures[f"{name}_ops_s"] = results.rate(op, name)
            figures[f"{name}_cpu_us_per_op"] = results.cpu_us_per_op(op, name)
        for top, bottom in PAIRS:
            key = f"{top}_over_{bottom}"
            figures[key] = ratio_of_totals(results.rounds(op, top), results.rounds(op, bottom))
            low, high = bootstrap_interval(results.rounds(op, top), results.rounds(op, bottom))
            figures[f"{key}_low"], figures[f"{key}_high"] = low, high
        summary[op] = figures
    return summary


def verdict(summary: dict[str, dict[str, float]]) -> tuple[bool, str]:
    """PASS when every operation's Keel/SQLAlchemy ratio reaches 1/TARGET.

    The interval is part of the line: a pass whose interval dips below the
    floor is reported as such, because on a noisy machine it may not repeat.
    """
    floor = 1 / TARGET
    worst_op = min(summary, key=lambda op: summary[op]["keel_over_sqlalchemy"])
    worst = summary[worst_op]
    figure = (
        f"worst: {worst_op}, Keel/SQLAlchemy = {worst['keel_over_sqlalchemy']:.3f} "
        f"(95% CI {worst['keel_over_sqlalchemy_low']:.3f}-{worst['keel_over_sqlalchemy_high']:.3f})"
        f", floor {floor:.3f}"
    )
    misses = [op for op in summary if summary[op]["keel_over_sqlalchemy"] < floor]
    if misses:
        return False, (
            f"MISS: Keel is below hand-written AsyncSession / {TARGET:.2f} on "
            f"{', '.join(misses)} ({figure})"
        )
    shaky = [op for op in summary if summary[op]["keel_over_sqlalchemy_low"] < floor]
    caveat = f"; the interval of {', '.join(shaky)} reaches below the floor" if shaky else ""
    return True, (
        f"PASS: Keel is within {TARGET:.2f}x of hand-written AsyncSession on every "
        f"operation ({figure}){caveat}"
    )


def render(summary: dict[str, dict[str, float]]) -> str:
    def ratio(figures: dict[str, float], key: str) -> str:
        return f"{figures[key]:.3f} ({figures[key + '_low']:.2f}-{figures[key + '_high']:.2f})"

    headers = [
        "op",
        "Keel ops/s",
        "SA ops/s",
        "asyncpg ops/s",
        "Keel/SA (95% CI)",
        "Keel/asyncpg",
        "SA/asyncpg",
        "CPU us/op Keel",
        "SA",
        "asyncpg",
    ]
    rows = [
        [
            op,
            f"{figures['keel_ops_s']:,.0f}",
            f"{figures['sqlalchemy_ops_s']:,.0f}",
            f"{figures['asyncpg_ops_s']:,.0f}",
            ratio(figures, "keel_over_sqlalchemy"),
            ratio(figures, "keel_over_asyncpg"),
            ratio(figures, "sqlalchemy_over_asyncpg"),
            f"{figures['keel_cpu_us_per_op']:.0f}",
            f"{figures['sqlalchemy_cpu_us_per_op']:.0f}",
            f"{figures['asyncpg_cpu_us_per_op']:.0f}",
        ]
        for op, figures in summary.items()
    ]
    return table(headers, rows)


# -- the bulk case ----------------------------------------------------------------------

BULK_TARGET = 0.8
"""Keel's add_many must reach this share of asyncpg executemany's rows per second."""

BULK_CONTENDERS = ("keel_add_many", "orm_add_all", "asyncpg_executemany", "asyncpg_copy")
BULK_PAIRS = (
    ("keel_add_many", "asyncpg_executemany"),
    ("keel_add_many", "asyncpg_copy"),
    ("keel_add_many", "orm_add_all"),
    ("orm_add_all", "asyncpg_executemany"),
)
INSERT_ROW = "INSERT INTO bench_items (id, name, counter, version) VALUES ($1, $2, $3, 1)"
BULK_COLUMNS = ["id", "name", "counter", "version"]


def bulk_items(rows: int) -> list[BenchItem]:
    return [BenchItem(uuid4(), f"bulk-{index}", index) for index in range(rows)]


async def keel_add_many(arena: Arena, items: list[BenchItem]) -> None:
    async with SqlAlchemyBenchUnitOfWork(arena.manager.session_factory) as uow:
        await uow.items.add_many(items)
        await uow.commit()


async def orm_add_all(arena: Arena, items: list[BenchItem]) -> None:
    async with arena.manager.session_factory() as session:
        session.add_all(items)
        await session.commit()


async def asyncpg_executemany(arena: Arena, items: list[BenchItem]) -> None:
    async with arena.pool.acquire() as connection, connection.transaction():
        await connection.executemany(INSERT_ROW, [(i.id, i.name, i.counter) for i in items])


async def asyncpg_copy(arena: Arena, items: list[BenchItem]) -> None:
    async with arena.pool.acquire() as connection, connection.transaction():
        await connection.copy_records_to_table(
            "bench_items",
            records=[(i.id, i.name, i.counter, 1) for i in items],
            columns=BULK_COLUMNS,
        )


BULK_CALLS: dict[str, Callable[[Arena, list[BenchItem]], Awaitable[None]]] = {
    "keel_add_many": keel_add_many,
    "orm_add_all": orm_add_all,
    "asyncpg_executemany": asyncpg_executemany,
    "asyncpg_copy": asyncpg_copy,
}


async def bulk_benchmark(arena: Arena, rows: int, rounds: int) -> dict[str, list[Sample]]:
    """Interleaved rounds of one ``rows``-row insert per contender; the table is emptied
    (untimed) before each, so every contender writes into the same index size."""
    samples: dict[str, list[Sample]] = {name: [] for name in BULK_CONTENDERS}
    names = list(BULK_CONTENDERS)
    for round_index in range(-1, rounds):  # round -1 warms up and is not recorded
        shift = max(round_index, 0) % len(names)
        for name in names[shift:] + names[:shift]:
            items = bulk_items(rows)
            async with arena.manager.connect() as connection:
                await connection.execute(bench_items.delete())
            cpu_start, start = time.process_time(), time.perf_counter()
            await BULK_CALLS[name](arena, items)
            elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu_start
            if round_index >= 0:
                samples[name].append(Sample(ops=rows, seconds=elapsed, cpu_seconds=cpu))
        if round_index >= 0:
            print(f"  bulk round {round_index + 1}/{rounds} done", file=sys.stderr)
    return samples


def summarise_bulk(samples: dict[str, list[Sample]]) -> dict[str, float]:
    """Rows per second per contender and the ratios with a bootstrap 95% interval."""
    rounds = {name: [(s.ops, s.seconds) for s in found] for name, found in samples.items()}
    figures: dict[str, float] = {}
    for name, found in samples.items():
        figures[f"{name}_rows_s"] = sum(s.ops for s in found) / sum(s.seconds for s in found)
        figures[f"{name}_cpu_us_per_row"] = (
            sum(s.cpu_seconds for s in found) / sum(s.ops for s in found) * 1e6
        )
    for top, bottom in BULK_PAIRS:
        key = f"{top}_over_{bottom}"
        figures[key] = ratio_of_totals(rounds[top], rounds[bottom])
        figures[f"{key}_low"], figures[f"{key}_high"] = bootstrap_interval(
            rounds[top], rounds[bottom]
        )
    return figures


def render_bulk(figures: dict[str, float], rows: int) -> str:
    rates = table(
        [f"bulk insert of {rows:,} rows", "rows/s", "CPU us/row"],
        [
            [name, f"{figures[f'{name}_rows_s']:,.0f}", f"{figures[f'{name}_cpu_us_per_row']:.1f}"]
            for name in BULK_CONTENDERS
        ],
    )
    ratios = table(
        ["ratio", "value", "95% CI"],
        [
            [
                f"{top} / {bottom}",
                f"{figures[f'{top}_over_{bottom}']:.3f}",
                f"{figures[f'{top}_over_{bottom}_low']:.3f}-"
                f"{figures[f'{top}_over_{bottom}_high']:.3f}",
            ]
            for top, bottom in BULK_PAIRS
        ],
    )
    return f"{rates}\n\n{ratios}"


def bulk_verdict(figures: dict[str, float]) -> tuple[bool, str]:
    key = "keel_add_many_over_asyncpg_executemany"
    figure = (
        f"Keel add_many / asyncpg executemany = {figures[key]:.3f} "
        f"(95% CI {figures[key + '_low']:.3f}-{figures[key + '_high']:.3f}), "
        f"target {BULK_TARGET:.2f}"
    )
    if figures[key] < BULK_TARGET:
        return False, f"MISS: {figure}"
    caveat = (
        "; the interval reaches below the target" if figures[key + "_low"] < BULK_TARGET else ""
    )
    return True, f"PASS: {figure}{caveat}"


# -- profiling --------------------------------------------------------------------------

KERNEL_LAYERS: tuple[Layer, ...] = (("keel kernel", KERNEL), *COMMON_LAYERS)


async def profile(database: BenchDatabase, config: Config, op: str, ops: int) -> None:
    """Profile Keel and the plain session on ``op``; show where Keel's time goes."""
    arena = await open_arena(database, config)
    try:
        by_name = {contender.name: contender for contender in arena.contenders}
        for name in ("keel", "sqlalchemy"):
            call = operation(by_name[name], op)
            await run_segment(call, arena.rows, Budget(ops=WARMUP_OPS), 1)
            with profiled() as result:
                sample = await run_segment(call, arena.rows, Budget(ops=ops), 1)
            print(f"\n== {name} {op}: {sample.rate:,.0f} ops/s under the profiler")
            print(render_profile(result.entries, sample.ops, KERNEL_LAYERS, ["keel kernel"]))
    finally:
        await arena.close()


# -- command line -----------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.kernel",
        description="Keel unit of work versus hand-written AsyncSession and raw asyncpg.",
    )
    size = parser.add_mutually_exclusive_group()
    size.add_argument(
        "--seconds", type=float, default=None, help="seconds per contender, op and round (0.08)"
    )
    size.add_argument("--ops", type=int, default=None, help="operations per contender, op, round")
    parser.add_argument("--rounds", type=int, default=25, help="interleaved rounds (25)")
    parser.add_argument(
        "--concurrency", type=int, default=1, help="concurrent tasks per segment (1)"
    )
    parser.add_argument(
        "--pre-ping",
        action="store_true",
        help="SQLAlchemy's pool_pre_ping (three round trips per checkout on asyncpg) "
        "instead of Keel's liveness check",
    )
    parser.add_argument("--json", type=Path, default=None, help="save the results here")
    parser.add_argument(
        "--profile",
        choices=OPERATIONS,
        default=None,
        help="instead of benchmarking, cProfile Keel and the plain session on this op",
    )
    parser.add_argument(
        "--profile-ops", type=int, default=3000, help="operations to profile (3000)"
    )
    parser.add_argument(
        "--bulk-rows", type=int, default=10_000, help="rows per bulk insert (10000)"
    )
    parser.add_argument(
        "--bulk-rounds", type=int, default=10, help="interleaved bulk rounds; 0 skips (10)"
    )
    parser.add_argument("--bulk-only", action="store_true", help="run only the bulk insert case")
    args = parser.parse_args(argv)
    if args.ops is None and args.seconds is None:
        args.seconds = 0.08
    if args.bulk_rounds < 0 or args.bulk_rows < 1:
        parser.error("--bulk-rounds must be >= 0 and --bulk-rows >= 1")
    if args.bulk_only and args.bulk_rounds == 0:
        parser.error("--bulk-only needs --bulk-rounds >= 1")
    for name in ("rounds", "concurrency", "ops", "profile_ops"):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1, got {value}")
    if args.seconds is not None and args.seconds <= 0:
        parser.error(f"--seconds must be > 0, got {args.seconds}")
    return args


async def run(args: argparse.Namespace) -> int:
    config = Config(
        budget=Budget(ops=args.ops, seconds=args.seconds),
        rounds=args.rounds,
        concurrency=args.concurrency,
        pre_ping=args.pre_ping,
    )
    results: Results | None = None
    bulk: dict[str, list[Sample]] | None = None
    async with fresh_database("keel_bench_kernel") as database:
        if args.profile is not None:
            await profile(database, config, args.profile, args.profile_ops)
            return 0
        if not args.bulk_only:
            size = f"{args.ops} ops" if args.ops else f"{args.seconds}s"
            print(
                f"Keel kernel benchmark on {database}: {args.rounds} rounds x {size} per "
                f"contender and op, concurrency {args.concurrency}, "
                f"pool_pre_ping={'on' if args.pre_ping else 'off'}",
                file=sys.stderr,
            )
            results = await benchmark(database, config)
        if args.bulk_rounds:
            print(
                f"bulk insert on {database}: {args.bulk_rounds} rounds x {args.bulk_rows:,} rows "
                "per contender",
                file=sys.stderr,
            )
            arena = await open_arena(database, config)
            try:
                bulk = await bulk_benchmark(arena, args.bulk_rows, args.bulk_rounds)
            finally:
                await arena.close()
    payload: dict[str, Any] = {
        "benchmark": "kernel",
        "command": command_line(),
        "config": {
            "ops": args.ops,
            "seconds": args.seconds,
            "rounds": args.rounds,
            "concurrency": args.concurrency,
            "pool_pre_ping": args.pre_ping,
            "target": TARGET,
            "bulk_rows": args.bulk_rows,
            "bulk_rounds": args.bulk_rounds,
            "bulk_target": BULK_TARGET,
        },
    }
    if results is not None:
        summary = summarise(results)
        passed, line = verdict(summary)
        print(render(summary))
        print(line)
        if args.pre_ping:
            print(
                "note: --pre-ping costs Keel and SQLAlchemy three extra round trips per "
                "checkout on asyncpg (BEGIN; ';'; ROLLBACK); without it Keel's liveness check "
                "costs none"
            )
        payload["summary"] = summary
        payload["rounds"] = {
            op: {
                name: [
                    {"ops": s.ops, "seconds": s.seconds, "cpu_seconds": s.cpu_seconds}
                    for s in samples
                ]
                for name, samples in by_contender.items()
            }
            for op, by_contender in results.samples.items()
        }
        payload["verdict"] = {"passed": passed, "line": line}
    if bulk is not None:
        figures = summarise_bulk(bulk)
        bulk_passed, bulk_line = bulk_verdict(figures)
        print()
        print(render_bulk(figures, args.bulk_rows))
        print(bulk_line)
        payload["bulk"] = {
            "summary": figures,
            "rounds": {
                name: [
                    {"rows": s.ops, "seconds": s.seconds, "cpu_seconds": s.cpu_seconds}
                    for s in found
                ]
                for name, found in bulk.items()
            },
            "verdict": {"passed": bulk_passed, "line": bulk_line},
        }
    if args.json is not None:
        write_json(args.json, payload)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        return asyncio.run(run(args))
    except BenchDatabaseError as exc:
        print(f"bench.kernel: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
