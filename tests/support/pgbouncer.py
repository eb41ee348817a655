"""A real PgBouncer in transaction pooling mode, in front of a test PostgreSQL, for one test.

It runs from the installed binary (``scripts/services.sh`` installs the
Debian package), on a free port, with its own configuration, log and pid
files in a temporary directory, and is stopped (and the directory removed)
afterwards. PgBouncer refuses to run as root, so under root it runs as the
``postgres`` system user, like the throwaway PostgreSQL clusters.

Configuration worth knowing: ``pool_mode = transaction``; a small
``default_pool_size`` (the point is many clients on few server
connections); ``server_reset_query = DISCARD ALL`` with
``server_reset_query_always``, so prepared statements never pile up on a
server connection; ``server_login_retry = 1`` so that after a server restart
the pooler tries again within a second instead of fifteen.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import shutil
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.engine import make_url

from tests.support.postgres import CLUSTER_OWNER, free_port

START_TIMEOUT = 10.0
BINARY_PLACES = ("/usr/sbin/pgbouncer", "/usr/bin/pgbouncer")


class PgBouncerUnavailable(RuntimeError):
    """No pgbouncer binary, or it did not start; says why."""


def find_binary() -> Path | None:
    on_path = shutil.which("pgbouncer")
    if on_path:
        return Path(on_path)
    for place in BINARY_PLACES:
        if Path(place).is_file():
            return Path(place)
    return None


async def _answers(port: int) -> bool:
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


@dataclass
class PgBouncer:
    """One pgbouncer process; ``url(database)`` is an asyncpg URL through it."""

    binary: Path
    server_dsn: str
    """libpq DSN of the PostgreSQL server behind it (user and password are used)."""
    pool_size: int = 2
    directory: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="keel-pgb-")))
    port: int = field(default_factory=free_port)
    process: asyncio.subprocess.Process | None = None

    @property
    def log(self) -> Path:
        return self.directory / "pgbouncer.log"

    def url(self, database: str) -> str:
        server = make_url(self.server_dsn)
        return (
            make_url(f"postgresql+asyncpg://127.0.0.1:{self.port}/{database}")
            .set(username=server.username or "postgres")
            .render_as_string(hide_password=False)
        )

    def _config(self) -> str:
        server = make_url(self.server_dsn)
        user = server.username or "postgres"
        target = f"host={server.host or '127.0.0.1'} port={server.port or 5432}"
        if server.password:
            target += f" user={user} password={server.password}"
        return "\n".join(
            [
                "[databases]",
                f"* = {target}",
                "[pgbouncer]",
                "listen_addr = 127.0.0.1",
                f"listen_port = {self.port}",
                "unix_socket_dir =",
                "auth_type = trust",
                f"auth_file = {self.directory / 'userlist.txt'}",
                "pool_mode = transaction",
                f"default_pool_size = {self.pool_size}",
                "max_client_conn = 500",
                "server_reset_query = DISCARD ALL",
                "server_reset_query_always = 1",
                "server_login_retry = 1",
                "server_connect_timeout = 5",
                f"logfile = {self.log}",
                f"pidfile = {self.directory / 'pgbouncer.pid'}",
                "",
            ]
        )

    async def start(self) -> None:
        user = make_url(self.server_dsn).username or "postgres"
        (self.directory / "pgbouncer.ini").write_text(self._config())
        (self.directory / "userlist.txt").write_text(f'"{user}" ""\n')
        command = [str(self.binary), str(self.directory / "pgbouncer.ini")]
        if os.geteuid() == 0:
            owner = pwd.getpwnam(CLUSTER_OWNER)
            for path in (self.directory, *self.directory.iterdir()):
                os.chown(path, owner.pw_uid, owner.pw_gid)
            command = ["runuser", "-u", CLUSTER_OWNER, "--", *command]
        self.process = await asyncio.create_subprocess_exec(
            *command, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
        )
        loop = asyncio.get_running_loop()
        give_up = loop.time() + START_TIMEOUT
        while not await _answers(self.port):
            if self.process.returncode is not None or loop.time() > give_up:
                raise PgBouncerUnavailable(f"pgbouncer did not start:\n{self.log_tail()}")
            await asyncio.sleep(0.05)

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""

    async def stop(self) -> None:
        try:
            if self.process is not None and self.process.returncode is None:
                self.process.terminate()  # runuser passes it on; pgbouncer exits at once
                try:
                    await asyncio.wait_for(self.process.wait(), START_TIMEOUT)
                except TimeoutError:
                    self.process.kill()
                    await self.process.wait()
        finally:
            shutil.rmtree(self.directory, ignore_errors=True)


@contextlib.asynccontextmanager
async def running_pgbouncer(server_dsn: str, *, pool_size: int = 2) -> AsyncIterator[PgBouncer]:
    """A started :class:`PgBouncer` in front of ``server_dsn``, stopped afterwards."""
    binary = find_binary()
    if binary is None:
        raise PgBouncerUnavailable(
            "no pgbouncer binary (run ./scripts/services.sh, which installs it with apt-get)"
        )
    bouncer = PgBouncer(binary=binary, server_dsn=server_dsn, pool_size=pool_size)
    try:
        await bouncer.start()
        yield bouncer
    finally:
        await bouncer.stop()
