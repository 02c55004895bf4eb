"""Systems in the chain, end to end with the root keys in SoftHSM2: registered with a
region and labels, linked, switched to another root key and back, unlinked and linked
again — through the REST API, the kcm CLI and boto3.

The server runs with a short "day" so a key's deletion window passes in a second.
"""

from __future__ import annotations

import json
import subprocess

import pytest
from kcmtest import FAST_DAY_SECONDS, KCM_BIN, kms_error, poll, unique
from softhsm import Token


@pytest.fixture
def srv(spawn_server, tmp_path):
    token = Token(tmp_path / "hsm")
    pin_file = token.write_pin_file(tmp_path / "hsm.pin")
    conf = token.kcm_config(tmp_path / "kcm.toml", pin_file=pin_file)
    return spawn_server(env=dict(token.env, KCM_CONFIG=str(conf), KCM_DAY_SECONDS=str(FAST_DAY_SECONDS)))


def cli(srv, *args: str) -> dict | str:
    out = subprocess.run([str(KCM_BIN), "--endpoint", srv.url, "--credentials-file", str(srv.credentials_path),
                          *args], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, (args, out.stdout, out.stderr)
    try:
        return json.loads(out.stdout)
    except json.JSONDecodeError:
        return out.stdout


def cli_fails(srv, *args: str) -> str:
    out = subprocess.run([str(KCM_BIN), "--endpoint", srv.url, "--credentials-file", str(srv.credentials_path),
                          *args], capture_output=True, text=True, timeout=60)
    assert out.returncode != 0, (args, out.stdout)
    return out.stderr


def test_register_link_switch_unlink_and_link_again(srv):
    name = unique("edge")
    made = cli(srv, "--output", "json", "system", "create", name, "--kind", "kubernetes", "--system-region", "eu-west-1",
               "--label", "team=storage", "--label", "tier=gold", "--unlinked")
    assert (made["status"], made["root_key_id"], made["system_key_state"]) == ("unlinked", None, None), made
    assert (made["region"], made["labels"]) == ("eu-west-1", {"team": "storage", "tier": "gold"}), made
    assert made["system_key_version"] == 0, made

    # Nothing can be made or used in an unlinked system; it says why.
    scoped = srv.client_for(srv.create_access_key("tenant-admin", system=made["id"]))
    with kms_error("KMSInvalidStateException") as e:
        scoped.create_key(Description="too early")
    assert "not linked" in str(e.value), e.value
    tree = cli(srv, "keychain", "show")
    assert "unlinked systems" in tree and f"system {name} [unlinked]" in tree, tree
    # An unlinked system has no root key to switch from: refused for its state before the
    # named root key (here not a root key at all) is looked at.
    r = srv.v1("POST", f"/v1/systems/{name}/switch-root-key", json_body={"root_key_id": made["id"]})
    assert r.status_code == 409 and r.json()["error"]["code"] == "InvalidState", r.text
    assert "not linked" in r.json()["error"]["message"], r.text
    r = srv.v1("POST", f"/v1/systems/{name}/unlink")
    assert r.status_code == 409 and "not linked" in r.json()["error"]["message"], r.text

    # Linked (to the tenant's default root key, in the token).
    linked = cli(srv, "--output", "json", "system", "link", name)
    default_root = next(r for r in srv.v1_ok("GET", "/v1/root-keys")["root_keys"] if r["default"])
    assert (linked["status"], linked["root_key_id"], linked["system_key_version"]) == \
        ("connected", default_root["id"], 1), linked
    assert default_root["keystore"] == "hsm", default_root
    r = srv.v1("POST", f"/v1/systems/{name}/link", json_body={})
    assert r.status_code == 409 and "already linked" in r.json()["error"]["message"], r.text
    key_id = scoped.create_key(Description=unique("in-edge"))["KeyMetadata"]["KeyId"]
    blob = scoped.encrypt(KeyId=key_id, Plaintext=b"on the edge")["CiphertextBlob"]

    # Switched to a root key in the software keystore and back: only the system key is
    # re-wrapped, the ciphertext made before still decrypts each time.
    other = srv.v1_ok("POST", "/v1/root-keys", expect=(201,), json_body={"keystore": "software"})
    moved = cli(srv, "--output", "json", "system", "switch-root", name, "--root-key", other["id"])
    assert (moved["root_key_id"], moved["system_key_version"]) == (other["id"], 1), moved
    assert scoped.decrypt(CiphertextBlob=blob)["Plaintext"] == b"on the edge"
    back = cli(srv, "--output", "json", "system", "switch-root", name, "--root-key", default_root["id"])
    assert back["root_key_id"] == default_root["id"], back
    assert scoped.decrypt(CiphertextBlob=blob)["Plaintext"] == b"on the edge"

    # Unlinking is refused while a key that is not deleted remains, and changes nothing.
    err = cli_fails(srv, "system", "unlink", name)
    assert "1 service key" in err, err
    assert scoped.decrypt(CiphertextBlob=blob)["Plaintext"] == b"on the edge"

    # Once the key is deleted (7 short days), the system unlinks: its system key is erased.
    scoped.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)
    poll(lambda: srv.v1("POST", f"/v1/systems/{name}/unlink").status_code == 200, timeout=15,
         what="unlink after the key's deletion")
    shown = srv.v1_ok("GET", f"/v1/systems/{name}")
    assert (shown["status"], shown["root_key_id"]) == ("unlinked", None), shown
    with kms_error("KMSInvalidStateException"):
        scoped.create_key(Description="after unlink")

    # Linked again, to a root key named explicitly: a new system key version, never
    # the erased one's.
    again = srv.v1_ok("POST", f"/v1/systems/{name}/link", json_body={"root_key_id": other["id"]})
    assert (again["status"], again["root_key_id"], again["system_key_version"]) == \
        ("connected", other["id"], 2), again
    k2 = scoped.create_key(Description=unique("relinked"))["KeyMetadata"]["KeyId"]
    blob2 = scoped.encrypt(KeyId=k2, Plaintext=b"again")["CiphertextBlob"]
    assert scoped.decrypt(CiphertextBlob=blob2)["Plaintext"] == b"again"

    # The kill switch covers a relinked system like any other.
    srv.v1_ok("POST", f"/v1/root-keys/{other['id']}/disable")
    with kms_error("DisabledException"):
        scoped.decrypt(CiphertextBlob=blob2)
    srv.v1_ok("POST", f"/v1/root-keys/{other['id']}/enable")
    assert scoped.decrypt(CiphertextBlob=blob2)["Plaintext"] == b"again"


@pytest.mark.parametrize("body, needle", [
    ({"region": "eu west"}, "region"),
    ({"labels": {"": "x"}}, "label name"),
    ({"labels": {"a b": "x"}}, "label name"),
    ({"labels": {"ok": "x" * 257}}, "256"),
    ({"labels": {f"l{i}": "v" for i in range(33)}}, "at most 32 labels"),
    ({"link": False, "root_key_id": "00000000-0000-4000-8000-000000000000"}, "cannot name a root key"),
    ({"link": "no"}, "link"),
])
def test_bad_system_input_is_refused_and_changes_nothing(srv, body, needle):
    name = unique("bad")
    r = srv.v1("POST", "/v1/systems", json_body={"name": name, **body})
    assert r.status_code == 400 and needle in r.json()["error"]["message"], r.text
    assert srv.v1("GET", f"/v1/systems/{name}").status_code == 404
