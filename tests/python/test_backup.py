"""`kcm backup` and `kcm restore` against the real binary.

The main test fills a server (two tenants, twenty-odd keys, aliases, a rotated key,
data keys), backs it up with `kcm --profile system-admin backup` while requests keep
coming, stops it, deletes its data directory keeping only the master key file (and
the clients' credentials file, which clients keep anyway), restores with
`kcm restore`, restarts on the restored directory and decrypts every ciphertext
with boto3. The other tests check refusals: a tampered or truncated archive, the
wrong master key, a data directory that holds a store, a tenant-admin calling
backup, and an existing output file.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
from pathlib import Path

import pytest

from kcmtest import KCM_BIN, cli_ok, unique, v1_error_code

pytestmark = pytest.mark.slow

N_KEYS = 20
PER_KEY = 3
PASSPHRASE = "backup test passphrase, long enough"


# --------------------------------------------------------------------- helpers


def run(args: list[str], env: dict | None = None, timeout: float = 90) -> subprocess.CompletedProcess:
    """Runs `kcm ARGS` with no KCM_* settings from the caller's environment."""
    full = {k: v for k, v in os.environ.items() if not k.startswith("KCM_")}
    full.update(env or {})
    return subprocess.run([str(KCM_BIN), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          stdin=subprocess.DEVNULL, timeout=timeout, env=full)


def failed(cp: subprocess.CompletedProcess, *phrases: str) -> str:
    err = cp.stderr.decode(errors="replace")
    assert cp.returncode != 0, f"{' '.join(map(str, cp.args))} succeeded but should not have"
    for phrase in phrases:
        assert phrase in err, f"expected {phrase!r} in stderr: {err[-2000:]}"
    return err


def backup(server, out: Path, profile: str = "system-admin", force: bool = False) -> subprocess.CompletedProcess:
    args = ["--endpoint", server.url, "--credentials-file", str(server.credentials_path),
            "--profile", profile, "--output", "json", "backup", "-o", str(out)]
    if force:
        args.append("--force")
    return run(args)


def restore(archive: Path, data_dir: Path, master_key: Path | None = None,
            env: dict | None = None) -> subprocess.CompletedProcess:
    args = ["--output", "json", "restore", "--input", str(archive), "--data-dir", str(data_dir)]
    if master_key is not None:
        args += ["--master-key-file", str(master_key)]
    return run(args, env=env)


def fill(server) -> list[tuple[str, bytes, bytes, dict]]:
    """Keys, aliases, a rotation, data keys and a second tenant; returns
    (profile-or-tenant-tag, ciphertext, plaintext, context) for every ciphertext."""
    kms = server.client("default")
    sealed = []
    for k in range(N_KEYS):
        kid = kms.create_key(Description=f"backup key {k}")["KeyMetadata"]["KeyId"]
        if k % 7 == 0:
            kms.create_alias(AliasName=f"alias/backup-{k}", TargetKeyId=kid)
        for i in range(PER_KEY):
            if k == 3 and i == 1:
                kms.rotate_key_on_demand(KeyId=kid)
            plaintext = f"plaintext {k}/{i} ".encode() + os.urandom(16)
            context = {"key": str(k), "n": str(i)}
            ct = kms.encrypt(KeyId=kid, Plaintext=plaintext, EncryptionContext=context)["CiphertextBlob"]
            sealed.append(("default", ct, plaintext, context))
        dk = kms.generate_data_key(KeyId=kid, KeySpec="AES_256")
        sealed.append(("default", dk["CiphertextBlob"], dk["Plaintext"], {}))
    body = server.create_tenant(unique("second"))
    other = server.client_for(body["access_key"])
    okid = other.create_key()["KeyMetadata"]["KeyId"]
    other.create_alias(AliasName="alias/backup-0", TargetKeyId=okid)
    for i in range(PER_KEY):
        plaintext = f"second tenant {i}".encode()
        ct = other.encrypt(KeyId="alias/backup-0", Plaintext=plaintext)["CiphertextBlob"]
        sealed.append(("second", ct, plaintext, {}))
    return sealed, body["access_key"]


class Busy:
    """Encrypts and creates keys on another thread until stopped (bounded in count)."""

    def __init__(self, server):
        kid, sec = server.creds("default")
        self.client = server.new_client(kid, sec)
        self.key = self.client.create_key(Description="busy")["KeyMetadata"]["KeyId"]
        self.stop = threading.Event()
        self.errors: list[str] = []
        self.done = 0
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        for i in range(2000):
            if self.stop.is_set():
                return
            try:
                self.client.encrypt(KeyId=self.key, Plaintext=b"busy %d" % i)
                if i % 10 == 0:
                    self.client.create_key(Description=f"busy {i}")
                self.done += 1
            except Exception as e:  # noqa: BLE001
                self.errors.append(repr(e))
                return

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(timeout=30)


def decrypt_all(srv, second_key, sealed):
    """Decrypts everything `fill` sealed, through `srv`; returns the clients of the
    default tenant and of the second key."""
    kms = srv.client("default")
    second = srv.client_for(second_key)
    for owner, ct, plaintext, context in sealed:
        client = kms if owner == "default" else second
        kw = {"EncryptionContext": context} if context else {}
        assert client.decrypt(CiphertextBlob=ct, **kw)["Plaintext"] == plaintext
    return kms, second


def keep(path: Path, into: Path) -> Path:
    into.mkdir(parents=True, exist_ok=True)
    kept = into / path.name
    shutil.copy2(path, kept)
    return kept


# --------------------------------------------------------------------- the round trip


def test_backup_while_serving_destroy_restore_decrypt_everything(spawn_server, tmp_path):
    srv = spawn_server()
    sealed, second_key = fill(srv)
    archive = tmp_path / "kcm.kcmbak"

    with Busy(srv) as busy:
        cp = cli_ok(backup(srv, archive))
    assert not busy.errors, busy.errors
    summary = json.loads(cp.stdout)
    assert summary["tables"]["service_keys"] >= N_KEYS + 2, summary
    assert summary["tables"]["tenants"] == 2, summary
    data = archive.read_bytes()
    assert data.startswith(b"KCMBAK1\n")
    assert oct(archive.stat().st_mode & 0o777) == oct(0o600)
    assert not list(tmp_path.glob(".*kcm-partial*")), "temporary download file left behind"
    for _, _, plaintext, _ in sealed:
        assert plaintext not in data, "the archive contains a plaintext"

    # Disaster: the data directory is gone. Kept apart: the archive, the master key
    # file, and (on the clients' side) the credentials file.
    kept = tmp_path / "kept"
    master = keep(srv.data_dir / "master.key", kept)
    credentials = keep(srv.credentials_path, kept)
    assert srv.stop() == 0
    shutil.rmtree(srv.data_dir)

    cp = cli_ok(restore(archive, srv.data_dir, master_key=master))
    report = json.loads(cp.stdout)
    assert report["tables"] == summary["tables"], (report, summary)
    assert report["rows"] == sum(summary["tables"].values())
    # The server reads its master key from the data directory by default: restored there.
    assert (srv.data_dir / "master.key").read_bytes() == master.read_bytes()
    assert not (srv.data_dir / "credentials").exists(), "restore must not write secrets"
    assert not list(srv.data_dir.parent.glob(".*kcm-restore*")), "staging directory left behind"
    shutil.copy2(credentials, srv.credentials_path)

    srv.start()
    kms, second = decrypt_all(srv, second_key, sealed)
    # Aliases, key metadata and the operator's access came back too.
    assert kms.describe_key(KeyId="alias/backup-7")["KeyMetadata"]["Description"] == "backup key 7"
    assert second.describe_key(KeyId="alias/backup-0")["KeyMetadata"]["KeyState"] == "Enabled"
    tenants = srv.v1_ok("GET", "/v1/tenants", profile="system-admin")
    assert len(tenants["tenants"]) == 2
    # The audit log came back whole: its chain (and signed checkpoints) verify.
    assert summary["tables"]["audit_records"] > 0, summary
    cp = cli_ok(run(["--endpoint", srv.url, "--credentials-file", str(srv.credentials_path),
                     "--output", "json", "audit", "verify"]))
    verdict = json.loads(cp.stdout)
    assert verdict["intact"] and verdict["records"] > 0, verdict
    # And the restored server works for new requests.
    kid = kms.create_key()["KeyMetadata"]["KeyId"]
    ct = kms.encrypt(KeyId=kid, Plaintext=b"after restore")["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=ct)["Plaintext"] == b"after restore"


def test_backup_and_restore_with_a_passphrase(spawn_server, tmp_path):
    env = {"KCM_MASTER_PASSPHRASE": PASSPHRASE}
    srv = spawn_server(env=env)
    kms = srv.client("default")
    kid = kms.create_key()["KeyMetadata"]["KeyId"]
    ct = kms.encrypt(KeyId=kid, Plaintext=b"passphrase protected")["CiphertextBlob"]
    archive = tmp_path / "pass.kcmbak"
    cli_ok(backup(srv, archive))
    credentials = keep(srv.credentials_path, tmp_path / "kept")
    assert srv.stop() == 0
    shutil.rmtree(srv.data_dir)

    # A wrong passphrase is refused and leaves nothing behind.
    failed(restore(archive, srv.data_dir, env={"KCM_MASTER_PASSPHRASE": "not the passphrase!"}),
           "different keystore/master key")
    assert not srv.data_dir.exists()
    # No passphrase and no master key file: refused, with what to do.
    failed(restore(archive, srv.data_dir), "--master-key-file", "KCM_MASTER_PASSPHRASE")
    assert not srv.data_dir.exists()

    cli_ok(restore(archive, srv.data_dir, env=env))
    assert not (srv.data_dir / "master.key").exists()
    shutil.copy2(credentials, srv.credentials_path)
    srv.start()
    assert srv.client("default").decrypt(CiphertextBlob=ct)["Plaintext"] == b"passphrase protected"


# --------------------------------------------------------------------- refusals


@pytest.fixture(scope="module")
def session_archive(server, tmp_path_factory):
    """A backup of the session server, and a kept copy of its master key."""
    d = tmp_path_factory.mktemp("archive")
    server.client("default").create_key(Description="in the session archive")
    archive = d / "session.kcmbak"
    cli_ok(backup(server, archive))
    return archive, keep(server.data_dir / "master.key", d / "kept")


def test_tampered_archive_is_refused_and_nothing_is_created(session_archive, tmp_path):
    archive, master = session_archive
    data = bytearray(archive.read_bytes())
    data[len(data) // 2] ^= 0x01
    tampered = tmp_path / "tampered.kcmbak"
    tampered.write_bytes(bytes(data))
    target = tmp_path / "restored"
    failed(restore(tampered, target, master_key=master), "the archive was modified", "failed authentication")
    assert not target.exists()
    assert list(tmp_path.iterdir()) == [tampered], list(tmp_path.iterdir())


def test_truncated_archive_is_refused_and_nothing_is_created(session_archive, tmp_path):
    archive, master = session_archive
    data = archive.read_bytes()
    for n, cut in enumerate([len(data) - 1, len(data) // 2, 100, 5]):
        truncated = tmp_path / f"truncated{n}.kcmbak"
        truncated.write_bytes(data[:cut])
        target = tmp_path / f"restored{n}"
        failed(restore(truncated, target, master_key=master), "the archive is truncated")
        assert not target.exists()


def test_appended_bytes_are_refused(session_archive, tmp_path):
    archive, master = session_archive
    longer = tmp_path / "longer.kcmbak"
    longer.write_bytes(archive.read_bytes() + b"\0")
    failed(restore(longer, tmp_path / "restored", master_key=master), "the archive was modified")
    assert not (tmp_path / "restored").exists()


def test_wrong_master_key_is_refused(session_archive, tmp_path):
    archive, _ = session_archive
    wrong = tmp_path / "wrong.key"
    wrong.write_text(os.urandom(32).hex() + "\n")
    wrong.chmod(0o600)
    failed(restore(archive, tmp_path / "restored", master_key=wrong),
           "the archive was made with a different keystore/master key")
    assert not (tmp_path / "restored").exists()


def test_restore_into_a_data_directory_that_holds_a_store_is_refused(session_archive, server, tmp_path):
    archive, master = session_archive
    target = tmp_path / "restored"
    cli_ok(restore(archive, target, master_key=master))
    before = sorted(p.name for p in target.iterdir())
    db = (target / "kcm.db").read_bytes()
    failed(restore(archive, target, master_key=master), "already holds")
    assert sorted(p.name for p in target.iterdir()) == before
    assert (target / "kcm.db").read_bytes() == db
    # The running session server's own data directory, too.
    failed(restore(archive, server.data_dir, master_key=master), "already holds")


def test_restore_into_an_existing_empty_directory(session_archive, tmp_path):
    archive, master = session_archive
    # One that group or others can enter is refused, as the server would refuse it.
    target = tmp_path / "empty"
    target.mkdir(mode=0o755)
    target.chmod(0o755)
    failed(restore(archive, target, master_key=master), f"chmod 700 {target}")
    assert list(target.iterdir()) == []
    target.chmod(0o700)
    cp = cli_ok(restore(archive, target, master_key=master))
    assert json.loads(cp.stdout)["tables"]["service_keys"] >= 1
    assert (target / "kcm.db").exists() and (target / "keystore-check").exists()


def test_tenant_admin_cannot_back_up(server, tmp_path):
    out = tmp_path / "denied.kcmbak"
    failed(backup(server, out, profile="default"), "AccessDenied")
    assert not out.exists()
    assert list(tmp_path.iterdir()) == [], "partial download left behind"
    r = server.v1("GET", "/v1/backup", profile="default")
    assert r.status_code == 403, r.text
    assert v1_error_code(r) == "AccessDenied"
    assert r.headers["Content-Type"].startswith("application/json")


def test_backup_never_overwrites_without_force(server, tmp_path):
    out = tmp_path / "exists.kcmbak"
    out.write_bytes(b"precious")
    failed(backup(server, out), "already exists", "--force")
    assert out.read_bytes() == b"precious"
    cli_ok(backup(server, out, force=True))
    assert out.read_bytes().startswith(b"KCMBAK1\n")


def test_backup_over_rest_has_a_length_and_octet_stream(server):
    r = server.v1("GET", "/v1/backup", profile="system-admin")
    assert r.status_code == 200, r.text[:300]
    assert r.headers["Content-Type"] == "application/octet-stream"
    assert int(r.headers["Content-Length"]) == len(r.content)
    assert r.content.startswith(b"KCMBAK1\n")


def test_help_texts_explain_what_to_keep():
    out = cli_ok(run(["backup", "--help"])).stdout.decode()
    assert "master key" in out and "system-admin" in out
    out = cli_ok(run(["restore", "--help"])).stdout.decode()
    assert "--master-key-file" in out and "KCM_MASTER_PASSPHRASE" in out
