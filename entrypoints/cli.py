"""The ``keel`` command: ``keel serve`` and ``keel migrate``.

Exit codes: 0 success, 1 the database could not be migrated, 2 bad usage or
bad configuration. Failures print one line to stderr naming what is wrong —
never a traceback, never a password — because this is the first thing a
newcomer runs and the message is the whole of the help they get.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import uvicorn
from alembic.util import CommandError

from adapters.database import safe_url
from adapters.migrate import MigrationError, upgrade_to_head
from adapters.settings import ConfigurationError, Settings, load_settings
from entrypoints.http.app import create_app

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


def _serve(settings: Settings, host: str, port: int) -> None:
    # The app is built here from the settings already checked, not by uvicorn's
    # factory import: one source of configuration, and errors reported above.
    uvicorn.run(create_app(settings), host=host, port=port)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:  # --help, or a usage error argparse already printed
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    try:
        settings = load_settings()
    except ConfigurationError as exc:
        return _fail(str(exc), EXIT_USAGE)
    if (failure := _migrate(settings)) is not None:
        return _fail(failure, EXIT_DATABASE)
    if args.command == "migrate":
        print(f"keel: database at {safe_url(settings.database_url)} is up to date")
        return EXIT_OK
    _serve(settings, args.host, args.port)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
