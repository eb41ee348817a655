"""A small asyncio load generator, for machines without ``wrk``.

It does what ``bench/wrk/ledger.lua`` does — the same requests, the same
"BENCH_JSON {...}" line — from a separate process, so that ``bench.ledger.http``
works everywhere. ``wrk`` is preferred when installed: this generator is
Python too and, on a small machine, takes CPU away from the server under
test, which lowers every variant's figures (the ratios suffer less).

    python -m bench.ledger.http_load URL IDS_FILE {transfer,account} PREFIX \
        [--connections 8] [--seconds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import time
from collections.abc import Sequence
from pathlib import Path

import httpx


def percentile(ordered: Sequence[float], fraction: float) -> float:
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def load(
    url: str, ids: list[str], mode: str, prefix: str, connections: int, seconds: float
) -> dict[str, int]:
    latencies: list[float] = []
    status_errors = socket_errors = 0
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)

    async def worker(client: httpx.AsyncClient, number: int, deadline: float) -> None:
        nonlocal status_errors, socket_errors
        counter = 0
        while time.perf_counter() < deadline:
            counter += 1
            started = time.perf_counter()
            try:
                if mode == "transfer":
                    source, target = random.sample(ids, 2)
                    response = await client.post(
                        "/transfers",
                        json={
                            "source_id": source,
                            "target_id": target,
                            "amount": random.randint(1, 100),
                            "reference": f"{prefix}-c{number}-{counter}",
                        },
                    )
                else:
                    response = await client.get(f"/accounts/{random.choice(ids)}")
            except httpx.TransportError:
                socket_errors += 1
                continue
            latencies.append(time.perf_counter() - started)
            if not 200 <= response.status_code < 400:
                status_errors += 1

    # Keel and both twins verify the bench's token; the ceiling ignores it.
    headers = (
        {"Authorization": f"Bearer {os.environ['BENCH_TOKEN']}"}
        if "BENCH_TOKEN" in os.environ
        else {}
    )
    async with httpx.AsyncClient(
        base_url=url, limits=limits, timeout=10.0, headers=headers
    ) as client:
        started = time.perf_counter()
        deadline = started + seconds
        await asyncio.gather(*(worker(client, n, deadline) for n in range(connections)))
        duration = time.perf_counter() - started
    latencies.sort()
    return {
        "requests": len(latencies),
        "duration_us": int(duration * 1e6),
        "p50_us": int(percentile(latencies, 0.50) * 1e6),
        "p99_us": int(percentile(latencies, 0.99) * 1e6),
        "status_errors": status_errors,
        "socket_errors": socket_errors,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ledger.http_load")
    parser.add_argument("url")
    parser.add_argument("ids_file", type=Path)
    parser.add_argument("mode", choices=("transfer", "account"))
    parser.add_argument("prefix")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=2.0)
    args = parser.parse_args(argv)
    ids = [line for line in args.ids_file.read_text().splitlines() if line]
    result = asyncio.run(
        load(args.url, ids, args.mode, args.prefix, args.connections, args.seconds)
    )
    print("BENCH_JSON " + json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
