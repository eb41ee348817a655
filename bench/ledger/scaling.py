"""The ledger's HTTP throughput with 1, 2 and 4 ``keel serve`` workers, and through PgBouncer.

Each topology is a real ``keel serve --workers N`` (Redis as the broker, as
several workers need one) on one fresh, seeded PostgreSQL database, loaded
over loopback by the same load generator as ``bench.ledger.http`` (``wrk``
when installed, else ``bench.ledger.http_load``): ``GET /accounts/{id}``
and ``POST /transfers``, a few seconds each, after a warm-up. The PgBouncer
topology puts a real pgbouncer in transaction mode (the Debian package;
``scripts/services.sh`` installs it) between the workers and PostgreSQL,
with ``DB_PGBOUNCER=true`` and the relay and migrations on
``DATABASE_DIRECT_URL``. Figures are absolute, for ``docs/scaling.md``: on
two cores, more workers than cores mostly measure contention.

    uv run python -m bench.ledger.scaling                 # ~1 min
    uv run python -m bench.ledger.scaling --seconds 5 --workers 1 2 4
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from uuid import uuid4

from sqlalchemy.engine import make_url

from adapters.database import DatabaseSessionManager
from adapters.migrate import upgrade_to_head_async
from adapters.settings import Settings
from bench.ledger.http import (
    BENCH_KEY_FILE,
    Segment,
    Server,
    Variant,
    bench_environment,
    free_port,
    load_command,
    run_load,
    seed,
    wait_until_ready,
)
from bench.postgres import BenchDatabaseError, fresh_database
from bench.report import table
from entrypoints.bootstrap import bootstrap
from entrypoints.ledger import context as ledger_context

REDIS_URL = os.environ.get("KEEL_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
PGBOUNCER_POOL = 10
"""Server connections pgbouncer keeps: fewer than the workers' pools together."""


@dataclass(frozen=True)
class Topology:
    name: str
    workers: int
    pooled: bool = False


@dataclass(frozen=True)
class Figure:
    topology: str
    endpoint: str
    segment: Segment

    @property
    def rate(self) -> float:
        return self.segment.requests / (self.segment.duration_us / 1e6)


@contextlib.contextmanager
def keel_serve(
    topology: Topology, database_url: str, direct_url: str, logs: Path
) -> Iterator[Server]:
    port = free_port()
    log = (logs / f"{topology.name}.log").open("w")
    environment = {
        **bench_environment(),
        "DATABASE_URL": database_url,
        "DATABASE_DIRECT_URL": direct_url,
        "DB_PGBOUNCER": "true" if topology.pooled else "false",
        "BROKER_URL": REDIS_URL,
        "STREAM_PREFIX": f"keel-bench-{uuid4().hex[:8]}:",
        "METRICS_ENABLED": "false",
        "KEEL_CONTEXTS": "ledger",
    }
    keel = Path(sys.executable).with_name("keel")
    process = subprocess.Popen(
        [str(keel), "serve", "--port", str(port), "--workers", str(topology.workers)],
        env=environment,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        yield Server(Variant(topology.name, "keel serve"), port, process, log)
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 9)
            process.wait()
        log.close()


def _pgbouncer_config(server_dsn: str, scratch: Path, port: int) -> Path:
    """Write pgbouncer's config (transaction mode, trust) into ``scratch``, owned by postgres."""
    server = make_url(server_dsn)
    config = scratch / "pgbouncer.ini"
    config.write_text(
        "\n".join(
            [
                "[databases]",
                f"* = host={server.host or '127.0.0.1'} port={server.port or 5432}",
                "[pgbouncer]",
                "listen_addr = 127.0.0.1",
                f"listen_port = {port}",
                "unix_socket_dir =",
                "auth_type = trust",
                f"auth_file = {scratch / 'users.txt'}",
                "pool_mode = transaction",
                f"default_pool_size = {PGBOUNCER_POOL}",
                "max_client_conn = 500",
                "log_connections = 0",
                "log_disconnections = 0",
                f"logfile = {scratch / 'pgbouncer.log'}",
                "",
            ]
        )
    )
    (scratch / "users.txt").write_text(f'"{server.username or "postgres"}" ""\n')
    shutil.chown(scratch, "postgres")
    for path in scratch.iterdir():
        shutil.chown(path, "postgres")
    return config


@contextlib.asynccontextmanager
async def pgbouncer(server_dsn: str, scratch: Path) -> AsyncIterator[int]:
    """A pgbouncer in transaction mode in front of ``server_dsn``; yields its port."""
    binary = shutil.which("pgbouncer", path=f"{os.environ.get('PATH', '')}:/usr/sbin")
    if binary is None:
        raise BenchDatabaseError("no pgbouncer binary (./scripts/services.sh installs it)")
    port = free_port()
    config = _pgbouncer_config(server_dsn, scratch, port)
    process = await asyncio.create_subprocess_exec(
        "runuser",
        "-u",
        "postgres",
        "--",
        binary,
        str(config),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            with contextlib.suppress(OSError):
                _, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.close()
                break
            await asyncio.sleep(0.05)
        yield port
    finally:
        if process.returncode is None:
            process.terminate()
            await asyncio.wait_for(process.wait(), 10)


async def measure(
    args: argparse.Namespace, tool: str, server: Server, ids_file: Path
) -> list[Figure]:
    await wait_until_ready(server)
    figures = []
    for endpoint in ("account", "transfer"):
        prefix = f"{server.variant.name}-{uuid4().hex[:6]}"
        warm = argparse.Namespace(**{**vars(args), "seconds": 1})
        await run_load(load_command(tool, server, ids_file, endpoint, f"warm-{prefix}", warm))
        segment = await run_load(load_command(tool, server, ids_file, endpoint, prefix, args))
        figures.append(Figure(server.variant.name, endpoint, segment))
    return figures


async def benchmark(args: argparse.Namespace, tool: str) -> list[Figure]:
    topologies = [Topology(f"{n} worker{'s' * (n > 1)}", n) for n in args.workers]
    topologies.append(Topology(f"2 workers, PgBouncer ({PGBOUNCER_POOL})", 2, pooled=True))
    figures: list[Figure] = []
    async with fresh_database("keel_bench_scaling") as database:
        direct = database.sqlalchemy_url
        assert ledger_context.migrations is not None
        await upgrade_to_head_async(direct, [ledger_context.migrations])
        manager = DatabaseSessionManager()
        try:
            settings = Settings(
                database_url=direct, auth_public_key=None, auth_dev_key_file=str(BENCH_KEY_FILE)
            )
            ids = await seed(bootstrap(settings, manager=manager), args.accounts)
        finally:
            await manager.close()
        with tempfile.TemporaryDirectory(prefix="keel-bench-scaling-") as scratch:
            ids_file = Path(scratch) / "accounts.txt"
            ids_file.write_text("".join(f"{ident}\n" for ident in ids))
            for topology in topologies:
                url = direct
                async with contextlib.AsyncExitStack() as stack:
                    if topology.pooled:
                        # Its own folder: pgbouncer runs as postgres, who cannot enter
                        # the scratch folder (0700, root's).
                        pooler_dir = Path(tempfile.mkdtemp(prefix="keel-bench-pgb-"))
                        stack.callback(shutil.rmtree, pooler_dir, True)
                        port = await stack.enter_async_context(
                            pgbouncer(database.asyncpg_dsn, pooler_dir)
                        )
                        url = (
                            make_url(direct)
                            .set(host="127.0.0.1", port=port)
                            .render_as_string(hide_password=False)
                        )
                    with keel_serve(topology, url, direct, Path(scratch)) as server:
                        figures.extend(await measure(args, tool, server, ids_file))
    return figures


def render(figures: Sequence[Figure]) -> str:
    rows = [
        [
            figure.topology,
            "GET /accounts/{id}" if figure.endpoint == "account" else "POST /transfers",
            f"{figure.rate:,.0f}",
            f"{figure.segment.p50_us / 1000:.1f}",
            f"{figure.segment.p99_us / 1000:.1f}",
            str(figure.segment.status_errors + figure.segment.socket_errors),
        ]
        for figure in figures
    ]
    return table(["topology", "endpoint", "req/s", "p50 ms", "p99 ms", "errors"], rows)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.ledger.scaling", description=__doc__)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--seconds", type=int, default=4)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--accounts", type=int, default=200)
    parser.add_argument("--load", choices=("auto", "wrk", "python"), default="auto")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    tool = (
        "wrk" if args.load == "wrk" or (args.load == "auto" and shutil.which("wrk")) else "python"
    )
    try:
        figures = asyncio.run(benchmark(args, tool))
    except BenchDatabaseError as exc:
        print(f"bench.ledger.scaling: {exc}", file=sys.stderr)
        return 2
    print(f"load: {tool}, {args.connections} connections, {args.seconds} s per figure\n")
    print(render(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
