"""A PostgreSQL server and a private database for one test run.

Order of preference: ``KEEL_TEST_POSTGRES_URL`` if set, else the server on
127.0.0.1:5432 (trust auth, user ``postgres``); if neither answers and the
PostgreSQL binaries are installed, a throwaway cluster in a temporary
directory on a free port, stopped when the run ends. Setting
``KEEL_TEST_POSTGRES_CLUSTER=1`` skips the probe and always uses a throwaway
cluster. Under CI (``CI`` set) a missing server is an error, never a skip.

PostgreSQL refuses to run as root, so when the tests run as root the cluster
is created and run as the ``postgres`` system user, in a directory it owns.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import os
import pwd
import shutil
import socket
import tempfile
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import asyncpg
from sqlalchemy.engine import make_url

DEFAULT_ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
CLUSTER_FLAG = "KEEL_TEST_POSTGRES_CLUSTER"
CLUSTER_OWNER = "postgres"


class PostgresUnavailable(RuntimeError):
    """No server answers and no throwaway cluster could be started; says why."""


def admin_dsn() -> str:
    return os.environ.get("KEEL_TEST_POSTGRES_URL", DEFAULT_ADMIN_DSN)


def cluster_forced() -> bool:
    return os.environ.get(CLUSTER_FLAG, "").lower() in {"1", "true", "yes"}


def masked(dsn: str) -> str:
    """The DSN for messages, with any password replaced."""
    return make_url(dsn).render_as_string(hide_password=True)


async def server_answers(dsn: str) -> bool:
    try:
        connection = await asyncpg.connect(dsn, timeout=3.0)
    except (TimeoutError, OSError, asyncpg.PostgresError):
        return False
    await connection.close()
    return True


async def create_database(dsn: str, prefix: str = "keel_test") -> str:
    """Create a uniquely named database and return its name."""
    name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    return name


async def drop_database(dsn: str, name: str) -> None:
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()


def sqlalchemy_url(dsn: str, database: str) -> str:
    """The asyncpg SQLAlchemy URL for ``database`` on the server behind ``dsn``."""
    url = make_url(dsn).set(drivername="postgresql+asyncpg", database=database)
    return url.render_as_string(hide_password=False)


# -- the throwaway cluster ----------------------------------------------------------------


def find_binaries() -> Path | None:
    """The directory holding ``initdb`` and ``pg_ctl``, newest major version first."""
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"),
        key=lambda path: int(Path(path).parent.name) if Path(path).parent.name.isdigit() else 0,
        reverse=True,
    )
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(str(Path(on_path).resolve().parent))
    for directory in candidates:
        if (Path(directory) / "initdb").is_file() and (Path(directory) / "pg_ctl").is_file():
            return Path(directory)
    return None


def free_port() -> int:
    # The port could be taken between here and pg_ctl start; start() then fails
    # with the server log, which is rare enough not to warrant a retry loop.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class ThrowawayCluster:
    """A PostgreSQL cluster that lives in a temporary directory for one run.

    ``fsync=off`` and friends: the data is thrown away, so durability is
    worth nothing here and start-up plus every commit get faster.
    """

    binaries: Path
    directory: Path
    port: int
    run_as: str | None

    @property
    def data(self) -> Path:
        return self.directory / "data"

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    @classmethod
    def prepare(cls, binaries: Path) -> ThrowawayCluster:
        run_as = CLUSTER_OWNER if os.geteuid() == 0 else None
        # Not pytest's tmp_path: that lives under a 0700 directory of root's,
        # which the postgres user cannot traverse.
        directory = Path(tempfile.mkdtemp(prefix="keel-pg-"))
        if run_as is not None:
            owner = pwd.getpwnam(run_as)
            os.chown(directory, owner.pw_uid, owner.pw_gid)
        return cls(binaries=binaries, directory=directory, port=free_port(), run_as=run_as)

    def _command(self, tool: str, *arguments: str) -> list[str]:
        command = [str(self.binaries / tool), *arguments]
        if self.run_as is not None:
            return ["runuser", "-u", self.run_as, "--", *command]
        return command

    async def _run(self, tool: str, *arguments: str) -> None:
        process = await asyncio.create_subprocess_exec(
            *self._command(tool, *arguments),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        output, _ = await process.communicate()
        if process.returncode != 0:
            log = self.directory / "server.log"
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise PostgresUnavailable(
                f"{tool} failed with exit code {process.returncode}:\n"
                f"{output.decode(errors='replace')[-2000:]}{tail}"
            )

    async def start(self) -> None:
        await self._run(
            "initdb",
            "--pgdata",
            str(self.data),
            "--username",
            "postgres",
            "--auth",
            "trust",
            "--encoding",
            "UTF8",
            "--no-sync",
        )
        server_options: Sequence[str] = (
            f"-p {self.port}",
            "-c listen_addresses=127.0.0.1",
            f"-c unix_socket_directories={self.directory}",
            "-c fsync=off",
            "-c synchronous_commit=off",
            "-c full_page_writes=off",
        )
        await self._run(
            "pg_ctl",
            "start",
            "--pgdata",
            str(self.data),
            "--wait",
            "--timeout",
            "60",
            "--log",
            str(self.directory / "server.log"),
            "-o",
            " ".join(server_options),
        )

    async def restart(self) -> None:
        """Stop the server the way an operator would (``fast``: sessions are ended) and
        start it again with the same options; the data survives. ``--log`` again, or
        the new server would inherit, and hold open, the pipe this waits on."""
        await self._run(
            "pg_ctl",
            "restart",
            "--pgdata",
            str(self.data),
            "--mode",
            "fast",
            "--wait",
            "--timeout",
            "60",
            "--log",
            str(self.directory / "server.log"),
        )

    async def stop(self) -> None:
        try:
            if (self.data / "postmaster.pid").exists():
                await self._run("pg_ctl", "stop", "--pgdata", str(self.data), "--mode", "immediate")
        finally:
            shutil.rmtree(self.directory, ignore_errors=True)


async def start_throwaway_cluster() -> ThrowawayCluster:
    """Start a cluster from the installed binaries; the caller must ``stop()`` it."""
    binaries = find_binaries()
    if binaries is None:
        raise PostgresUnavailable(
            "no PostgreSQL binaries found (looked for /usr/lib/postgresql/*/bin/initdb "
            "and initdb/pg_ctl on PATH)"
        )
    cluster = ThrowawayCluster.prepare(binaries)
    try:
        await cluster.start()
    except BaseException:
        await cluster.stop()
        raise
    return cluster


@contextlib.asynccontextmanager
async def admin_server() -> AsyncIterator[str]:
    """The admin DSN of a server for this run: the configured one, or a throwaway cluster.

    Raises :class:`PostgresUnavailable` naming every place it looked.
    """
    dsn = admin_dsn()
    if not cluster_forced() and await server_answers(dsn):
        yield dsn
        return
    reason = (
        f"{CLUSTER_FLAG} is set"
        if cluster_forced()
        else f"no PostgreSQL server answers at {masked(dsn)}"
    )
    try:
        cluster = await start_throwaway_cluster()
    except PostgresUnavailable as exc:
        raise PostgresUnavailable(f"{reason}, and no throwaway cluster started: {exc}") from None
    try:
        yield cluster.dsn
    finally:
        await cluster.stop()
