"""kill -9 in the middle of the operations that rewrite key material.

Root key rotation, system key rotation, the re-wrap of the keys below a rotated system
key, the destruction at the end of a deletion window, and an offline restore are each
interrupted by SIGKILL at several moments. After each kill the server starts again;
every ciphertext made before still decrypts (or, for a destroyed key, is refused as
one); the operation can be finished or done again; and the audit chain verifies.
Nothing here depends on where exactly the kill lands: each moment is checked the
same way, so a crash window anywhere in the operation fails the test.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time

import pytest
from botocore.exceptions import ClientError

from kcmtest import FAST_DAY_SECONDS, KCM_BIN, cli_ok, error_code, kms_error, unique

pytestmark = pytest.mark.slow

# Keys below the rotated system (each with two versions): enough that re-wrapping them
# takes a while, so kills land inside it.
KEYS = 30
# When the kill comes, after the operation was sent (seconds).
DELAYS = (0.0, 0.01, 0.03, 0.08, 0.2)


class Estate:
    """A server with a second root key, a system below it holding KEYS service keys of two
    versions each, and a ciphertext under each version."""

    def __init__(self, spawn_server):
        self.srv = spawn_server(env={"KCM_DAY_SECONDS": str(FAST_DAY_SECONDS)})
        self.root = self.srv.v1_ok("POST", "/v1/root-keys", expect=(201,), json_body={"description": "crash"})
        self.system = self.srv.v1_ok("POST", "/v1/systems", expect=(201,),
                                     json_body={"name": unique("crash"), "root_key_id": self.root["id"]})
        self.access_key = self.srv.create_access_key("tenant-admin", system=self.system["id"])
        kms = self.client()
        self.sealed: list[tuple[str, bytes, bytes]] = []
        for i in range(KEYS):
            kid = kms.create_key(Description=unique("crash"))["KeyMetadata"]["KeyId"]
            old = b"v1 %d" % i
            self.sealed.append((kid, kms.encrypt(KeyId=kid, Plaintext=old)["CiphertextBlob"], old))
            kms.rotate_key_on_demand(KeyId=kid)
            new = b"v2 %d" % i
            self.sealed.append((kid, kms.encrypt(KeyId=kid, Plaintext=new)["CiphertextBlob"], new))

    def client(self):
        return self.srv.client_for(self.access_key)

    def kill_during(self, send, delay: float) -> None:
        """Sends `send()` from a thread, kills the server `delay` seconds later, and
        starts it again."""
        sent = threading.Thread(target=_quietly(send), daemon=True)
        sent.start()
        time.sleep(delay)
        self.srv.kill()
        sent.join(timeout=30)
        self.srv.start()

    def everything_decrypts(self, destroyed: frozenset[str] = frozenset(), where: str = "") -> None:
        kms = self.client()
        for kid, blob, plaintext in self.sealed:
            if kid in destroyed:
                continue
            try:
                got = kms.decrypt(CiphertextBlob=blob)["Plaintext"]
            except ClientError as e:
                raise AssertionError(f"{where}: a ciphertext of {kid} no longer decrypts: {e}") from e
            assert got == plaintext, where

    def audit_intact(self, where: str) -> None:
        cp = cli_ok(subprocess.run(
            [str(KCM_BIN), "--endpoint", self.srv.url, "--credentials-file", str(self.srv.credentials_path),
             "--output", "json", "audit", "verify"], capture_output=True, timeout=120))
        report = json.loads(cp.stdout)
        assert report["intact"], f"{where}: {report}"


def _quietly(send):
    """`send`, with the error a killed server gives its client swallowed."""

    def run():
        try:
            send()
        except Exception:  # noqa: BLE001 - the connection dies with the server: expected
            pass

    return run


@pytest.fixture
def estate(spawn_server):
    return Estate(spawn_server)


def test_kill9_during_root_key_rotation(estate):
    srv = estate.srv
    for delay in DELAYS:
        where = f"root rotation killed after {delay * 1000:.0f} ms"
        estate.kill_during(lambda: srv.v1("POST", f"/v1/root-keys/{estate.root['id']}/rotate"), delay)
        estate.everything_decrypts(where=where)
        root = srv.v1_ok("GET", f"/v1/root-keys/{estate.root['id']}")
        assert root["state"] == "active", (where, root)
        # And it can be done again, after which everything still decrypts across a restart.
        rotated = srv.v1_ok("POST", f"/v1/root-keys/{estate.root['id']}/rotate")
        assert rotated["applied"] is True, (where, rotated)
        srv.restart()
        estate.everything_decrypts(where=where + ", rotated again")
    estate.audit_intact("after the root rotations")


def finish_system_rotation(srv, system_id: str) -> dict:
    """Re-wraps what a rotation left, or rotates afresh when none is under way."""
    state = srv.v1("POST", f"/v1/systems/{system_id}/rewrap?limit=1000")
    if state.status_code == 409:  # nothing to re-wrap: no rotation under way
        state = srv.v1("POST", f"/v1/systems/{system_id}/rotate-key")
    assert state.status_code == 200, state.text
    body = state.json()
    while body["remaining"]:
        body = srv.v1_ok("POST", f"/v1/systems/{system_id}/rewrap?limit=1000")
    return body


def test_kill9_during_system_key_rotation_and_its_rewrap(estate):
    srv, system_id = estate.srv, estate.system["id"]
    for delay in DELAYS:
        where = f"system rotation killed after {delay * 1000:.0f} ms"
        before = srv.v1_ok("GET", f"/v1/systems/{system_id}")["system_key_version"]
        estate.kill_during(lambda: srv.v1("POST", f"/v1/systems/{system_id}/rotate-key"), delay)
        after = srv.v1_ok("GET", f"/v1/systems/{system_id}")["system_key_version"]
        assert after in (before, before + 1), (where, before, after)
        estate.everything_decrypts(where=where)
        finish_system_rotation(srv, system_id)
        estate.everything_decrypts(where=where + ", finished")

        # A rotation started whole, then its re-wrap killed part-way.
        where = f"re-wrap killed after {delay * 1000:.0f} ms"
        started = srv.v1_ok("POST", f"/v1/systems/{system_id}/rotate-key")
        assert started["remaining"] >= 2 * KEYS, started
        estate.kill_during(lambda: srv.v1("POST", f"/v1/systems/{system_id}/rewrap?limit=1000"), delay)
        estate.everything_decrypts(where=where)
        done = finish_system_rotation(srv, system_id)
        assert done["remaining"] == 0, (where, done)
        srv.restart()
        estate.everything_decrypts(where=where + ", finished and restarted")
    estate.audit_intact("after the system rotations")


def key_state(kms, kid: str) -> str:
    try:
        return kms.describe_key(KeyId=kid)["KeyMetadata"]["KeyState"]
    except ClientError as e:
        assert error_code(e) == "NotFoundException", e
        return "Gone"


def test_kill9_as_deletion_windows_end(estate):
    """Keys whose 7-day windows (0.35 s here) end while the server is killed: each is
    either still pending deletion or destroyed — never half — and the destruction
    finishes after the restart; every other key still decrypts."""
    srv = estate.srv
    kms = estate.client()
    ids = sorted({kid for kid, _, _ in estate.sealed})
    doomed: set[str] = set()
    batches = [ids[i::len(DELAYS)] for i in range(len(DELAYS))][:-1]  # keep one batch alive
    window = 7 * FAST_DAY_SECONDS
    for batch, delay in zip(batches, DELAYS):
        where = f"killed {window + delay:.2f} s after scheduling {len(batch)} deletions"
        for kid in batch:
            kms.schedule_key_deletion(KeyId=kid, PendingWindowInDays=7)
        doomed |= set(batch)
        time.sleep(window + delay)
        srv.kill()
        srv.start()
        kms = estate.client()
        for kid in batch:
            assert key_state(kms, kid) in ("PendingDeletion", "Destroyed", "Gone"), (where, kid)
        estate.everything_decrypts(destroyed=frozenset(doomed), where=where)
    # After the restarts, every window that ended is carried out.
    deadline = time.monotonic() + 20
    while any(key_state(kms, kid) == "PendingDeletion" for kid in doomed):
        assert time.monotonic() < deadline, "deletion windows that ended were not carried out after restarts"
        time.sleep(0.2)
    for kid, blob, _ in estate.sealed:
        if kid in doomed:
            # A destroyed key's ciphertext is answered as one whose key never existed.
            with kms_error("InvalidCiphertextException"):
                kms.decrypt(CiphertextBlob=blob)
    estate.everything_decrypts(destroyed=frozenset(doomed), where="after the windows ended")
    estate.audit_intact("after the deletions")


def test_kill9_during_a_restore(estate, tmp_path):
    """An offline restore killed at any moment leaves either no store (and a second
    restore succeeds) or the whole store — never a part of one that a server would serve."""
    srv = estate.srv
    archive = tmp_path / "kcm.kcmbak"
    cli_ok(subprocess.run([str(KCM_BIN), "--endpoint", srv.url, "--credentials-file", str(srv.credentials_path),
                           "--profile", "system-admin", "--output", "json", "backup", "-o", str(archive)],
                          capture_output=True, timeout=120))
    master = tmp_path / "master.key"
    shutil.copy2(srv.data_dir / "master.key", master)
    credentials = tmp_path / "credentials"
    shutil.copy2(srv.credentials_path, credentials)
    assert srv.stop() == 0
    original = srv.data_dir

    def restore_cmd(target):
        return [str(KCM_BIN), "restore", "--input", str(archive), "--data-dir", str(target),
                "--master-key-file", str(master)]

    # How long a whole restore takes here; the kills land across that span.
    started = time.monotonic()
    cli_ok(subprocess.run(restore_cmd(tmp_path / "timed"), capture_output=True, timeout=120))
    whole = time.monotonic() - started
    for i, fraction in enumerate((0.05, 0.25, 0.5, 0.7, 0.85, 0.95)):
        delay = whole * fraction
        where = f"restore killed after {delay * 1000:.0f} ms of {whole * 1000:.0f}"
        target = tmp_path / f"restored-{i}"
        cmd = restore_cmd(target)
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(delay)
        proc.kill()
        proc.wait(timeout=10)
        holds_store = (target / "kcm.db").exists()
        if not holds_store:
            again = subprocess.run(cmd, capture_output=True, timeout=120)
            assert again.returncode == 0, (where, again.stderr.decode(errors="replace"))
            leftovers = b"left by an earlier restore that was interrupted" in again.stderr
            print(f"{where}: no store yet; restored again{' (removed the staging left behind)' if leftovers else ''}")
        else:
            # The store was in place: then it is whole, and a second restore is refused.
            again = subprocess.run(cmd, capture_output=True, timeout=120)
            assert again.returncode != 0 and b"already holds a kcm store" in again.stderr, (where, again.stderr)
            print(f"{where}: the store was in place, whole")
        # What a killed restore left beside the data directory (part of a store, a copy of
        # the master key) is gone: the second restore removed it.
        assert not list(tmp_path.glob(f".{target.name}.kcm-restore-*")), (where, list(tmp_path.iterdir()))
        shutil.copy2(credentials, target / "credentials")
        srv.data_dir = target
        srv.start()
        estate.everything_decrypts(where=where)
        estate.audit_intact(where)
        assert srv.stop() == 0
    srv.data_dir = original
