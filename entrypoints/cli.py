"""The ``keel`` command: ``keel serve``, ``keel migrate``, ``keel consume``, ``keel relay``.

``consume`` and ``relay`` run until SIGTERM or SIGINT and then stop
gracefully; start as many of each as the load needs. They need a broker
other processes can reach (``BROKER_URL``): the in-process one lives inside
``keel serve``, which then consumes and relays by itself.

Exit codes: 0 success, 1 the database could not be migrated, 2 bad usage or
bad configuration. Failures print one line to stderr naming what is wrong —
never a traceback, never a password — because this is the first thing a
newcomer runs and the message is the whole of the help they get.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import logging.config
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence
from types import FrameType

import uvicorn
from alembic.util import CommandError

from adapters.database import safe_url
from adapters.migrate import MigrationError, upgrade_to_head
from adapters.settings import ConfigurationError, Settings, load_settings
from entrypoints import consumer, relay
from entrypoints.http.app import create_app
from entrypoints.http.logging import logging_config

EXIT_OK = 0
EXIT_DATABASE = 1
EXIT_USAGE = 2


def _port(value: str) -> int:
    try:
        port = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {value!r}") from None
    if not 0 < port < 65536:
        raise argparse.ArgumentTypeError(f"port out of range 1..65535: {port}")
    return port


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="keel",
        description="Run the Keel ledger service. Settings come from the environment "
        "and a .env file (DATABASE_URL, BROKER_URL, ...).",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    serve = commands.add_parser("serve", help="migrate the database, then serve HTTP")
    serve.add_argument(
        "--host", default="127.0.0.1", help="interface to bind (default: %(default)s)"
    )
    serve.add_argument("--port", type=_port, default=8000, help="TCP port (default: %(default)s)")
    commands.add_parser("migrate", help="bring the database schema up to date, then exit")
    commands.add_parser(
        "consume", help="migrate, then apply the commands of ledger.commands until stopped"
    )
    commands.add_parser("relay", help="migrate, then publish the outbox to ledger.events")
    return parser


def _fail(message: str, code: int) -> int:
    print(f"keel: {message}", file=sys.stderr)
    return code


def _migrate(settings: Settings) -> str | None:
    """Upgrade the schema to head; the one-line reason when that fails, else ``None``."""
    try:
        upgrade_to_head(settings.database_url)
    except (MigrationError, CommandError) as exc:
        # MigrationError names the database with its password masked. Anything
        # else is a bug, and its traceback is what whoever fixes it will need.
        return str(exc).strip().splitlines()[0]
    return None


def _stopped_on_request(signum: int, frame: FrameType | None) -> None:
    """Exit 0: the process was asked to stop, and did.

    uvicorn stops gracefully on SIGTERM or SIGINT, then puts back the handler
    it found — this one — and raises the signal again, so that the process
    would otherwise die of it (status -15). A stop that was asked for and
    carried out is a success for ``keel serve``; a signal that arrives before
    uvicorn took over stops it at once, with status 0 too.
    """
    raise SystemExit(EXIT_OK)


def _serve(settings: Settings, host: str, port: int) -> None:
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _stopped_on_request)
    # The app is built here from the settings already checked, not by uvicorn's
    # factory import: one source of configuration, and errors reported above.
    # JSON lines on stderr, one per request from keel.access: uvicorn's own access log is off.
    uvicorn.run(
        create_app(settings),
        host=host,
        port=port,
        log_config=logging_config(settings.database_url),
        access_log=False,
    )


Worker = Callable[[Settings, asyncio.Event], Awaitable[None]]
WORKERS: dict[str, Worker] = {"consume": consumer.consume, "relay": relay.relay}


def _run_worker(worker: Worker, settings: Settings) -> None:
    """Run ``worker`` until SIGTERM or SIGINT sets its stop event."""
    # The same JSON lines as ``keel serve``, with the database password scrubbed.
    logging.config.dictConfig(logging_config(settings.database_url))

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await worker(settings, stop)

    asyncio.run(run())


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:  # --help, or a usage error argparse already printed
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    try:
        settings = load_settings()
    except ConfigurationError as exc:
        return _fail(str(exc), EXIT_USAGE)
    if args.command in WORKERS and settings.broker_url is None:
        return _fail(
            f"{args.command} needs BROKER_URL (redis://...); without it the broker is "
            "in-process, and 'keel serve' consumes and relays by itself",
            EXIT_USAGE,
        )
    if (failure := _migrate(settings)) is not None:
        return _fail(failure, EXIT_DATABASE)
    if args.command == "migrate":
        print(f"keel: database at {safe_url(settings.database_url)} is up to date")
        return EXIT_OK
    if args.command in WORKERS:
        _run_worker(WORKERS[args.command], settings)
        return EXIT_OK
    _serve(settings, args.host, args.port)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
