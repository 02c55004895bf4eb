"""The tamper-evident audit log, end to end against real `kcm serve` processes.

* One record per request, on both front doors (AWS JSON API via boto3, native `/v1` via
  requests and the `kcm` CLI), allowed or refused, with the right fields — and never a
  plaintext, ciphertext, data key or secret (checked in the API and in the raw SQLite rows).
* Durable before the response: `kill -9` right after a response, restart, the record is there.
* Hash chain per tenant and signed checkpoints: `kcm audit verify` against the store and
  against an export names the first record altered, removed, inserted or reordered, catches a
  self-consistent rewrite and a truncation with the signed checkpoints, and refuses a
  checkpoint whose signature was altered. Tampering is done directly in `<data dir>/kcm.db`
  (table `audit_records`, primary key `(chain, seq)`) with Python's sqlite3, while the server
  is stopped, and the forged hashes are computed exactly as `kcm_core::audit::hash` does.
* `kcm audit export` and `GET /v1/audit`: filters, paging, invalid filters.
* Who may read which chain.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import datetime as dt
import hashlib
import json
import os
import re
import sqlite3
import subprocess
import threading
import time
from pathlib import Path
from urllib.parse import urlencode

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from kcmtest import KCM_BIN, REGION, cli_ok, poll, unique, v1_error_code

GENESIS = "0" * 64
# Checkpoints every 200 ms, so a chain is covered quickly.
FAST_CHECKPOINTS = {"KCM_AUDIT_CHECKPOINT_INTERVAL_MS": "200"}
# One checkpoint pass at startup, then none while a test reads the chain: a verification or an
# export then sees exactly the checkpoints that existed before it started.
QUIET_CHECKPOINTS = {"KCM_AUDIT_CHECKPOINT_INTERVAL_MS": "3600000"}
LOOPBACK = "127.0.0.1"

# --------------------------------------------------------------------------- helpers


def kcm(server, *args, profile: str | None = None, creds_file: Path | None = None,
        output_json: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
    """Run the real `kcm` CLI against `server` (no KCM_* from the developer's environment)."""
    cmd = [str(KCM_BIN), "--endpoint", server.url,
           "--credentials-file", str(creds_file or server.credentials_path)]
    if profile:
        cmd += ["--profile", profile]
    if output_json:
        cmd += ["--output", "json"]
    cmd += [str(a) for a in args]
    env = {k: v for k, v in os.environ.items() if not k.startswith("KCM_")}
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          stdin=subprocess.DEVNULL, timeout=timeout, env=env)


def write_creds(path: Path, access_key: dict) -> Path:
    path.write_text(f"[default]\naws_access_key_id = {access_key['access_key_id']}\n"
                    f"aws_secret_access_key = {access_key['secret_access_key']}\n")
    path.chmod(0o600)
    return path


def fetch_chain(server, profile: str | None = "default", creds=None, page: int = 1000,
                **filters) -> list[dict]:
    """Every record of the caller's chain matching `filters`, paging through GET /v1/audit."""
    out: list[dict] = []
    after = 0
    for _ in range(10_000):
        q = urlencode({**filters, "limit": page, "after": after})
        r = server.v1("GET", f"/v1/audit?{q}", profile=profile, creds=creds)
        assert r.status_code == 200, f"GET /v1/audit?{q} -> {r.status_code}: {r.text[:500]}"
        body = r.json()
        out += body["records"]
        if body.get("next_after") is None:
            return out
        after = body["next_after"]
    raise AssertionError("GET /v1/audit never reached its last page")


def the_record(records: list[dict], request_id: str, where: str = "the chain") -> dict:
    """The single record of `request_id` (exactly one per request)."""
    found = [r for r in records if r["request_id"] == request_id]
    assert len(found) == 1, f"{len(found)} records for request {request_id} in {where}: {found}"
    return found[0]


def tenant_of(server, profile: str = "default") -> str:
    return server.v1_ok("GET", "/v1/keychain", profile=profile)["tenant"]["id"]


def system_of_key(server, key_id: str, profile: str = "default") -> str:
    """The system a key belongs to, from the keychain."""
    chain = server.v1_ok("GET", "/v1/keychain", profile=profile)
    for root in chain["root_keys"]:
        for system in root["systems"]:
            if any(k["id"] == key_id for k in system["service_keys"]):
                return system["id"]
    raise AssertionError(f"key {key_id} is not in the keychain: {chain}")


def now_ms() -> int:
    return int(time.time() * 1000)


def rfc3339(ms: int, offset_hours: int = 0) -> str:
    tz = dt.timezone(dt.timedelta(hours=offset_hours))
    t = dt.datetime.fromtimestamp(ms / 1000, tz)
    s = t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}"
    return s + ("Z" if offset_hours == 0 else t.strftime("%z")[:3] + ":" + t.strftime("%z")[3:])


def rid(resp_or_error) -> str:
    """The request id of a boto3 response or ClientError."""
    meta = (resp_or_error.response if isinstance(resp_or_error, ClientError) else resp_or_error)
    request_id = meta["ResponseMetadata"]["RequestId"]
    assert request_id, meta
    return request_id


def b64s(b: bytes) -> str:
    return base64.b64encode(b).decode()


def names_param(message: str, name: str) -> bool:
    """Whether an error message names query parameter `name` (`name`, or `name:` / `name must`)."""
    return bool(re.search(rf"`{name}`|\b{name}(?=: | must )", message))


def client_error(fn) -> ClientError:
    with pytest.raises(ClientError) as ei:
        fn()
    return ei.value


def record_hash(r: dict, seq: int | None = None) -> str:
    """The record hash exactly as `kcm_core::audit::hash::record_hash` computes it: SHA-256 of
    `kcm-audit-record-v1\\n` + the compact serde JSON of every field but `hash`, in struct order
    (`AuditKey` omits a missing version and a false `compromised`; a record omits a missing
    `client_request_id`, so records made before it existed hash as they did)."""
    keys = []
    for k in r["keys"]:
        key = {"id": k["id"]}
        if k.get("version") is not None:
            key["version"] = k["version"]
        if k.get("compromised"):
            key["compromised"] = True
        keys.append(key)
    content = {
        "seq": r["seq"] if seq is None else seq,
        "time": r["time"],
        "tenant": r["tenant"],
        "principal": r["principal"],
        "role": r["role"],
        "front_door": r["front_door"],
        "operation": r["operation"],
        "keys": keys,
        "system": r["system"],
        "outcome": r["outcome"],
        "error": r["error"],
        "request_id": r["request_id"],
        "source": r["source"],
    }
    if r.get("client_request_id") is not None:
        content["client_request_id"] = r["client_request_id"]
    content["prev_hash"] = r["prev_hash"]
    body = json.dumps(content, separators=(",", ":"), ensure_ascii=False).encode()
    return hashlib.sha256(b"kcm-audit-record-v1\n" + body).hexdigest()


def checkpoint_message(cp: dict, prev: dict | None) -> bytes:
    """What a checkpoint signs: its chain, record, time, and the checkpoint before it."""
    prev_seq, prev_sig = (prev["seq"], prev["signature"]) if prev else (0, "")
    return (f"kcm-audit-checkpoint-v2\n{cp['tenant'] or ''}\n{cp['seq']}\n{cp['hash']}\n{cp['time']}\n"
            f"{prev_seq}\n{prev_sig}").encode()


def head_message(head: dict) -> bytes:
    return f"kcm-audit-head-v1\n{head['tenant'] or ''}\n{head['seq']}\n{head['hash']}\n{head['time']}".encode()


# ------------------------------------------------------------------ the SQLite store, directly

RECORD_COLS = ("chain", "seq", "time", "principal", "role", "front_door", "operation", "keys",
               "key_ids", "system_id", "outcome", "error", "request_id", "source", "prev_hash", "hash",
               "client_request_id")


@contextlib.contextmanager
def store(server):
    conn = sqlite3.connect(str(server.data_dir / "kcm.db"), timeout=15, isolation_level=None)
    try:
        yield conn
    finally:
        conn.close()


def store_records(server, chain: str) -> list[dict]:
    """A chain as stored (`chain` is '' for the operator's), as API-shaped record dicts."""
    with store(server) as db:
        rows = db.execute(f"SELECT {', '.join(RECORD_COLS)} FROM audit_records WHERE chain = ? "
                          "ORDER BY seq", (chain,)).fetchall()
    out = []
    for row in rows:
        d = dict(zip(RECORD_COLS, row))
        record = {
            "seq": d["seq"], "time": d["time"], "tenant": d["chain"] or None,
            "principal": d["principal"], "role": d["role"], "front_door": d["front_door"],
            "operation": d["operation"], "keys": json.loads(d["keys"]), "system": d["system_id"],
            "outcome": d["outcome"], "error": d["error"], "request_id": d["request_id"],
            "source": d["source"],
        }
        if d["client_request_id"] is not None:
            record["client_request_id"] = d["client_request_id"]
        record.update(prev_hash=d["prev_hash"], hash=d["hash"])
        out.append(record)
    return out


def store_checkpoints(server, chain: str) -> list[dict]:
    with store(server) as db:
        rows = db.execute("SELECT seq, hash, time, signature FROM audit_checkpoints WHERE chain = ? "
                          "ORDER BY seq", (chain,)).fetchall()
    return [{"tenant": chain or None, "seq": s, "hash": h, "time": t, "signature": sig}
            for s, h, t, sig in rows]


def replace_store_chain(server, chain: str, records: list[dict], checkpoints: list[dict]) -> None:
    """Rewrite one chain (records and checkpoints) in the store, in one transaction."""
    with store(server) as db:
        db.execute("BEGIN IMMEDIATE")
        db.execute("DELETE FROM audit_records WHERE chain = ?", (chain,))
        db.execute("DELETE FROM audit_checkpoints WHERE chain = ?", (chain,))
        for r in records:
            key_ids = "," + "".join(f"{k['id']}," for k in r["keys"])
            keys = json.dumps(r["keys"], separators=(",", ":"))
            db.execute(
                f"INSERT INTO audit_records ({', '.join(RECORD_COLS)}) "
                f"VALUES ({', '.join('?' * len(RECORD_COLS))})",
                (chain, r["seq"], r["time"], r["principal"], r["role"], r["front_door"],
                 r["operation"], keys, key_ids, r["system"], r["outcome"], r["error"],
                 r["request_id"], r["source"], r["prev_hash"], r["hash"], r.get("client_request_id")),
            )
        for c in checkpoints:
            db.execute("INSERT INTO audit_checkpoints (chain, seq, hash, time, signature) "
                       "VALUES (?, ?, ?, ?, ?)", (chain, c["seq"], c["hash"], c["time"], c["signature"]))
        db.execute("COMMIT")


def store_dump(server) -> str:
    """Every value of every audit row, as one string."""
    with store(server) as db:
        rows = db.execute("SELECT * FROM audit_records").fetchall()
        rows += db.execute("SELECT * FROM audit_checkpoints").fetchall()
    return "\n".join(repr(r) for r in rows)


def wait_until_checkpointed(server, chain: str, timeout: float = 15) -> int:
    """Polls the store until a checkpoint covers the chain's last record; returns that seq."""
    def covered():
        with store(server) as db:
            last = db.execute("SELECT MAX(seq) FROM audit_records WHERE chain = ?", (chain,)).fetchone()[0]
            cp = db.execute("SELECT MAX(seq) FROM audit_checkpoints WHERE chain = ?", (chain,)).fetchone()[0]
        return last if last and cp == last else None
    return poll(covered, timeout, interval=0.05, what=f"a checkpoint covering chain {chain!r}")


# ------------------------------------------------------------------------ exports


def read_export(path: Path) -> tuple[list[dict], list[dict]]:
    """The records and checkpoints of an export (its head: `read_export_head`)."""
    records, checkpoints = [], []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        obj = json.loads(line)
        kind = obj.pop("type", None)
        assert kind in ("record", "checkpoint", "head"), f"{path} line {n}: type {kind!r}"
        if kind != "head":
            (records if kind == "record" else checkpoints).append(obj)
    return records, checkpoints


def read_export_head(path: Path) -> dict | None:
    heads = [json.loads(line) for line in path.read_text().splitlines() if '"type":"head"' in line]
    assert len(heads) <= 1, heads
    if not heads:
        return None
    heads[0].pop("type")
    return heads[0]


def write_export(path: Path, records: list[dict], checkpoints: list[dict], head: dict | None = None) -> Path:
    lines = [json.dumps({"type": "record", **r}) for r in records]
    lines += [json.dumps({"type": "checkpoint", **c}) for c in checkpoints]
    if head is not None:
        lines.append(json.dumps({"type": "head", **head}))
    path.write_text("\n".join(lines) + "\n")
    return path


def export_lines(cp: subprocess.CompletedProcess) -> list[dict]:
    out = []
    for line in cp.stdout.decode().splitlines():
        if line.strip():
            obj = json.loads(line)
            assert obj.pop("type") == "record", obj
            out.append(obj)
    return out


def verify(server, *args, profile: str | None = None) -> dict:
    """`kcm audit verify --output json …`: the report, checked against the exit code."""
    cp = kcm(server, "audit", "verify", *args, profile=profile)
    try:
        report = json.loads(cp.stdout)
    except ValueError as e:
        raise AssertionError(f"audit verify printed no JSON (exit {cp.returncode}): "
                             f"{cp.stdout!r} {cp.stderr.decode(errors='replace')}") from e
    expected_rc = 0 if report.get("intact") else 3
    assert cp.returncode == expected_rc, (
        f"audit verify exited {cp.returncode} with report {report} (stderr {cp.stderr!r})")
    return report


# ------------------------------------------------------------------------ activity


def some_activity(server, n: int = 8) -> dict:
    """A dozen records of mixed operations and outcomes in the default tenant's chain."""
    kms = server.client("default")
    kid = kms.create_key(Description="audited")["KeyMetadata"]["KeyId"]
    for i in range(n):
        kms.encrypt(KeyId=kid, Plaintext=f"activity {i}".encode())
    # One record carries the client's own request id, so that every verification
    # below covers a record with it too.
    tagged = server.aws_raw("Encrypt", {"KeyId": kid, "Plaintext": b64s(b"tagged")},
                            extra_headers={"X-Kcm-Client-Request-Id": "client-req-7"})
    assert tagged.status_code == 200, tagged.text
    client_error(lambda: kms.describe_key(KeyId="00000000-0000-4000-8000-000000000000"))
    server.v1_ok("GET", "/v1/systems")
    kms.generate_random(NumberOfBytes=8)
    return {"key": kid}


def prepared_chain(spawn_server):
    """A fresh server whose default-tenant chain has records and two checkpoints or more, restarted with
    quiet checkpoints. Returns (server, tenant chain key, signing public key)."""
    srv = spawn_server(env=dict(FAST_CHECKPOINTS))
    tenant = tenant_of(srv)
    some_activity(srv)
    public_key = srv.v1_ok("GET", "/v1/audit/signing-key")["public_key"]
    assert len(public_key) == 64 and int(public_key, 16) >= 0
    wait_until_checkpointed(srv, tenant)
    some_activity(srv, n=2)  # a second checkpoint, linked to the first
    wait_until_checkpointed(srv, tenant)
    assert srv.stop() == 0
    srv.extra_env.update(QUIET_CHECKPOINTS)
    srv.start()
    return srv, tenant, public_key


# =========================================================================== records


def test_aws_records_name_caller_keys_versions_and_outcome(spawn_server):
    srv = spawn_server()
    tenant = tenant_of(srv)
    admin_id, admin_secret = srv.creds("default")
    _, sysadmin_secret = srv.creds("system-admin")
    kms = srv.client("default")
    user_ak = srv.create_access_key("key-user")
    keyadmin_ak = srv.create_access_key("key-admin")
    user, keyadmin = srv.client_for(user_ak), srv.client_for(keyadmin_ak)
    secrets = [admin_secret, sysadmin_secret, user_ak["secret_access_key"], keyadmin_ak["secret_access_key"]]

    k1 = kms.create_key(Description="audit k1")["KeyMetadata"]["KeyId"]
    k2 = kms.create_key(Description="audit k2")["KeyMetadata"]["KeyId"]
    s1, s2 = system_of_key(srv, k1), system_of_key(srv, k2)
    plain_old = f"plaintext-old-{unique()}".encode()
    plain_new = f"plaintext-new-{unique()}".encode()
    plain_user = f"plaintext-user-{unique()}".encode()

    t0 = now_ms()
    expect: dict[str, dict] = {}  # request id -> expected fields

    def exp(request_id, operation, keys, outcome="success", error=None, principal=admin_id,
            role="tenant-admin", system="auto"):
        if system == "auto":
            system = {k1: s1, k2: s2}[keys[0]["id"]] if keys else None
        expect[request_id] = dict(operation=operation, keys=keys, outcome=outcome, error=error,
                                  principal=principal, role=role, system=system)

    r = kms.encrypt(KeyId=k1, Plaintext=plain_old)
    ct_old = r["CiphertextBlob"]
    exp(rid(r), "Encrypt", [{"id": k1, "version": 1}])

    r = kms.rotate_key_on_demand(KeyId=k1)
    rotate_rid = rid(r)

    r = kms.encrypt(KeyId=k1, Plaintext=plain_new)
    ct_new = r["CiphertextBlob"]
    exp(rid(r), "Encrypt", [{"id": k1, "version": 2}])

    r = kms.decrypt(CiphertextBlob=ct_old)
    assert r["Plaintext"] == plain_old
    exp(rid(r), "Decrypt", [{"id": k1, "version": 1}])

    r = kms.decrypt(CiphertextBlob=ct_new)
    exp(rid(r), "Decrypt", [{"id": k1, "version": 2}])

    r = kms.re_encrypt(CiphertextBlob=ct_old, DestinationKeyId=k2)
    ct_re = r["CiphertextBlob"]
    exp(rid(r), "ReEncrypt", [{"id": k1, "version": 1}, {"id": k2, "version": 1}])

    r = kms.generate_data_key(KeyId=k1, KeySpec="AES_256")
    data_key, data_key_ct = r["Plaintext"], r["CiphertextBlob"]
    exp(rid(r), "GenerateDataKey", [{"id": k1, "version": 2}])

    r = kms.generate_data_key_without_plaintext(KeyId=k2, KeySpec="AES_256")
    data_key_ct2 = r["CiphertextBlob"]
    exp(rid(r), "GenerateDataKeyWithoutPlaintext", [{"id": k2, "version": 1}])

    r = kms.generate_random(NumberOfBytes=32)
    random_bytes = r["Plaintext"]
    exp(rid(r), "GenerateRandom", [])

    r = user.encrypt(KeyId=k2, Plaintext=plain_user)
    ct_user = r["CiphertextBlob"]
    exp(rid(r), "Encrypt", [{"id": k2, "version": 1}], principal=user_ak["access_key_id"], role="key-user")

    e = client_error(lambda: user.create_key())
    assert e.response["Error"]["Code"] == "AccessDeniedException"
    exp(rid(e), "CreateKey", [], outcome="denied", error="AccessDeniedException",
        principal=user_ak["access_key_id"], role="key-user")

    e = client_error(lambda: keyadmin.encrypt(KeyId=k1, Plaintext=plain_new))
    assert e.response["Error"]["Code"] == "AccessDeniedException"
    keyadmin_denied = rid(e)

    e = client_error(lambda: kms.describe_key(KeyId="00000000-0000-4000-8000-000000000000"))
    assert e.response["Error"]["Code"] == "NotFoundException"
    exp(rid(e), "DescribeKey", [], outcome="failed", error="NotFoundException")

    e = client_error(lambda: kms.encrypt(Plaintext=plain_new))  # no KeyId
    assert e.response["Error"]["Code"] == "ValidationException"
    exp(rid(e), "Encrypt", [], outcome="failed", error="ValidationException")

    r = kms.disable_key(KeyId=k2)
    disable_rid = rid(r)
    e = client_error(lambda: kms.encrypt(KeyId=k2, Plaintext=plain_new))
    assert e.response["Error"]["Code"] == "DisabledException"
    disabled_rid = rid(e)
    t1 = now_ms()

    records = fetch_chain(srv)
    operator = fetch_chain(srv, profile="system-admin")
    operator_rids = {r["request_id"] for r in operator}
    for request_id, want in expect.items():
        rec = the_record(records, request_id)
        assert request_id not in operator_rids, f"tenant request {request_id} in the operator chain"
        got = {k: rec[k] for k in want}
        assert got == want, f"record of {request_id}: {rec}"
        assert rec["tenant"] == tenant, rec
        assert rec["front_door"] == "aws", rec
        assert rec["source"] == LOOPBACK, rec
        assert t0 - 5 <= rec["time"] <= t1 + 5, (t0, rec, t1)

    rotate = the_record(records, rotate_rid)
    assert rotate["operation"] == "RotateKeyOnDemand" and rotate["outcome"] == "success", rotate
    assert [k["id"] for k in rotate["keys"]] == [k1], rotate

    denied = the_record(records, keyadmin_denied)
    assert (denied["operation"], denied["outcome"], denied["error"], denied["role"], denied["principal"]) == \
        ("Encrypt", "denied", "AccessDeniedException", "key-admin", keyadmin_ak["access_key_id"]), denied

    disable = the_record(records, disable_rid)
    assert (disable["operation"], disable["outcome"], [k["id"] for k in disable["keys"]]) == \
        ("DisableKey", "success", [k2]), disable
    disabled = the_record(records, disabled_rid)
    assert (disabled["operation"], disabled["outcome"], disabled["error"], [k["id"] for k in disabled["keys"]]) == \
        ("Encrypt", "failed", "DisabledException", [k2]), disabled

    # The chain links up exactly as kcm_core::audit::hash defines it.
    assert [r["seq"] for r in records] == list(range(1, len(records) + 1))
    prev = GENESIS
    for rec in records:
        assert rec["prev_hash"] == prev and record_hash(rec) == rec["hash"], rec
        prev = rec["hash"]

    # Never a plaintext, ciphertext, data key or secret: not in the API's records, not in the store.
    forbidden = list(secrets)
    for blob in (plain_old, plain_new, plain_user, data_key, random_bytes):
        forbidden += [blob.hex(), b64s(blob)]
        if blob.isascii():
            forbidden.append(blob.decode())
    for blob in (ct_old, ct_new, ct_re, data_key_ct, data_key_ct2, ct_user):
        forbidden += [b64s(blob), blob.hex()]
    api_text = json.dumps(records) + json.dumps(operator)
    db_text = store_dump(srv)
    raw_db = b"".join(p.read_bytes() for p in srv.data_dir.glob("kcm.db*") if p.is_file())
    for secret in forbidden:
        assert secret not in api_text, f"audit records (API) contain {secret[:16]}…"
        assert secret not in db_text, f"audit rows (SQLite) contain {secret[:16]}…"
    for blob in (plain_old, plain_new, plain_user, data_key):
        assert blob not in raw_db, "kcm.db contains a plaintext or data key"


def test_create_key_record_names_the_new_key(spawn_server):
    """CreateKey involves the key it creates: its record names it (so `--key` finds a key's
    whole history, from its creation on)."""
    srv = spawn_server()
    kms = srv.client("default")
    r = kms.create_key(Description="named")
    kid = r["KeyMetadata"]["KeyId"]
    rec = the_record(fetch_chain(srv), rid(r))
    assert rec["operation"] == "CreateKey" and rec["outcome"] == "success", rec
    assert kid in [k["id"] for k in rec["keys"]], f"the CreateKey record does not name key {kid}: {rec}"
    assert rec["system"] == system_of_key(srv, kid), rec
    assert rec in fetch_chain(srv, key=kid), "GET /v1/audit?key= does not find the key's creation"


def test_unauthenticated_aws_requests_land_in_the_operator_chain(spawn_server):
    srv = spawn_server()
    admin_id, admin_secret = srv.creds("default")
    wrong_secret = "W" * 40
    bad_sig = srv.new_client(admin_id, wrong_secret)
    e = client_error(lambda: bad_sig.list_keys())
    # A known access key id with the wrong secret: the signature does not match.
    assert e.response["Error"]["Code"] == "InvalidSignatureException", e.response
    assert e.response["ResponseMetadata"]["HTTPStatusCode"] == 400, e.response
    bad_sig_rid, bad_sig_code = rid(e), e.response["Error"]["Code"]

    unknown_id = "KCMUNKNOWNACCESSKEY1"
    e = client_error(lambda: srv.new_client(unknown_id, wrong_secret).encrypt(KeyId="alias/x", Plaintext=b"p"))
    assert e.response["Error"]["Code"] == "UnrecognizedClientException"
    unknown_rid = rid(e)

    r = srv.aws_raw("ListKeys", {}, sign=False)
    assert r.status_code == 400
    unsigned_rid = r.headers["x-amzn-requestid"]
    unsigned_code = r.json()["__type"]

    operator = fetch_chain(srv, profile="system-admin")
    tenant_rids = {x["request_id"] for x in fetch_chain(srv)}
    for request_id, principal, op, code in (
        (bad_sig_rid, admin_id, "ListKeys", bad_sig_code),
        (unknown_rid, unknown_id, "Encrypt", "UnrecognizedClientException"),
        (unsigned_rid, None, "ListKeys", unsigned_code),
    ):
        rec = the_record(operator, request_id, "the operator chain")
        assert request_id not in tenant_rids, "an unauthenticated request landed in a tenant chain"
        assert (rec["tenant"], rec["role"], rec["front_door"], rec["operation"], rec["outcome"], rec["error"]) == \
            (None, None, "aws", op, "denied", code), rec
        if principal:
            assert rec["principal"] == principal, rec
        assert rec["keys"] == [] and rec["source"] == LOOPBACK, rec
    text = json.dumps(operator) + store_dump(srv)
    assert wrong_secret not in text and admin_secret not in text


def test_rest_records_and_refusal_codes(spawn_server):
    srv = spawn_server()
    tenant = tenant_of(srv)
    admin_id, admin_secret = srv.creds("default")
    sysadmin_id, _ = srv.creds("system-admin")
    expect: dict[str, tuple] = {}  # request id -> (chain, principal, role, operation, outcome, error)

    def call(method, path, status, chain, principal, role, operation, outcome, error, **kw):
        r = srv.v1(method, path, **kw)
        assert r.status_code == status, f"{method} {path} -> {r.status_code} {r.text}"
        if error:
            assert v1_error_code(r) == error, r.text
        request_id = r.headers.get("x-kcm-request-id")
        assert request_id, f"{method} {path}: no x-kcm-request-id header"
        expect[request_id] = (chain, principal, role, operation, outcome, error)
        return r

    call("POST", "/v1/systems", 201, tenant, admin_id, "tenant-admin", "CreateSystem", "success", None,
         json_body={"name": unique("sys")})
    created = call("POST", "/v1/access-keys", 201, tenant, admin_id, "tenant-admin", "CreateAccessKey",
                   "success", None, json_body={"role": "auditor"}).json()
    new_secret = created.get("access_key", created)["secret_access_key"]
    call("GET", "/v1/tenants", 403, tenant, admin_id, "tenant-admin", "ListTenants", "denied", "AccessDenied")
    call("GET", "/v1/systems/no-such-system", 404, tenant, admin_id, "tenant-admin", "GetSystem", "failed",
         "NotFound")
    call("POST", "/v1/access-keys", 400, tenant, admin_id, "tenant-admin", "CreateAccessKey", "failed",
         "InvalidInput", json_body={"role": "no-such-role"})
    call("GET", "/v1/audit?limit=0", 400, tenant, admin_id, "tenant-admin", "ListAuditRecords", "failed",
         "InvalidInput")
    call("GET", "/v1/systems", 401, None, admin_id, None, "ListSystems", "denied", "Unauthenticated",
         creds=(admin_id, "not-the-secret"))
    call("GET", "/v1/keychain", 401, None, "-", None, "GetKeychain", "denied", "Unauthenticated", auth=False)
    tenant_body = call("POST", "/v1/tenants", 201, None, sysadmin_id, "system-admin", "CreateTenant", "success",
                       None, profile="system-admin", json_body={"name": unique("tenant")}).json()
    other_secret = tenant_body["access_key"]["secret_access_key"]

    # The kcm CLI talks to /v1 too: its requests are audited the same way.
    name = unique("clisys")
    cli_ok(kcm(srv, "system", "create", name))

    records = fetch_chain(srv)
    operator = fetch_chain(srv, profile="system-admin")
    for request_id, (chain, principal, role, operation, outcome, error) in expect.items():
        mine = records if chain else operator
        other = operator if chain else records
        rec = the_record(mine, request_id, "the tenant chain" if chain else "the operator chain")
        assert request_id not in {r["request_id"] for r in other}, f"{request_id} is in both chains"
        got = (rec["tenant"], rec["principal"], rec["role"], rec["operation"], rec["outcome"], rec["error"])
        assert got == (chain, principal, role, operation, outcome, error), rec
        assert rec["front_door"] == "rest" and rec["source"] == LOOPBACK and rec["keys"] == [], rec
    cli_creates = [r for r in records if r["operation"] == "CreateSystem" and r["front_door"] == "rest"
                   and r["principal"] == admin_id and r["outcome"] == "success"]
    assert len(cli_creates) == 2, f"expected the requests' and the CLI's CreateSystem records: {cli_creates}"
    assert all(r["tenant"] is None for r in operator), operator
    text = json.dumps(records) + json.dumps(operator) + store_dump(srv)
    for secret in (admin_secret, new_secret, other_secret, srv.creds("system-admin")[1], "not-the-secret"):
        assert secret not in text, "an access-key secret reached the audit log"


# =========================================================================== durability


def test_record_is_durable_before_the_response(spawn_server):
    """kill -9 right after a response: after a restart the request's record is there."""
    srv = spawn_server(env=dict(QUIET_CHECKPOINTS))
    kms = srv.client("default")
    kid = kms.create_key()["KeyMetadata"]["KeyId"]
    user_ak = srv.create_access_key("key-user")
    checks = []

    r = kms.encrypt(KeyId=kid, Plaintext=b"durable")
    srv.kill()
    checks.append((rid(r), "Encrypt", "success"))
    srv.start()

    r = srv.v1("POST", "/v1/systems", json_body={"name": unique("sys")})
    assert r.status_code == 201
    srv.kill()
    checks.append((r.headers["x-kcm-request-id"], "CreateSystem", "success"))
    srv.start()

    e = client_error(lambda: srv.client_for(user_ak).create_key())
    srv.kill()
    checks.append((rid(e), "CreateKey", "denied"))
    srv.start()

    records = fetch_chain(srv)
    for request_id, op, outcome in checks:
        rec = the_record(records, request_id)
        assert (rec["operation"], rec["outcome"]) == (op, outcome), rec

    # Under load: every acknowledged request of a burst cut short by kill -9 has its record.
    admin_id, admin_secret = srv.creds("default")
    clients = [boto3.session.Session().client(
        "kms", endpoint_url=srv.url, region_name=REGION, aws_access_key_id=admin_id,
        aws_secret_access_key=admin_secret,
        config=Config(retries={"total_max_attempts": 1, "mode": "standard"}, connect_timeout=5, read_timeout=30),
    ) for _ in range(4)]
    acked: list[str] = []
    stop = threading.Event()

    def worker(c):
        deadline = time.monotonic() + 10
        while not stop.is_set() and time.monotonic() < deadline:
            try:
                acked.append(rid(c.encrypt(KeyId=kid, Plaintext=b"burst")))
            except Exception:  # noqa: BLE001 - the server is gone
                return

    threads = [threading.Thread(target=worker, args=(c,), daemon=True) for c in clients]
    for t in threads:
        t.start()
    poll(lambda: len(acked) >= 40, 15, interval=0.01, what="40 acknowledged encrypts")
    srv.kill()
    stop.set()
    for t in threads:
        t.join(timeout=30)
    srv.start()
    by_rid: dict[str, int] = {}
    records = fetch_chain(srv)
    for rec in records:
        by_rid[rec["request_id"]] = by_rid.get(rec["request_id"], 0) + 1
    lost = [x for x in acked if by_rid.get(x) != 1]
    assert not lost, f"{len(lost)} of {len(acked)} acknowledged requests have no (or several) records: {lost[:5]}"
    report = verify(srv)
    assert report["intact"], report


# =========================================================================== verification


def test_verify_intact_chain_from_store_and_from_export(spawn_server, tmp_path):
    srv, tenant, public_key = prepared_chain(spawn_server)

    cp = cli_ok(kcm(srv, "audit", "verify", output_json=False))
    text = cp.stdout.decode()
    assert "intact" in text and "TAMPERED" not in text and "NOT checked" not in text, text

    for args in ((), ("--public-key", public_key)):
        report = verify(srv, *args)
        assert report["intact"] is True and report["problem"] is None, report
        assert report["signatures_checked"] is True and report["checkpoints_verified"] >= 1, report
        assert report["records"] >= 12, report

    export = tmp_path / "audit.jsonl"
    cli_ok(kcm(srv, "audit", "export", "--checkpoints", "-o", export))
    records, checkpoints = read_export(export)
    assert records and checkpoints, "the export has no records or no checkpoints"
    tagged = [r for r in records if r.get("client_request_id") == "client-req-7"]
    # prepared_chain's two rounds of activity each tag one Encrypt.
    assert [r["operation"] for r in tagged] == ["Encrypt", "Encrypt"], "the client's request id is recorded"
    for args in (("--file", export, "--public-key", public_key), ("--file", export)):
        report = verify(srv, *args)
        assert report["intact"] is True and report["checkpoints_verified"] == len(checkpoints), report
        assert report["signatures_checked"] is True and report["records"] == len(records), report

    # Checked independently of kcm: hashes, links, and the Ed25519 checkpoint signatures.
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    assert [r["seq"] for r in records] == list(range(1, len(records) + 1))
    prev = GENESIS
    for r in records:
        assert r["tenant"] == tenant and r["prev_hash"] == prev and record_hash(r) == r["hash"], r
        prev = r["hash"]
    pub = Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_key))
    hashes = {r["seq"]: r["hash"] for r in records}
    prev = None
    for c in sorted(checkpoints, key=lambda c: c["seq"]):
        # Each signed as the successor of the one before it (raises if invalid).
        pub.verify(bytes.fromhex(c["signature"]), checkpoint_message(c, prev))
        assert hashes[c["seq"]] == c["hash"], c
        prev = c
    head = read_export_head(export)
    assert head is not None, "an export with --checkpoints carries the signed head"
    pub.verify(bytes.fromhex(head["signature"]), head_message(head))
    assert head["tenant"] == tenant and hashes[head["seq"]] == head["hash"], head
    assert store_records(srv, tenant)[: len(records)] == records, "the export differs from the store"

    # A key that did not sign the checkpoints refuses them.
    other_key = "ab" * 32
    report = verify(srv, "--file", export, "--public-key", other_key)
    assert report["intact"] is False and report["problem"]["kind"] == "checkpoint", report

    # The operator's chain verifies too (system-admin).
    report = verify(srv, profile="system-admin")
    assert report["intact"] is True, report


def test_verify_of_a_live_chain_is_not_fooled_by_checkpoints_signed_meanwhile(spawn_server, tmp_path):
    """A server signing checkpoints while `kcm audit verify` / `export --checkpoints` reads the
    chain must not make an untouched chain look truncated (the read's own record gets
    checkpointed between the records read and the checkpoints read)."""
    srv = spawn_server(env={"KCM_AUDIT_CHECKPOINT_INTERVAL_MS": "1"})
    some_activity(srv, n=3)
    public_key = srv.v1_ok("GET", "/v1/audit/signing-key")["public_key"]
    verify_failures, export_failures = [], []
    for i in range(25):
        report = verify(srv, "--public-key", public_key)
        if not report["intact"]:
            verify_failures.append(report["problem"])
        export = tmp_path / f"live-{i}.jsonl"
        cli_ok(kcm(srv, "audit", "export", "--checkpoints", "-o", export))
        report = verify(srv, "--file", export, "--public-key", public_key)
        if not report["intact"]:
            export_failures.append(report["problem"])
    assert not verify_failures and not export_failures, (
        f"untouched chain reported tampered: {len(verify_failures)}/25 live verifications, e.g. "
        f"{verify_failures[:1]}; {len(export_failures)}/25 exports, e.g. {export_failures[:1]}")


# Each tampering changes (records, checkpoints) of one chain in place, as an attacker with write
# access to the store (or to an exported file) would, and returns the verdict verify must give:
# (kind, seq, words the message must contain). Record N is the one tampered with.
N = 5


def _other_op(op: str) -> str:
    return "Decrypt" if op != "Decrypt" else "Encrypt"


def alter_operation(recs, cps):
    recs[N - 1]["operation"] = _other_op(recs[N - 1]["operation"])
    return "altered", N, [f"record {N}", "altered"]


def alter_outcome(recs, cps):
    recs[N - 1]["outcome"] = "denied" if recs[N - 1]["outcome"] == "success" else "success"
    return "altered", N, [f"record {N}", "altered"]


def remove_record(recs, cps):
    del recs[N - 1]
    return "removed", N, [f"record {N}", "removed"]


def remove_and_renumber(recs, cps):
    del recs[N - 1]
    for r in recs[N - 1:]:
        r["seq"] -= 1
    return "removed", N, [f"record {N}", "removed"]


def insert_forged(recs, cps):
    """A self-consistent forged record at N: right prev_hash, hash recomputed; later seqs +1."""
    before = recs[N - 2]
    forged = copy.deepcopy(before)
    forged.update(seq=N, operation=_other_op(before["operation"]), request_id="forged-" + unique(),
                  prev_hash=before["hash"])
    forged["hash"] = record_hash(forged)
    for r in recs[N - 1:]:
        r["seq"] += 1
    recs.insert(N - 1, forged)
    return "inserted", N, [f"record {N}", "inserted"]


def swap_records(recs, cps):
    """Records N and N+1 trade places; numbering follows position (all a store can hold, as its
    primary key orders the chain)."""
    a, b = recs[N - 1], recs[N]
    recs[N - 1], recs[N] = b, a
    b["seq"], a["seq"] = N, N + 1
    return "reordered", N, ["reordered"]


def swap_lines(recs, cps):
    """Records N and N+1 trade lines, each keeping its number (an export file only)."""
    recs[N - 1], recs[N] = recs[N], recs[N - 1]
    return "reordered", N, ["reordered"]


def rewrite_from_n(recs, cps):
    """Record N altered and every hash from N on recomputed: self-consistent, so only a signed
    checkpoint can tell."""
    recs[N - 1]["operation"] = _other_op(recs[N - 1]["operation"])
    for i in range(N - 1, len(recs)):
        recs[i]["prev_hash"] = recs[i - 1]["hash"] if i else GENESIS
        recs[i]["hash"] = record_hash(recs[i])
    caught_at = min(c["seq"] for c in cps if c["seq"] >= N)
    return "altered", caught_at, ["rewritten", "checkpoint"]


def truncate_end(recs, cps):
    """The chain cut short: the last two records a checkpoint vouches for removed, with
    everything after them (an export may end with records no checkpoint covers yet)."""
    end = max(c["seq"] for c in cps)
    assert end >= 3 and recs[end - 1]["seq"] == end, "no checkpoint covers enough records"
    del recs[end - 2:]
    return "removed", end - 1, ["removed from the end"]


def remove_checkpoint(recs, cps):
    """A checkpoint deleted: the next one was signed as its successor."""
    assert len(cps) >= 2, cps
    cps.sort(key=lambda c: c["seq"])
    removed, after = cps[0], cps[1]
    cps.remove(removed)
    return "checkpoint", after["seq"], ["removed"]


def swap_checkpoints(recs, cps):
    """Two checkpoints trade the records they vouch for, each keeping its signature."""
    assert len(cps) >= 2, cps
    cps.sort(key=lambda c: c["seq"])
    a, b = cps[0], cps[1]
    a["signature"], b["signature"] = b["signature"], a["signature"]
    return "checkpoint", a["seq"], ["invalid signature"]


def alter_checkpoint_signature(recs, cps):
    c = min(cps, key=lambda c: c["seq"])
    sig = c["signature"]
    c["signature"] = sig[:10] + ("0" if sig[10] != "0" else "1") + sig[11:]
    return "checkpoint", c["seq"], ["invalid signature"]


TAMPERINGS = [alter_operation, alter_outcome, remove_record, remove_and_renumber, insert_forged,
              swap_records, rewrite_from_n, truncate_end, alter_checkpoint_signature, remove_checkpoint,
              swap_checkpoints]


def _check_report(report: dict, kind: str, seq: int, words: list[str], where: str):
    problem = report.get("problem")
    assert report["intact"] is False and problem, f"{where}: tampering not detected: {report}"
    assert (problem["kind"], problem["seq"]) == (kind, seq), f"{where}: expected {kind} at {seq}, got {problem}"
    for w in words:
        assert w in problem["message"], f"{where}: {w!r} not in message {problem['message']!r}"


@pytest.mark.parametrize("tamper", TAMPERINGS, ids=lambda f: f.__name__)
def test_tampering_is_named_in_store_and_in_export(spawn_server, tmp_path, tamper):
    srv, tenant, public_key = prepared_chain(spawn_server)
    export = tmp_path / "audit.jsonl"
    cli_ok(kcm(srv, "audit", "export", "--checkpoints", "-o", export))
    assert verify(srv, "--file", export, "--public-key", public_key)["intact"]
    assert srv.stop() == 0  # (writes one last checkpoint covering the export's own records)

    # The store.
    recs, cps = store_records(srv, tenant), store_checkpoints(srv, tenant)
    assert len(recs) >= 2 * N and cps, (len(recs), cps)
    kind, seq, words = tamper(recs, cps)
    replace_store_chain(srv, tenant, recs, cps)
    srv.start()
    store_report = verify(srv, "--public-key", public_key)
    cp = kcm(srv, "audit", "verify", "--public-key", public_key, output_json=False)
    assert cp.returncode == 3 and "TAMPERED" in cp.stdout.decode(), cp.stdout

    # The same tampering, on the exported file.
    recs, cps = read_export(export)
    file_verdict = tamper(recs, cps)
    tampered = write_export(tmp_path / "tampered.jsonl", recs, cps)
    file_report = verify(srv, "--file", tampered, "--public-key", public_key)

    wrong = []
    for where, report, (kind, seq, words) in (("store", store_report, (kind, seq, words)),
                                               ("export", file_report, file_verdict)):
        if where == "store" and tamper is truncate_end:
            # The restarted server goes on appending after the cut (the verification's
            # own requests), so the chain regrows over the removed positions: what must
            # hold is that the cut is caught at the checkpoint that vouched for it.
            problem = report.get("problem") or {}
            if not (problem.get("kind") in ("removed", "altered") and seq <= problem.get("seq", 0) <= seq + 1):
                wrong.append(f"store: truncation not caught at {seq}-{seq + 1}: {problem}")
            continue
        try:
            _check_report(report, kind, seq, words, where)
        except AssertionError as e:
            wrong.append(str(e).splitlines()[0])
    assert not wrong, "\n".join(wrong)


def test_reordered_lines_in_an_export_are_named(spawn_server, tmp_path):
    srv, tenant, public_key = prepared_chain(spawn_server)
    export = tmp_path / "audit.jsonl"
    cli_ok(kcm(srv, "audit", "export", "--checkpoints", "-o", export))
    recs, cps = read_export(export)
    kind, seq, words = swap_lines(recs, cps)
    tampered = write_export(tmp_path / "tampered.jsonl", recs, cps)
    _check_report(verify(srv, "--file", tampered, "--public-key", public_key), kind, seq, words, "export")


# =========================================================================== export and paging


def cut_store_tail(server, chain: str, keep: int) -> None:
    """Records after `keep` and the checkpoints covering them deleted from the store of a
    running server, as whoever can write the database would: what is left is consistent."""
    with store(server) as db:
        db.execute("BEGIN IMMEDIATE")
        db.execute("DELETE FROM audit_records WHERE chain = ? AND seq > ?", (chain, keep))
        db.execute("DELETE FROM audit_checkpoints WHERE chain = ? AND seq > ?", (chain, keep))
        db.execute("COMMIT")


def test_a_tail_cut_with_its_checkpoints_is_caught_by_the_server_and_a_saved_head(spawn_server, tmp_path):
    srv, tenant, public_key = prepared_chain(spawn_server)
    checkpointed = max(c["seq"] for c in store_checkpoints(srv, tenant))
    some_activity(srv, n=3)
    saved = tmp_path / "head.json"
    cli_ok(kcm(srv, "audit", "head", "-o", saved, output_json=False))
    head = json.loads(saved.read_text())
    assert head["tenant"] == tenant and head["seq"] > checkpointed, head
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_key)).verify(
        bytes.fromhex(head["signature"]), head_message(head))
    export = tmp_path / "before.jsonl"
    cli_ok(kcm(srv, "audit", "export", "--checkpoints", "-o", export))
    assert verify(srv, "--file", export, "--public-key", public_key, "--head", saved)["intact"]

    # Cut into what the last checkpoint covered, with that checkpoint, while the server runs.
    keep = checkpointed - 2
    cut_store_tail(srv, tenant, keep)

    # The running server knows what it appended: its head vouches for that, so the cut shows
    # (as records removed, or — once the chain regrew over the cut with the verification's own
    # records — as a rewrite), and it says so in its log.
    for args in ((), ("--head", saved)):
        report = verify(srv, "--public-key", public_key, *args)
        problem = report["problem"] or {}
        assert problem.get("kind") in ("removed", "altered") and keep < problem["seq"] <= head["seq"] + 40, report
    assert "audit log tampering" in srv.log_tail(400), srv.log_tail(40)

    # Restarted, the server still knows what it appended and signed: it saved that in its
    # data directory (owner-only). The checkpoint it signed as it stopped follows the one
    # it signed before the cut, which the cut removed: the link is broken.
    heads_file = srv.data_dir / "audit-heads.json"
    assert srv.stop() == 0
    assert heads_file.exists() and oct(heads_file.stat().st_mode & 0o777) == oct(0o600)
    srv.start()
    problem = verify(srv, "--public-key", public_key)["problem"] or {}
    assert problem.get("kind") == "checkpoint" and "removed" in problem["message"], problem
    # Cut again while the server is stopped, with every checkpoint signed since, and its
    # heads file gone too (a new node, or one whose disk went with the cut): as far as the
    # server can tell the store is consistent; a head saved before the cut still catches it.
    assert srv.stop() == 0
    cut_store_tail(srv, tenant, keep)
    heads_file.unlink()
    srv.start()
    assert verify(srv, "--public-key", public_key)["intact"], "a server without its heads trusts the store"
    report = verify(srv, "--public-key", public_key, "--head", saved)
    problem = report["problem"] or {}
    assert problem.get("kind") in ("removed", "altered") and keep < problem["seq"] <= head["seq"], report
    assert "signed head" in problem["message"], problem

    # The same cut in an exported file, its own head line dropped with the tail: the saved
    # head catches it, and without one the report says how many records no signature covers.
    recs, cps = read_export(export)
    recs = [r for r in recs if r["seq"] <= keep]
    cps = [c for c in cps if c["seq"] <= keep]
    cut = write_export(tmp_path / "cut.jsonl", recs, cps)
    report = verify(srv, "--file", cut, "--public-key", public_key)
    assert report["intact"] and report["unsigned_tail"] == keep - max(c["seq"] for c in cps), report
    report = verify(srv, "--file", cut, "--public-key", public_key, "--head", saved)
    assert report["problem"]["kind"] == "removed" and report["problem"]["seq"] == keep + 1, report
    # A head from the export cannot be moved onto another chain or forged.
    forged = dict(head, seq=keep)
    forged["hash"] = recs[-1]["hash"]
    report = verify(srv, "--file", write_export(tmp_path / "forged.jsonl", recs, cps, forged),
                    "--public-key", public_key)
    assert report["problem"]["kind"] == "checkpoint" and "signed head" in report["problem"]["message"], report


def test_export_filters(spawn_server, tmp_path):
    srv = spawn_server()
    kms = srv.client("default")
    admin_id, _ = srv.creds("default")
    user_ak = srv.create_access_key("key-user")
    user = srv.client_for(user_ak)
    k1 = kms.create_key()["KeyMetadata"]["KeyId"]
    k2 = kms.create_key()["KeyMetadata"]["KeyId"]
    ct = kms.encrypt(KeyId=k1, Plaintext=b"one")["CiphertextBlob"]
    kms.encrypt(KeyId=k2, Plaintext=b"two")
    user.encrypt(KeyId=k1, Plaintext=b"three")
    time.sleep(0.03)
    t_mid = now_ms()
    time.sleep(0.03)
    kms.decrypt(CiphertextBlob=ct)
    user.encrypt(KeyId=k2, Plaintext=b"four")
    kms.encrypt(KeyId=k1, Plaintext=b"five")
    user.generate_random(NumberOfBytes=4)
    time.sleep(0.03)
    t_end = now_ms()
    time.sleep(0.03)
    kms.describe_key(KeyId=k2)

    full = fetch_chain(srv)  # the chain up to here; reading it appends ListAuditRecords records only
    assert len(full) >= 10

    def export(*args):
        return export_lines(cli_ok(kcm(srv, "audit", "export", *args, output_json=False)))

    everything = export()
    assert everything[: len(full)] == full, "the unfiltered export is not the chain"
    assert all(r["operation"] == "ListAuditRecords" for r in everything[len(full):])

    def check(args, params, pred, exact=True):
        want = [r for r in full if pred(r)]
        assert want, f"no record matches {args}: the test data is wrong"
        got_cli = export(*args)
        got_rest = fetch_chain(srv, **params)
        for got, door in ((got_cli, "kcm audit export"), (got_rest, "GET /v1/audit")):
            assert all(pred(r) for r in got), f"{door} {args}: a record does not match: {got}"
            if exact:
                assert got == want, f"{door} {args}: {len(got)} records, expected {len(want)}"
            else:
                assert got[: len(want)] == want, f"{door} {args}: the matching records are not all there"

    check(["--operation", "Encrypt"], {"operation": "Encrypt"}, lambda r: r["operation"] == "Encrypt")
    check(["--operation", "Decrypt"], {"operation": "Decrypt"}, lambda r: r["operation"] == "Decrypt")
    check(["--key", k1], {"key": k1}, lambda r: k1 in [k["id"] for k in r["keys"]])
    check(["--key", k2], {"key": k2}, lambda r: k2 in [k["id"] for k in r["keys"]])
    check(["--principal", user_ak["access_key_id"]], {"principal": user_ak["access_key_id"]},
          lambda r: r["principal"] == user_ak["access_key_id"])
    check(["--principal", admin_id], {"principal": admin_id}, lambda r: r["principal"] == admin_id, exact=False)
    check(["--to", rfc3339(t_mid)], {"to": rfc3339(t_mid)}, lambda r: r["time"] < t_mid)
    check(["--from", rfc3339(t_mid), "--to", rfc3339(t_end)], {"from": rfc3339(t_mid), "to": rfc3339(t_end)},
          lambda r: t_mid <= r["time"] < t_end)
    check(["--from", rfc3339(t_mid, 2), "--to", rfc3339(t_end, -5)],
          {"from": rfc3339(t_mid, 2), "to": rfc3339(t_end, -5)}, lambda r: t_mid <= r["time"] < t_end)
    check(["--from", rfc3339(t_mid)], {"from": rfc3339(t_mid)}, lambda r: r["time"] >= t_mid, exact=False)
    check(["--from", rfc3339(t_mid), "--key", k1, "--operation", "Encrypt"],
          {"from": rfc3339(t_mid), "key": k1, "operation": "Encrypt"},
          lambda r: r["time"] >= t_mid and r["operation"] == "Encrypt" and k1 in [k["id"] for k in r["keys"]])
    assert export("--key", k2, "--operation", "Decrypt") == []
    assert export("--principal", "KCMNOBODYNOBODYNOBOD") == []

    # --out writes the same lines; --checkpoints adds the chain's checkpoints.
    out = tmp_path / "ops.jsonl"
    cli_ok(kcm(srv, "audit", "export", "--operation", "Encrypt", "--checkpoints", "-o", out))
    recs, cps = read_export(out)
    assert recs == [r for r in full if r["operation"] == "Encrypt"]
    assert all(set(c) == {"tenant", "seq", "hash", "time", "signature"} for c in cps), cps

    # Invalid filters: refused, naming the parameter.
    for args, name in ((["--from", "yesterday"], "from"), (["--to", "2026-13-45"], "to"),
                       (["--key", "not-a-key-id"], "key")):
        cp = kcm(srv, "audit", "export", *args, output_json=False)
        assert cp.returncode != 0, f"export {args} succeeded"
        assert names_param(cp.stderr.decode(), name), f"export {args}: stderr does not name `{name}`: {cp.stderr!r}"


def test_rest_paging_and_invalid_filters(spawn_server):
    srv = spawn_server()
    kms = srv.client("default")
    for _ in range(25):
        kms.generate_random(NumberOfBytes=4)
    full = fetch_chain(srv)
    assert len(full) >= 25

    pages, after = [], 0
    for _ in range(100):
        body = srv.v1_ok("GET", f"/v1/audit?limit=7&after={after}")
        pages.append(body["records"])
        assert len(body["records"]) <= 7
        if body["next_after"] is None:
            break
        assert body["records"] and body["next_after"] == body["records"][-1]["seq"], body
        after = body["next_after"]
    else:
        raise AssertionError("paging never ended")
    assert len(pages) >= 4
    assert all(len(p) == 7 for p in pages[:-1]), [len(p) for p in pages]
    paged = [r for p in pages for r in p]
    assert [r["seq"] for r in paged] == list(range(1, len(paged) + 1)), "pages overlap or skip records"
    assert paged[: len(full)] == full

    body = srv.v1_ok("GET", "/v1/audit?after=10&limit=5")
    assert [r["seq"] for r in body["records"]] == [11, 12, 13, 14, 15] and body["next_after"] == 15

    # Paging through a filter.
    want = [r for r in full if r["operation"] == "GenerateRandom"]
    got, after, n_pages = [], 0, 0
    for _ in range(100):
        body = srv.v1_ok("GET", f"/v1/audit?operation=GenerateRandom&limit=4&after={after}")
        n_pages += 1
        got += body["records"]
        if body["next_after"] is None:
            break
        after = body["next_after"]
    assert got == want and n_pages >= 7

    default_page = srv.v1_ok("GET", "/v1/audit?after=20")  # default page size 100: one page
    assert [r["seq"] for r in default_page["records"]][:5] == [21, 22, 23, 24, 25]
    assert default_page["next_after"] is None

    for query, name in (("from=yesterday", "from"), ("to=2026-12-01", "to"), ("key=not-a-key", "key"),
                        ("limit=0", "limit"), ("limit=1001", "limit"), ("limit=many", "limit"),
                        ("after=-1", "after"), ("after=x", "after"), ("tenant=" + UUID_ZERO, "tenant"),
                        ("colour=blue", "colour")):
        r = srv.v1("GET", f"/v1/audit?{query}")
        assert r.status_code == 400, f"?{query} -> {r.status_code} {r.text}"
        assert v1_error_code(r) == "InvalidInput", r.text
        assert names_param(r.json()["error"]["message"], name), f"?{query}: message does not name `{name}`: {r.text}"
    r = srv.v1("GET", "/v1/audit/checkpoints?limit=0")
    assert r.status_code == 400 and v1_error_code(r) == "InvalidInput", r.text


UUID_ZERO = "00000000-0000-4000-8000-000000000000"


# =========================================================================== who may read


AUDIT_PATHS = ("/v1/audit", "/v1/audit/checkpoints", "/v1/audit/signing-key", "/v1/audit/head")


def test_who_may_read_which_chain(spawn_server, tmp_path):
    srv = spawn_server()
    tenant_a = tenant_of(srv)
    kms = srv.client("default")
    sysadmin_id, _ = srv.creds("system-admin")
    roles = {role: srv.create_access_key(role) for role in ("auditor", "key-admin", "key-user")}
    a_key = kms.create_key()["KeyMetadata"]["KeyId"]
    a_rids = {rid(kms.encrypt(KeyId=a_key, Plaintext=b"tenant a"))}

    r = srv.v1("POST", "/v1/tenants", profile="system-admin", json_body={"name": unique("tenant-b")})
    assert r.status_code == 201, r.text
    create_tenant_rid = r.headers["x-kcm-request-id"]
    tenant_b, b_ak = r.json()["tenant"]["id"], r.json()["access_key"]
    b_creds = (b_ak["access_key_id"], b_ak["secret_access_key"])
    b_kms = srv.client_for(b_ak)
    b_key = b_kms.create_key()["KeyMetadata"]["KeyId"]
    b_rids = {rid(b_kms.encrypt(KeyId=b_key, Plaintext=b"tenant b"))}

    # tenant-admin and auditor read their tenant's chain; key-admin and key-user may not.
    for who, creds in (("tenant-admin", None), ("auditor", _creds(roles["auditor"]))):
        for path in AUDIT_PATHS:
            r = srv.v1("GET", path, creds=creds)
            assert r.status_code == 200, f"{who} GET {path} -> {r.status_code} {r.text}"
    denied_rids = {}
    for who in ("key-admin", "key-user"):
        for path in AUDIT_PATHS:
            r = srv.v1("GET", path, creds=_creds(roles[who]))
            assert r.status_code == 403 and v1_error_code(r) == "AccessDenied", f"{who} GET {path} -> {r.text}"
            denied_rids[r.headers["x-kcm-request-id"]] = (who, path)
        cp = kcm(srv, "audit", "export", creds_file=write_creds(tmp_path / who, roles[who]))
        assert cp.returncode != 0, f"{who} could export the audit log"

    auditor_view = export_lines(cli_ok(kcm(srv, "audit", "export", output_json=False,
                                           creds_file=write_creds(tmp_path / "auditor", roles["auditor"]))))
    a_chain = fetch_chain(srv)
    assert auditor_view == a_chain[: len(auditor_view)] and len(auditor_view) >= len(a_chain) - 2
    ops = {"/v1/audit": "ListAuditRecords", "/v1/audit/checkpoints": "ListAuditCheckpoints",
           "/v1/audit/signing-key": "GetAuditSigningKey", "/v1/audit/head": "GetAuditHead"}
    for request_id, (who, path) in denied_rids.items():
        rec = the_record(a_chain, request_id)
        assert (rec["role"], rec["operation"], rec["outcome"], rec["error"]) == \
            (who, ops[path], "denied", "AccessDenied"), rec

    # A tenant sees only its own chain.
    b_chain = fetch_chain(srv, creds=b_creds)
    a_ids, b_ids = {r["request_id"] for r in a_chain}, {r["request_id"] for r in b_chain}
    assert a_rids <= a_ids and b_rids <= b_ids
    assert not (a_ids & b_ids), "a request id appears in two tenants' chains"
    assert all(r["tenant"] == tenant_a for r in a_chain) and all(r["tenant"] == tenant_b for r in b_chain)
    assert fetch_chain(srv, key=b_key) == [], "tenant A reads records about tenant B's key"
    assert fetch_chain(srv, creds=b_creds, key=a_key) == [], "tenant B reads records about tenant A's key"
    r = srv.v1("GET", f"/v1/audit?tenant={tenant_b}")
    assert r.status_code == 400, "a `tenant` parameter must not select another chain"
    for creds, tenant in ((None, tenant_a), (b_creds, tenant_b)):
        r = srv.v1("GET", "/v1/audit/head", creds=creds)
        assert r.status_code == 200 and r.json()["head"]["tenant"] == tenant, r.text

    # system-admin reads the operator's chain only: operator actions such as CreateTenant.
    operator = fetch_chain(srv, profile="system-admin")
    op_ids = {r["request_id"] for r in operator}
    rec = the_record(operator, create_tenant_rid, "the operator chain")
    assert (rec["operation"], rec["role"], rec["principal"], rec["tenant"], rec["outcome"]) == \
        ("CreateTenant", "system-admin", sysadmin_id, None, "success"), rec
    assert not (op_ids & (a_ids | b_ids)), "tenant records in the operator chain"
    assert create_tenant_rid not in a_ids | b_ids
    for r in operator:
        assert r["tenant"] is None, r
        assert r["role"] == "system-admin" or (r["role"] is None and r["outcome"] == "denied"), r
    assert fetch_chain(srv, profile="system-admin", key=a_key) == []
    operator_export = export_lines(cli_ok(kcm(srv, "audit", "export", profile="system-admin", output_json=False)))
    assert all(r["tenant"] is None for r in operator_export) and create_tenant_rid in \
        {r["request_id"] for r in operator_export}


def _creds(ak: dict) -> tuple[str, str]:
    return ak["access_key_id"], ak["secret_access_key"]
