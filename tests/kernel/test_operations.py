"""``keel dead-letters`` and ``keel outbox status``: what an operator types, sees and changes."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from uuid import uuid4

import pytest
import redis.asyncio as aioredis
from sqlalchemy import insert

from adapters.brokers.redis_streams import AUDIT_STREAM, RedisStreamsBroker
from adapters.database import DatabaseSessionManager
from adapters.migrate import upgrade_to_head_async
from adapters.outbox import outbox_table
from entrypoints.cli import EXIT_OK, EXIT_USAGE, main
from entrypoints.operations import EXIT_NOT_FOUND, EXIT_UNAVAILABLE
from tests.catalog import COMMANDS_STREAM, EVENTS_STREAM
from tests.messaging.support import stream_entries

COMMAND = json.dumps(
    {
        "message_id": "m-1",
        "type": "AddProduct",
        "occurred_at": "2026-01-01T00:00:00Z",
        "payload": {"sku": "S-1", "name": "Sofa", "on_hand": 1},
    }
)


@pytest.fixture(autouse=True)
def environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("BROKER_URL", "DATABASE_URL", "STREAM_PREFIX"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("KEEL_CONTEXTS", "tests.catalog")
    monkeypatch.chdir(tmp_path)  # no .env from the repository


# -- without a broker ---------------------------------------------------------------------------


@pytest.mark.unit
def test_dead_letters_without_a_broker_url_stop_with_exit_2_saying_why(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(["dead-letters", "list"])

    assert code == EXIT_USAGE
    error = capsys.readouterr().err
    assert error.startswith("keel: dead-letters needs BROKER_URL")
    assert error.count("\n") == 1


@pytest.mark.unit
def test_replay_takes_an_id_or_all_but_not_both(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("BROKER_URL", "redis://127.0.0.1:6379/0")

    assert main(["dead-letters", "replay"]) == EXIT_USAGE
    assert main(["dead-letters", "replay", "1-0", "--all"]) == EXIT_USAGE
    assert capsys.readouterr().err.count("keel: replay takes either an ID or --all") == 2


@pytest.mark.unit
def test_dead_letters_without_an_action_is_a_usage_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["dead-letters"]) == EXIT_USAGE
    assert "ACTION" in capsys.readouterr().err


# -- over Redis ----------------------------------------------------------------------------------


@pytest.fixture
async def broker(
    redis_url: str, stream_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[RedisStreamsBroker]:
    monkeypatch.setenv("BROKER_URL", redis_url)
    monkeypatch.setenv("STREAM_PREFIX", stream_prefix)
    started = RedisStreamsBroker(redis_url, prefix=stream_prefix)
    async with started:
        yield started


async def keel(*argv: str) -> int:
    """``keel ARGV`` in a thread: it runs its own event loop, as from a shell."""
    return await asyncio.to_thread(main, list(argv))


async def _one_dead_letter(broker: RedisStreamsBroker) -> str:
    await broker.dead_letter(
        COMMANDS_STREAM, COMMAND, "failed 5 times, last: boom", attempts=5, headers={"k": "v"}
    )
    [letter] = await broker.dead_letters(COMMANDS_STREAM)
    return letter.id


@pytest.mark.integration
async def test_list_prints_each_dead_letter_with_its_id_type_and_reason(
    broker: RedisStreamsBroker, capsys: pytest.CaptureFixture[str]
) -> None:
    entry_id = await _one_dead_letter(broker)

    assert await keel("dead-letters", "list") == EXIT_OK

    header, row = capsys.readouterr().out.splitlines()
    assert header.split() == ["STREAM", "ID", "ATTEMPTS", "TYPE", "MESSAGE_ID", "REASON"]
    assert row.split()[:5] == [COMMANDS_STREAM, entry_id, "5", "AddProduct", "m-1"]
    assert row.endswith("failed 5 times, last: boom")


@pytest.mark.integration
async def test_list_with_nothing_dead_says_so(
    broker: RedisStreamsBroker, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await keel("dead-letters", "list", "--stream", COMMANDS_STREAM) == EXIT_OK

    assert capsys.readouterr().out == f"keel: no dead letters in {COMMANDS_STREAM}.dead\n"


@pytest.mark.integration
async def test_show_prints_the_dead_letter_and_its_message_as_json(
    broker: RedisStreamsBroker, capsys: pytest.CaptureFixture[str]
) -> None:
    entry_id = await _one_dead_letter(broker)

    assert await keel("dead-letters", "show", entry_id) == EXIT_OK

    shown = json.loads(capsys.readouterr().out)
    assert shown["id"] == entry_id
    assert shown["stream"] == COMMANDS_STREAM
    assert shown["message"] == json.loads(COMMAND)
    assert shown["reason"] == "failed 5 times, last: boom"


@pytest.mark.integration
async def test_an_unknown_dead_letter_id_exits_3_naming_where_it_looked(
    broker: RedisStreamsBroker, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await keel("dead-letters", "show", "1-0") == EXIT_NOT_FOUND

    error = capsys.readouterr().err
    assert error.startswith("keel: no dead letter '1-0' in ")
    assert f"{COMMANDS_STREAM}.dead" in error


@pytest.mark.integration
async def test_replay_puts_the_original_entry_back_on_its_stream_and_leaves_an_audit_record(
    broker: RedisStreamsBroker,
    redis_client: aioredis.Redis,
    stream_prefix: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    entry_id = await _one_dead_letter(broker)

    assert await keel("dead-letters", "replay", entry_id) == EXIT_OK

    assert await stream_entries(redis_client, stream_prefix + COMMANDS_STREAM) == [
        {"data": COMMAND, "headers": '{"k": "v"}'}
    ]
    assert await stream_entries(redis_client, stream_prefix + COMMANDS_STREAM + ".dead") == []
    [audit] = await stream_entries(redis_client, stream_prefix + AUDIT_STREAM)
    assert audit["action"] == "dead_letter_replayed"
    assert (audit["dead_letter_id"], audit["message_id"]) == (entry_id, "m-1")
    output = capsys.readouterr()
    assert output.out.startswith(f"keel: replayed {entry_id} from {COMMANDS_STREAM}.dead")
    [line] = [json.loads(text) for text in output.err.splitlines() if "replayed" in text]
    assert (line["logger"], line["dead_letter_id"], line["message_id"]) == (
        "keel.audit",
        entry_id,
        "m-1",
    )


@pytest.mark.integration
async def test_replay_all_replays_every_dead_letter_of_the_consumed_streams(
    broker: RedisStreamsBroker,
    redis_client: aioredis.Redis,
    stream_prefix: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    await broker.dead_letter(COMMANDS_STREAM, COMMAND, "one")
    await broker.dead_letter(EVENTS_STREAM, "{not json", "two")

    assert await keel("dead-letters", "replay", "--all") == EXIT_OK

    assert capsys.readouterr().out.endswith("keel: replayed 2 dead letters\n")
    for stream in (COMMANDS_STREAM, EVENTS_STREAM):
        assert await stream_entries(redis_client, stream_prefix + stream + ".dead") == []
        assert len(await stream_entries(redis_client, stream_prefix + stream)) == 1


# -- outbox status -------------------------------------------------------------------------------


@pytest.fixture
async def outbox_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path / 'ops.db'}"
    await upgrade_to_head_async(url, [])
    manager = DatabaseSessionManager()
    manager.init(url)
    async with manager.connect() as connection:
        await connection.execute(
            insert(outbox_table),
            [
                {
                    "message_id": uuid4(),
                    "stream": stream,
                    "aggregate_key": "k",
                    "type": "Something",
                    "occurred_at": datetime(2026, 1, 1, tzinfo=UTC),
                    "payload": {},
                }
                for stream in (EVENTS_STREAM, EVENTS_STREAM, "other.events")
            ],
        )
        await connection.commit()
    await manager.close()
    monkeypatch.setenv("DATABASE_URL", url)
    return url


@pytest.mark.integration
async def test_outbox_status_shows_what_is_pending_per_stream(
    outbox_database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await keel("outbox", "status") == EXIT_OK

    summary, header, *rows = capsys.readouterr().out.splitlines()
    assert summary.startswith(f"outbox at {outbox_database}: 3 pending, the oldest for ")
    assert header.split() == ["STREAM", "PENDING", "OLDEST_S", "FAILING"]
    assert [(row.split()[0], row.split()[1]) for row in rows] == [
        (EVENTS_STREAM, "2"),
        ("other.events", "1"),
    ]


@pytest.mark.integration
async def test_outbox_status_json_is_one_object_for_scripts(
    outbox_database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await keel("outbox", "status", "--json") == EXIT_OK

    status = json.loads(capsys.readouterr().out)
    assert status["pending"] == 3
    assert status["oldest_pending_seconds"] >= 0
    assert [(s["stream"], s["pending"], s["failing"]) for s in status["streams"]] == [
        (EVENTS_STREAM, 2, 0),
        ("other.events", 1, 0),
    ]


@pytest.mark.integration
async def test_outbox_status_on_a_database_without_the_schema_says_what_to_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}")

    assert await keel("outbox", "status") == EXIT_UNAVAILABLE

    error = capsys.readouterr().err
    assert "keel migrate" in error
    assert error.count("\n") == 1
