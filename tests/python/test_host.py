"""What kcm does on the host it runs on: where its secrets come from, who may read its
files, what it refuses to start with, what its log and its refusals give away, and
that an interrupted `kcm decrypt -o F` leaves no plaintext behind."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
from pathlib import Path

import pytest
import requests

from kcmtest import KCM_BIN, Server, ServerStartError, cli_ok, free_port, poll

PASSPHRASE = "host test passphrase, long enough"


def write_private(path: Path, text: str, mode: int = 0o600) -> Path:
    """`text` and a line break in a new file at `path` with `mode`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    path.write_text(text + "\n")
    path.chmod(mode)
    return path


def refused(srv: Server, *needles: str) -> str:
    """Starts `srv`, which must refuse to start; its log, which must contain `needles`."""
    with pytest.raises(ServerStartError) as e:
        srv.start(timeout=20)
    assert not srv.running
    for needle in needles:
        assert needle in str(e.value), str(e.value)
    return str(e.value)


def round_trip(srv: Server, plaintext: bytes) -> bytes:
    kms = srv.client("default")
    kid = kms.create_key()["KeyMetadata"]["KeyId"]
    return kms.encrypt(KeyId=kid, Plaintext=plaintext)["CiphertextBlob"]


# --------------------------------------------------------------------- the passphrase


def test_the_passphrase_comes_from_a_private_file(spawn_server, tmp_path):
    secret = write_private(tmp_path / "secrets" / "passphrase", PASSPHRASE)
    srv = spawn_server(env={"KCM_MASTER_PASSPHRASE_FILE": str(secret)})
    ct = round_trip(srv, b"from a file")
    # A passphrase keystore (its salt file), not a master key file.
    assert (srv.data_dir / "keystore-params.json").exists()
    assert not (srv.data_dir / "master.key").exists()
    environ = Path(f"/proc/{srv.proc.pid}/environ").read_bytes()
    assert PASSPHRASE.encode() not in environ
    assert srv.stop() == 0

    # The same passphrase as a systemd credential opens the same keystore.
    credentials = tmp_path / "credentials-directory"
    write_private(credentials / "kcm-master-passphrase", PASSPHRASE, mode=0o400)
    srv.extra_env = {"CREDENTIALS_DIRECTORY": str(credentials)}
    srv.start()
    assert srv.client("default").decrypt(CiphertextBlob=ct)["Plaintext"] == b"from a file"
    assert srv.stop() == 0

    # A wrong one in the credential is refused as a wrong passphrase is.
    write_private(credentials / "kcm-master-passphrase", "not the passphrase at all", mode=0o600)
    refused(srv, "does not match")


def test_a_passphrase_file_others_can_read_is_refused(spawn_server, tmp_path):
    secret = write_private(tmp_path / "passphrase", PASSPHRASE, mode=0o644)
    srv = spawn_server(env={"KCM_MASTER_PASSPHRASE_FILE": str(secret)}, start=False)
    refused(srv, f"chmod 600 {secret}")
    assert not (srv.data_dir / "keystore-params.json").exists()


def test_a_passphrase_in_a_file_and_in_the_environment_is_refused(spawn_server, tmp_path):
    secret = write_private(tmp_path / "passphrase", PASSPHRASE)
    srv = spawn_server(env={"KCM_MASTER_PASSPHRASE_FILE": str(secret),
                            "KCM_MASTER_PASSPHRASE": PASSPHRASE}, start=False)
    refused(srv, "given twice", "KCM_MASTER_PASSPHRASE")


# --------------------------------------------------------------------- the data directory


def test_a_data_directory_group_can_read_is_refused(spawn_server, tmp_path):
    data = tmp_path / "open"
    data.mkdir(mode=0o750)
    data.chmod(0o750)
    srv = spawn_server(data_dir=data, start=False)
    refused(srv, f"chmod 700 {data}")
    assert list(data.iterdir()) == [], "nothing is written into a refused directory"
    data.chmod(0o700)
    srv.start()
    assert (data / "kcm.db").exists()


def test_a_new_data_directory_is_made_private(tmp_path):
    data = tmp_path / "parent" / "data"
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("KCM_")}
    proc = subprocess.Popen([str(KCM_BIN), "serve", "--data-dir", str(data), "--listen", f"127.0.0.1:{port}"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env=env)
    try:
        poll(lambda: (data / "credentials").exists() or proc.poll() is not None, 30, what="first start")
        assert proc.poll() is None, proc.stderr.read().decode()
        assert data.stat().st_mode & 0o777 == 0o700, oct(data.stat().st_mode)
    finally:
        proc.terminate()
        proc.wait(timeout=20)


# --------------------------------------------------------------------- what may listen where


def serve_briefly(args: list[str], env: dict | None = None) -> subprocess.CompletedProcess:
    """`kcm serve ARGS`, which is expected to refuse at once; killed after 20 s if it
    does not (so a server that starts fails the test rather than hangs it)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("KCM_")}
    base.update(env or {})
    try:
        return subprocess.run([str(KCM_BIN), "serve", *args], capture_output=True, env=base,
                              timeout=20, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as e:
        raise AssertionError(f"kcm serve {args} started instead of refusing: {e.stderr!r}")


def test_plain_http_off_loopback_is_refused(tmp_path):
    data = tmp_path / "data"
    cp = serve_briefly(["--data-dir", str(data), "--listen", f"0.0.0.0:{free_port()}"])
    assert cp.returncode != 0
    err = cp.stderr.decode()
    assert "not a loopback address and no TLS is configured" in err, err
    assert "allow_plain_http" in err and "KCM_ALLOW_PLAIN_HTTP" in err, err
    assert not data.exists(), "refused before anything is created"


def test_an_invalid_log_filter_is_refused(tmp_path):
    for bad, says in (("kcm=bogus", "kcm=bogus"), ("debg", "\"debg\" is not a level")):
        cp = serve_briefly(["--data-dir", str(tmp_path / "data"), "--listen", f"127.0.0.1:{free_port()}"],
                           env={"KCM_LOG": bad})
        assert cp.returncode != 0, bad
        err = cp.stderr.decode()
        assert "log filter" in err and says in err, err


# --------------------------------------------------------------------- the log


def test_the_log_has_no_colour_codes_off_a_terminal(server):
    server.client("default").list_keys()
    log = server.stderr_path.read_bytes()
    assert b"kcm listening" in log, log[-2000:]
    assert b"\x1b[" not in log, log[:500]


def test_the_json_log_is_one_object_a_line(spawn_server):
    srv = spawn_server(env={"KCM_LOG_FORMAT": "json"})
    srv.client("default").list_keys()
    assert srv.stop() == 0
    lines = srv.stderr_path.read_text().splitlines()
    records = [json.loads(line) for line in lines if line.strip()]
    assert any(r.get("fields", {}).get("message") == "kcm listening (HTTP)" for r in records), lines[:5]
    assert all({"timestamp", "level", "fields", "target"} <= r.keys() for r in records), records[0]


# --------------------------------------------------------------------- /metrics


def test_metrics_are_off_unless_made_public(server):
    r = requests.get(server.url + "/metrics", timeout=10)
    assert r.status_code == 404, (r.status_code, r.text[:300])
    assert "kcm_requests_total" not in r.text


# --------------------------------------------------------------------- bearer refusals


def without_request_ids(r: requests.Response) -> tuple:
    headers = {k.lower(): v for k, v in r.headers.items() if k.lower() not in ("x-kcm-request-id", "date")}
    return r.status_code, sorted(headers.items()), r.content


def test_an_unknown_access_key_and_a_wrong_secret_get_the_same_answer(server):
    kid, secret = server.creds("default")
    wrong_secret = server.v1("GET", "/v1/systems", creds=(kid, "x" * len(secret)))
    # An id of the same shape that no access key has.
    unknown = kid[:-1] + ("A" if kid[-1] != "A" else "B")
    unknown_key = server.v1("GET", "/v1/systems", creds=(unknown, "x" * len(secret)))
    assert wrong_secret.status_code == 401, wrong_secret.text
    assert wrong_secret.headers.get("x-kcm-request-id") and unknown_key.headers.get("x-kcm-request-id")
    assert without_request_ids(wrong_secret) == without_request_ids(unknown_key)


# --------------------------------------------------------------------- an interrupted decrypt

BLOCK = os.urandom(4096)
PLAINTEXT_MB = 48


@pytest.fixture(scope="module")
def big_envelope(server, tmp_path_factory):
    """An envelope of PLAINTEXT_MB MiB of BLOCK repeated, made by `kcm encrypt`."""
    d = tmp_path_factory.mktemp("envelope")
    plain = d / "plain"
    with open(plain, "wb") as f:
        for _ in range(PLAINTEXT_MB * 256):
            f.write(BLOCK)
    kid = server.client("default").create_key()["KeyMetadata"]["KeyId"]
    envelope = d / "big.kcm"
    cli_ok(subprocess.run([str(KCM_BIN), "--endpoint", server.url, "--credentials-file",
                           str(server.credentials_path), "encrypt", "--key-id", kid, "-i", str(plain),
                           "-o", str(envelope)], capture_output=True, timeout=300))
    plain.unlink()
    return envelope


def written_bytes(pid: int) -> int:
    io = Path(f"/proc/{pid}/io").read_text()
    return int(re.search(r"^wchar: (\d+)$", io, re.M).group(1))


def holds_plaintext(directory: Path) -> list[str]:
    """The files under `directory` (hidden ones too) that hold any of the plaintext."""
    found = []
    for path in directory.rglob("*"):
        if path.is_file() and BLOCK[:256] in path.read_bytes():
            found.append(path.name)
    return found


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL], ids=lambda s: s.name)
def test_an_interrupted_decrypt_leaves_no_plaintext(server, big_envelope, tmp_path, sig):
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    out = out_dir / "plain.out"
    proc = subprocess.Popen([str(KCM_BIN), "--endpoint", server.url, "--credentials-file",
                             str(server.credentials_path), "decrypt", "-o", str(out)],
                            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        # Half of the envelope, then nothing more: the decryption waits mid-way.
        data = big_envelope.read_bytes()
        proc.stdin.write(data[: len(data) // 2])
        proc.stdin.flush()
        poll(lambda: proc.poll() is not None or written_bytes(proc.pid) > 8 << 20, 60,
             what="decrypt to write plaintext")
        assert proc.poll() is None, proc.stderr.read().decode()
        proc.send_signal(sig)
        proc.wait(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        proc.stdin.close()
    assert holds_plaintext(out_dir) == [], sorted(p.name for p in out_dir.iterdir())
    assert list(out_dir.iterdir()) == []
    if sig != signal.SIGKILL:
        # Handled: the exit code a shell gives a process the signal ends, and a word why.
        assert proc.returncode == 128 + sig, proc.returncode
        assert f"interrupted by {sig.name}" in proc.stderr.read().decode()


def test_a_complete_decrypt_still_writes_its_file(server, big_envelope, tmp_path):
    out = tmp_path / "plain.out"
    out.write_bytes(b"an older file of that name")
    cli_ok(subprocess.run([str(KCM_BIN), "--endpoint", server.url, "--credentials-file",
                           str(server.credentials_path), "decrypt", "-i", str(big_envelope), "-o", str(out)],
                          capture_output=True, timeout=300))
    assert out.stat().st_size == PLAINTEXT_MB << 20
    with open(out, "rb") as f:
        assert f.read(4096) == BLOCK
    assert out.stat().st_mode & 0o077 == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plain.out"]


# --------------------------------------------------------------------- the harness


def test_a_panic_in_a_server_log_is_found(tmp_path):
    """The check conftest runs after every test: a server's log line saying a thread
    panicked is found once, whichever server wrote it and however far into the log."""
    import kcmtest

    kcmtest.new_panics()
    log = tmp_path / "fake-1.stderr.log"
    log.write_text("INFO started\n")
    kcmtest._LOGS_READ[log] = 0
    assert kcmtest.new_panics() == []
    with open(log, "a") as f:
        f.write("thread 'tokio-runtime-worker' panicked at crates/kcm-core/src/x.rs:1:1:\nboom\n")
    found = kcmtest.new_panics()
    assert len(found) == 1 and "panicked at crates/kcm-core/src/x.rs" in found[0], found
    assert kcmtest.new_panics() == [], "each panic is reported once"
    del kcmtest._LOGS_READ[log]
