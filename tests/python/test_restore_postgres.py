"""`kcm restore` into a PostgreSQL database, against the real binary and a private
PostgreSQL (tests/python/postgres.py).

The main test fills a server on SQLite, backs it up, restores the archive into an
empty database with `KCM_DATABASE_URL` (a role that must log in with its password),
starts a node on that database and decrypts every ciphertext with boto3; restoring
again into the now occupied database is refused and changes nothing. The database
URL's password never appears in what `kcm restore` prints. The other test checks
that a refusal by the database itself (a row the early check does not look for)
leaves no data directory behind.
"""

from __future__ import annotations

import json
import secrets
import shutil
import subprocess
from pathlib import Path

import pytest
from kcmtest import cli_ok
from postgres import Postgres
from test_backup import N_KEYS, backup, decrypt_all, failed, fill, keep, restore, run

pytestmark = pytest.mark.slow

ROLE = "kcm_restore"


class Database:
    """A private PostgreSQL with a role that must give its password (scram-sha-256)."""

    def __init__(self, root: Path):
        self.pg = Postgres(root)
        self.password = "pw" + secrets.token_hex(12)
        self.psql("postgres", f"CREATE ROLE {ROLE} LOGIN PASSWORD '{self.password}'")
        # postgres.py sets up trust for everyone; the first matching line wins, so
        # this one makes the role's password necessary.
        hba = self.pg.data / "pg_hba.conf"
        hba.write_text(f"host all {ROLE} 127.0.0.1/32 scram-sha-256\n" + hba.read_text())
        self.psql("postgres", "SELECT pg_reload_conf()")

    def psql(self, database: str, sql: str) -> str:
        cp = subprocess.run(["psql", "-h", "127.0.0.1", "-p", str(self.pg.port), "-U", "kcm", "-d", database,
                             "-v", "ON_ERROR_STOP=1", "-At", "-c", sql],
                            check=True, capture_output=True, text=True, timeout=60)
        return cp.stdout.strip()

    def create(self, name: str, password: str | None = None) -> str:
        """A new empty database owned by the role; its URL with `password`."""
        self.psql("postgres", f'CREATE DATABASE "{name}" OWNER {ROLE}')
        return self.url(name, password or self.password)

    def url(self, name: str, password: str) -> str:
        return f"postgres://{ROLE}:{password}@127.0.0.1:{self.pg.port}/{name}"

    def target(self, name: str) -> str:
        """The URL as kcm may print it."""
        return f"postgres://{ROLE}@127.0.0.1:{self.pg.port}/{name}"

    def row_counts(self, name: str) -> dict[str, int]:
        tables = self.psql(name, "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")
        return {t: int(self.psql(name, f'SELECT count(*) FROM "{t}"')) for t in tables.split()}


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    d = Database(tmp_path_factory.mktemp("restore-pg") / "pg")
    yield d
    d.pg.stop("immediate")


def output(cp: subprocess.CompletedProcess) -> str:
    return cp.stdout.decode(errors="replace") + cp.stderr.decode(errors="replace")


def test_restore_into_an_empty_postgresql_database_then_serve_from_it(spawn_server, db, tmp_path):
    # A server on SQLite, filled, backed up, stopped; kept: archive, master key, credentials.
    srv = spawn_server()
    sealed, second_key = fill(srv)
    archive = tmp_path / "kcm.kcmbak"
    summary = json.loads(cli_ok(backup(srv, archive)).stdout)
    kept = tmp_path / "kept"
    master = keep(srv.data_dir / "master.key", kept)
    credentials = keep(srv.credentials_path, kept)
    assert srv.stop() == 0

    url = db.create("restored")
    # The role's password is really needed: a wrong one is refused, and neither
    # password is printed.
    wrong = "pw" + secrets.token_hex(12)
    node = tmp_path / "node"
    cp = restore(archive, node, master_key=master, env={"KCM_DATABASE_URL": db.url("restored", wrong)})
    failed(cp, "cannot open the PostgreSQL store")
    assert wrong not in output(cp) and db.password not in output(cp), output(cp)
    assert not node.exists()
    assert "authentication" in output(cp), output(cp)

    cp = cli_ok(restore(archive, node, master_key=master, env={"KCM_DATABASE_URL": url}))
    assert db.password not in output(cp), output(cp)
    report = json.loads(cp.stdout)
    assert report["store"] == db.target("restored"), report
    assert report["tables"] == summary["tables"], (report, summary)
    # The node's files are in its data directory; the store is not.
    assert (node / "master.key").read_bytes() == master.read_bytes()
    assert (node / "keystore-check").exists()
    assert not (node / "kcm.db").exists()
    assert not list(tmp_path.glob(".*kcm-restore*")), "staging directory left behind"
    counts = db.row_counts("restored")
    for table, rows in summary["tables"].items():
        assert counts[table] == rows, (table, counts, summary)

    # A node on the database serves everything that was encrypted before.
    shutil.copy2(credentials, node / "credentials")
    pg_node = spawn_server(data_dir=node, env={"KCM_DATABASE_URL": url})
    kms, _ = decrypt_all(pg_node, second_key, sealed)
    assert kms.describe_key(KeyId="alias/backup-7")["KeyMetadata"]["Description"] == "backup key 7"
    assert len(kms.list_keys(Limit=1000)["Keys"]) >= N_KEYS
    cp = cli_ok(run(["--endpoint", pg_node.url, "--credentials-file", str(pg_node.credentials_path),
                 "--output", "json", "audit", "verify"]))
    verdict = json.loads(cp.stdout)
    assert verdict["intact"] and verdict["records"] > 0, verdict
    assert not (node / "kcm.db").exists(), "the node must use PostgreSQL, not SQLite"
    assert pg_node.stop() == 0

    # Restoring again into the occupied database is refused and changes nothing.
    before = db.row_counts("restored")
    again = tmp_path / "again"
    cp = restore(archive, again, master_key=master, env={"KCM_DATABASE_URL": url})
    failed(cp, f"the database at {db.target('restored')} already holds a kcm store",
           "restore only into an empty database")
    assert db.password not in output(cp), output(cp)
    assert not again.exists()
    assert db.row_counts("restored") == before


def test_a_refusal_by_the_database_leaves_nothing_behind(server, db, tmp_path):
    archive = tmp_path / "session.kcmbak"
    cli_ok(backup(server, archive))
    master = server.data_dir / "master.key"
    url = db.create("stray")
    target = tmp_path / "node"

    # Not an archive: refused after the schema was made, before anything else.
    junk = tmp_path / "junk.kcmbak"
    junk.write_bytes(b"not an archive")
    failed(restore(junk, target, master_key=master, env={"KCM_DATABASE_URL": url}),
           "not a kcm backup archive")
    assert not target.exists()
    # One row the early check does not look at: the database's own check, inside the
    # restore's transaction, refuses it once every local file is staged; the staging
    # directory is removed and no data directory appears.
    db.psql("stray", "INSERT INTO meta (key, value) VALUES ('stray', 'row')")
    before = db.row_counts("stray")
    cp = restore(archive, target, master_key=master, env={"KCM_DATABASE_URL": url})
    failed(cp, "the store is not empty", f"nothing was written to {target} or to the database at "
           f"{db.target('stray')}")
    assert db.password not in output(cp), output(cp)
    assert not target.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["junk.kcmbak", "session.kcmbak"]
    assert db.row_counts("stray") == before


def test_restore_help_explains_both_destinations():
    out = cli_ok(run(["restore", "--help"])).stdout.decode()
    assert "KCM_DATABASE_URL" in out and "empty" in out and "data directory" in out
    assert "cluster" in out
