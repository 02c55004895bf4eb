"""Root keys and the kill switch, end to end: the REST API and the kcm CLI change a
root key's state, boto3 sees every key below it follow — and only those keys.

Each test gets its own server, since the kill switch cuts off everything below a root.
"""

from __future__ import annotations

import json
import subprocess

import pytest
from kcmtest import KCM_BIN, kms_error, unique

# What the AWS API answers below a disabled root key, and below a suspended one (README,
# "the kill switch"): one error each.
DISABLED = "DisabledException"
SUSPENDED = "KMSInvalidStateException"


@pytest.fixture
def estate(spawn_server):
    """A server with two root keys: the tenant's default (with key `k1` in the default
    system) and a second one (with system `s2` and key `k2` in it, made through an access
    key scoped to `s2`)."""
    srv = spawn_server(env={"KCM_REVOCATION_BOUND_MS": "500"})
    admin = srv.client("default")
    k1 = admin.create_key(Description=unique("k1"))["KeyMetadata"]["KeyId"]
    root2 = srv.v1_ok("POST", "/v1/root-keys", expect=(201,), json_body={"description": "second root"})
    s2 = srv.v1_ok("POST", "/v1/systems", expect=(201,),
                   json_body={"name": unique("s2"), "root_key_id": root2["id"]})
    assert s2["root_key_id"] == root2["id"] and s2["status"] == "connected", s2
    scoped_ak = srv.create_access_key("tenant-admin", system=s2["id"])
    scoped = srv.client_for(scoped_ak)
    k2 = scoped.create_key(Description=unique("k2"))["KeyMetadata"]["KeyId"]
    default_root = next(r for r in srv.v1_ok("GET", "/v1/root-keys")["root_keys"] if r["default"])
    return {
        "srv": srv, "admin": admin, "scoped": scoped, "scoped_ak": scoped_ak, "k1": k1, "k2": k2,
        "root1": default_root, "root2": root2, "s2": s2,
        "blob1": admin.encrypt(KeyId=k1, Plaintext=b"one")["CiphertextBlob"],
        "blob2": scoped.encrypt(KeyId=k2, Plaintext=b"two")["CiphertextBlob"],
    }


def works(kms, key_id: str, blob: bytes, plaintext: bytes) -> None:
    kms.encrypt(KeyId=key_id, Plaintext=b"x")
    kms.generate_data_key(KeyId=key_id, KeySpec="AES_256")
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == plaintext


def change(srv, root_id: str, verb: str, dry_run: bool = False, expect=(200,)):
    path = f"/v1/root-keys/{root_id}/{verb}" + ("?dry_run=true" if dry_run else "")
    return srv.v1_ok("POST", path, expect=expect)


def test_root_keys_are_listed_created_and_shown(estate):
    srv, root2 = estate["srv"], estate["root2"]
    assert root2["keystore"] == "software" and root2["keystore_kind"] == "software"
    assert root2["origin"] == "generated" and root2["state"] == "active" and not root2["default"]
    listed = {r["id"]: r for r in srv.v1_ok("GET", "/v1/root-keys")["root_keys"]}
    assert set(listed) == {estate["root1"]["id"], root2["id"]}
    assert srv.v1_ok("GET", f"/v1/root-keys/{root2['id']}") == listed[root2["id"]]
    # An unknown keystore is a 400 naming the configured ones; nothing is created.
    r = srv.v1("POST", "/v1/root-keys", json_body={"keystore": "nope"})
    assert r.status_code == 400 and "software" in r.json()["error"]["message"], r.text
    assert len(srv.v1_ok("GET", "/v1/root-keys")["root_keys"]) == 2
    # The service's own credential root is not one of the tenant's.
    assert srv.v1("GET", f"/v1/root-keys/{'0' * 8}-0000-4000-8000-{'0' * 12}").status_code == 404
    # A key scoped to s2 sees only the root key above s2.
    scoped_ak = srv.create_access_key("auditor", system=estate["s2"]["id"])
    creds = (scoped_ak["access_key_id"], scoped_ak["secret_access_key"])
    seen = srv.v1_ok("GET", "/v1/root-keys", creds=creds)["root_keys"]
    assert [r["id"] for r in seen] == [root2["id"]]
    assert srv.v1("GET", f"/v1/root-keys/{estate['root1']['id']}", creds=creds).status_code == 403


def test_dry_run_lists_what_would_be_cut_off_and_changes_nothing(estate):
    srv, root2 = estate["srv"], estate["root2"]
    impact = change(srv, root2["id"], "disable", dry_run=True)
    assert impact["applied"] is False
    assert (impact["previous_state"], impact["new_state"]) == ("active", "disabled")
    assert [s["id"] for s in impact["systems"]] == [estate["s2"]["id"]]
    assert [k["id"] for k in impact["systems"][0]["service_keys"]] == [estate["k2"]]
    assert srv.v1_ok("GET", f"/v1/root-keys/{root2['id']}")["state"] == "active"
    works(estate["scoped"], estate["k2"], estate["blob2"], b"two")


def test_disable_cuts_off_everything_below_and_only_that(estate):
    srv, scoped, admin = estate["srv"], estate["scoped"], estate["admin"]
    # Warm the node's caches first, so that the refusal below is the change's doing.
    works(scoped, estate["k2"], estate["blob2"], b"two")
    impact = change(srv, estate["root2"]["id"], "disable")
    assert impact["applied"] is True and impact["root_key"]["state"] == "disabled"

    # The node that made the change drops its caches before it answers (README, "the
    # kill switch"): the very first call after the change is refused, no time allowed.
    with kms_error(DISABLED):
        scoped.encrypt(KeyId=estate["k2"], Plaintext=b"x")
    with kms_error(DISABLED):
        scoped.decrypt(CiphertextBlob=estate["blob2"])
    with kms_error(DISABLED):
        scoped.generate_data_key(KeyId=estate["k2"], KeySpec="AES_256")
    # The other root's keys are untouched.
    works(admin, estate["k1"], estate["blob1"], b"one")
    # The system says why it is locked; no new system can hang below the root.
    system = srv.v1_ok("GET", f"/v1/systems/{estate['s2']['id']}")
    assert system["status"].startswith("locked") and "disabled" in system["status"], system
    r = srv.v1("POST", "/v1/systems", json_body={"name": unique("s3"), "root_key_id": estate["root2"]["id"]})
    assert r.status_code == 409 and r.json()["error"]["code"] == "InvalidState", r.text

    # A disabled root cannot be suspended; enabling restores everything.
    r = srv.v1("POST", f"/v1/root-keys/{estate['root2']['id']}/suspend")
    assert r.status_code == 409 and r.json()["error"]["code"] == "InvalidState", r.text
    impact = change(srv, estate["root2"]["id"], "enable")
    assert (impact["previous_state"], impact["new_state"], impact["applied"]) == ("disabled", "active", True)
    works(scoped, estate["k2"], estate["blob2"], b"two")
    assert srv.v1_ok("GET", f"/v1/systems/{estate['s2']['id']}")["status"] == "connected"


def test_suspend_leaves_everything_below_decrypt_only(estate):
    srv, scoped = estate["srv"], estate["scoped"]
    change(srv, estate["root2"]["id"], "suspend")
    assert scoped.decrypt(CiphertextBlob=estate["blob2"])["Plaintext"] == b"two"
    with kms_error(SUSPENDED):
        scoped.encrypt(KeyId=estate["k2"], Plaintext=b"x")
    with kms_error(SUSPENDED):
        scoped.generate_data_key(KeyId=estate["k2"], KeySpec="AES_256")
    change(srv, estate["root2"]["id"], "enable")
    works(scoped, estate["k2"], estate["blob2"], b"two")


def test_the_kill_switch_is_for_the_tenant_admin_and_is_audited(estate):
    srv, root2 = estate["srv"], estate["root2"]
    for role in ("key-admin", "key-user", "auditor"):
        ak = srv.create_access_key(role)
        r = srv.v1("POST", f"/v1/root-keys/{root2['id']}/disable",
                   creds=(ak["access_key_id"], ak["secret_access_key"]))
        assert r.status_code == 403 and r.json()["error"]["code"] == "AccessDenied", (role, r.text)
    r = srv.v1("POST", f"/v1/root-keys/{root2['id']}/disable", profile="system-admin")
    assert r.status_code == 403, r.text
    # The tenant-admin's scoped key may use keys but not throw the switch.
    scoped_admin = srv.create_access_key("tenant-admin", system=estate["s2"]["id"])
    r = srv.v1("POST", f"/v1/root-keys/{root2['id']}/disable",
               creds=(scoped_admin["access_key_id"], scoped_admin["secret_access_key"]))
    assert r.status_code == 403, r.text
    assert srv.v1_ok("GET", f"/v1/root-keys/{root2['id']}")["state"] == "active"
    # Another tenant cannot see it at all.
    other = srv.create_tenant(unique("other"))["access_key"]
    r = srv.v1("POST", f"/v1/root-keys/{root2['id']}/disable",
               creds=(other["access_key_id"], other["secret_access_key"]))
    assert r.status_code == 404, r.text

    r = srv.v1("POST", f"/v1/root-keys/{root2['id']}/disable")
    assert r.status_code == 200, r.text
    request_id = r.headers["x-kcm-request-id"]
    records = srv.v1_ok("GET", "/v1/audit?operation=DisableRootKey&limit=100")["records"]
    record = next(x for x in records if x["request_id"] == request_id)
    assert record["outcome"] == "success" and record["front_door"] == "rest", record


def test_the_cli_previews_and_throws_the_switch(estate):
    srv, root2 = estate["srv"], estate["root2"]
    base = [str(KCM_BIN), "--endpoint", srv.url, "--credentials-file", str(srv.credentials_path)]

    def kcm(*args: str) -> str:
        r = subprocess.run(base + list(args), capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, (args, r.stdout, r.stderr)
        return r.stdout

    listing = kcm("root-key", "list")
    assert root2["id"] in listing and "software" in listing
    preview = kcm("root-key", "disable", root2["id"], "--dry-run")
    assert "dry run" in preview and estate["k2"] in preview and estate["s2"]["name"] in preview, preview
    assert srv.v1_ok("GET", f"/v1/root-keys/{root2['id']}")["state"] == "active"
    out = json.loads(kcm("--output", "json", "root-key", "disable", root2["id"]))
    assert out["applied"] is True and out["new_state"] == "disabled"
    with kms_error(DISABLED):
        estate["scoped"].encrypt(KeyId=estate["k2"], Plaintext=b"x")
    assert "now active" in kcm("root-key", "enable", root2["id"])
    created = json.loads(kcm("--output", "json", "root-key", "create", "--description", "from the cli"))
    assert created["state"] == "active" and created["description"] == "from the cli"
    shown = json.loads(kcm("--output", "json", "root-key", "show", created["id"]))
    assert shown["id"] == created["id"]


def test_switching_a_system_to_another_root_rewraps_only_its_system_key(estate):
    srv, scoped = estate["srv"], estate["scoped"]
    root3 = srv.v1_ok("POST", "/v1/root-keys", expect=(201,), json_body={"description": "third"})
    s2 = estate["s2"]
    moved = srv.v1_ok("POST", f"/v1/systems/{s2['id']}/switch-root-key", json_body={"root_key_id": root3["id"]})
    assert moved["root_key_id"] == root3["id"] and moved["status"] == "connected", moved
    assert moved["system_key_version"] == s2["system_key_version"]
    # The service key and every ciphertext are untouched.
    described = scoped.describe_key(KeyId=estate["k2"])["KeyMetadata"]
    assert described["KeyState"] == "Enabled"
    works(scoped, estate["k2"], estate["blob2"], b"two")
    # The old root no longer reaches s2; the new one does.
    assert change(srv, estate["root2"]["id"], "disable", dry_run=True)["systems"] == []
    change(srv, estate["root2"]["id"], "disable")
    works(scoped, estate["k2"], estate["blob2"], b"two")
    change(srv, root3["id"], "disable")
    with kms_error(DISABLED):
        scoped.decrypt(CiphertextBlob=estate["blob2"])
    # A system cannot move below a root key that is not active (nothing changes).
    change(srv, root3["id"], "enable")
    r = srv.v1("POST", f"/v1/systems/{s2['id']}/switch-root-key", json_body={"root_key_id": estate["root2"]["id"]})
    assert r.status_code == 409 and r.json()["error"]["code"] == "InvalidState", r.text
    assert srv.v1_ok("GET", f"/v1/systems/{s2['id']}")["root_key_id"] == root3["id"]
    # Unknown root keys and systems are 404s.
    r = srv.v1("POST", f"/v1/systems/{s2['id']}/switch-root-key", json_body={"root_key_id": "nope"})
    assert r.status_code == 404, r.text
    r = srv.v1("POST", "/v1/systems/no-such-system/switch-root-key", json_body={"root_key_id": root3["id"]})
    assert r.status_code == 404, r.text
    # A restart unwraps s2's system key through root3.
    srv.restart()
    works(srv.client_for(estate["scoped_ak"]), estate["k2"], estate["blob2"], b"two")


def test_rotating_a_system_key_online_rewraps_everything_below(estate):
    srv, scoped = estate["srv"], estate["scoped"]
    s2 = estate["s2"]
    sealed = [(estate["k2"], estate["blob2"], b"two")]
    for i in range(3):
        kid = scoped.create_key(Description=unique("rot"))["KeyMetadata"]["KeyId"]
        scoped.rotate_key_on_demand(KeyId=kid)  # two versions each
        sealed.append((kid, scoped.encrypt(KeyId=kid, Plaintext=b"p%d" % i)["CiphertextBlob"], b"p%d" % i))
    before = srv.v1_ok("GET", f"/v1/systems/{s2['id']}")["system_key_version"]

    # Start by hand and stop half-way: a second start is refused until it is finished.
    started = srv.v1_ok("POST", f"/v1/systems/{s2['id']}/rotate-key")
    assert started["system"]["system_key_version"] == before + 1
    assert started["remaining"] == 1 + 3 * 2, started
    step = srv.v1_ok("POST", f"/v1/systems/{s2['id']}/rewrap?limit=2")
    assert (step["rewrapped"], step["remaining"]) == (2, 5), step
    r = srv.v1("POST", f"/v1/systems/{s2['id']}/rotate-key")
    assert r.status_code == 409 and "re-wrap" in r.json()["error"]["message"], r.text
    for kid, blob, plaintext in sealed:  # everything decrypts mid-rotation
        assert scoped.decrypt(CiphertextBlob=blob)["Plaintext"] == plaintext
    assert srv.v1("POST", f"/v1/systems/{s2['id']}/rewrap?limit=0").status_code == 400

    # The CLI resumes it to the end, in batches.
    out = subprocess.run([str(KCM_BIN), "--endpoint", srv.url, "--credentials-file", str(srv.credentials_path),
                          "--output", "json", "system", "rotate-key", s2["name"], "--batch", "2"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    done = json.loads(out.stdout)
    assert done["remaining"] == 0 and done["system"]["system_key_version"] == before + 1, done
    srv.restart()
    scoped = srv.client_for(srv.create_access_key("key-user", system=s2["id"]))
    for kid, blob, plaintext in sealed:
        assert scoped.decrypt(CiphertextBlob=blob)["Plaintext"] == plaintext
    # A full rotation with nothing left over starts afresh from the CLI.
    out = subprocess.run([str(KCM_BIN), "--endpoint", srv.url, "--credentials-file", str(srv.credentials_path),
                          "--output", "json", "system", "rotate-key", s2["name"]],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["system"]["system_key_version"] == before + 2
    for kid, blob, plaintext in sealed:
        assert scoped.decrypt(CiphertextBlob=blob)["Plaintext"] == plaintext
    # Only a tenant-admin rotates.
    ak = srv.create_access_key("key-admin")
    r = srv.v1("POST", f"/v1/systems/{s2['id']}/rotate-key", creds=(ak["access_key_id"], ak["secret_access_key"]))
    assert r.status_code == 403, r.text


def test_rotating_a_root_key_rewraps_the_system_keys_below(estate):
    srv, scoped, root2 = estate["srv"], estate["scoped"], estate["root2"]
    rotated = srv.v1_ok("POST", f"/v1/root-keys/{root2['id']}/rotate")
    assert rotated["root_key"]["id"] == root2["id"] and rotated["applied"] is True
    assert [s["id"] for s in rotated["systems"]] == [estate["s2"]["id"]]
    works(scoped, estate["k2"], estate["blob2"], b"two")
    srv.restart()
    scoped = srv.client_for(estate["scoped_ak"])
    works(scoped, estate["k2"], estate["blob2"], b"two")
    # The switch still works on the rotated root; a disabled root cannot be rotated.
    change(srv, root2["id"], "disable")
    r = srv.v1("POST", f"/v1/root-keys/{root2['id']}/rotate")
    assert r.status_code == 409, r.text
    with kms_error(DISABLED):
        scoped.decrypt(CiphertextBlob=estate["blob2"])
