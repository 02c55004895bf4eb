"""HYOK through an AWS XKS proxy, end to end.

The root key lives only in the customer's key manager (a SoftHSM2 token) behind the test
XKS proxy (tests/python/xks_proxy.py, written from the public spec). kcm is configured
with a `kind = "xks"` keystore, refers to the customer's key by its externalKeyId, and
calls the proxy for every unwrap of a system key. boto3 drives the AWS API.
"""

from __future__ import annotations

import pytest
from kcmtest import (LOADED_SLACK_S, ServerStartError, kms_error, refused_within, system_with_key, unique,
                     works_again_within)
from softhsm import Token
from xks_proxy import XksProxy

CHECK_MS = 500


@pytest.fixture
def proxy(tmp_path):
    token = Token(tmp_path / "customer-hsm", label="customer")
    with XksProxy(tmp_path / "xks", token, uri_prefix="/tenant-a") as p:
        p.create_key("customer-root")
        yield p


def xks_config(path, proxy: XksProxy, secret_file=None, secret=None, uri_path=None, extra="") -> str:
    secret_file = secret_file or (path.parent / "xks.secret")
    if not secret_file.exists():
        secret_file.write_text((secret or proxy.secret) + "\n")
        secret_file.chmod(0o600)
    path.write_text(
        "[keystores.xks]\n"
        'kind = "xks"\n'
        f'endpoint = "{proxy.endpoint}"\n'
        f'uri_path = "{uri_path or proxy.uri_path}"\n'
        f'access_key_id = "{proxy.access_key_id}"\n'
        f'secret_file = "{secret_file}"\n'
        f'region = "{proxy.region}"\n'
        f'ca_file = "{proxy.ca_file}"\n' + extra
    )
    return str(path)


def start(spawn_server, proxy, tmp_path, **kw):
    conf = xks_config(tmp_path / "kcm.toml", proxy, **kw)
    return spawn_server(env={"KCM_CONFIG": conf, "KCM_EXTERNAL_CHECK_INTERVAL_MS": str(CHECK_MS),
                             "KCM_REVOCATION_BOUND_MS": "60000"})


def reference(srv, key_id: str):
    return srv.v1("POST", "/v1/root-keys/reference",
                  json_body={"keystore": "xks", "reference": key_id, "description": "customer's key"})


def test_a_root_key_held_behind_an_xks_proxy_and_its_revocation_by_the_holder(spawn_server, proxy, tmp_path):
    srv = start(spawn_server, proxy, tmp_path)

    # Refusals first: unknown, malformed, and a keystore that cannot create keys.
    r = reference(srv, "no-such-key")
    assert r.status_code == 400 and "not found" in r.json()["error"]["message"], r.text
    r = reference(srv, "bad/id")
    assert r.status_code == 400 and "externalKeyId" in r.json()["error"]["message"], r.text
    r = srv.v1("POST", "/v1/root-keys", json_body={"keystore": "xks"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "Unsupported", r.text

    root = srv.v1_ok("POST", "/v1/root-keys/reference", expect=(201,),
                     json_body={"keystore": "xks", "reference": "customer-root"})
    assert (root["origin"], root["keystore_kind"]) == ("external", "xks"), root
    assert reference(srv, "customer-root").status_code == 409

    system, kms, key_id = system_with_key(srv, root["id"], "xks")
    assert system["status"] == "connected", system
    blob = kms.encrypt(KeyId=key_id, Plaintext=b"held by the customer")["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"held by the customer"
    dk = kms.generate_data_key(KeyId=key_id, KeySpec="AES_256")
    assert kms.decrypt(CiphertextBlob=dk["CiphertextBlob"])["Plaintext"] == dk["Plaintext"]

    # Listing systems asks the proxy once per listing, not once per system: one health
    # check and one metadata lookup for three systems below the same key.
    for _ in range(2):
        srv.v1_ok("POST", "/v1/systems", expect=(201,), json_body={"name": unique("xks"), "root_key_id": root["id"]})
    before = proxy.output()
    listed = srv.v1_ok("GET", "/v1/systems")["systems"]
    assert sum(s["root_key_id"] == root["id"] and s["status"] == "connected" for s in listed) == 3, listed
    calls = proxy.output()[len(before):]
    assert calls.count("/kms/xks/v1/health") == 1, calls
    assert calls.count("/keys/customer-root/metadata") == 1, calls

    # kcm called the proxy with SigV4 (the proxy refuses anything else), and the proxy
    # saw encrypt and decrypt for the customer's key.
    log = proxy.output()
    assert "/tenant-a/kms/xks/v1/keys/customer-root/encrypt" in log, log[-2000:]
    assert "/tenant-a/kms/xks/v1/keys/customer-root/decrypt" in log, log[-2000:]

    # The holder disables the key on their side. The revocation bound is a minute, so
    # only the external check interval can explain a refusal within seconds.
    proxy.disable("customer-root")
    # A root key its holder disabled: KMSInvalidStateException, as AWS KMS answers every
    # cryptographic operation on a key whose external key store cannot serve it.
    took = refused_within(lambda: kms.decrypt(CiphertextBlob=blob), CHECK_MS / 1000 + LOADED_SLACK_S,
                          "KMSInvalidStateException")
    print(f"refused {took:.2f} s after the holder disabled the key (interval {CHECK_MS} ms)")
    with kms_error("KMSInvalidStateException"):
        kms.generate_data_key(KeyId=key_id, KeySpec="AES_256")
    status = srv.v1_ok("GET", f"/v1/systems/{system['id']}")["status"]
    assert status == f"locked: root key {root['id']} is revoked by its holder", status

    # Re-enabled on their side: everything works again, nothing to do in kcm.
    proxy.enable("customer-root")
    plain = works_again_within(lambda: kms.decrypt(CiphertextBlob=blob), CHECK_MS / 1000 + 5.0,
                               "still refused after the holder re-enabled the key", interval=0.1)["Plaintext"]
    assert plain == b"held by the customer"
    assert srv.v1_ok("GET", f"/v1/systems/{system['id']}")["status"] == "connected"

    # The key deleted from the customer's key manager: refused, and said so.
    proxy.delete_key("customer-root")
    refused_within(lambda: kms.decrypt(CiphertextBlob=blob), CHECK_MS / 1000 + LOADED_SLACK_S,
                   "KMSInvalidStateException")
    status = srv.v1_ok("GET", f"/v1/systems/{system['id']}")["status"]
    assert status == f"locked: root key {root['id']} is revoked by its holder", status

    # Neither kcm's log nor the proxy's holds the plaintext.
    for text in (proxy.output(), srv.stderr_path.read_text()):
        assert "held by the customer" not in text
        assert proxy.secret not in text


def test_a_proxy_that_goes_away_locks_the_systems_below(spawn_server, proxy, tmp_path):
    srv = start(spawn_server, proxy, tmp_path)
    root = srv.v1_ok("POST", "/v1/root-keys/reference", expect=(201,),
                     json_body={"keystore": "xks", "reference": "customer-root"})
    system, kms, key_id = system_with_key(srv, root["id"], "xks")
    blob = kms.encrypt(KeyId=key_id, Plaintext=b"x")["CiphertextBlob"]

    proxy.stop()
    # An unreachable proxy is an outage of the keystore: the retryable 503 (the mapping
    # in crates/kcm-keystore-xks/src/lib.rs).
    refused_within(lambda: kms.decrypt(CiphertextBlob=blob), CHECK_MS / 1000 + LOADED_SLACK_S,
                   "DependencyTimeoutException", status=503)
    status = srv.v1_ok("GET", f"/v1/systems/{system['id']}")["status"]
    assert status == "locked: keystore xks is unreachable", status


def test_wrong_credentials_and_settings_are_named(spawn_server, proxy, tmp_path):
    # A wrong secret: kcm starts (the proxy may be fixed later), says so in its log,
    # and a reference names the cause.
    srv = start(spawn_server, proxy, tmp_path, secret="not-the-secret-" + "x" * 30)
    assert "keystore is not usable now" in srv.stderr_path.read_text()
    r = reference(srv, "customer-root")
    assert r.status_code == 503 and "misconfigured" in r.json()["error"]["message"], r.text
    assert "rejected kcm's SigV4 credentials" in srv.stderr_path.read_text()
    srv.stop()

    # Plain HTTP is refused at start: the proxy API carries key material.
    conf = tmp_path / "plain.toml"
    xks_config(conf, proxy)
    conf.write_text(conf.read_text().replace("https://", "http://"))
    bad = spawn_server(env={"KCM_CONFIG": str(conf)}, start=False)
    with pytest.raises(ServerStartError) as e:
        bad.start(timeout=15)
    assert "https" in str(e.value) + bad.log_tail(), bad.log_tail()

    # A secret file others can read is refused at start.
    loose = tmp_path / "loose.secret"
    loose.write_text(proxy.secret)
    loose.chmod(0o644)
    conf2 = tmp_path / "loose.toml"
    xks_config(conf2, proxy, secret_file=loose)
    bad = spawn_server(env={"KCM_CONFIG": str(conf2)}, start=False)
    with pytest.raises(ServerStartError) as e:
        bad.start(timeout=15)
    assert "chmod 600" in str(e.value) + bad.log_tail(), bad.log_tail()


def test_the_proxys_spec_errors_reach_an_aws_client_as_kcm_promises(spawn_server, proxy, tmp_path):
    """Errors of the spec the proxy never makes itself, answered on purpose (its canned
    answers), through the real server to boto3 (one attempt, no retries): throttling is
    "retry later" and leaves the system connected; the proxy's authorization refusing
    kcm the key is its holder's refusal, and locks the system as revoked."""
    srv = start(spawn_server, proxy, tmp_path)
    root = srv.v1_ok("POST", "/v1/root-keys/reference", expect=(201,),
                     json_body={"keystore": "xks", "reference": "customer-root"})
    system, kms, key_id = system_with_key(srv, root["id"], "xks")
    blob = kms.encrypt(KeyId=key_id, Plaintext=b"x")["CiphertextBlob"]

    def status_of():
        return srv.v1_ok("GET", f"/v1/systems/{system['id']}")["status"]

    # kcm trusts an unwrapped system key for the external check interval, then asks again.
    for error_name in ("ThrottlingException", "DependencyTimeoutException"):
        proxy.answer_error("customer-root", "decrypt", error_name)
        refused_within(lambda: kms.decrypt(CiphertextBlob=blob), CHECK_MS / 1000 + LOADED_SLACK_S,
                       "DependencyTimeoutException", status=503)
        assert status_of() == "connected"
    log = srv.stderr_path.read_text()
    assert "ThrottlingException" in log and "DependencyTimeoutException" in log, log[-3000:]

    for op in ("metadata", "decrypt"):
        proxy.answer_error("customer-root", op, "AccessDeniedException", "policy says no")
    refused_within(lambda: kms.decrypt(CiphertextBlob=blob), CHECK_MS / 1000 + LOADED_SLACK_S,
                   "KMSInvalidStateException")
    assert status_of() == f"locked: root key {root['id']} is revoked by its holder"

    for op in ("metadata", "decrypt"):
        proxy.real_answers("customer-root", op)
    plain = works_again_within(lambda: kms.decrypt(CiphertextBlob=blob), CHECK_MS / 1000 + 5.0,
                               "still refused after the proxy answered normally again", interval=0.1)
    assert plain["Plaintext"] == b"x"
    assert status_of() == "connected"
