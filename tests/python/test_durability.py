"""Durability: acknowledged writes survive kill -9; SIGTERM stops cleanly; one server at a
time uses a data directory."""

from __future__ import annotations

import random
import threading
import time

import pytest

from kcmtest import ServerStartError, free_port

pytestmark = pytest.mark.slow

THREADS = 4
MAX_CALLS_PER_THREAD = 2000
MAX_BURST_SECONDS = 20.0


def _burst(clients, stop: threading.Event, acked: list, errors: list):
    """Each thread issues CreateKey calls sequentially and records every KeyId it got back."""

    def worker(i, client):
        deadline = time.monotonic() + MAX_BURST_SECONDS
        for n in range(MAX_CALLS_PER_THREAD):
            if stop.is_set() or time.monotonic() > deadline:
                return
            try:
                kid = client.create_key(Description=f"burst-{i}-{n}")["KeyMetadata"]["KeyId"]
            except Exception as e:  # connection refused/reset once the server is killed
                errors.append(repr(e))
                if stop.is_set():
                    return
                time.sleep(0.01)
                continue
            acked.append(kid)

    threads = [threading.Thread(target=worker, args=(i, c), daemon=True) for i, c in enumerate(clients)]
    for t in threads:
        t.start()
    return threads


@pytest.mark.timeout(400)
def test_kill9_during_create_key_burst(spawn_server):
    srv = spawn_server()
    creds_before = srv.credentials_path.read_bytes()
    all_acked: list[str] = []
    rng = random.Random()
    for round_no in range(3):
        kid, sec = srv.creds("default")
        # One botocore client per thread, built here (creating clients is not thread-safe).
        clients = [_fresh_client(srv, kid, sec) for _ in range(THREADS)]
        stop = threading.Event()
        acked: list[str] = []
        errors: list[str] = []
        threads = _burst(clients, stop, acked, errors)
        time.sleep(rng.uniform(0.3, 1.5))
        srv.kill()  # SIGKILL while requests are in flight
        stop.set()
        for t in threads:
            t.join(timeout=60)
            assert not t.is_alive(), "a burst thread did not stop"
        assert acked, f"round {round_no}: no CreateKey was acknowledged before the kill; errors: {errors[:3]}"
        all_acked.extend(acked)

        srv.start()
        assert srv.credentials_path.read_bytes() == creds_before, "restart re-bootstrapped the credentials"
        kms = srv.client("default")
        missing = []
        for k in all_acked:
            try:
                md = kms.describe_key(KeyId=k)["KeyMetadata"]
                assert md["KeyState"] == "Enabled", (k, md["KeyState"])
            except Exception as e:  # noqa: BLE001 - collect every loss
                missing.append((k, repr(e)))
        assert not missing, f"round {round_no}: {len(missing)} acknowledged keys lost, e.g. {missing[:3]}"
        sample = random.sample(all_acked, min(25, len(all_acked)))
        for k in sample:
            ct = kms.encrypt(KeyId=k, Plaintext=b"durable")["CiphertextBlob"]
            assert kms.decrypt(CiphertextBlob=ct)["Plaintext"] == b"durable"
    assert len(set(all_acked)) == len(all_acked)


def _fresh_client(srv, kid, sec):
    # A distinct botocore client per thread (Server.client caches one per credentials).
    import boto3
    from botocore.config import Config

    return boto3.session.Session().client(
        "kms",
        endpoint_url=srv.url,
        region_name="us-east-1",
        aws_access_key_id=kid,
        aws_secret_access_key=sec,
        config=Config(retries={"total_max_attempts": 1, "mode": "standard"}, connect_timeout=5, read_timeout=30),
    )


def test_sigterm_graceful_and_persistent(spawn_server):
    srv = spawn_server()
    kms = srv.client("default")
    kid = kms.create_key(Description="persist me")["KeyMetadata"]["KeyId"]
    alias = "alias/persist-" + kid[:8]
    kms.create_alias(AliasName=alias, TargetKeyId=kid)
    kms.tag_resource(KeyId=kid, Tags=[{"TagKey": "k", "TagValue": "v"}])
    kms.enable_key_rotation(KeyId=kid, RotationPeriodInDays=200)
    ct = kms.encrypt(KeyId=kid, Plaintext=b"across restarts", EncryptionContext={"a": "b"})["CiphertextBlob"]
    kms.rotate_key_on_demand(KeyId=kid)
    ak = srv.create_access_key("key-user")
    t0 = time.monotonic()
    rc = srv.stop(timeout=10)
    assert rc == 0, f"kcm serve exited with {rc} on SIGTERM\n{srv.log_tail()}"
    assert time.monotonic() - t0 < 10, "SIGTERM shutdown took too long"

    srv.start()
    kms = srv.client("default")
    md = kms.describe_key(KeyId=alias)["KeyMetadata"]
    assert md["KeyId"] == kid and md["Description"] == "persist me" and md["KeyState"] == "Enabled"
    assert kms.list_resource_tags(KeyId=kid)["Tags"] == [{"TagKey": "k", "TagValue": "v"}]
    st = kms.get_key_rotation_status(KeyId=kid)
    assert st["KeyRotationEnabled"] is True and st["RotationPeriodInDays"] == 200
    assert len(kms.list_key_rotations(KeyId=kid)["Rotations"]) == 1
    assert kms.decrypt(CiphertextBlob=ct, EncryptionContext={"a": "b"})["Plaintext"] == b"across restarts"
    user = srv.client_for(ak)
    assert user.decrypt(CiphertextBlob=ct, EncryptionContext={"a": "b"})["Plaintext"] == b"across restarts"
    assert srv.stop() == 0


def test_restart_after_kill9_idle(spawn_server):
    """A server killed while idle restarts on its data dir with everything in place."""
    srv = spawn_server()
    kms = srv.client("default")
    kid = kms.create_key()["KeyMetadata"]["KeyId"]
    ct = kms.encrypt(KeyId=kid, Plaintext=b"idle")["CiphertextBlob"]
    srv.kill()
    srv.start()
    assert srv.client("default").decrypt(CiphertextBlob=ct)["Plaintext"] == b"idle"


def test_second_server_on_same_data_dir_is_refused(spawn_server):
    """A second server on a data dir in use refuses to start, naming the first one's pid
    (it would be a second writer of the same store, scheduler and keystore files); once
    the first has stopped, the directory is free again."""
    a = spawn_server()
    kid = a.client("default").create_key()["KeyMetadata"]["KeyId"]
    b = spawn_server(data_dir=a.data_dir, start=False)
    # The port is given so that start() makes one attempt (it retries other "in use" errors
    # on a new port), and the answer must be the process exiting, not a wait that timed out.
    with pytest.raises(ServerStartError) as e:
        b.start(timeout=15, port=free_port())
    assert "kcm serve exited with code" in str(e.value), str(e.value)
    assert b.proc.returncode not in (None, 0), b.proc.returncode
    stderr = b.stderr_path.read_text()
    assert (
        f"the data directory {a.data_dir} is in use by another kcm (pid {a.proc.pid})" in stderr
    ), stderr
    # The first server is untouched: still running, still answering from its store.
    assert a.proc.poll() is None
    assert a.client("default").describe_key(KeyId=kid)["KeyMetadata"]["KeyState"] == "Enabled"
    assert a.client("default").create_key()["KeyMetadata"]["KeyState"] == "Enabled"
    assert a.stop() == 0
    b.start()
    assert b.client("default").describe_key(KeyId=kid)["KeyMetadata"]["KeyState"] == "Enabled"
