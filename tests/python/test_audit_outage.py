"""What a request may do when its audit record cannot be written yet (issue 14, §9).

* PostgreSQL stopped: Encrypt and Decrypt of keys the node has cached keep working
  within the revocation bound, with the audit log on; their records wait in the node's
  audit spool (`<data_dir>/audit-spool`, durable before the answer) and reach their
  chain, once each, when the database is back — the chain verifies intact.
* A change whose audit record can be written nowhere (the database refuses audit
  inserts and the spool is off) is answered with an error that says it was carried
  out — never "nothing was changed", which would make SDK retries create a second key.
* SQLite with its disk full: requests are refused with a message that names the full
  disk, /ready says so, and both recover once space is freed.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest
import requests
from botocore.exceptions import ClientError

from kcmtest import LOADED_SLACK_S, kms_error, poll, unique, works_again_within
from postgres import Postgres
from test_audit import fetch_chain, verify

BOUND_MS = 30_000


def psql(pg: Postgres, sql: str) -> None:
    subprocess.run(["psql", "-h", "127.0.0.1", "-p", str(pg.port), "-U", "kcm", "-d", "kcm",
                    "-v", "ON_ERROR_STOP=1", "-c", sql], check=True, capture_output=True, text=True,
                   timeout=60)


def spooled(server) -> list[Path]:
    d = server.data_dir / "audit-spool"
    return sorted(d.glob("*.jsonl")) if d.exists() else []


@pytest.fixture
def pg(tmp_path):
    pg = Postgres(tmp_path / "pg")
    pg.create_database("kcm")
    yield pg
    pg.stop("immediate")


def test_cached_keys_serve_through_an_outage_and_their_records_arrive_after(pg, spawn_server):
    srv = spawn_server(env={"KCM_DATABASE_URL": pg.url("kcm"), "KCM_REVOCATION_BOUND_MS": str(BOUND_MS)})
    kms = srv.client("default")
    key = kms.create_key(Description=unique("outage"))["KeyMetadata"]["KeyId"]
    blob = kms.encrypt(KeyId=key, Plaintext=b"before")["CiphertextBlob"]
    kms.decrypt(CiphertextBlob=blob)

    pg.stop("immediate")
    request_ids, started = [], time.monotonic()
    while time.monotonic() - started < 4:
        out = kms.encrypt(KeyId=key, Plaintext=b"during")
        request_ids.append(out["ResponseMetadata"]["RequestId"])
        back = kms.decrypt(CiphertextBlob=out["CiphertextBlob"])
        assert back["Plaintext"] == b"during"
        request_ids.append(back["ResponseMetadata"]["RequestId"])
    assert len(request_ids) >= 20, request_ids
    assert spooled(srv), "requests were acknowledged during the outage, but nothing is in the spool"
    for segment in spooled(srv):
        assert segment.stat().st_mode & 0o777 == 0o600
        assert b"during" not in segment.read_bytes()
    # Management needs the store: refused (the retryable 503), and the node is not ready.
    with kms_error("DependencyTimeoutException", status=503):
        kms.create_key(Description="during the outage")
    assert requests.get(srv.url + "/ready", timeout=10).status_code == 503
    assert "local audit spool" in srv.log_tail(400)

    pg.start()
    back = time.monotonic()
    poll(lambda: not spooled(srv), 30, what="the spool to be forwarded")
    print(f"{len(request_ids)} requests acknowledged during the outage; spool forwarded "
          f"{time.monotonic() - back:.2f} s after PostgreSQL was back")
    works_again_within(lambda: kms.create_key(Description="after"), 30, "the node did not recover")
    chain = fetch_chain(srv)
    counts: dict[str, int] = {}
    for record in chain:
        counts[record["request_id"]] = counts.get(record["request_id"], 0) + 1
    missing = [r for r in request_ids if counts.get(r) != 1]
    assert not missing, f"{len(missing)} of {len(request_ids)} requests have no (or several) records"
    assert verify(srv)["intact"]


def test_a_frozen_database_holds_a_request_at_most_the_audit_deadline(pg, spawn_server):
    """PostgreSQL frozen (SIGSTOP on every process: connections hang rather than
    fail). The audit writer gives the store 2 s, then spools: one request waits that
    long, the ones after it do not; /ready answers 503 within its own 1 s deadline."""
    import signal
    from test_cluster import postgres_processes

    srv = spawn_server(env={"KCM_DATABASE_URL": pg.url("kcm"), "KCM_REVOCATION_BOUND_MS": str(BOUND_MS)})
    kms = srv.client("default")
    key = kms.create_key(Description=unique("frozen"))["KeyMetadata"]["KeyId"]
    kms.encrypt(KeyId=key, Plaintext=b"warm")
    frozen = postgres_processes(pg)
    for pid in frozen:
        os.kill(pid, signal.SIGSTOP)
    try:
        took, request_ids = [], []
        for _ in range(10):
            started = time.monotonic()
            out = kms.encrypt(KeyId=key, Plaintext=b"frozen")
            took.append(time.monotonic() - started)
            request_ids.append(out["ResponseMetadata"]["RequestId"])
        print("Encrypt while frozen took " + ", ".join(f"{t:.2f}" for t in took) + " s")
        # The one request that waits waits the audit deadline (2 s), and a loaded
        # machine's slack at most.
        assert max(took) < 2 + LOADED_SLACK_S, took
        # Only one batch of records waited on the frozen store: the writer tried it once,
        # gave up after the deadline and said so; every later record went straight to the
        # spool. The writer's own words count the waits, whatever this machine's speed.
        gave_up = srv.stderr_path.read_text().count("did not take audit records within")
        assert gave_up == 1, f"the writer waited on the frozen store {gave_up} times: {took}"
        started = time.monotonic()
        ready = requests.get(srv.url + "/ready", timeout=1 + 2 * LOADED_SLACK_S)
        # Within /ready's own 1 s deadline, and a loaded machine's slack.
        assert ready.status_code == 503 and time.monotonic() - started < 1 + LOADED_SLACK_S, ready.text
    finally:
        for pid in frozen:
            os.kill(pid, signal.SIGCONT)
    poll(lambda: not spooled(srv), 30, what="the spool to be forwarded after the thaw")
    chain = fetch_chain(srv)
    counts: dict[str, int] = {}
    for record in chain:
        counts[record["request_id"]] = counts.get(record["request_id"], 0) + 1
    assert all(counts.get(r, 0) >= 1 for r in request_ids), "a record acknowledged while frozen is missing"
    # A batch the frozen store committed after the writer had given up on it is
    # forwarded from the spool as well (README: the audit spool).
    print(f"records of the frozen requests appearing twice: {sum(counts[r] > 1 for r in request_ids)}")
    assert verify(srv)["intact"]


def test_a_spool_left_by_a_stopped_node_is_forwarded_when_it_starts(pg, spawn_server):
    env = {"KCM_DATABASE_URL": pg.url("kcm"), "KCM_REVOCATION_BOUND_MS": str(BOUND_MS)}
    srv = spawn_server(env=env)
    kms = srv.client("default")
    key = kms.create_key(Description=unique("restart"))["KeyMetadata"]["KeyId"]
    kms.encrypt(KeyId=key, Plaintext=b"warm")
    pg.stop("immediate")
    rid = kms.encrypt(KeyId=key, Plaintext=b"x")["ResponseMetadata"]["RequestId"]
    assert spooled(srv)
    srv.stop()
    pg.start()
    srv.start()
    poll(lambda: not spooled(srv), 30, what="the earlier run's spool to be forwarded")
    assert [r for r in fetch_chain(srv) if r["request_id"] == rid], "the spooled record never arrived"
    assert verify(srv)["intact"]


def test_a_change_whose_record_cannot_be_written_says_it_was_carried_out(pg, spawn_server):
    srv = spawn_server(env={"KCM_DATABASE_URL": pg.url("kcm"), "KCM_AUDIT_SPOOL": "false"})
    kms = srv.client("default")
    key = kms.create_key(Description=unique("refused"))["KeyMetadata"]["KeyId"]
    before = len(kms.list_keys(Limit=1000)["Keys"])
    psql(pg, """
        CREATE FUNCTION refuse_audit() RETURNS trigger AS $$
        BEGIN RAISE EXCEPTION 'audit inserts refused by the test'; END $$ LANGUAGE plpgsql;
        CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_records
            FOR EACH ROW EXECUTE FUNCTION refuse_audit();""")
    # KMS's internal error, with a status SDKs do not retry (a retried CreateKey would
    # make a second key): crates/kcm-aws-api/src/error.rs.
    with kms_error("KMSInternalException", status=400) as ei:
        kms.create_key(Description="made, not audited")
    err = ei.value.response["Error"]
    assert "carried out" in err["Message"] and "nothing was changed" not in err["Message"], err
    # A request that changes nothing may say so.
    with kms_error("DependencyTimeoutException", status=503) as ei:
        kms.encrypt(KeyId=key, Plaintext=b"x")
    assert "carried out" not in ei.value.response["Error"]["Message"]
    psql(pg, "DROP TRIGGER refuse_audit ON audit_records")
    # The key the error spoke of exists: the message was true.
    assert len(kms.list_keys(Limit=1000)["Keys"]) == before + 1
    assert "a change was committed but its audit record could not be written" in srv.log_tail(400)


@pytest.fixture
def small_disk(tmp_path):
    """A 24 MiB tmpfs: a disk that can be filled. Needs root (CI runs as root)."""
    mount = tmp_path / "small-disk"
    mount.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m,mode=0700", "tmpfs", str(mount)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {r.stderr.strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def fill(path: Path) -> None:
    """Writes `path` until the disk under it is full (unbuffered: every byte that
    fits is written, and nothing is left to fail at close)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        for size in (1 << 20, 4096, 1):
            block = b"\0" * size
            try:
                while True:
                    os.write(fd, block)
            except OSError:
                pass
    finally:
        os.close(fd)


def test_sqlite_with_its_disk_full_says_so_and_recovers(small_disk, spawn_server):
    srv = spawn_server(data_dir=small_disk / "data")
    kms = srv.client("default")
    key = kms.create_key(Description=unique("full"))["KeyMetadata"]["KeyId"]
    kms.encrypt(KeyId=key, Plaintext=b"x")
    filler = small_disk / "filler"
    fill(filler)

    def refused():
        try:
            kms.encrypt(KeyId=key, Plaintext=b"x" * 4096)
        except ClientError as e:
            return e
        return None

    # SQLite may still have room in pages it holds; a few requests use it up.
    err = poll(refused, 30, interval=0.05, what="a request refused for the full disk")
    message = err.response["Error"]["Message"]
    print("refused with:", message)
    assert "disk is full" in message, err.response
    assert err.response["ResponseMetadata"]["HTTPStatusCode"] == 503
    ready = requests.get(srv.url + "/ready", timeout=10)
    assert ready.status_code == 503 and "disk is full" in ready.text, ready.text
    assert "disk" in srv.log_tail(400) and "full" in srv.log_tail(400)

    os.remove(filler)
    poll(lambda: requests.get(srv.url + "/ready", timeout=10).status_code == 200, 30,
         what="/ready after space was freed")
    assert kms.decrypt(CiphertextBlob=kms.encrypt(KeyId=key, Plaintext=b"y")["CiphertextBlob"])["Plaintext"] == b"y"
    assert verify(srv)["intact"]
