"""Operator commands: ``keel dead-letters list|show|replay`` and ``keel outbox status``.

They read the same settings as the service (``BROKER_URL``, ``STREAM_PREFIX``,
``DATABASE_URL``, ``KEEL_CONTEXTS``) and change nothing but what they are
asked to: no migration runs first. Dead letters are the broker's
(:class:`~adapters.dead_letters.DeadLetterBox`); the streams looked at are
those the running contexts consume, or the one ``--stream`` names. Output is
a table for people, or JSON (``--json``) for scripts; a replay also logs one
JSON audit line on stderr (logger ``keel.audit``) and, on Redis, appends an
audit record to the ``keel.audit`` stream. Runbook: ``docs/operations.md``.

Sub-commands of argparse like the rest of ``keel``: the tree is two commands
deep, which argparse handles plainly, and the exit codes and one-line errors
stay those of every other command.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.exc import DBAPIError

from adapters.brokers import Broker
from adapters.database import DatabaseSessionManager, safe_url
from adapters.dead_letters import DeadLetterBox, DeadLetterEntry, DeadLetterNotFound, replay
from adapters.outages import is_database_unavailable
from adapters.outbox import SqlAlchemyOutboxStore, StreamBacklog
from adapters.settings import Settings
from adapters.sql_errors import sqlstate_of
from entrypoints.bootstrap import make_broker
from entrypoints.context import BoundedContext
from entrypoints.http.logging import JsonFormatter, database_secrets

EXIT_OK = 0
EXIT_UNAVAILABLE = 1
EXIT_USAGE = 2
EXIT_NOT_FOUND = 3

COMMANDS = ("dead-letters", "outbox")
REPLAY_ALL_LIMIT = 10_000
"""Dead letters one ``replay --all`` takes per stream; run it again for more."""
REASON_WIDTH = 70
UNDEFINED_TABLE = "42P01"


class OperationFailed(Exception):
    """One line for stderr, and the exit code."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def add_parsers(commands: Any) -> None:
    """Add ``dead-letters`` and ``outbox`` to ``keel``'s sub-commands."""
    dead = commands.add_parser(
        "dead-letters", help="list, show and replay messages set aside in <stream>.dead"
    )
    actions = dead.add_subparsers(dest="dead_letters_action", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="the dead letters, oldest first")
    _stream_option(listing)
    listing.add_argument(
        "--limit", type=_positive, default=50, help="at most this many per stream (default: 50)"
    )
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    show = actions.add_parser("show", help="one dead letter in full, as JSON")
    show.add_argument("id", help="its id, as 'list' prints it")
    _stream_option(show)
    again = actions.add_parser(
        "replay", help="put a dead letter back on its stream as a new delivery (audited)"
    )
    again.add_argument("id", nargs="?", help="its id, as 'list' prints it")
    again.add_argument("--all", action="store_true", help="every dead letter of the stream(s)")
    _stream_option(again)

    outbox = commands.add_parser("outbox", help="what waits in the transactional outbox")
    outbox_actions = outbox.add_subparsers(dest="outbox_action", metavar="ACTION", required=True)
    status = outbox_actions.add_parser(
        "status", help="pending events per stream and how long the oldest has waited"
    )
    status.add_argument("--json", action="store_true", help="one JSON object")


def _stream_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--stream",
        help="a consumed stream, e.g. orders.commands (default: every stream the "
        "running contexts consume)",
    )


def _positive(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {value!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more: {number}")
    return number


def run(
    args: argparse.Namespace, settings: Settings, contexts: Sequence[BoundedContext[Any]]
) -> int:
    """Run the operator command ``args`` names; prints its errors as one line."""
    try:
        if args.command == "outbox":
            return asyncio.run(_outbox_status(settings, json_output=args.json))
        return _dead_letters(args, settings, contexts)
    except OperationFailed as exc:
        print(f"keel: {exc}", file=sys.stderr)
        return exc.code


# -- dead letters ------------------------------------------------------------------------------


def _dead_letters(
    args: argparse.Namespace, settings: Settings, contexts: Sequence[BoundedContext[Any]]
) -> int:
    if settings.broker_url is None:
        raise OperationFailed(
            "dead-letters needs BROKER_URL (redis://...); the in-process broker's dead "
            "letters live inside the 'keel serve' process and end with it",
            EXIT_USAGE,
        )
    if args.dead_letters_action == "replay" and (args.id is None) == (not args.all):
        raise OperationFailed("replay takes either an ID or --all", EXIT_USAGE)
    streams = [args.stream] if args.stream else _consumed(contexts)
    if not streams:
        raise OperationFailed(
            "no running context consumes a stream (KEEL_CONTEXTS); name one with --stream",
            EXIT_USAGE,
        )
    # The audit line of a replay goes to stderr as JSON, like every other keel log line;
    # only while the command runs, so that embedding code keeps its logging as it was.
    audit = logging.getLogger("keel.audit")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(database_secrets(settings.database_url)))
    audit.addHandler(handler)
    level = audit.level
    audit.setLevel(logging.INFO)
    try:
        return asyncio.run(_run_dead_letters(args, make_broker(settings), streams))
    finally:
        audit.removeHandler(handler)
        audit.setLevel(level)


def _consumed(contexts: Sequence[BoundedContext[Any]]) -> list[str]:
    return [sub.stream for context in contexts for sub in context.subscriptions]


async def _run_dead_letters(args: argparse.Namespace, broker: Broker, streams: list[str]) -> int:
    if not isinstance(broker, DeadLetterBox):
        raise OperationFailed(f"{type(broker).__name__} keeps no dead letters", EXIT_USAGE)
    try:
        async with broker:
            action = args.dead_letters_action
            if action == "list":
                return await _list(broker, streams, args.limit, json_output=args.json)
            if action == "show":
                entry = await _find(broker, streams, args.id)
                print(json.dumps(entry.as_dict(), indent=2, ensure_ascii=False))
                return EXIT_OK
            if args.all:
                return await _replay_all(broker, streams)
            entry = await _find(broker, streams, args.id)
            await _replay_one(broker, entry)
            return EXIT_OK
    except (OSError, ConnectionError) as exc:
        raise OperationFailed(
            f"the broker could not be reached: {type(exc).__name__}", EXIT_UNAVAILABLE
        ) from None


async def _list(box: DeadLetterBox, streams: list[str], limit: int, *, json_output: bool) -> int:
    entries = [entry for stream in streams for entry in await box.dead_letters(stream, limit=limit)]
    if json_output:
        for entry in entries:
            print(json.dumps(entry.as_dict(), ensure_ascii=False))
        return EXIT_OK
    if not entries:
        print(f"keel: no dead letters in {', '.join(s + '.dead' for s in streams)}")
        return EXIT_OK
    rows = [
        (
            entry.stream,
            entry.id,
            str(entry.attempts),
            entry.type or "-",
            entry.message_id or "-",
            _shorten(entry.reason),
        )
        for entry in entries
    ]
    _table(("STREAM", "ID", "ATTEMPTS", "TYPE", "MESSAGE_ID", "REASON"), rows)
    return EXIT_OK


async def _find(box: DeadLetterBox, streams: list[str], entry_id: str) -> DeadLetterEntry:
    found = []
    for stream in streams:
        try:
            found.append(await box.get_dead_letter(stream, entry_id))
        except DeadLetterNotFound:
            continue
    if not found:
        raise OperationFailed(
            f"no dead letter {entry_id!r} in {', '.join(s + '.dead' for s in streams)}",
            EXIT_NOT_FOUND,
        )
    if len(found) > 1:
        raise OperationFailed(
            f"dead letter {entry_id!r} is in several streams "
            f"({', '.join(e.stream for e in found)}); choose one with --stream",
            EXIT_USAGE,
        )
    return found[0]


async def _replay_one(box: DeadLetterBox, entry: DeadLetterEntry) -> None:
    done = await replay(box, entry.stream, entry.id)
    print(
        f"keel: replayed {entry.id} from {entry.stream}.dead onto {entry.stream} as "
        f"{done.new_id} (message {entry.message_id or '?'})"
    )


async def _replay_all(box: DeadLetterBox, streams: list[str]) -> int:
    total = 0
    for stream in streams:
        # A snapshot first: a message that fails again is dead-lettered again
        # meanwhile, and must not be replayed twice by the same command.
        entries = await box.dead_letters(stream, limit=REPLAY_ALL_LIMIT)
        for entry in entries:
            await _replay_one(box, entry)
        total += len(entries)
        if len(entries) == REPLAY_ALL_LIMIT:
            print(f"keel: {stream}.dead holds more; run 'replay --all' again for the rest")
    print(f"keel: replayed {total} dead letter{'s' if total != 1 else ''}")
    return EXIT_OK


# -- outbox ------------------------------------------------------------------------------------


async def _outbox_status(settings: Settings, *, json_output: bool) -> int:
    manager = DatabaseSessionManager()
    manager.init(settings.database_url, **settings.engine_options())
    try:
        backlog = await SqlAlchemyOutboxStore(manager.engine).backlog()
    except DBAPIError as exc:
        where = safe_url(settings.database_url)
        if is_database_unavailable(exc) and not _missing_table(exc):
            raise OperationFailed(f"database unavailable at {where}", EXIT_UNAVAILABLE) from None
        raise OperationFailed(
            f"could not read the outbox at {where} ({type(exc.orig).__name__}); "
            "is the schema up to date ('keel migrate')?",
            EXIT_UNAVAILABLE,
        ) from None
    finally:
        await manager.close()
    _print_backlog(settings, backlog, json_output=json_output)
    return EXIT_OK


def _missing_table(exc: DBAPIError) -> bool:
    """PostgreSQL's undefined_table (42P01), or SQLite's "no such table"."""
    return sqlstate_of(exc) == UNDEFINED_TABLE or "no such table" in str(exc.orig)


def _print_backlog(settings: Settings, backlog: list[StreamBacklog], *, json_output: bool) -> None:
    now = datetime.now(UTC)
    pending = sum(entry.pending for entry in backlog)
    oldest = max((entry.oldest_age(now) for entry in backlog), default=0.0)
    if json_output:
        print(
            json.dumps(
                {
                    "pending": pending,
                    "oldest_pending_seconds": round(oldest, 3),
                    "streams": [
                        {
                            "stream": entry.stream,
                            "pending": entry.pending,
                            "oldest_pending_seconds": round(entry.oldest_age(now), 3),
                            "failing": entry.failing,
                        }
                        for entry in backlog
                    ],
                }
            )
        )
        return
    where = safe_url(settings.database_url)
    if not pending:
        print(f"outbox at {where}: nothing pending")
        return
    print(f"outbox at {where}: {pending} pending, the oldest for {oldest:.1f} s")
    rows = [
        (entry.stream, str(entry.pending), f"{entry.oldest_age(now):.1f}", str(entry.failing))
        for entry in backlog
    ]
    _table(("STREAM", "PENDING", "OLDEST_S", "FAILING"), rows)


def _shorten(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= REASON_WIDTH else text[: REASON_WIDTH - 1] + "…"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)))
