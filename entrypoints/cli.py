"""The ``keel`` command: serve, migrate, consume, relay, revision, new, token — and the contexts'.

``consume`` and ``relay`` run until SIGTERM or SIGINT and then stop
gracefully; start as many of each as the load needs. They need a broker
other processes can reach (``BROKER_URL``): the in-process one lives inside
``keel serve``, which then consumes and relays by itself. The bounded contexts
in ``KEEL_CONTEXTS`` may add sub-commands of their own. The operator's
``dead-letters`` and ``outbox`` commands are in ``entrypoints.operations``.

Exit codes: 0 success, 1 the database could not be migrated or the broker
cannot be reached, 2 bad usage or bad configuration, 3 the dead letter asked
for does not exist. Failures print one line to stderr naming what is wrong —
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
from pathlib import Path
from types import FrameType
from typing import Any

import uvicorn
from alembic.util import CommandError

from adapters.brokers import BrokerUnavailable
from adapters.database import DatabaseSessionManager, safe_url
from adapters.migrate import MigrationError, upgrade_to_head
from adapters.settings import ConfigurationError, Settings, load_settings
from adapters.tracing import TracingConfigurationError, configure_tracing
from entrypoints import consumer, operations, relay
from entrypoints.bootstrap import bootstrap, consumes_in_serve, make_broker
from entrypoints.context import BoundedContext, CliCommand, ContextLoadError, running_contexts
from entrypoints.http.logging import logging_config
from entrypoints.signed_commands import signing_key

logger = logging.getLogger("keel")

EXIT_OK = 0
EXIT_DATABASE = 1
EXIT_USAGE = 2

MAX_TOKEN_TTL = 30 * 24 * 3600


def _port(value: str) -> int:
    try:
        port = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {value!r}") from None
    if not 0 < port < 65536:
        raise argparse.ArgumentTypeError(f"port out of range 1..65535: {port}")
    return port


def _workers(value: str) -> int:
    try:
        count = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of workers: {value!r}") from None
    if not 1 <= count <= 64:
        raise argparse.ArgumentTypeError(f"workers out of range 1..64: {count}")
    return count


def _seconds(value: str) -> int:
    try:
        seconds = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {value!r}") from None
    if not 0 < seconds <= MAX_TOKEN_TTL:
        raise argparse.ArgumentTypeError(f"out of range 1..{MAX_TOKEN_TTL}: {seconds}")
    return seconds


def _token(settings: Settings, contexts: Sequence[BoundedContext[Any]], args: Any) -> int:
    """Print a development token; refused when tokens come from an identity provider."""
    from datetime import timedelta

    from adapters.auth import AuthConfigurationError, token_issuer

    try:
        issuer = token_issuer(settings)
    except AuthConfigurationError as exc:
        return _fail(f"cannot mint a token: {exc}", EXIT_USAGE)
    print(issuer.mint(args.subject, scopes=args.scope.split(), ttl=timedelta(seconds=args.ttl)))
    return EXIT_OK


def _parser(contexts: Sequence[BoundedContext[Any]]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="keel",
        description="Run a Keel service. Settings come from the environment and a .env "
        "file (DATABASE_URL, BROKER_URL, KEEL_CONTEXTS, ...).",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    serve = commands.add_parser("serve", help="migrate the database, then serve HTTP")
    serve.add_argument(
        "--host", default="127.0.0.1", help="interface to bind (default: %(default)s)"
    )
    serve.add_argument("--port", type=_port, default=8000, help="TCP port (default: %(default)s)")
    serve.add_argument(
        "--workers",
        type=_workers,
        default=1,
        help="HTTP worker processes (default: %(default)s); each relays the outbox too",
    )
    commands.add_parser("migrate", help="bring the database schema up to date, then exit")
    commands.add_parser("consume", help="migrate, then consume the contexts' streams until stopped")
    commands.add_parser("relay", help="migrate, then publish the outbox until stopped")
    revision = commands.add_parser(
        "revision", help="write a new migration in a context's branch (Alembic)"
    )
    revision.add_argument("context", help="the context whose branch gets the revision")
    revision.add_argument("-m", "--message", required=True, help="what the revision does")
    revision.add_argument(
        "--autogenerate",
        action="store_true",
        help="fill it in by comparing the mapped tables with the database",
    )
    token = commands.add_parser(
        "token", help="print a bearer token signed with the development key (AUTH_DEV_KEY_FILE)"
    )
    token.add_argument("subject", help="the principal the token speaks for (its 'sub')")
    token.add_argument(
        "--scope",
        default=" ".join(f"{c.name}:read {c.name}:write" for c in contexts),
        help="space-separated scopes (default: %(default)r, read and write on each context)",
    )
    token.add_argument(
        "--ttl", type=_seconds, default=3600, help="lifetime in seconds (default: %(default)s)"
    )
    new = commands.add_parser("new", help="scaffold a new bounded context in every layer")
    new.add_argument("name", help="the context's name: a lower-case Python identifier")
    new.add_argument(
        "--root", type=Path, default=Path.cwd(), help="project folder (default: current)"
    )
    operations.add_parsers(commands)
    for context in contexts:
        for extra in context.cli:
            sub = commands.add_parser(extra.name, help=f"[{context.name}] {extra.help}")
            extra.arguments(sub)
    return parser


def _fail(message: str, code: int) -> int:
    print(f"keel: {message}", file=sys.stderr)
    return code


def _locations(contexts: Sequence[BoundedContext[Any]]) -> list[Path]:
    return [context.migrations for context in contexts if context.migrations is not None]


def _migrate(settings: Settings, contexts: Sequence[BoundedContext[Any]]) -> str | None:
    """Upgrade every branch to its head; the one-line reason when that fails, else ``None``."""
    try:
        # Migrations need a session of their own: past a transaction pooler, to the database.
        upgrade_to_head(settings.direct_database_url, _locations(contexts))
    except (MigrationError, CommandError) as exc:
        # MigrationError names the database with its password masked. Anything
        # else is a bug, and its traceback is what whoever fixes it will need.
        return str(exc).strip().splitlines()[0]
    return None


def _revision(settings: Settings, contexts: Sequence[BoundedContext[Any]], args: Any) -> int:
    from alembic import command

    from adapters.migrate import alembic_config

    chosen = next((context for context in contexts if context.name == args.context), None)
    if chosen is None or chosen.migrations is None:
        running = ", ".join(c.name for c in contexts if c.migrations is not None) or "none"
        return _fail(
            f"no running context {args.context!r} with migrations (KEEL_CONTEXTS); "
            f"these have: {running}",
            EXIT_USAGE,
        )
    for context in contexts:
        context.start_mappers()
    config = alembic_config(
        settings.direct_database_url,
        _locations(contexts),
        tables=[table.name for context in contexts for table in context.tables],
    )
    try:
        command.revision(
            config, message=args.message, autogenerate=args.autogenerate, head=f"{chosen.name}@head"
        )
    except CommandError as exc:
        return _fail(str(exc).strip().splitlines()[0], EXIT_DATABASE)
    return EXIT_OK


def _broker_answers(settings: Settings) -> str | None:
    """Ping ``BROKER_URL`` before starting; the one-line reason when it does not answer."""
    if settings.broker_url is None:
        return None  # the in-process broker lives and dies with this process

    async def ping() -> None:
        broker = make_broker(settings)
        await broker.ping()

    try:
        asyncio.run(ping())
    except BrokerUnavailable as exc:
        return str(exc)  # names the broker with its password masked
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


def _serve(settings: Settings, host: str, port: int, workers: int) -> None:
    from entrypoints.http.app import create_app

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _stopped_on_request)
    # JSON lines on stderr, one per request from keel.access: uvicorn's own access log is off.
    options: dict[str, Any] = {
        "host": host,
        "port": port,
        "log_config": logging_config(settings.database_url),
        "access_log": False,
    }
    if workers == 1:
        # Built here from the settings already checked: one source of
        # configuration, and errors reported above.
        uvicorn.run(create_app(settings), **options)
        return
    # Worker processes import the app themselves (uvicorn's factory), reading
    # the same environment that was just checked. Each runs its own relay:
    # the relays' per-key locks keep one publisher per key however many run.
    uvicorn.run("entrypoints.http.app:create_app", factory=True, workers=workers, **options)


Worker = Callable[[Settings, asyncio.Event], Awaitable[None]]
WORKERS: dict[str, Worker] = {"consume": consumer.consume, "relay": relay.relay}


def _run_worker(worker: Worker, settings: Settings) -> None:
    """Run ``worker`` until SIGTERM or SIGINT sets its stop event."""

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await worker(settings, stop)

    # On uvloop, as `keel serve` is (uvicorn's loop="auto"): less event-loop work per
    # round trip; bench.ledger.messaging run on it handled ~7% more commands a second.
    with asyncio.Runner(loop_factory=_event_loop_factory()) as runner:
        runner.run(run())


def _event_loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's event loop where it is installed (it is a dependency, but has no Windows
    build); ``None``: asyncio's own."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def _run_context_command(extra: CliCommand, settings: Settings, args: Any) -> int:
    async def run() -> int:
        manager = DatabaseSessionManager()
        container = bootstrap(settings, manager=manager)
        try:
            return await extra.run(container, args)
        finally:
            await manager.close()

    return asyncio.run(run())


def main(argv: Sequence[str] | None = None) -> int:
    try:
        settings = load_settings()
        contexts = running_contexts(settings)
        configure_tracing()
    except (ConfigurationError, ContextLoadError, TracingConfigurationError) as exc:
        return _fail(str(exc), EXIT_USAGE)
    parser = _parser(contexts)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, or a usage error argparse already printed
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    if args.command is None:
        parser.print_help()
        return EXIT_OK
    if args.command == "new":
        from entrypoints.scaffold import ScaffoldError, scaffold

        try:
            written = scaffold(args.name, args.root)
        except ScaffoldError as exc:
            return _fail(str(exc), EXIT_USAGE)
        for path in written:
            print(f"  {path}")
        listed = settings.context_names
        serve = (
            "it runs with the others (KEEL_CONTEXTS is unset: every context in entrypoints/)"
            if listed is None
            else f"serve it with KEEL_CONTEXTS={','.join([*listed, args.name])}"
        )
        print(f"keel: created the context {args.name!r} in {len(written)} files; {serve}")
        return EXIT_OK
    if args.command == "revision":
        return _revision(settings, contexts, args)
    if args.command in operations.COMMANDS:
        return operations.run(args, settings, contexts)
    if args.command == "token":
        return _token(settings, contexts, args)
    if args.command == "consume" or (args.command == "serve" and consumes_in_serve(settings)):
        try:
            signing_key(settings)
        except ConfigurationError as exc:
            return _fail(f"{args.command} refuses to start: {exc}", EXIT_USAGE)
    if args.command in WORKERS and settings.broker_url is None:
        return _fail(
            f"{args.command} needs BROKER_URL (redis://...); without it the broker is "
            "in-process, and 'keel serve' consumes and relays by itself",
            EXIT_USAGE,
        )
    if args.command != "migrate":
        # The same JSON lines as ``keel serve`` (which hands this config to uvicorn);
        # ``keel migrate`` says its one line and nothing else.
        logging.config.dictConfig(logging_config(settings.database_url))
    logger.info(
        "starting",
        extra={
            "command": args.command,
            "database": safe_url(settings.database_url),
            "contexts": [context.name for context in contexts],
        },
    )
    if (failure := _migrate(settings, contexts)) is not None:
        return _fail(failure, EXIT_DATABASE)
    if args.command == "migrate":
        print(f"keel: database at {safe_url(settings.database_url)} is up to date")
        return EXIT_OK
    if args.command in ("serve", *WORKERS) and (failure := _broker_answers(settings)):
        return _fail(failure, EXIT_DATABASE)
    if args.command in WORKERS:
        _run_worker(WORKERS[args.command], settings)
        return EXIT_OK
    extras = {extra.name: extra for context in contexts for extra in context.cli}
    if args.command in extras:
        return _run_context_command(extras[args.command], settings, args)
    if args.workers > 1 and settings.broker_url is None:
        return _fail(
            "--workers needs BROKER_URL: the in-process broker cannot be shared by processes",
            EXIT_USAGE,
        )
    _serve(settings, args.host, args.port, args.workers)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
