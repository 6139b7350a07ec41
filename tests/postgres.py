"""A throwaway PostgreSQL server on loopback for the tests (Debian's `postgresql` binaries).

Started once per test session in a temporary directory, on a free port, with trust authentication
for 127.0.0.1 only; each test that needs one gets a database of its own, empty or already migrated. Running as root
(as CI does), the server runs as the `postgres` system user, since PostgreSQL refuses root.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import uuid
from pathlib import Path

import asyncpg

from ivr.store.db import Store
from ivr.store.migrate import upgrade

START_TIMEOUT_S = 30
SCHEMA_TEMPLATE = "schema_template"


class PostgresUnavailable(RuntimeError):
    pass


def _bin_dir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        raise PostgresUnavailable(
            "PostgreSQL is not installed (Debian package 'postgresql'); './dev test' installs it"
        )
    return Path(found[-1]).parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _real_clock_env() -> dict[str, str]:
    """This environment without libfaketime (a dated test run): the server never tells the product the
    time (the IVR stamps its rows with its own clock), and as the `postgres` user it cannot open the
    semaphore libfaketime made as root, so it runs on the real clock."""
    return {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("FAKETIME") and not (name == "LD_PRELOAD" and "faketime" in value)
    }


class PostgresServer:
    def __init__(self, directory: Path) -> None:
        self.bin = _bin_dir()
        self.directory = directory
        self.data = directory / "data"
        self._template_migrated = False
        self.port = _free_port()
        self._as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    def _run(self, *args: str) -> None:
        result = subprocess.run(
            [*self._as_user, *args],
            capture_output=True,
            text=True,
            timeout=START_TIMEOUT_S,
            check=False,
            env=_real_clock_env(),
        )
        if result.returncode != 0:
            raise PostgresUnavailable(f"{Path(args[0]).name} failed: {result.stderr.strip() or result.stdout.strip()}")

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        if self._as_user:
            postgres = pwd.getpwnam("postgres")
            os.chown(self.directory, postgres.pw_uid, postgres.pw_gid)
        self._run(str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
        options = f"-c listen_addresses=127.0.0.1 -c port={self.port} -c unix_socket_directories={self.directory}"
        options += " -c fsync=off -c full_page_writes=off"  # test data is thrown away
        self._run(
            str(self.bin / "pg_ctl"), "-D", str(self.data), "-o", options, "-l", str(self.directory / "log"),
            "-w", "-t", str(START_TIMEOUT_S), "start",
        )

    def stop(self) -> None:
        if self.data.exists():
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.directory, ignore_errors=True)

    async def fresh_database(self) -> str:
        """An empty database; returns its SQLAlchemy URL."""
        return await self._create(f"t_{uuid.uuid4().hex[:12]}")

    async def migrated_database(self) -> str:
        """A new database with the current schema; returns its SQLAlchemy URL. It is a copy of a template
        migrated once per server (migrating costs ~0.2 s a database, a copy a few ms)."""
        if not self._template_migrated:
            store = Store(await self._create(SCHEMA_TEMPLATE))
            try:
                await upgrade(store)
            finally:
                await store.aclose()  # a template cannot be copied while anyone is connected to it
            self._template_migrated = True
        # FILE_COPY: with fsync off, copying the files beats WAL-logging the copy (~50 against ~80 ms).
        return await self._create(f"t_{uuid.uuid4().hex[:12]}", f' TEMPLATE "{SCHEMA_TEMPLATE}" STRATEGY FILE_COPY')

    async def _create(self, name: str, options: str = "") -> str:
        connection = await asyncpg.connect(host="127.0.0.1", port=self.port, user="postgres", database="postgres")
        try:
            await connection.execute(f'CREATE DATABASE "{name}"{options}')
        finally:
            await connection.close()
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{name}"
