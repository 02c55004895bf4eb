"""Faults of the store under a real `kcm serve` (issue 14, section 9; RELIABILITY.md
"Faults"): an idle server on SQLite writes nothing, and SIGTERM while PostgreSQL is down
ends the process promptly, losing nothing acknowledged.

The keystore faults (a plugin process killed mid-request, a PKCS#11 token going away)
are tested beside their keystores: test_plugin_keystore.py and test_pkcs11.py.
"""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import time

import pytest
from kcmtest import LOADED_SLACK_S, unique
from postgres import Postgres

# How long an idle server is watched: fifty scheduler ticks at the tests' 100 ms
# (BASE_SERVER_ENV), so a write per tick cannot hide in the window.
IDLE_WINDOW_S = 5.0
# How long the start's own writes may take to end (a bound, generous for a loaded machine).
SETTLE_BOUND_S = 15.0
# The bound on SIGTERM to exit while the store does not answer: the background work's
# shutdown grace (500 ms, RELIABILITY.md; measured about 0.5 s) and a loaded machine's
# slack. That the grace, not the store's 5 s acquire timeout, ended the wait is what the
# log's "the store did not answer in time" says, whatever the time.
STOP_BOUND_S = 0.5 + LOADED_SLACK_S


def _log(srv) -> str:
    return re.sub(r"\x1b\[[0-9;]*m", "", srv.stderr_path.read_text())


def test_an_idle_server_on_sqlite_writes_nothing(spawn_server):
    """The only node of a SQLite store needs no scheduler lease: before, it renewed the
    lease row by a commit on every tick, so an idle server appended a WAL frame and
    fsynced every scheduler interval, forever."""
    srv = spawn_server()
    db = srv.data_dir / "kcm.db"
    wal = db.with_name("kcm.db-wal")
    # A read-only connection of our own: its data_version changes when any other
    # connection commits to the database.
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        def version() -> int:
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
            return conn.execute("PRAGMA data_version").fetchone()[0]

        # Let the start's own writes (bootstrap, the first audit checkpoint) end:
        # wait for a second without a commit (before the fix there never was one).
        deadline = time.monotonic() + SETTLE_BOUND_S
        seen, quiet_since = version(), time.monotonic()
        while time.monotonic() - quiet_since < 1.0:
            assert time.monotonic() < deadline, "the server never stayed a second without a commit"
            time.sleep(0.1)
            if (now := version()) != seen:
                seen, quiet_since = now, time.monotonic()

        before, wal_before = version(), os.stat(wal)
        time.sleep(IDLE_WINDOW_S)
        after, wal_after = version(), os.stat(wal)
        assert after == before, f"the idle server committed to its store within {IDLE_WINDOW_S} s"
        assert (wal_after.st_size, wal_after.st_mtime_ns) == (wal_before.st_size, wal_before.st_mtime_ns), (
            f"the idle server wrote its WAL: {wal_before.st_size} -> {wal_after.st_size} bytes")

        # The probe does see a write (the test is not vacuous), and the server works.
        srv.client("default").create_key(Description=unique("after-idle"))
        assert version() != after, "a CreateKey should have committed"
    finally:
        conn.close()


def _postgres_processes(pg) -> list[int]:
    postmaster = int((pg.data / "postmaster.pid").read_text().split()[0])
    children = subprocess.run(["pgrep", "-P", str(postmaster)], capture_output=True, text=True,
                              timeout=10).stdout.split()
    return [postmaster, *map(int, children)]


@pytest.mark.parametrize("outage", ["stopped", "frozen"])
def test_sigterm_while_postgresql_is_down_exits_promptly_and_loses_nothing(tmp_path, spawn_server, outage):
    """PostgreSQL stopped (`pg_ctl stop -m immediate`: connections refused) or frozen
    (SIGSTOP: connections hang), then SIGTERM to a node holding the scheduler lease: the
    node exits within a bound, says why in its log, and what it acknowledged before is
    in the database when it comes back. Before, the shutdown waited for the tick in
    progress (or the last checkpoint) to get a connection: 5 s, the pool's timeout."""
    pg = Postgres(tmp_path / "pg")
    frozen: list[int] = []
    try:
        url = pg.create_database("kcm")
        srv = spawn_server(data_dir=tmp_path / "node", env={"KCM_DATABASE_URL": url})
        kms = srv.client("default")
        key_id = kms.create_key(Description=unique("acknowledged"))["KeyMetadata"]["KeyId"]
        blob = kms.encrypt(KeyId=key_id, Plaintext=b"acknowledged")["CiphertextBlob"]
        deadline = time.monotonic() + 10
        while "held=true" not in _log(srv):
            assert time.monotonic() < deadline, "the only node never took the scheduler lease"
            time.sleep(0.05)

        if outage == "stopped":
            pg.stop("immediate")
        else:
            frozen = _postgres_processes(pg)
            for pid in frozen:
                os.kill(pid, signal.SIGSTOP)
        started = time.monotonic()
        srv.proc.send_signal(signal.SIGTERM)
        rc = srv.proc.wait(timeout=30)
        took = time.monotonic() - started
        print(f"PostgreSQL {outage}: SIGTERM to exit {took:.3f} s")
        assert rc == 0, srv.log_tail()
        assert took < STOP_BOUND_S, f"kcm took {took:.2f} s to stop while PostgreSQL was {outage}"
        log = _log(srv)
        assert "the store did not answer in time" in log, srv.log_tail()
        assert "stopped" in log.splitlines()[-1], srv.log_tail()
    finally:
        for pid in frozen:
            os.kill(pid, signal.SIGCONT)
        pg.stop("immediate")

    # Nothing acknowledged was lost: the node comes back on the same database and
    # decrypts what it encrypted, under the key it created.
    pg.start()
    try:
        srv.start()
        kms = srv.client("default")
        assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["Enabled"]
        assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"acknowledged"
        srv.stop()
    finally:
        pg.stop("immediate")
