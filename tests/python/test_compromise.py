"""Keys marked compromised (NIST SP 800-57), through the real server: the `kcm` CLI,
REST `/v1/keys/{key}/compromise|destroy` and `/v1/root-keys/{id}/compromise`, boto3.

A compromised key only decrypts and verifies (to recover data), never protects
anything again, is flagged in every audit record naming it, and keeps its mark when
destroyed. Another tenant's key, or a caller whose role may not manage keys, is
refused and changes nothing.
"""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from kcmtest import KCM_BIN, kms_error, unique


def kcm(server, *args: str, creds_file=None) -> subprocess.CompletedProcess:
    cmd = [str(KCM_BIN), "--endpoint", server.url,
           "--credentials-file", str(creds_file or server.credentials_path), *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60)


def kcm_json(server, *args: str) -> dict:
    out = kcm(server, "--output", "json", *args)
    assert out.returncode == 0, (args, out.stdout, out.stderr)
    return json.loads(out.stdout)


def kcm_state(server, key_id: str) -> str:
    """kcm's own lifecycle state of a key, from DescribeKey's `KcmKeyState` (a member
    boto3 drops, so read from the raw AWS answer)."""
    r = server.aws_raw("DescribeKey", {"KeyId": key_id})
    assert r.status_code == 200, r.text
    return r.json()["KeyMetadata"]["KcmKeyState"]


def audit(server, key_id: str) -> list[dict]:
    """The default tenant's audit records naming `key_id`, oldest first."""
    r = server.v1("GET", f"/v1/audit?key={key_id}&limit=1000")
    assert r.status_code == 200, r.text
    return r.json()["records"]


def test_a_compromised_key_recovers_data_and_does_nothing_new(server, kms, new_key):
    key = new_key()
    alias = "alias/" + unique("comp")
    kms.create_alias(AliasName=alias, TargetKeyId=key)
    secret = os.urandom(32)
    ct = kms.encrypt(KeyId=key, Plaintext=secret)["CiphertextBlob"]
    kms.schedule_key_deletion(KeyId=key, PendingWindowInDays=7)

    marked = kcm_json(server, "key", "compromise", key)
    assert marked["id"] == key and marked["state"] == "compromised", marked
    assert "deletion_at" not in marked, "marking a key compromised cancels its deletion"

    meta = kms.describe_key(KeyId=key)["KeyMetadata"]
    assert meta["KeyState"] == "Unavailable" and not meta["Enabled"], meta
    assert "DeletionDate" not in meta, meta
    assert kcm_state(server, key) == "compromised"
    # Recovery: decrypt and re-encrypt under a healthy key work.
    assert kms.decrypt(CiphertextBlob=ct)["Plaintext"] == secret
    healthy = new_key()
    moved = kms.re_encrypt(CiphertextBlob=ct, DestinationKeyId=healthy)["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=moved)["Plaintext"] == secret
    # Nothing new, and no way back.
    with kms_error("KMSInvalidStateException"):
        kms.encrypt(KeyId=key, Plaintext=b"new")
    with kms_error("KMSInvalidStateException"):
        kms.generate_data_key(KeyId=alias, KeySpec="AES_256")
    with kms_error("KMSInvalidStateException"):
        kms.re_encrypt(CiphertextBlob=moved, DestinationKeyId=key)
    with kms_error("KMSInvalidStateException"):
        kms.enable_key(KeyId=key)
    with kms_error("KMSInvalidStateException"):
        kms.schedule_key_deletion(KeyId=key, PendingWindowInDays=7)
    with kms_error("KMSInvalidStateException"):
        kms.cancel_key_deletion(KeyId=key)
    assert kcm_state(server, key) == "compromised"

    # The marking is audited, and every record naming the key afterwards says so.
    records = audit(server, key)
    ops = [r["operation"] for r in records]
    i = ops.index("MarkKeyCompromised")
    assert records[i]["outcome"] == "success" and records[i]["front_door"] == "rest", records[i]
    after = records[i:]
    assert any(r["operation"] == "Decrypt" for r in after), ops
    for r in after:
        mine = [k for k in r["keys"] if k["id"] == key]
        assert mine and all(k.get("compromised") for k in mine), r
    for r in records[:i]:
        assert not any(k.get("compromised") for k in r["keys"] if k["id"] == key), r


def test_destroying_a_compromised_key_needs_confirmation_and_keeps_the_mark(server, kms, new_key):
    key = new_key()
    ct = kms.encrypt(KeyId=key, Plaintext=b"gone soon")["CiphertextBlob"]
    kcm_json(server, "key", "compromise", key)
    refused = kcm(server, "key", "destroy", key)
    assert refused.returncode != 0 and "--yes" in refused.stderr, refused
    assert kcm_state(server, key) == "compromised"

    destroyed = kcm_json(server, "key", "destroy", key, "--yes")
    assert destroyed["state"] == "destroyed-compromised", destroyed
    # Gone: its ciphertexts are as those of a key that never existed.
    with kms_error("InvalidCiphertextException"):
        kms.decrypt(CiphertextBlob=ct)
    with kms_error("NotFoundException"):
        kms.describe_key(KeyId=key)
    ops = [r["operation"] for r in audit(server, key)]
    assert "DestroyCompromisedKey" in ops, ops


def test_only_a_compromised_key_is_destroyed_at_once(server, kms, new_key):
    key = new_key()
    r = server.v1("POST", f"/v1/keys/{key}/destroy")
    assert r.status_code == 409 and r.json()["error"]["code"] == "InvalidState", r.text
    ct = kms.encrypt(KeyId=key, Plaintext=b"still here")["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=ct)["Plaintext"] == b"still here"


def test_rest_names_a_key_by_alias_and_refuses_what_it_may_not_touch(server, kms, new_key, other_tenant):
    key = new_key()
    alias = "alias/" + unique("rest")
    kms.create_alias(AliasName=alias, TargetKeyId=key)
    # A key-user may use keys but not manage them: denied, nothing changes.
    user = server.create_access_key("key-user")
    r = server.v1("POST", f"/v1/keys/{key}/compromise",
                  creds=(user["access_key_id"], user["secret_access_key"]))
    assert r.status_code == 403 and r.json()["error"]["code"] == "AccessDenied", r.text
    # Another tenant's key is as one that does not exist.
    theirs = other_tenant["kms"].create_key()["KeyMetadata"]["KeyId"]
    r = server.v1("POST", f"/v1/keys/{theirs}/compromise")
    assert r.status_code == 404 and r.json()["error"]["code"] == "NotFound", r.text
    assert other_tenant["kms"].describe_key(KeyId=theirs)["KeyMetadata"]["KeyState"] == "Enabled"
    assert kcm_state(server, key) == "active"
    # The tenant-admin, by alias (percent-encoded in the path).
    r = server.v1("POST", f"/v1/keys/{alias.replace('/', '%2F')}/compromise")
    assert r.status_code == 200 and r.json()["id"] == key and r.json()["state"] == "compromised", r.text


def test_a_compromised_root_key_leaves_everything_below_decrypt_only(spawn_server):
    srv = spawn_server()
    kms = srv.client("default")
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    ct = kms.encrypt(KeyId=key, Plaintext=b"below the root")["CiphertextBlob"]
    root = next(r for r in srv.v1_ok("GET", "/v1/root-keys")["root_keys"] if r["default"])

    preview = kcm_json(srv, "root-key", "compromise", root["id"], "--dry-run")
    assert not preview["applied"] and preview["new_state"] == "compromised", preview
    kms.encrypt(KeyId=key, Plaintext=b"a dry run changes nothing")

    done = kcm_json(srv, "root-key", "compromise", root["id"])
    assert done["applied"] and done["new_state"] == "compromised", done
    with kms_error("KMSInvalidStateException"):
        kms.encrypt(KeyId=key, Plaintext=b"nothing new")
    assert kms.decrypt(CiphertextBlob=ct)["Plaintext"] == b"below the root"
    for verb in ("enable", "suspend", "disable"):
        out = kcm(srv, "root-key", verb, root["id"])
        assert out.returncode != 0, (verb, out.stdout)
    assert srv.v1_ok("GET", f"/v1/root-keys/{root['id']}")["state"] == "compromised"


@pytest.mark.parametrize("args", [("key", "compromise", "--help"), ("key", "destroy", "--help"),
                                  ("root-key", "compromise", "--help")])
def test_help_explains_that_it_is_irreversible(server, args):
    out = kcm(server, *args)
    assert out.returncode == 0, out.stderr
    assert "rreversible" in out.stdout, out.stdout
