"""The native REST API under /v1, and the unauthenticated endpoints."""

from __future__ import annotations

import json
import re

import pytest
import requests

from kcmtest import KEY_ARN_RE, unique


def assert_v1_error(r: requests.Response, status: int, code: str):
    """`r` is exactly the `/v1` error `code` with HTTP `status` (the one mapping:
    crates/kcm-rest-api/src/error.rs), with a message."""
    assert r.status_code == status, f"expected {status} {code}, got {r.status_code}: {r.text[:500]}"
    body = r.json()
    assert isinstance(body.get("error"), dict), body
    assert body["error"].get("code") == code, body
    assert (body["error"].get("message") or "").strip(), body
    return body["error"]


# --------------------------------------------------------------------- unauthenticated endpoints


def test_health_ready(server):
    for path in ("/health", "/ready"):
        r = requests.get(server.url + path, timeout=10)
        assert r.status_code == 200, (path, r.text)


def test_metrics(spawn_server):
    server = spawn_server(env={"KCM_METRICS": "public"})
    server.client("default").list_keys()
    server.v1("GET", "/v1/systems")
    r = requests.get(server.url + "/metrics", timeout=10)
    assert r.status_code == 200
    assert r.headers.get("content-type", "").startswith("text/plain"), r.headers.get("content-type")
    lines = [ln for ln in r.text.splitlines() if ln and not ln.startswith("#")]
    assert any(ln.startswith("kcm_") for ln in lines), r.text[:1000]
    # Every sample line is "name{labels} value".
    sample = re.compile(r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{.*\})? [-+0-9.eEinfaN]+( \d+)?$')
    bad = [ln for ln in lines if not sample.match(ln)]
    assert not bad, bad[:5]
    # No secret material in metrics.
    _, secret = server.creds("default")
    assert secret not in r.text


def test_openapi(server):
    r = requests.get(server.url + "/v1/openapi.json", timeout=10)
    assert r.status_code == 200, r.text[:300]
    doc = r.json()
    assert str(doc.get("openapi", "")).startswith("3"), doc.get("openapi")
    paths = doc["paths"]
    for p in ("/v1/tenants", "/v1/access-keys", "/v1/systems", "/v1/keychain"):
        assert p in paths, sorted(paths)
    assert "post" in paths["/v1/tenants"]
    assert "info" in doc and doc["info"].get("title")


# --------------------------------------------------------------------- authentication on /v1


def test_v1_requires_auth(server):
    r = server.v1("GET", "/v1/systems", auth=False)
    assert_v1_error(r, 401, "Unauthenticated")
    kid, _ = server.creds("default")
    r = server.v1("GET", "/v1/systems", creds=(kid, "wrong-secret"))
    assert_v1_error(r, 401, "Unauthenticated")
    r = server.v1("GET", "/v1/systems", creds=("AKIANOSUCHKEY0000000", "x"))
    assert_v1_error(r, 401, "Unauthenticated")
    r = server.v1("GET", "/v1/systems", auth=False, headers={"Authorization": "Bearer no-colon-here"})
    assert_v1_error(r, 401, "Unauthenticated")


def test_v1_unknown_path(server):
    r = server.v1("GET", "/v1/no-such-thing")
    assert_v1_error(r, 404, "NotFound")


# --------------------------------------------------------------------- tenants


def test_create_tenant(server):
    name = unique("acme")
    body = server.create_tenant(name)
    t, ak = body["tenant"], body["access_key"]
    assert t["name"] == name
    assert t["id"] and t["created_at"]
    assert re.fullmatch(r"\d{12}", t["account_id"]), t["account_id"]
    assert ak["role"] == "tenant-admin"
    assert ak["tenant_id"] == t["id"]
    assert ak["enabled"] is True
    assert ak.get("system") is None
    assert ak["access_key_id"] and ak["secret_access_key"]

    listed = server.v1_ok("GET", "/v1/tenants", profile="system-admin")["tenants"]
    assert [x["name"] for x in listed].count(name) == 1
    for ident in (t["id"], name):
        got = server.v1_ok("GET", f"/v1/tenants/{ident}", profile="system-admin")
        got = got.get("tenant", got)
        assert got["id"] == t["id"] and got["account_id"] == t["account_id"]

    # The new tenant works on the AWS API, with its own account id in ARNs.
    kms = server.client_for(ak)
    md = kms.create_key()["KeyMetadata"]
    m = KEY_ARN_RE.match(md["Arn"])
    assert m and m["account"] == t["account_id"]
    default_acct = server.client("default").create_key()["KeyMetadata"]["AWSAccountId"]
    assert default_acct != t["account_id"]
    # ...and has a default system.
    systems = server.v1_ok("GET", "/v1/systems", creds=(ak["access_key_id"], ak["secret_access_key"]))["systems"]
    assert "default" in [s["name"] for s in systems]


def test_duplicate_tenant(server):
    name = unique("dup")
    server.create_tenant(name)
    r = server.v1("POST", "/v1/tenants", profile="system-admin", json_body={"name": name})
    assert_v1_error(r, 409, "AlreadyExists")


def test_unknown_tenant(server):
    r = server.v1("GET", "/v1/tenants/" + unique("nosuch"), profile="system-admin")
    assert_v1_error(r, 404, "NotFound")


def test_only_system_admin_creates_tenants(server):
    name = unique("nope")
    r = server.v1("POST", "/v1/tenants", profile="default", json_body={"name": name})
    assert_v1_error(r, 403, "AccessDenied")
    names = [x["name"] for x in server.v1_ok("GET", "/v1/tenants", profile="system-admin")["tenants"]]
    assert name not in names


@pytest.mark.parametrize("payload", [{}, {"name": ""}, {"name": 42}, {"name": "x" * 1000}])
def test_invalid_tenant_payload(server, payload):
    r = server.v1("POST", "/v1/tenants", profile="system-admin", json_body=payload)
    assert_v1_error(r, 400, "InvalidInput")


@pytest.mark.parametrize("path", ["/v1/tenants", "/v1/systems", "/v1/access-keys"])
def test_invalid_json_body(server, path):
    profile = "system-admin" if path == "/v1/tenants" else "default"
    r = server.v1("POST", path, profile=profile, data=b'{"name": "x",', headers={"Content-Type": "application/json"})
    err = assert_v1_error(r, 400, "InvalidInput")
    assert len(err["message"]) > 5


def test_wrong_field_type_is_named(server):
    r = server.v1("POST", "/v1/systems", json_body={"name": 123, "kind": "application"})
    err = assert_v1_error(r, 400, "InvalidInput")
    assert "name" in err["message"].lower(), err


# --------------------------------------------------------------------- access keys


def test_access_key_lifecycle(server):
    ak = server.create_access_key("auditor", description="read-only bot")
    kid, secret = ak["access_key_id"], ak["secret_access_key"]
    assert ak["role"] == "auditor"
    assert ak["enabled"] is True
    assert ak.get("description") == "read-only bot"

    r = server.v1("GET", "/v1/access-keys")
    assert r.status_code == 200
    assert secret not in r.text, "a secret is shown again in the list"
    keys = r.json()["access_keys"]
    mine = [k for k in keys if k["access_key_id"] == kid]
    assert len(mine) == 1
    assert "secret_access_key" not in mine[0] or not mine[0]["secret_access_key"]

    creds = (kid, secret)
    assert server.v1("GET", "/v1/systems", creds=creds).status_code == 200
    server.v1_ok("POST", f"/v1/access-keys/{kid}/disable")
    listed = {k["access_key_id"]: k for k in server.v1_ok("GET", "/v1/access-keys")["access_keys"]}
    assert listed[kid]["enabled"] is False
    assert_v1_error(server.v1("GET", "/v1/systems", creds=creds), 401, "Unauthenticated")
    server.v1_ok("POST", f"/v1/access-keys/{kid}/enable")
    assert server.v1("GET", "/v1/systems", creds=creds).status_code == 200
    r = server.v1("DELETE", f"/v1/access-keys/{kid}")
    assert r.status_code == 204, r.text
    assert_v1_error(server.v1("GET", "/v1/systems", creds=creds), 401, "Unauthenticated")
    assert kid not in [k["access_key_id"] for k in server.v1_ok("GET", "/v1/access-keys")["access_keys"]]
    assert_v1_error(server.v1("DELETE", f"/v1/access-keys/{kid}"), 404, "NotFound")


def test_access_key_invalid_role(server):
    for role in ("superuser", "system-admin", ""):
        r = server.v1("POST", "/v1/access-keys", json_body={"role": role})
        assert_v1_error(r, 400, "InvalidInput")


def test_access_key_unknown_system(server):
    r = server.v1("POST", "/v1/access-keys", json_body={"role": "key-user", "system": unique("nosys")})
    assert_v1_error(r, 404, "NotFound")


def test_access_key_unknown_id(server):
    assert_v1_error(server.v1("POST", "/v1/access-keys/AKIANOSUCHKEY0000000/disable"), 404, "NotFound")


def test_only_tenant_admin_manages_access_keys(server):
    for role in ("key-admin", "key-user", "auditor"):
        ak = server.create_access_key(role)
        r = server.v1("POST", "/v1/access-keys", creds=(ak["access_key_id"], ak["secret_access_key"]),
                      json_body={"role": "tenant-admin"})
        assert_v1_error(r, 403, "AccessDenied")


def test_access_keys_are_per_tenant(server, other_tenant):
    ak = server.create_access_key("key-user")
    oak = other_tenant["access_key"]
    ocreds = (oak["access_key_id"], oak["secret_access_key"])
    theirs = server.v1_ok("GET", "/v1/access-keys", creds=ocreds)["access_keys"]
    assert ak["access_key_id"] not in [k["access_key_id"] for k in theirs]
    r = server.v1("POST", f"/v1/access-keys/{ak['access_key_id']}/disable", creds=ocreds)
    assert_v1_error(r, 404, "NotFound")
    assert server.v1("GET", "/v1/access-keys").json()  # still fine
    listed = {k["access_key_id"]: k for k in server.v1_ok("GET", "/v1/access-keys")["access_keys"]}
    assert listed[ak["access_key_id"]]["enabled"] is True


def test_system_admin_cannot_read_tenant_objects(server):
    for path in ("/v1/keychain", "/v1/systems", "/v1/access-keys"):
        r = server.v1("GET", path, profile="system-admin")
        # The operator either has no tenant view (403) or sees nothing of the default tenant.
        if r.status_code == 200:
            text = r.text
            for kid in [k["KeyId"] for k in server.client("default").list_keys(Limit=50)["Keys"]]:
                assert kid not in text
        else:
            assert_v1_error(r, 403, "AccessDenied")


# --------------------------------------------------------------------- systems


def test_systems(server):
    name = unique("sys")
    s = server.v1_ok("POST", "/v1/systems", expect=(201,),
                     json_body={"name": name, "kind": "kubernetes", "description": "prod cluster"})
    s = s.get("system", s)
    assert s["name"] == name and s["kind"] == "kubernetes" and s["description"] == "prod cluster"
    for f in ("id", "root_key_id", "system_key_version", "status", "created_at"):
        assert s.get(f) not in (None, ""), f
    systems = server.v1_ok("GET", "/v1/systems")["systems"]
    names = [x["name"] for x in systems]
    assert "default" in names and names.count(name) == 1
    for ident in (s["id"], name):
        got = server.v1_ok("GET", f"/v1/systems/{ident}")
        got = got.get("system", got)
        assert got["id"] == s["id"]
    r = server.v1("POST", "/v1/systems", json_body={"name": name, "kind": "kubernetes", "description": ""})
    assert_v1_error(r, 409, "AlreadyExists")
    assert [x["name"] for x in server.v1_ok("GET", "/v1/systems")["systems"]].count(name) == 1
    assert_v1_error(server.v1("GET", "/v1/systems/" + unique("nosys")), 404, "NotFound")


def test_system_requires_name(server):
    assert_v1_error(server.v1("POST", "/v1/systems", json_body={"kind": "storage"}), 400, "InvalidInput")


def test_systems_are_per_tenant(server, other_tenant):
    name = unique("mine")
    server.v1_ok("POST", "/v1/systems", expect=(201,), json_body={"name": name, "kind": "storage", "description": ""})
    oak = other_tenant["access_key"]
    ocreds = (oak["access_key_id"], oak["secret_access_key"])
    assert name not in [x["name"] for x in server.v1_ok("GET", "/v1/systems", creds=ocreds)["systems"]]
    assert_v1_error(server.v1("GET", f"/v1/systems/{name}", creds=ocreds), 404, "NotFound")
    # The same name is free in the other tenant.
    server.v1_ok("POST", "/v1/systems", expect=(201,), creds=ocreds,
                 json_body={"name": name, "kind": "storage", "description": ""})


# --------------------------------------------------------------------- keychain


def _service_keys(chain):
    out = {}
    for rk in chain["root_keys"]:
        for s in rk["systems"]:
            for sk in s["service_keys"]:
                out[sk["id"]] = (rk, s, sk)
    return out


def test_keychain(server):
    kms = server.client("default")
    kid = kms.create_key(Description="in the chain")["KeyMetadata"]["KeyId"]
    alias = "alias/" + unique("chain")
    kms.create_alias(AliasName=alias, TargetKeyId=kid)
    chain = server.v1_ok("GET", "/v1/keychain")
    assert chain["tenant"]["id"]
    assert chain["root_keys"], chain
    for rk in chain["root_keys"]:
        for f in ("id", "keystore", "origin", "state"):
            assert f in rk, f
    sks = _service_keys(chain)
    assert kid in sks, "the new key is not in the keychain"
    rk, system, sk = sks[kid]
    assert system["name"] == "default"
    assert sk["description"] == "in the chain"
    assert sk["state"] in ("active", "Enabled", "enabled")
    assert any(alias in str(a) for a in sk["aliases"]), sk["aliases"]
    v0 = sk["primary_version"]
    kms.rotate_key_on_demand(KeyId=kid)
    _, _, sk2 = _service_keys(server.v1_ok("GET", "/v1/keychain"))[kid]
    assert sk2["primary_version"] != v0
    kms.disable_key(KeyId=kid)
    _, _, sk3 = _service_keys(server.v1_ok("GET", "/v1/keychain"))[kid]
    assert sk3["state"] != sk["state"]


def test_keychain_is_per_tenant(server, other_tenant):
    kid = server.client("default").create_key()["KeyMetadata"]["KeyId"]
    oak = other_tenant["access_key"]
    r = server.v1("GET", "/v1/keychain", creds=(oak["access_key_id"], oak["secret_access_key"]))
    assert r.status_code == 200
    assert kid not in r.text
    assert r.json()["tenant"]["id"] == other_tenant["tenant"]["id"]


def test_keychain_roles(server):
    for role, ok in (("auditor", True), ("key-admin", True), ("key-user", False)):
        ak = server.create_access_key(role)
        r = server.v1("GET", "/v1/keychain", creds=(ak["access_key_id"], ak["secret_access_key"]))
        if ok:
            assert r.status_code == 200, (role, r.text)
        else:
            assert_v1_error(r, 403, "AccessDenied")


def test_json_responses(server):
    r = server.v1("GET", "/v1/systems")
    assert r.headers.get("content-type", "").startswith("application/json")
    json.loads(r.text)
