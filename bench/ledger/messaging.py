"""The ledger's messaging on Redis Streams, beside bare redis-py + asyncpg loops doing the same I/O.

Two measurements, each in rounds whose order alternates (so both contenders
share the machine's noise), summarised as a throughput ratio with a bootstrap
95% interval:

- ``relay``: N pending ``Deposited`` rows in the outbox (50 aggregate keys),
  published to ``ledger.events`` and marked. Keel: ``OutboxRelay.drain()``
  over ``SqlAlchemyOutboxStore`` and ``RedisStreamsBroker``. Bare: asyncpg
  ``SELECT ... FOR UPDATE SKIP LOCKED`` of 100 pending rows, one ``XADD``
  each (``data`` and ``headers`` fields, awaited one by one as Keel does to
  keep per-key order), ``UPDATE ... SET published_at``, ``COMMIT``.
- ``commands``: N ``Deposit`` commands queued on ``ledger.commands``,
  consumed until each one's effect is committed. Keel: ``RedisStreamsBroker``
  (FastStream, a batch per read) → payload validation →
  ``bus.handle(command, once=True)`` → the SQL unit of work, its inbox claim
  first and its outbox row last → one ``XACK`` per read. Bare:
  ``XREADGROUP COUNT 10``, then per entry ``json.loads``, one transaction
  (inbox insert, account ``FOR UPDATE``, replay check by reference, entry
  insert, balance update, outbox insert with ``pg_notify``), ``XACK``. It
  checks what Keel checks of a command from a broker: the entry's signature
  (HMAC-SHA256, constant-time compare) and that the principal the envelope
  names owns the account (as the HTTP twins check the token and the owner).

Then each Keel contender runs once more under cProfile, with its SQL
statements and transactions counted, to show where its time goes.
``--only commands`` (or ``relay``) runs one measurement.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import hmac
import json
import os
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast
from uuid import UUID, uuid4

import asyncpg
import redis.asyncio as aioredis
from pydantic import SecretStr
from sqlalchemy import event

from adapters.brokers import Delivery
from adapters.brokers.redis_streams import RedisStreamsBroker
from adapters.database import DatabaseSessionManager
from adapters.driver import Driver, Fetched
from adapters.ledger.messages import COMMANDS_STREAM, EVENTS_STREAM
from adapters.migrate import upgrade_to_head_async
from adapters.outbox import SqlAlchemyOutboxStore
from adapters.relay import OutboxRelay
from adapters.serialization import encode
from adapters.settings import Settings
from bench.messaging import DEFAULT_REDIS_URL, REDIS_ENV_VAR, print_comparison, redis_answers
from bench.postgres import BenchDatabase, BenchDatabaseError, fresh_database
from bench.profiling import COMMON_LAYERS, KERNEL, Layer, profiled, render_profile
from bench.report import bootstrap_interval, ratio_of_totals, write_json
from domain.ledger.commands import Deposit, OpenAccount
from domain.principal import Principal
from entrypoints.bootstrap import Container, bootstrap
from entrypoints.ledger import context as ledger_context
from entrypoints.ledger.messages import command_handler
from entrypoints.signed_commands import command_envelope, signed_entry

ACCOUNTS = 50
BATCH = 100
"""Rows one relay pass claims, for both contenders (Keel's default)."""
READ_COUNT = 10
"""Entries one XREADGROUP takes, for both contenders (Keel's default)."""
GROUP = "bench"
MEASUREMENTS = ("relay", "commands")
INBOX_NAME = "ledger.deposit"

LAYERS: tuple[Layer, ...] = (
    ("keel", (*KERNEL, f"{os.sep}entrypoints{os.sep}")),
    ("faststream", (f"{os.sep}faststream{os.sep}", f"{os.sep}fast_depends{os.sep}")),
    ("redis-py", (f"{os.sep}redis{os.sep}",)),
    ("pydantic", (f"{os.sep}pydantic{os.sep}", f"{os.sep}pydantic_core{os.sep}")),
    ("anyio", (f"{os.sep}anyio{os.sep}",)),
    *COMMON_LAYERS,
)

Fields = dict[bytes, bytes]
Round = tuple[float, float]
"""``(operations, seconds)`` of one contender's round."""


@dataclass
class Arena:
    """The database, Redis and accounts both contenders work on."""

    redis_url: str
    prefix: str
    container: Container
    connection: asyncpg.Connection
    redis: aioredis.Redis
    accounts: list[UUID]

    @property
    def manager(self) -> DatabaseSessionManager:
        return self.container.session_manager


BENCH_SENDER = Principal(subject="bench")
BENCH_SIGNING_KEY = "bench-command-signing-key"
"""Signs the bench's commands, as a real sender on Redis must."""
BENCH_KEY = BENCH_SIGNING_KEY.encode()


@contextlib.asynccontextmanager
async def open_arena(database: BenchDatabase, redis_url: str) -> AsyncIterator[Arena]:
    """Migrate the database, open the accounts, start Keel's publisher; clean Redis up after."""
    await upgrade_to_head_async(
        database.sqlalchemy_url, [ledger_context.migrations] if ledger_context.migrations else []
    )
    prefix = f"keel-bench-{uuid4().hex[:8]}:"
    settings = Settings(
        database_url=database.sqlalchemy_url,
        command_signing_key=SecretStr(BENCH_SIGNING_KEY),
        broker_url=redis_url,
        stream_prefix=prefix,
        broker_claim_idle_ms=600_000,  # no reclaim in the middle of a measurement
    )
    container = bootstrap(settings, manager=DatabaseSessionManager())
    connection = await asyncpg.connect(database.asyncpg_dsn)
    client = aioredis.Redis.from_url(redis_url)
    try:
        accounts = []
        for _ in range(ACCOUNTS):
            command = OpenAccount(principal=BENCH_SENDER, currency="EUR")
            accounts.append((await ledger_context.wiring(container).bus.handle(command)).id)
        await container.broker.start()  # the relay publishes through it
        yield Arena(redis_url, prefix, container, connection, client, accounts)
    finally:
        await container.broker.stop()
        keys = [key async for key in client.scan_iter(match=prefix + "*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()
        await connection.close()
        await container.session_manager.close()


# -- relay ---------------------------------------------------------------------------------

FILL_OUTBOX = """
INSERT INTO outbox (message_id, stream, aggregate_key, type, occurred_at, payload)
SELECT gen_random_uuid(), 'ledger.events', 'Account:' || (i % 50), 'Deposited', now(),
       json_build_object('account_id', gen_random_uuid(), 'entry_id', gen_random_uuid(),
                         'amount', i, 'currency', 'EUR', 'reference', 'bench-' || i,
                         'balance_after', i)
FROM generate_series(1, $1) AS i
"""

CLAIM = """
SELECT id, message_id, stream, aggregate_key, type, occurred_at, payload FROM outbox
WHERE published_at IS NULL ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED
"""
MARK = "UPDATE outbox SET published_at = now(), attempts = attempts + 1 WHERE id = ANY($1)"


async def fill_outbox(arena: Arena, rows: int) -> None:
    await arena.connection.execute("TRUNCATE outbox RESTART IDENTITY")
    await arena.connection.execute(FILL_OUTBOX, rows)
    await arena.redis.delete(arena.prefix + EVENTS_STREAM)


async def keel_relay(arena: Arena, rows: int) -> Round:
    relay = OutboxRelay(
        SqlAlchemyOutboxStore(arena.manager.engine), arena.container.broker, batch_size=BATCH
    )
    started = time.perf_counter()
    published = await relay.drain()
    elapsed = time.perf_counter() - started
    assert published == rows, f"keel relay published {published} of {rows}"
    return published, elapsed


async def bare_relay(arena: Arena, rows: int) -> Round:
    connection, client = arena.connection, arena.redis
    published = 0
    started = time.perf_counter()
    while True:
        async with connection.transaction():
            records = await connection.fetch(CLAIM, BATCH)
            if not records:
                break
            for record in records:
                message = {
                    "message_id": str(record["message_id"]),
                    "type": record["type"],
                    "occurred_at": record["occurred_at"].isoformat(),
                    "payload": json.loads(record["payload"]),
                }
                headers = {"key": record["aggregate_key"], "type": record["type"]}
                await client.xadd(
                    arena.prefix + record["stream"],
                    {"data": encode(message), "headers": json.dumps(headers)},
                )
            await connection.execute(MARK, [record["id"] for record in records])
        published += len(records)
    elapsed = time.perf_counter() - started
    assert published == rows, f"bare relay published {published} of {rows}"
    return published, elapsed


# -- commands ------------------------------------------------------------------------------

CLAIM_INBOX = """
INSERT INTO inbox (message_id, handler) VALUES ($1, $2)
ON CONFLICT (message_id, handler) DO NOTHING RETURNING message_id
"""
LOCK_ACCOUNT = (
    "SELECT balance, entry_count, currency, owner_subject FROM ledger_accounts "
    "WHERE id = $1 FOR UPDATE"
)
EARLIER = (
    "SELECT amount FROM ledger_entries WHERE account_id = $1 AND kind = 'deposit' "
    "AND reference = $2"
)
INSERT_ENTRY = """
INSERT INTO ledger_entries
    (id, account_id, sequence, kind, amount, balance_after, reference, transfer_id, created_at)
VALUES ($1, $2, $3, 'deposit', $4, $5, $6, NULL, $7)
"""
UPDATE_ACCOUNT = (
    "UPDATE ledger_accounts SET balance = $2, entry_count = $3, version = version + 1 WHERE id = $1"
)
INSERT_EVENT = """
INSERT INTO outbox (message_id, stream, aggregate_key, type, occurred_at, payload)
VALUES ($1, 'ledger.events', $2, 'Deposited', $3, $4) RETURNING pg_notify('keel_outbox', '')
"""


async def queue_deposits(arena: Arena, prefix: str, count: int) -> None:
    """``count`` deposits of 1 over the accounts, on ``<prefix>ledger.commands``."""
    registry = arena.container.registry
    async with arena.redis.pipeline(transaction=False) as pipe:
        for number in range(count):
            deposit = Deposit(
                principal=BENCH_SENDER,
                account_id=arena.accounts[number % len(arena.accounts)],
                amount=1,
                reference=f"bench-{uuid4()}",
            )
            entry = signed_entry(command_envelope(registry, deposit), BENCH_SIGNING_KEY)
            pipe.xadd(prefix + COMMANDS_STREAM, entry)  # type: ignore[arg-type]
        await pipe.execute()


async def keel_commands(arena: Arena, prefix: str, count: int) -> Round:
    container = arena.container
    handle = command_handler(ledger_context.wiring(container), container)
    done = asyncio.Event()
    handled = 0

    async def counting(delivery: Delivery) -> None:
        nonlocal handled
        await handle(delivery)
        handled += 1
        if handled == count:
            done.set()

    broker = RedisStreamsBroker(arena.redis_url, prefix=prefix, claim_idle_ms=600_000)
    broker.subscribe(COMMANDS_STREAM, counting, group=GROUP)
    started = time.perf_counter()
    async with broker:
        await done.wait()
        elapsed = time.perf_counter() - started
    return handled, elapsed


async def bare_commands(arena: Arena, prefix: str, count: int) -> Round:
    stream = prefix + COMMANDS_STREAM
    client = arena.redis
    handled = 0
    started = time.perf_counter()
    await client.xgroup_create(stream, GROUP, id="0", mkstream=True)
    while handled < count:
        response = await client.xreadgroup(
            GROUP, "bare", {stream: ">"}, count=READ_COUNT, block=100
        )
        # redis-py types XREADGROUP loosely; this is what it returns for one stream.
        for _stream, entries in cast(list[tuple[bytes, list[tuple[bytes, Fields]]]], response):
            for entry_id, fields in entries:
                data = fields[b"data"]
                # The sender's signature, checked as Keel checks it (constant time).
                expected = hmac.new(BENCH_KEY, data, hashlib.sha256).hexdigest().encode()
                if not hmac.compare_digest(expected, fields[b"sig"]):
                    raise ValueError("a command with a wrong signature")
                await apply_deposit(arena.connection, json.loads(data))
                await client.xack(stream, GROUP, entry_id)
                handled += 1
    return handled, time.perf_counter() - started


async def apply_deposit(connection: asyncpg.Connection, message: dict[str, Any]) -> None:
    """The deposit, written by hand: what the Keel handler does, minus the framework."""
    payload = message["payload"]
    account_id, amount = UUID(payload["account_id"]), payload["amount"]
    reference = payload["reference"]
    if type(amount) is not int or not 1 <= amount <= 10**12:
        raise ValueError(f"bad amount {amount!r}")
    async with connection.transaction():
        if await connection.fetchval(CLAIM_INBOX, message["message_id"], INBOX_NAME) is None:
            return  # a redelivery
        account = await connection.fetchrow(LOCK_ACCOUNT, account_id)
        if account is None or account["owner_subject"] != message["principal"]:
            raise LookupError(f"no account with id {account_id}")  # not the sender's
        if await connection.fetchval(EARLIER, account_id, reference) is not None:
            return  # a replay of the same reference
        balance, sequence = account["balance"] + amount, account["entry_count"] + 1
        entry_id, now = uuid4(), datetime.now(UTC)
        await connection.execute(
            INSERT_ENTRY, entry_id, account_id, sequence, amount, balance, reference, now
        )
        await connection.execute(UPDATE_ACCOUNT, account_id, balance, sequence)
        event = {
            "account_id": str(account_id),
            "entry_id": str(entry_id),
            "amount": amount,
            "currency": account["currency"],
            "reference": reference,
            "balance_after": balance,
        }
        await connection.fetchval(
            INSERT_EVENT, uuid4(), f"Account:{account_id}", now, json.dumps(event)
        )


# -- rounds and the profile ----------------------------------------------------------------


@dataclass
class Comparison:
    keel: list[Round] = field(default_factory=list)
    bare: list[Round] = field(default_factory=list)
    cpu: dict[str, float] = field(default_factory=lambda: {"keel": 0.0, "bare": 0.0})
    """Process CPU seconds per contender over its measured rounds."""

    def rows(self) -> dict[str, list[Round]]:
        return {"keel": self.keel, "bare": self.bare}

    def summary(self) -> dict[str, Any]:
        low, high = bootstrap_interval(self.keel, self.bare)
        ops = {name: sum(done for done, _ in rows) for name, rows in self.rows().items()}
        return {
            "rates": {
                name: ops[name] / sum(seconds for _, seconds in rows)
                for name, rows in self.rows().items()
            },
            "cpu_ms_per_op": {name: 1000 * self.cpu[name] / ops[name] for name in ops},
            "ratio": ratio_of_totals(self.keel, self.bare),
            "interval": [low, high],
        }


Contender = Callable[[], Awaitable[Round]]


async def interleave(
    rounds: int, prepare: Callable[[int], Awaitable[None]], keel: Contender, bare: Contender
) -> Comparison:
    """``rounds`` rounds of both, after one warm-up each; the order alternates by round."""
    result = Comparison()
    for warm_up in (keel, bare):
        await prepare(-1)
        await warm_up()
    for number in range(rounds):
        order = [("keel", keel), ("bare", bare)]
        if number % 2:
            order.reverse()
        for name, contender in order:
            await prepare(number)
            cpu = time.process_time()
            result.rows()[name].append(await contender())
            result.cpu[name] += time.process_time() - cpu
    return result


async def compare_relay(arena: Arena, rounds: int, rows: int) -> Comparison:
    async def prepare(_: int) -> None:
        await fill_outbox(arena, rows)

    return await interleave(
        rounds, prepare, lambda: keel_relay(arena, rows), lambda: bare_relay(arena, rows)
    )


async def compare_commands(arena: Arena, rounds: int, count: int) -> Comparison:
    prefixes: list[str] = []

    async def prepare(_: int) -> None:
        await arena.connection.execute("TRUNCATE outbox, inbox")
        prefixes.append(f"{arena.prefix}{len(prefixes)}:")
        await queue_deposits(arena, prefixes[-1], count)

    result = await interleave(
        rounds,
        prepare,
        lambda: keel_commands(arena, prefixes[-1], count),
        lambda: bare_commands(arena, prefixes[-1], count),
    )
    applied = await arena.connection.fetchval("SELECT sum(balance) FROM ledger_accounts")
    assert applied == count * (2 + 2 * rounds), "a deposit was lost or applied twice"
    return result


@dataclass
class Counts:
    statements: int = 0
    commits: int = 0
    rollbacks: int = 0
    checkouts: int = 0


@contextlib.contextmanager
def counting_sql(arena: Arena) -> Any:
    """Count Keel's SQL statements, commits and rollbacks while inside the block.

    Statements are counted where they leave: SQLAlchemy's dialect (``do_execute*``)
    and the driver path. A ``before_cursor_execute`` listener would switch the
    driver path off (``adapters.driver``) and profile another program.
    """
    counts = Counts()
    engine = arena.manager.engine.sync_engine
    fetch, executemany = Driver.fetch, Driver.executemany

    async def fetching(driver: Driver, sql: str, args: Sequence[Any]) -> Fetched:
        counts.statements += 1
        return await fetch(driver, sql, args)

    async def executing(driver: Driver, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        counts.statements += 1
        await executemany(driver, sql, rows)

    def statement(*_: Any) -> None:
        counts.statements += 1

    def commit(*_: Any) -> None:
        counts.commits += 1

    def rollback(*_: Any) -> None:
        counts.rollbacks += 1

    def checkout(*_: Any) -> None:
        counts.checkouts += 1

    hooks = (
        ("do_execute", statement),
        ("do_execute_no_params", statement),
        ("do_executemany", statement),
        ("commit", commit),
        ("rollback", rollback),
        ("checkout", checkout),  # a pool event; liveness checked without a round trip
    )
    for name, hook in hooks:
        event.listen(engine, name, hook)
    setattr(Driver, "fetch", fetching)  # noqa: B010 - a bench's spy, undone below
    setattr(Driver, "executemany", executing)  # noqa: B010
    try:
        yield counts
    finally:
        setattr(Driver, "fetch", fetch)  # noqa: B010
        setattr(Driver, "executemany", executemany)  # noqa: B010
        for name, hook in hooks:
            event.remove(engine, name, hook)


async def profile_keel(
    arena: Arena, rows: int, count: int, only: Sequence[str] = MEASUREMENTS
) -> dict[str, str]:
    """One profiled round of each Keel contender: layers, top Keel functions, SQL per op."""
    reports = {}
    if "relay" in only:
        await fill_outbox(arena, rows)
        with counting_sql(arena) as counts, profiled() as result:
            ops, _ = await keel_relay(arena, rows)
        reports["relay"] = _report(result.entries, int(ops), counts, "event")
    if "commands" not in only:
        return reports
    await arena.connection.execute("TRUNCATE outbox, inbox")
    prefix = f"{arena.prefix}profile:"
    await queue_deposits(arena, prefix, count)
    with counting_sql(arena) as counts, profiled() as result:
        ops, _ = await keel_commands(arena, prefix, count)
    reports["commands"] = _report(result.entries, int(ops), counts, "command")
    return reports


def _report(entries: Any, ops: int, counts: Counts, unit: str) -> str:
    sql = (
        f"Keel per {unit}: {counts.statements / ops:.2f} SQL statements, "
        f"{counts.commits / ops:.2f} commits, {counts.rollbacks / ops:.2f} rollbacks, "
        f"{counts.checkouts / ops:.2f} pool checkouts"
    )
    return sql + "\n" + render_profile(entries, ops, LAYERS, [LAYERS[0][0]], detail_limit=12)


async def sections(arguments: argparse.Namespace) -> dict[str, Any] | None:
    """Sections 4-5: the ledger's relay and consumer beside bare redis-py + asyncpg loops."""
    url = os.environ.get(REDIS_ENV_VAR, DEFAULT_REDIS_URL)
    if not await redis_answers(url):
        print(f"ledger messaging skipped: no Redis answers at {REDIS_ENV_VAR} or {url}\n")
        return None
    rounds = arguments.rounds
    async with fresh_database("keel_bench_ledger") as database, open_arena(database, url) as arena:
        relay = (
            (await compare_relay(arena, rounds, arguments.relay_rows)).summary()
            if "relay" in arguments.only
            else None
        )
        commands = (
            (await compare_commands(arena, rounds, arguments.commands)).summary()
            if "commands" in arguments.only
            else None
        )
        profiles = (
            await profile_keel(arena, arguments.relay_rows, arguments.commands, arguments.only)
            if arguments.profile
            else {}
        )
    results: dict[str, Any] = {}
    if relay is not None:
        print_comparison(
            f"relay: outbox -> Redis Streams, marked ({rounds} rounds x "
            f"{arguments.relay_rows} events; bare = asyncpg + redis-py)",
            "events",
            relay,
        )
        results["relay_vs_bare"] = relay
    if commands is not None:
        print_comparison(
            f"commands: Redis Streams -> committed effect, acked ({rounds} rounds x "
            f"{arguments.commands} deposits; bare = redis-py XREADGROUP + asyncpg)",
            "commands",
            commands,
        )
        results["commands_vs_bare"] = commands
    for name, report in profiles.items():
        print(f"== where Keel's time goes: {name} (one profiled round)\n{report}\n")
    return results


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.ledger.messaging", description=__doc__)
    # 8 rounds of 500: at 5 of 300 a round lasted a second or two, and the interval was
    # wider than the distance to the goal.
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--relay-rows", type=int, default=2000)
    parser.add_argument(
        "--commands", type=int, default=500, help="deposits per contender per round"
    )
    parser.add_argument(
        "--no-profile", dest="profile", action="store_false", help="skip the profiled rounds"
    )
    parser.add_argument(
        "--only",
        nargs="+",
        choices=MEASUREMENTS,
        default=list(MEASUREMENTS),
        help="run only these measurements (default: both)",
    )
    parser.add_argument("--json", help="also write the results to this file")
    return parser.parse_args(argv)


async def main(arguments: argparse.Namespace) -> int:
    try:
        results = await sections(arguments)
    except BenchDatabaseError as exc:
        print(f"bench.ledger.messaging: {exc}", file=sys.stderr)
        return 2
    if arguments.json:
        write_json(Path(arguments.json), {"ledger": results})
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse())))
