"""What a benchmark ran on, saved beside its results so the published figures name it.

Ratios move with the CPU, the core count, the servers' versions and how busy
the machine was, so ``make bench`` records these first, into
``out/bench/machine.json``, and ``bench.publish`` prints them above the tables.
A server that does not answer is recorded as such rather than failing the run.

    uv run python -m bench.machine out/bench/machine.json
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import subprocess
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from adapters.database import safe_url
from bench.postgres import server_url
from bench.report import write_json

ROOT = Path(__file__).resolve().parents[1]
LABELS: dict[str, str] = {
    "cpu": "CPU",
    "cores": "cores",
    "ram": "RAM",
    "os": "OS",
    "kernel": "kernel",
    "python": "Python",
    "postgresql": "PostgreSQL",
    "redis": "Redis",
    "load_average": "load average at the start (1, 5, 15 min)",
    "date_utc": "date (UTC)",
    "git_commit": "git commit",
}
"""What ``machine.json`` holds, with the words the report shows, in its order."""


def _proc_field(path: str, name: str) -> str | None:
    """The value of ``name: value`` in a ``/proc``-style file, or ``None``."""
    try:
        lines = Path(path).read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        key, _, value = line.partition(":")
        if key.strip() == name:
            return value.strip()
    return None


def cpu_model() -> str:
    return _proc_field("/proc/cpuinfo", "model name") or platform.processor() or "unknown"


def cores() -> str:
    total = os.cpu_count() or 0
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else total
    return f"{usable} usable of {total} logical" if usable != total else f"{total} logical"


def ram() -> str:
    found = _proc_field("/proc/meminfo", "MemTotal")  # "24587940 kB"
    if found is None or not found.split()[0].isdigit():
        return "unknown"
    return f"{int(found.split()[0]) / 1024**2:.1f} GiB"


def operating_system() -> str:
    """``PRETTY_NAME`` of ``/etc/os-release``, else what :mod:`platform` says."""
    try:
        lines = Path("/etc/os-release").read_text().splitlines()
    except OSError:
        lines = []
    for line in lines:
        if line.startswith("PRETTY_NAME="):
            return line.removeprefix("PRETTY_NAME=").strip('"')
    return platform.platform()


def git_commit(root: Path = ROOT) -> str:
    """``HEAD``'s hash, marked when the working tree has uncommitted changes."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10
        )
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown (no git)"
    if head.returncode != 0:
        return "unknown (not a git checkout)"
    dirty = " + uncommitted changes" if status.stdout.strip() else ""
    return head.stdout.strip() + dirty


async def postgresql_version() -> str:
    url = server_url()
    try:
        connection = await asyncpg.connect(url.render_as_string(hide_password=False), timeout=5)
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        return f"unreachable at {safe_url(url)} ({type(exc).__name__})"
    try:
        version: str = await connection.fetchval("SHOW server_version")
    finally:
        await connection.close()
    return version


async def redis_version() -> str:
    from bench.messaging import DEFAULT_REDIS_URL, REDIS_ENV_VAR  # the server bench.messaging uses

    url = os.environ.get(REDIS_ENV_VAR, DEFAULT_REDIS_URL)
    client = aioredis.Redis.from_url(url, socket_connect_timeout=3)
    try:
        info = await client.info("server")
    except (RedisError, OSError) as exc:
        return f"unreachable ({type(exc).__name__})"
    finally:
        await client.aclose()
    return str(info.get("redis_version", "unknown"))


async def facts() -> dict[str, str]:
    """Every field of :data:`LABELS`, as text."""
    postgresql, redis = await asyncio.gather(postgresql_version(), redis_version())
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {
        "cpu": cpu_model(),
        "cores": cores(),
        "ram": ram(),
        "os": operating_system(),
        "kernel": f"{platform.system()} {platform.release()}",
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "postgresql": postgresql,
        "redis": redis,
        "load_average": " ".join(f"{value:.2f}" for value in load) if load else "unknown",
        "date_utc": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "git_commit": git_commit(),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.machine", description=__doc__)
    parser.add_argument("json", type=Path, help="where to write the facts")
    args = parser.parse_args(argv)
    found = asyncio.run(facts())
    write_json(args.json, {"benchmark": "machine", **found})
    print("\n".join(f"{LABELS[name]}: {value}" for name, value in found.items()), file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
