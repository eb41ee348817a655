"""Messaging benchmark: what the outbox adds to a commit, and how fast the relay drains.

1. ``commit``: a read-modify-write unit of work whose aggregate raises one
   published event, with and without the outbox hook. Rounds are interleaved
   and the order alternates, so both contenders see the same machine noise;
   the ratio carries a bootstrap 95% interval over rounds.
2. ``relay``: rows pending in the outbox, drained by one relay and by two side
   by side into the in-process broker (and into Redis Streams when one
   answers at ``KEEL_BENCH_REDIS_URL``, default 127.0.0.1:6379).
3. ``latency``: from ``commit()`` returning to the message reaching a
   subscriber, through a running relay woken by LISTEN/NOTIFY.

A context's own end-to-end messaging bench lives in its ``bench/<context>``
folder (the example's: ``python -m bench.<context>.messaging``).

    uv run python -m bench.messaging                      # ~1 min on two busy cores
    uv run python -m bench.messaging --rounds 9 --ops 300 --json out/messaging.json
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import redis.asyncio as aioredis
from redis.exceptions import RedisError
from sqlalchemy import Column, Integer, Table, Uuid, text
from sqlalchemy.orm import registry

from adapters.brokers import Broker, Delivery, InProcessBroker
from adapters.brokers.redis_streams import RedisStreamsBroker
from adapters.database import DatabaseSessionManager
from adapters.inbox import inbox_table
from adapters.outbox import SqlAlchemyOutbox, SqlAlchemyOutboxStore, outbox_table
from adapters.relay import OutboxRelay, create_relay
from adapters.serialization import MessageRegistry
from adapters.unit_of_work import SqlAlchemyUnitOfWork
from bench.postgres import BenchDatabaseError, fresh_database
from bench.report import bootstrap_interval, ratio_of_totals, table, write_json
from domain.aggregate import Aggregate, Event
from service_layer.unit_of_work import repository

STREAM = "bench.events"
REDIS_ENV_VAR = "KEEL_BENCH_REDIS_URL"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


@dataclass(frozen=True, kw_only=True)
class Bumped(Event):
    counter_id: UUID
    value: int


class BenchCounter(Aggregate[UUID]):
    def __init__(self, id: UUID, value: int = 0) -> None:
        self.id = id
        self.value = value

    def bump(self) -> None:
        self.value += 1
        self.raise_event(Bumped(counter_id=self.id, value=self.value))


# Its own registry, so the shared metadata (and Alembic) never see the bench table.
bench_registry = registry()
bench_counters = Table(
    "bench_msg_counters",
    bench_registry.metadata,
    Column("id", Uuid, primary_key=True),
    Column("value", Integer, nullable=False),
    Column("version", Integer, nullable=False),
)
bench_registry.map_imperatively(
    BenchCounter, bench_counters, version_id_col=bench_counters.c.version
)


class CounterUnitOfWork(SqlAlchemyUnitOfWork):
    counters = repository(BenchCounter, UUID)


def message_registry() -> MessageRegistry:
    found = MessageRegistry()
    found.register(Bumped, stream=STREAM)
    return found


async def bump(uow: CounterUnitOfWork, counter_id: UUID) -> None:
    async with uow:
        counter = await uow.counters.get(counter_id)
        assert counter is not None
        counter.bump()
        await uow.commit()


async def setup(manager: DatabaseSessionManager, counters: int) -> list[UUID]:
    async with manager.connect() as connection:
        await connection.run_sync(bench_registry.metadata.create_all)
        await connection.run_sync(outbox_table.create, checkfirst=True)
        # The relay also purges old inbox rows (retention): its table must be there.
        await connection.run_sync(inbox_table.create, checkfirst=True)
    ids = [uuid4() for _ in range(counters)]
    uow = CounterUnitOfWork(manager.session_factory)
    async with uow:
        for counter_id in ids:
            uow.counters.add(BenchCounter(counter_id))
        await uow.commit()
    return ids


async def clear_outbox(manager: DatabaseSessionManager) -> None:
    async with manager.connect() as connection:
        await connection.execute(text("TRUNCATE outbox"))


async def bench_commit(
    manager: DatabaseSessionManager, ids: list[UUID], rounds: int, ops: int
) -> dict[str, Any]:
    outbox = SqlAlchemyOutbox(message_registry())
    samples: dict[str, list[tuple[float, float]]] = {"plain": [], "outbox": []}

    async def run(contender: str) -> tuple[float, float]:
        started = time.perf_counter()
        for index in range(ops):
            uow = CounterUnitOfWork(manager.session_factory)
            if contender == "outbox":
                uow.hooks.append(outbox)
            await bump(uow, ids[index % len(ids)])
        return ops, time.perf_counter() - started

    await run("plain")  # warm-up: connections, statement caches
    await run("outbox")
    for round_number in range(rounds):
        order = ("plain", "outbox") if round_number % 2 == 0 else ("outbox", "plain")
        for contender in order:
            samples[contender].append(await run(contender))
        await clear_outbox(manager)
    ratio = ratio_of_totals(samples["outbox"], samples["plain"])
    low, high = bootstrap_interval(samples["outbox"], samples["plain"])
    rates = {
        name: sum(ops for ops, _ in rows) / sum(seconds for _, seconds in rows)
        for name, rows in samples.items()
    }
    return {"rates": rates, "ratio": ratio, "interval": [low, high]}


async def fill_outbox(manager: DatabaseSessionManager, ids: list[UUID], count: int) -> None:
    outbox = SqlAlchemyOutbox(message_registry())
    for index in range(count):
        uow = CounterUnitOfWork(manager.session_factory)
        uow.hooks.append(outbox)
        await bump(uow, ids[index % len(ids)])


class CountingPublisher:
    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self.count = 0

    async def publish(
        self, stream: str, message: Mapping[str, Any], headers: Mapping[str, str] | None = None
    ) -> None:
        await self.broker.publish(stream, message, headers)
        self.count += 1


async def bench_relay(
    manager: DatabaseSessionManager, ids: list[UUID], broker: Broker, rows: int, relays: int
) -> float:
    await clear_outbox(manager)
    await fill_outbox(manager, ids, rows)
    store = SqlAlchemyOutboxStore(manager.engine)
    publisher = CountingPublisher(broker)
    started = time.perf_counter()
    await asyncio.gather(*(OutboxRelay(store, publisher).drain() for _ in range(relays)))
    elapsed = time.perf_counter() - started
    assert await store.pending_count() == 0
    return publisher.count / elapsed


async def bench_latency(
    manager: DatabaseSessionManager, ids: list[UUID], samples: int
) -> list[float]:
    await clear_outbox(manager)
    broker = InProcessBroker()
    arrived: dict[str, float] = {}
    delivered = asyncio.Event()

    async def record(delivery: Delivery) -> None:
        arrived[delivery.message["message_id"]] = time.perf_counter()
        delivered.set()

    broker.subscribe(STREAM, record, group="bench")
    # A writer without the relay's doorbell: only NOTIFY can wake the relay.
    outbox = SqlAlchemyOutbox(message_registry())
    relay = create_relay(manager.engine, broker)
    latencies: list[float] = []
    async with broker:
        relaying = asyncio.create_task(relay.run())
        await asyncio.sleep(0.5)  # let the relay LISTEN and settle into idle back-off
        try:
            for index in range(samples):
                uow = CounterUnitOfWork(manager.session_factory)
                uow.hooks.append(outbox)
                async with uow:
                    counter = await uow.counters.get(ids[index % len(ids)])
                    assert counter is not None
                    counter.bump()
                    [event] = counter.events
                    await uow.commit()
                committed = time.perf_counter()
                await delivered.wait()
                delivered.clear()
                latencies.append(arrived[str(event.event_id)] - committed)
                await asyncio.sleep(0.3)  # idle, so the next one needs a wake-up
        finally:
            relaying.cancel()
            await asyncio.gather(relaying, return_exceptions=True)
    return latencies


async def redis_broker() -> RedisStreamsBroker | None:
    url = os.environ.get(REDIS_ENV_VAR, DEFAULT_REDIS_URL)
    broker = RedisStreamsBroker(url, prefix=f"keel-bench-{uuid4().hex[:8]}:")
    try:
        await broker.start()
    except OSError:
        return None
    return broker


async def kernel_sections(arguments: argparse.Namespace) -> dict[str, Any]:
    """Sections 1-3 on the bench's own counter aggregate; prints them, returns the figures."""
    async with fresh_database("keel_bench_msg") as database:
        manager = DatabaseSessionManager()
        manager.init(database.sqlalchemy_url)
        try:
            ids = await setup(manager, counters=50)
            commit = await bench_commit(manager, ids, arguments.rounds, arguments.ops)
            relay_rates: dict[str, float] = {}
            memory = InProcessBroker()
            for count in (1, 2):
                relay_rates[f"in-process, {count} relay(s)"] = await bench_relay(
                    manager, ids, memory, arguments.relay_rows, count
                )
            redis = await redis_broker()
            if redis is not None:
                try:
                    for count in (1, 2):
                        relay_rates[f"redis, {count} relay(s)"] = await bench_relay(
                            manager, ids, redis, arguments.relay_rows, count
                        )
                finally:
                    client = redis.client
                    keys = [key async for key in client.scan_iter(match=redis.prefix + "*")]
                    if keys:
                        await client.delete(*keys)
                    await redis.stop()
            latencies = await bench_latency(manager, ids, arguments.latency_samples)
        finally:
            await manager.close()

    print(f"commit with one published event ({arguments.rounds} rounds x {arguments.ops} ops)")
    print(
        table(
            ["contender", "commits/s"],
            [[name, f"{rate:,.0f}"] for name, rate in commit["rates"].items()],
        )
    )
    low, high = commit["interval"]
    print(f"outbox / plain throughput: {commit['ratio']:.3f} (95% CI {low:.3f}..{high:.3f})\n")
    print(f"relay drain of {arguments.relay_rows} pending rows")
    print(
        table(
            ["broker", "messages/s"],
            [[name, f"{rate:,.0f}"] for name, rate in relay_rates.items()],
        )
    )
    ordered = sorted(latencies)
    p95 = ordered[max(0, int(len(ordered) * 0.95) - 1)]
    print(
        f"\ncommit -> subscriber latency through LISTEN/NOTIFY ({len(latencies)} samples): "
        f"median {statistics.median(latencies) * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms\n"
    )
    return {
        "commit": commit,
        "relay": relay_rates,
        "latency_ms": {"median": statistics.median(latencies) * 1000, "p95": p95 * 1000},
    }


def print_comparison(title: str, unit: str, comparison: dict[str, Any]) -> None:
    print(title)
    print(
        table(
            ["contender", f"{unit}/s", f"CPU ms/{unit[:-1]}"],
            [
                [name, f"{rate:,.0f}", f"{comparison['cpu_ms_per_op'][name]:.2f}"]
                for name, rate in comparison["rates"].items()
            ],
        )
    )
    low, high = comparison["interval"]
    print(f"keel / bare throughput: {comparison['ratio']:.3f} (95% CI {low:.3f}..{high:.3f})\n")


async def redis_answers(url: str) -> bool:
    client = aioredis.Redis.from_url(url, socket_connect_timeout=3)
    try:
        await client.ping()
    except (RedisError, OSError):
        return False
    finally:
        await client.aclose()
    return True


async def main(arguments: argparse.Namespace) -> int:
    results: dict[str, Any] = {}
    try:
        results.update(await kernel_sections(arguments))
    except BenchDatabaseError as exc:
        print(f"bench.messaging: {exc}", file=sys.stderr)
        return 2
    if arguments.json:
        write_json(Path(arguments.json), results)
    return 0


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.messaging",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--ops", type=int, default=200, help="commits per contender per round")
    parser.add_argument("--relay-rows", type=int, default=2000)
    parser.add_argument("--latency-samples", type=int, default=20)
    parser.add_argument("--json", help="also write the results to this file")
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse())))
