"""A private PostgreSQL server for the cluster tests: initdb in a temporary directory,
started with pg_ctl on a free loopback port, stopped (immediately) when the test ends.

scripts/test installs the Debian package postgresql when it is missing. PostgreSQL
refuses to run as root, so as root the server runs as the `postgres` user the package
creates (through runuser).
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
from pathlib import Path


def _bin(name: str) -> str:
    for candidate in sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True):
        return candidate
    found = shutil.which(name)
    if found:
        return found
    raise AssertionError(f"PostgreSQL's {name} was not found: install the postgresql package "
                         "(scripts/test does it as root)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Postgres:
    """One PostgreSQL server in `root`, reachable at `url(database)`."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.data = self.root / "pgdata"
        self.sockets = self.root / "pgsock"
        self.log = self.root / "postgres.log"
        self.port = _free_port()
        self.as_root = os.geteuid() == 0
        self.root.mkdir(parents=True, exist_ok=True)
        self.sockets.mkdir(exist_ok=True)
        if self.as_root:
            self._reachable()
            subprocess.run(["chown", "-R", "postgres", str(self.root)], check=True, timeout=30)
        self._run([_bin("initdb"), "-D", str(self.data), "-U", "kcm", "--auth=trust", "-E", "UTF8",
                   "--no-locale"])
        self.start()

    def _reachable(self) -> None:
        """Lets the postgres user traverse the directories above its own. Done again before
        every start: another pytest session of the same user (a developer's, beside CI's)
        resets /tmp/pytest-of-<user> to 0700 when it begins."""
        for p in [self.root, *self.root.parents]:
            if p == Path("/"):
                break
            p.chmod(p.stat().st_mode | 0o011)

    def _run(self, cmd: list[str], check: bool = True) -> subprocess.CompletedProcess:
        if self.as_root:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        if check and r.returncode != 0:
            raise AssertionError(f"{' '.join(cmd)} failed ({r.returncode}): {r.stdout}{r.stderr}")
        return r

    def start(self) -> None:
        if self.as_root:
            self._reachable()
        opts = (f"-p {self.port} -k {self.sockets} -c listen_addresses=127.0.0.1 "
                "-c max_connections=200 -c fsync=on")
        self._run([_bin("pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-o", opts, "-w",
                   "-t", "60", "start"])

    def stop(self, mode: str = "fast") -> None:
        self._run([_bin("pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop"], check=False)

    def create_database(self, name: str) -> str:
        subprocess.run(["psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "kcm", "-d", "postgres",
                        "-v", "ON_ERROR_STOP=1", "-c", f'CREATE DATABASE "{name}"'],
                       check=True, capture_output=True, text=True, timeout=60)
        return self.url(name)

    def url(self, database: str) -> str:
        return f"postgres://kcm@127.0.0.1:{self.port}/{database}"
