"""HTTP benchmark: the ledger app against hand-written twins and the HTTP ceiling, over loopback.

Four uvicorn processes, each on its own free port, serve the same two
routes (``POST /transfers``, ``GET /accounts/{id}``):

- ``keel``: the ledger app itself (``entrypoints.http.app.create_app``);
- ``sqlalchemy``: ``bench.ledger.http_plain``, the same reads and writes through a plain
  ``AsyncSession``;
- ``asyncpg``: ``bench.ledger.http_raw``, the same reads and writes by hand on an asyncpg
  pool, one statement each as a developer writes them (Keel's commit sends its writes as
  one statement: docs/repositories.md, "The driver path");
- ``ceiling``: ``bench.ledger.http_ceiling``, constant answers of the same shape with no
  database and no auth: what FastAPI and uvicorn manage at all on this machine.

The first three share one fresh database and give the same guarantees: a
bearer JWT verified on every request, its scope checked, ownership in the SQL
(someone else's account is a 404) and Keel's security headers. The ceiling is
not part of Keel's ratios; every variant's share of it is reported instead.

A separate load-generator process (``wrk`` with ``bench/ledger/wrk/ledger.lua``
when installed, else ``bench.ledger.http_load``) drives ``POST /transfers``
between random pairs of seeded accounts, with unique references, and
``GET /accounts/{id}``. Rounds are interleaved and the variants' order
rotates, so that machine noise hits every variant alike; segments are
short (3 s) and many for the same reason, and each ratio carries a bootstrap 95%
interval over rounds. Afterwards the run checks that no money was created or
destroyed, and profiles Keel requests in-process to show where their time goes.

    uv run python -m bench.http                          # ~2 min on 2 cores
    uv run python -m bench.http --rounds 12 --connections 16 --json out/bench/http.json
    uv run python -m bench.http --connections 1 --no-profile  # no queueing
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from statistics import median
from typing import TextIO
from uuid import UUID, uuid4

import httpx
from sqlalchemy import func, select

from adapters.auth import DevKeyPair, TokenIssuer
from adapters.database import DatabaseSessionManager
from adapters.ledger.tables import accounts
from adapters.migrate import upgrade_to_head_async
from adapters.settings import Settings
from bench.postgres import BenchDatabase, BenchDatabaseError, fresh_database
from bench.profiling import COMMON_LAYERS, KERNEL, Layer, profiled, render_profile
from bench.report import bootstrap_interval, command_line, ratio_of_totals, table, write_json
from domain.ledger.commands import Deposit, OpenAccount
from domain.principal import Principal
from entrypoints.bootstrap import Container, bootstrap
from entrypoints.http.app import create_app
from entrypoints.ledger import context as ledger_context
from service_layer.ledger import handlers

CONTEXT = "ledger"
GOALS: dict[str, dict[str, float]] = {
    "transfer": {"keel_over_sqlalchemy": 1.0, "keel_over_asyncpg": 0.5},
    "account": {"keel_over_sqlalchemy": 1.0, "keel_over_asyncpg": 0.7},
}
"""Issue 11's goals per endpoint: Keel at least as fast as the plain-session twin, and
this share of the raw-asyncpg one."""

SEED_BALANCE = 10**9
WRK_SCRIPT = Path(__file__).with_name("wrk") / "ledger.lua"
BENCH_OWNER = Principal(subject="bench", scopes=frozenset({"ledger:read", "ledger:write"}))
"""Owns every seeded account; the load generators send a token for it (``BENCH_TOKEN``)."""
BENCH_KEY_FILE = Path(tempfile.gettempdir()) / f"keel-bench-key-{os.getpid()}.pem"
"""The development key the bench's Keel servers trust and its token is signed with."""


def bench_token() -> str:
    issuer = TokenIssuer(DevKeyPair(BENCH_KEY_FILE).private_key(), issuer="keel", audience="keel")
    return issuer.mint(BENCH_OWNER.subject, scopes=sorted(BENCH_OWNER.scopes))


def bench_environment() -> dict[str, str]:
    """The environment of servers and load generators: the bench's key, and its token."""
    environment = {
        name: value
        for name, value in os.environ.items()
        if name not in ("AUTH_PUBLIC_KEY", "AUTH_JWKS_URL")
    }
    return {
        **environment,
        "KEEL_CONTEXTS": CONTEXT,  # Keel serves the context under test, and only it
        "AUTH_DEV_KEY_FILE": str(BENCH_KEY_FILE),
        "BENCH_TOKEN": bench_token(),
    }


STARTUP_TIMEOUT = 30.0

Container = Container


@dataclass(frozen=True)
class Variant:
    name: str
    factory: str
    """``module:function`` that uvicorn calls (``--factory``) to build the app."""


VARIANTS = (
    Variant("keel", "entrypoints.http.app:create_app"),
    Variant("sqlalchemy", "bench.ledger.http_plain:create_app"),
    Variant("asyncpg", "bench.ledger.http_raw:create_app"),
    Variant("ceiling", "bench.ledger.http_ceiling:create_app"),
)
TWINS = ("sqlalchemy", "asyncpg")
"""The variants Keel's ratios are taken against."""
CEILING = "ceiling"

ENDPOINTS = {"transfer": "POST /transfers", "account": "GET /accounts/{id}"}


@dataclass(frozen=True)
class Segment:
    """What one load-generator run reported."""

    requests: int
    duration_us: int
    p50_us: int
    p99_us: int
    status_errors: int
    socket_errors: int

    @property
    def as_round(self) -> tuple[float, float]:
        return float(self.requests), self.duration_us / 1e6


@dataclass
class Results:
    segments: dict[str, dict[str, list[Segment]]] = field(default_factory=dict)

    def record(self, endpoint: str, variant: str, segment: Segment) -> None:
        self.segments.setdefault(endpoint, {}).setdefault(variant, []).append(segment)

    def rounds(self, endpoint: str, variant: str) -> list[tuple[float, float]]:
        return [segment.as_round for segment in self.segments[endpoint][variant]]


# -- servers ----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class Server:
    variant: Variant
    port: int
    process: subprocess.Popen[bytes]
    log: TextIO

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_tail(self) -> str:
        self.log.flush()
        return Path(self.log.name).read_text()[-2000:]


def start_server(variant: Variant, database_url: str, logs: Path) -> Server:
    port = free_port()
    log = (logs / f"{variant.name}.log").open("w")
    # Keel's in-process relay is background work the twins do not have; its
    # cost is measured by bench.messaging. The request path (outbox row included)
    # is what is compared here.
    environment = {
        **bench_environment(),
        "DATABASE_URL": database_url,
        "SERVE_RELAY": "false",
        "SERVE_CONSUMER": "false",
    }
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            variant.factory,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-access-log",
            "--log-level",
            "warning",
        ],
        env=environment,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    return Server(variant=variant, port=port, process=process, log=log)


async def wait_until_ready(server: Server) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    async with httpx.AsyncClient(base_url=server.url, timeout=2.0) as client:
        while time.monotonic() < deadline:
            if server.process.poll() is not None:
                raise RuntimeError(
                    f"the {server.variant.name} server exited at start-up:\n{server.log_tail()}"
                )
            with contextlib.suppress(httpx.TransportError):
                if (await client.get("/health")).status_code == 200:
                    return
            await asyncio.sleep(0.1)
    raise RuntimeError(f"the {server.variant.name} server did not answer /health in time")


@contextlib.asynccontextmanager
async def running_servers(database_url: str, logs: Path) -> AsyncIterator[list[Server]]:
    servers = [start_server(variant, database_url, logs) for variant in VARIANTS]
    try:
        await asyncio.gather(*(wait_until_ready(server) for server in servers))
        yield servers
    finally:
        for server in servers:
            server.process.terminate()
        for server in servers:
            try:
                await asyncio.to_thread(server.process.wait, 15)
            except subprocess.TimeoutExpired:
                server.process.kill()
                await asyncio.to_thread(server.process.wait)
            server.log.close()


# -- load -------------------------------------------------------------------------------


def load_command(
    tool: str, server: Server, ids_file: Path, mode: str, prefix: str, args: argparse.Namespace
) -> list[str]:
    if tool == "wrk":
        return [
            "wrk",
            "-t1",
            f"-c{args.connections}",
            f"-d{args.seconds}s",
            "--timeout",
            "10s",
            "-s",
            str(WRK_SCRIPT),
            server.url,
            "--",
            str(ids_file),
            mode,
            prefix,
        ]
    return [
        sys.executable,
        "-m",
        "bench.ledger.http_load",
        server.url,
        str(ids_file),
        mode,
        prefix,
        "--connections",
        str(args.connections),
        "--seconds",
        str(args.seconds),
    ]


async def run_load(command: list[str]) -> Segment:
    process = await asyncio.create_subprocess_exec(
        *command,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=bench_environment(),
    )
    stdout, stderr = await process.communicate()
    for line in stdout.decode().splitlines():
        if line.startswith("BENCH_JSON "):
            return Segment(**json.loads(line.removeprefix("BENCH_JSON ")))
    raise RuntimeError(
        f"the load generator printed no result (exit {process.returncode}): "
        f"{stderr.decode()[-1000:] or stdout.decode()[-1000:]}"
    )


# -- the database -----------------------------------------------------------------------


async def seed(container: Container, count: int) -> list[UUID]:
    """Open ``count`` accounts through Keel's own services, each with a deposit."""
    ids = []
    for _ in range(count):
        view = await handlers.open_account(
            OpenAccount(principal=BENCH_OWNER, currency="EUR"),
            ledger_context.wiring(container).uow_factory(),
        )
        await handlers.deposit(
            Deposit(
                principal=BENCH_OWNER, account_id=view.id, amount=SEED_BALANCE, reference="seed"
            ),
            ledger_context.wiring(container).uow_factory(),
        )
        ids.append(view.id)
    return ids


async def money_in_the_ledger(container: Container) -> int:
    async with container.session_manager.session() as session:
        total = await session.scalar(select(func.coalesce(func.sum(accounts.c.balance), 0)))
    return int(total or 0)


# -- profiling --------------------------------------------------------------------------

SEP = os.sep
HTTP_LAYERS: tuple[Layer, ...] = (
    (
        "ledger app (domain/service_layer/adapters ledger, entrypoints)",
        (f"{SEP}ledger{SEP}", f"{SEP}entrypoints{SEP}"),
    ),
    ("keel kernel", KERNEL),
    (
        # FastAPI runs every plain ``def`` dependency in anyio's thread pool.
        "anyio thread-pool hand-offs (sync dependencies)",
        (f"{SEP}anyio{SEP}", f"{SEP}sniffio{SEP}", "threading.py", "_thread.lock", "queue.py"),
    ),
    ("fastapi + starlette", (f"{SEP}fastapi{SEP}", f"{SEP}starlette{SEP}")),
    ("pydantic", (f"{SEP}pydantic{SEP}", "pydantic_core")),
    ("httpx test client (harness)", (f"{SEP}httpx{SEP}", f"{SEP}httpcore{SEP}")),
    *COMMON_LAYERS,
)


async def profile_keel(container: Container, ids: list[UUID], requests: int) -> str:
    """cProfile of Keel requests called in-process through ASGI: where a request's time goes."""
    app = create_app(container=container)
    transport = httpx.ASGITransport(app=app)
    reports = []
    headers = {"Authorization": f"Bearer {bench_token()}"}
    async with httpx.AsyncClient(
        transport=transport, base_url="http://keel", headers=headers
    ) as client:
        token = uuid4().hex[:8]

        async def transfer(number: int) -> None:
            source, target = ids[number % len(ids)], ids[(number + 1) % len(ids)]
            response = await client.post(
                "/transfers",
                json={
                    "source_id": str(source),
                    "target_id": str(target),
                    "amount": 1,
                    "reference": f"profile-{token}-{number}",
                },
            )
            if response.status_code != 201:
                raise RuntimeError(f"profiled transfer answered {response.status_code}")

        async def account(number: int) -> None:
            response = await client.get(f"/accounts/{ids[number % len(ids)]}")
            if response.status_code != 200:
                raise RuntimeError(f"profiled account read answered {response.status_code}")

        for name, call in (("POST /transfers", transfer), ("GET /accounts/{id}", account)):
            try:
                for number in range(30):
                    await call(-1 - number)
            except RuntimeError as exc:
                reports.append(f"\n== keel {name}: not profiled, {exc}")
                continue
            started = time.perf_counter()
            with profiled() as result:
                for number in range(requests):
                    await call(number)
            elapsed = time.perf_counter() - started
            reports.append(
                f"\n== keel {name}, {requests} requests in-process "
                f"({requests / elapsed:,.0f} req/s under the profiler)\n"
                + render_profile(
                    result.entries, requests, HTTP_LAYERS, ["keel kernel", HTTP_LAYERS[0][0]]
                )
            )
    return "\n".join(reports)


# -- the run ----------------------------------------------------------------------------


def summarise(results: Results) -> dict[str, dict[str, float]]:
    """Per endpoint: each variant's req/s, p50, p99 and errors; Keel over each twin and
    each variant over the ceiling, every ratio with its bootstrap 95% interval."""
    summary: dict[str, dict[str, float]] = {}
    for endpoint in ENDPOINTS:
        figures: dict[str, float] = {}
        for variant in VARIANTS:
            segments = results.segments[endpoint][variant.name]
            rounds = results.rounds(endpoint, variant.name)
            figures[f"{variant.name}_req_s"] = sum(r for r, _ in rounds) / sum(s for _, s in rounds)
            figures[f"{variant.name}_p50_ms"] = median(s.p50_us for s in segments) / 1000
            figures[f"{variant.name}_p99_ms"] = median(s.p99_us for s in segments) / 1000
            figures[f"{variant.name}_errors"] = sum(
                s.status_errors + s.socket_errors for s in segments
            )
        pairs = [("keel", twin) for twin in TWINS]
        pairs += [(v.name, CEILING) for v in VARIANTS if v.name != CEILING]
        for top, bottom in pairs:
            key = f"{top}_over_{bottom}"
            ours, theirs = results.rounds(endpoint, top), results.rounds(endpoint, bottom)
            figures[key] = ratio_of_totals(ours, theirs)
            figures[f"{key}_low"], figures[f"{key}_high"] = bootstrap_interval(ours, theirs)
        summary[endpoint] = figures
    return summary


def _ratio(figures: dict[str, float], key: str) -> str:
    return f"{figures[key]:.3f} ({figures[key + '_low']:.2f}-{figures[key + '_high']:.2f})"


def render(summary: dict[str, dict[str, float]]) -> str:
    rows = []
    for endpoint, figures in summary.items():
        for variant in VARIANTS:
            name = variant.name
            against = {
                twin: _ratio(figures, f"keel_over_{twin}") if name == twin else "" for twin in TWINS
            }
            share = "" if name == CEILING else _ratio(figures, f"{name}_over_{CEILING}")
            rows.append(
                [
                    ENDPOINTS[endpoint],
                    name,
                    f"{figures[f'{name}_req_s']:,.0f}",
                    f"{figures[f'{name}_p50_ms']:.1f}",
                    f"{figures[f'{name}_p99_ms']:.1f}",
                    f"{figures[f'{name}_errors']:.0f}",
                    against["sqlalchemy"],
                    against["asyncpg"],
                    share,
                ]
            )
    headers = [
        "endpoint",
        "variant",
        "req/s",
        "p50 ms",
        "p99 ms",
        "errors",
        "Keel/plain (95% CI)",
        "Keel/asyncpg (95% CI)",
        "share of ceiling (95% CI)",
    ]
    return table(headers, rows)


def verdicts(summary: dict[str, dict[str, float]]) -> list[str]:
    """One line per endpoint; a variant that answered errors makes its line INVALID.

    The load generators count every response, so a variant failing fast
    would otherwise look fast.
    """
    lines = []
    for endpoint, figures in summary.items():
        failing = [v.name for v in VARIANTS if figures[f"{v.name}_errors"] > 0]
        if failing:
            lines.append(
                f"{ENDPOINTS[endpoint]}: INVALID, error responses from {', '.join(failing)} "
                "(see the errors column and the server logs)"
            )
            continue
        parts = []
        for twin, label in (("sqlalchemy", "plain session"), ("asyncpg", "raw asyncpg")):
            key = f"keel_over_{twin}"
            goal = GOALS[endpoint][key]
            met = "MEETS" if figures[key] >= goal else "MISSES"
            shaky = (
                " (interval reaches below)"
                if met == "MEETS" and figures[key + "_low"] < goal
                else ""
            )
            parts.append(f"Keel/{label} {figures[key]:.3f} {met} the goal >= {goal}{shaky}")
        parts.append(f"Keel at {figures[f'keel_over_{CEILING}']:.0%} of the HTTP ceiling")
        lines.append(f"{ENDPOINTS[endpoint]}: " + "; ".join(parts))
    return lines


@dataclass(frozen=True)
class Outcome:
    results: Results
    money_before: int
    money_after: int
    profile: str

    @property
    def money_conserved(self) -> bool:
        return self.money_before == self.money_after


async def benchmark(args: argparse.Namespace, tool: str) -> Outcome:
    async with fresh_database("keel_bench_http") as database:
        await upgrade_to_head_async(
            database.sqlalchemy_url,
            [ledger_context.migrations] if ledger_context.migrations else [],
        )
        manager = DatabaseSessionManager()
        try:
            settings = Settings(
                database_url=database.sqlalchemy_url,
                auth_public_key=None,
                auth_jwks_url=None,
                auth_dev_key_file=str(BENCH_KEY_FILE),
                keel_contexts=CONTEXT,
            )
            container = bootstrap(settings, manager=manager)
            ids = await seed(container, args.accounts)
            money_before = await money_in_the_ledger(container)
            with tempfile.TemporaryDirectory(prefix="keel-bench-http-") as scratch:
                ids_file = Path(scratch) / "accounts.txt"
                ids_file.write_text("".join(f"{ident}\n" for ident in ids))
                results = await drive(args, tool, database, ids_file, Path(scratch))
            money_after = await money_in_the_ledger(container)
            profile = "" if args.no_profile else await profile_keel(container, ids, args.profile)
        finally:
            await manager.close()
    return Outcome(results, money_before, money_after, profile)


async def drive(
    args: argparse.Namespace, tool: str, database: BenchDatabase, ids_file: Path, scratch: Path
) -> Results:
    token = uuid4().hex[:6]
    results = Results()
    async with running_servers(database.sqlalchemy_url, scratch) as servers:
        warmup = argparse.Namespace(**{**vars(args), "seconds": 1})
        for server in servers:
            for mode in ENDPOINTS:
                prefix = f"warm-{server.variant.name}-{token}"
                await run_load(load_command(tool, server, ids_file, mode, prefix, warmup))
        for round_index in range(args.rounds):
            shift = round_index % len(servers)
            order = servers[shift:] + servers[:shift]
            for mode in ENDPOINTS:
                for server in order:
                    prefix = f"{server.variant.name}-r{round_index}-{token}"
                    command = load_command(tool, server, ids_file, mode, prefix, args)
                    results.record(mode, server.variant.name, await run_load(command))
            print(f"  round {round_index + 1}/{args.rounds} done", file=sys.stderr)
        for server in servers:
            errors = sum(
                segment.status_errors + segment.socket_errors
                for by_variant in results.segments.values()
                for segment in by_variant[server.variant.name]
            )
            if errors:
                print(
                    f"bench.ledger.http: {server.variant.name} answered {errors} errors; "
                    f"the end of its log:\n{server.log_tail()}",
                    file=sys.stderr,
                )
    return results


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.ledger.http",
        description="The Keel ledger app versus a plain-AsyncSession twin, a raw-asyncpg twin "
        "and the HTTP stack's ceiling.",
    )
    parser.add_argument(
        "--seconds", type=int, default=3, help="seconds per variant, endpoint, round (3)"
    )
    parser.add_argument("--rounds", type=int, default=6, help="interleaved rounds (6)")
    parser.add_argument(
        "--connections", type=int, default=8, help="concurrent client connections (8)"
    )
    parser.add_argument("--accounts", type=int, default=100, help="seeded accounts (100)")
    parser.add_argument(
        "--load",
        choices=("auto", "wrk", "python"),
        default="auto",
        help="load generator: wrk if installed (auto), or the asyncio one",
    )
    parser.add_argument(
        "--profile", type=int, default=300, help="requests per endpoint to profile (300)"
    )
    parser.add_argument("--no-profile", action="store_true", help="skip the in-process profile")
    parser.add_argument("--json", type=Path, default=None, help="save the results here")
    args = parser.parse_args(argv)
    for name in ("seconds", "rounds", "connections", "profile"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be >= 1")
    if args.accounts < 2:
        parser.error("--accounts must be >= 2: a transfer needs two accounts")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    tool = "wrk" if args.load == "auto" and shutil.which("wrk") else args.load
    if tool == "auto":
        tool = "python"
    if tool == "wrk" and not shutil.which("wrk"):
        print("bench.ledger.http: --load wrk, but wrk is not installed", file=sys.stderr)
        return 2
    print(
        f"Keel HTTP benchmark: {args.rounds} rounds x {args.seconds}s per variant and endpoint, "
        f"{args.connections} connections, load from {tool}, {args.accounts} accounts",
        file=sys.stderr,
    )
    try:
        outcome = asyncio.run(benchmark(args, tool))
    except BenchDatabaseError as exc:
        print(f"bench.ledger.http: {exc}", file=sys.stderr)
        return 2
    results = outcome.results
    summary = summarise(results)
    print(render(summary))
    for line in verdicts(summary):
        print(line)
    conserved = outcome.money_conserved
    print(
        f"money conserved across all transfers: {'yes' if conserved else 'NO'} "
        f"({outcome.money_before} before, {outcome.money_after} after)"
    )
    if outcome.profile:
        print(outcome.profile)
    if args.json is not None:
        write_json(
            args.json,
            {
                "benchmark": "http",
                "context": CONTEXT,
                "command": command_line(),
                "config": {**vars(args), "load_tool": tool},
                "endpoints": ENDPOINTS,
                "variants": {variant.name: variant.factory for variant in VARIANTS},
                "goals": GOALS,
                "summary": summary,
                "rounds": {
                    endpoint: {name: [asdict(s) for s in segments] for name, segments in by.items()}
                    for endpoint, by in results.segments.items()
                },
                "verdicts": verdicts(summary),
                "money_conserved": conserved,
            },
        )
    return 0 if conserved else 1


if __name__ == "__main__":
    raise SystemExit(main())
