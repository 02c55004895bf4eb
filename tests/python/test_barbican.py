"""The OpenStack Key Manager API (Barbican v1) door against real OpenStack code: a real
Keystone (tests/python/keystone.py), python-barbicanclient's `barbican` command and castellan
(the key manager library Nova, Cinder and Glance use), doing what those services do.

Secrets are managed objects of kcm's core: sealed under the system key of the Keystone
project's system, cut off by the kill switch on the root key above it, carried by backups.
"""

from __future__ import annotations

import base64
import shutil
import subprocess
import time

import pytest
import requests

from castellan.common.exception import KeyManagerError, ManagedObjectNotFoundError

from kcmtest import KCM_BIN, LOADED_SLACK_S, ServerStartError, cli_ok, poll
from openstack_clients import Castellan, barbican_cli
from openstack_cloud import OpenStackCloud, random_passphrase

BOUND_S = 0.5


@pytest.fixture(scope="module")
def cloud(keystone, tmp_path_factory):
    c = OpenStackCloud.start(keystone, tmp_path_factory.mktemp("barbican"), revocation_bound_ms=int(BOUND_S * 1000))
    yield c
    c.stop()


def cli(cloud, user, *args, **kw):
    return barbican_cli(cloud.auth(user), cloud.barbican_url, *args, **kw)


def castellan(cloud, user) -> Castellan:
    return Castellan(cloud.auth(user), cloud.barbican_url, retry_delay=1, number_of_retries=5)


def raw(cloud, user, method, path, **kw) -> requests.Response:
    headers = {"X-Auth-Token": cloud.token(user), **kw.pop("headers", {})}
    return requests.request(method, cloud.barbican_url + path, headers=headers, timeout=30, **kw)


def text(castellan_object) -> str:
    """A castellan passphrase's value (castellan returns what it was given: str or bytes)."""
    encoded = castellan_object.get_encoded()
    return encoded.decode() if isinstance(encoded, bytes) else encoded


def secret_id(href: str) -> str:
    return href.rstrip("/").rsplit("/", 1)[-1]


def assert_barbican_error(r: requests.Response, status: int) -> dict:
    """An error in Barbican's shape: {"code", "title", "description"} (python-barbicanclient
    reads `title` and fails without it)."""
    assert r.status_code == status, (r.status_code, r.text)
    body = r.json()
    assert body["code"] == status and body["title"] and body["description"], body
    return body


def test_version_discovery_answers_both_shapes(cloud):
    r = requests.get(cloud.barbican_url + "/", timeout=10)
    assert r.status_code == 300
    values = r.json()["versions"]["values"]
    assert values[0]["id"] == "v1"
    r = requests.get(cloud.barbican_url + "/", headers={"OpenStack-API-Version": "key-manager 1.1"}, timeout=10)
    assert r.status_code == 300
    (v1,) = r.json()["versions"]
    assert v1["id"] == "v1" and v1["status"] == "CURRENT" and v1["min_version"] == "1.0", v1
    r = raw(cloud, "member1", "GET", "/v1/")
    assert r.status_code == 200 and r.json()["version"]["id"] == "v1", r.text


def test_the_barbican_cli_stores_reads_lists_and_deletes(cloud):
    name = f"db-password-{time.monotonic_ns()}"
    stored = cli(cloud, "member1", "secret", "store", "-n", name, "-p", "s3cret")
    href = stored["Secret href"]
    assert cli(cloud, "member1", "secret", "get", "--payload", href)["Payload"] == "s3cret"
    meta = cli(cloud, "member1", "secret", "get", href)
    assert meta["Name"] == name and meta["Status"] == "ACTIVE", meta
    listed = cli(cloud, "member1", "secret", "list", "--name", name)
    assert [s["Secret href"] for s in listed] == [href]
    # Metadata first, payload later (two steps, as `secret update` does).
    later = cli(cloud, "member1", "secret", "store", "-n", f"{name}-later")["Secret href"]
    cli(cloud, "member1", "secret", "update", later, "added later", output_json=False)
    assert cli(cloud, "member1", "secret", "get", "--payload", later)["Payload"] == "added later"
    refused = cli(cloud, "member1", "secret", "update", later, "again", output_json=False, check=False)
    assert refused.returncode != 0
    assert cli(cloud, "member1", "secret", "get", "--payload", later)["Payload"] == "added later"
    for h in (href, later):
        cli(cloud, "member1", "secret", "delete", h, output_json=False)
    gone = cli(cloud, "member1", "secret", "get", href, check=False)
    assert gone.returncode != 0 and "Not Found" in gone.stdout + gone.stderr, gone


def test_castellan_does_what_cinder_and_nova_do(cloud):
    km = castellan(cloud, "member1")
    # Cinder: a volume key, ordered from the key manager.
    volume_key = km.create_volume_key(name="volume-1")
    key = km.get(volume_key)
    assert len(key.get_encoded()) == 32 and key.algorithm.upper() == "AES" and key.bit_length == 256
    # Nova: a vTPM passphrase, stored and read back.
    phrase = random_passphrase()
    pid = km.store_passphrase(phrase, name="vtpm")
    assert text(km.get(pid)) == phrase
    # A key pair (PEM halves converted by castellan itself).
    private_id, public_id = km.create_key_pair(name="pair")
    private, public = km.get(private_id), km.get(public_id)
    assert private.algorithm.upper() == "RSA" and private.bit_length == 2048
    from cryptography.hazmat.primitives import serialization
    der_private = serialization.load_der_private_key(private.get_encoded(), None)
    assert der_private.public_key().public_numbers() == \
        serialization.load_der_public_key(public.get_encoded()).public_numbers()
    # Caller-made key material.
    material = bytes(range(32))
    stored = km.store_key(material, name="imported")
    assert km.get(stored).get_encoded() == material
    for oid in (volume_key, pid, private_id, public_id, stored):
        km.delete(oid)
    # Deleted: Barbican's 404, which castellan reads as not found.
    with pytest.raises(ManagedObjectNotFoundError):
        km.get(volume_key)


def test_a_secret_expires(cloud):
    """An expiration in the past is refused; a secret whose expiration passes keeps its
    description but no longer serves its payload."""
    from datetime import datetime, timedelta, timezone

    def at(delta: float) -> str:
        return (datetime.now(timezone.utc) + timedelta(seconds=delta)).strftime("%Y-%m-%dT%H:%M:%S.%f")

    body = {"payload": "short-lived", "payload_content_type": "text/plain"}
    assert_barbican_error(raw(cloud, "member1", "POST", "/v1/secrets", json={**body, "expiration": at(-60)}), 400)
    # Ten seconds: long enough for the reads below on a loaded machine, short enough to wait.
    r = raw(cloud, "member1", "POST", "/v1/secrets", json={**body, "expiration": at(10)})
    assert r.status_code == 201, r.text
    sid = secret_id(r.json()["secret_ref"])
    meta = raw(cloud, "member1", "GET", f"/v1/secrets/{sid}", headers={"Accept": "application/json"}).json()
    assert meta["expiration"], meta
    payload = raw(cloud, "member1", "GET", f"/v1/secrets/{sid}/payload", headers={"Accept": "text/plain"})
    assert payload.status_code == 200 and payload.text == "short-lived", payload.text
    poll(lambda: raw(cloud, "member1", "GET", f"/v1/secrets/{sid}/payload",
                     headers={"Accept": "text/plain"}).status_code == 404, 20, what="the payload to expire")
    assert raw(cloud, "member1", "GET", f"/v1/secrets/{sid}", headers={"Accept": "application/json"}).status_code == 200


def test_containers_consumers_metadata_and_acls(cloud):
    a = cli(cloud, "member1", "secret", "store", "-n", "cert-a", "-p", "aaa")["Secret href"]
    b = cli(cloud, "member1", "secret", "store", "-n", "cert-b", "-p", "bbb")["Secret href"]
    container = cli(cloud, "member1", "secret", "container", "create", "-n", "bundle", "--type", "generic",
                    "-s", f"one={a}", "-s", f"two={b}", output_json=False)
    assert "bundle" in container
    listed = cli(cloud, "member1", "secret", "container", "list")
    assert any(c["Name"] == "bundle" for c in listed), listed

    # Consumers: a volume registers its use; the secret cannot be deleted meanwhile.
    cli(cloud, "member1", "secret", "consumer", "create", "--service-type-name", "volume",
        "--resource-type", "volume", "--resource-id", "vol-1", a, output_json=False)
    consumers = cli(cloud, "member1", "secret", "consumer", "list", a)
    assert [c["Resource id"] for c in consumers] == ["vol-1"], consumers
    refused = cli(cloud, "member1", "secret", "delete", a, output_json=False, check=False)
    assert refused.returncode != 0
    cli(cloud, "member1", "secret", "consumer", "delete", "--service-type-name", "volume",
        "--resource-type", "volume", "--resource-id", "vol-1", a, output_json=False)

    # User metadata.
    sid = secret_id(a)
    r = raw(cloud, "member1", "PUT", f"/v1/secrets/{sid}/metadata", json={"metadata": {"purpose": "test"}})
    assert r.status_code == 201, r.text
    r = raw(cloud, "member1", "GET", f"/v1/secrets/{sid}/metadata")
    assert r.json() == {"metadata": {"purpose": "test"}}, r.text

    # Read ACLs: another project is refused until its user is listed; the project itself is
    # shut out once project access is off, but for the creator and the project's admin
    # (only an admin may change ACLs).
    def payload(user):
        return raw(cloud, user, "GET", f"/v1/secrets/{sid}/payload", headers={"Accept": "text/plain"})

    assert_barbican_error(payload("other1"), 403)
    assert payload("member2").content == b"aaa"
    other_id = cloud.users["other1"].id
    r = raw(cloud, "admin1", "PUT", f"/v1/secrets/{sid}/acl",
            json={"read": {"users": [other_id], "project-access": False}})
    assert r.status_code == 200, r.text
    r = raw(cloud, "admin1", "GET", f"/v1/secrets/{sid}/acl")
    assert r.status_code == 200, r.text
    acl = r.json()
    assert acl["read"]["users"] == [other_id] and acl["read"]["project-access"] is False, acl
    for user in ("other1", "member1", "admin1"):
        r = payload(user)
        assert r.status_code == 200 and r.content == b"aaa", (user, r.text)
    assert_barbican_error(payload("member2"), 403)
    # A member may not change an ACL.
    assert_barbican_error(raw(cloud, "member1", "PUT", f"/v1/secrets/{sid}/acl",
                              json={"read": {"users": [], "project-access": True}}), 403)


def test_project_b_cannot_read_project_a_and_roles_limit(cloud):
    href = cli(cloud, "member1", "secret", "store", "-n", "p1-only", "-p", "p1 secret")["Secret href"]
    sid = secret_id(href)
    for path in (f"/v1/secrets/{sid}", f"/v1/secrets/{sid}/payload"):
        assert_barbican_error(raw(cloud, "other1", "GET", path, headers={"Accept": "text/plain"}), 403)
    assert_barbican_error(raw(cloud, "other1", "DELETE", f"/v1/secrets/{sid}"), 403)
    listed = raw(cloud, "other1", "GET", "/v1/secrets?name=p1-only").json()
    assert listed["total"] == 0 and listed["secrets"] == [], listed
    # A reader reads descriptions, not payloads, and stores nothing.
    assert raw(cloud, "reader1", "GET", f"/v1/secrets/{sid}", headers={"Accept": "application/json"}).status_code == 200
    assert_barbican_error(raw(cloud, "reader1", "GET", f"/v1/secrets/{sid}/payload",
                              headers={"Accept": "text/plain"}), 403)
    assert_barbican_error(raw(cloud, "reader1", "POST", "/v1/secrets", json={"name": "x", "payload": "x",
                                                                             "payload_content_type": "text/plain"}), 403)
    # No token, or a forged one: 401 in Barbican's shape, pointing at Keystone.
    r = requests.get(cloud.barbican_url + "/v1/secrets", timeout=10)
    assert r.status_code == 401 and "Keystone" in r.headers.get("WWW-Authenticate", ""), r.headers
    r = requests.get(cloud.barbican_url + "/v1/secrets", headers={"X-Auth-Token": "gAAAAAforged"}, timeout=10)
    assert_barbican_error(r, 401)
    assert cli(cloud, "member1", "secret", "get", "--payload", href)["Payload"] == "p1 secret"


def test_bad_requests_are_refused_in_barbicans_shape_and_change_nothing(cloud):
    before = raw(cloud, "member1", "GET", "/v1/secrets?limit=1").json()["total"]
    assert_barbican_error(raw(cloud, "member1", "POST", "/v1/secrets", data=b"{not json",
                              headers={"Content-Type": "application/json"}), 400)
    too_big = base64.b64encode(b"x" * 10_001).decode()
    r = raw(cloud, "member1", "POST", "/v1/secrets", json={
        "payload": too_big, "payload_content_type": "application/octet-stream",
        "payload_content_encoding": "base64"})
    # Over Barbican's 10,000-byte secret limit: 413, as Barbican answers.
    assert_barbican_error(r, 413)
    assert "10001 bytes" in r.json()["description"], r.text
    assert_barbican_error(raw(cloud, "member1", "POST", "/v1/secrets", data=b"x" * 30_000,
                              headers={"Content-Type": "application/json"}), 413)
    assert_barbican_error(raw(cloud, "member1", "POST", "/v1/orders",
                              json={"type": "certificate", "meta": {}}), 400)
    r = raw(cloud, "member1", "GET", "/v1/cas")
    assert_barbican_error(r, 404)
    assert "not supported" in r.json()["description"], r.text
    assert_barbican_error(raw(cloud, "member1", "GET", "/v1/secrets/not-a-uuid"), 404)
    after = raw(cloud, "member1", "GET", "/v1/secrets?limit=1").json()["total"]
    assert after == before


def test_the_kill_switch_makes_every_secret_unreadable_within_the_bound(cloud):
    km = castellan(cloud, "member1")
    phrase = random_passphrase()
    pid = km.store_passphrase(phrase)
    href = cli(cloud, "other1", "secret", "store", "-p", "project two")["Secret href"]
    impact = cloud.srv.v1_ok("POST", f"/v1/root-keys/{cloud.default_root()['id']}/disable?dry_run=true")
    kinds = {s["name"]: s for s in impact["systems"]}
    assert kinds[cloud.system_name("p1")]["kind"] == "openstack-project"
    assert kinds[cloud.system_name("p1")]["managed_objects"] >= 1, impact
    cloud.kill_switch("disable")
    try:
        start = time.monotonic()

        def refused():
            r = raw(cloud, "member1", "GET", f"/v1/secrets/{pid}/payload", headers={"Accept": "text/plain"})
            return r.status_code >= 400 and [r]  # a 4xx Response is falsy itself

        # Within the revocation bound, and a loaded machine's slack: poll fails otherwise.
        (r,) = poll(refused, BOUND_S + LOADED_SLACK_S, interval=0.05, what="a refused payload read")
        print(f"payload refused {time.monotonic() - start:.2f} s after the kill switch (bound {BOUND_S} s)")
        # The object's state refuses it: 409, saying the root key is disabled.
        assert_barbican_error(r, 409)
        assert "root key" in r.json()["description"] and "disabled" in r.json()["description"], r.text
        other = raw(cloud, "other1", "GET", f"/v1/secrets/{secret_id(href)}/payload", headers={"Accept": "text/plain"})
        assert_barbican_error(other, 409)
        # Castellan's error for an answer other than a 404: here the 409 above, in its words.
        with pytest.raises(KeyManagerError) as refused:
            km.get(pid)
        assert "Conflict" in str(refused.value) and "is disabled" in str(refused.value), refused.value
        # Nothing new is protected under a disabled root either.
        r = raw(cloud, "member1", "POST", "/v1/secrets", json={"payload": "x", "payload_content_type": "text/plain"})
        assert_barbican_error(r, 409)
        assert "cannot protect new objects" in r.json()["description"], r.text
    finally:
        cloud.kill_switch("enable")
    poll(lambda: raw(cloud, "member1", "GET", f"/v1/secrets/{pid}/payload",
                     headers={"Accept": "text/plain"}).status_code == 200, BOUND_S + LOADED_SLACK_S,
         what="readable again")
    assert text(km.get(pid)) == phrase


def test_the_audit_shows_the_door_and_the_keystone_user(cloud):
    cli(cloud, "member1", "secret", "store", "-n", "audited", "-p", "x")
    principal = f"keystone:{cloud.users['member1'].id}"
    records = cloud.srv.v1_ok("GET", f"/v1/audit?principal={principal}&operation=CreateObject&limit=1000")["records"]
    assert records and all(r["front_door"] == "barbican" and r["principal"] == principal for r in records), records
    assert any(r["outcome"] == "success" and r["system"] for r in records), records[-3:]


def test_backup_and_restore_keep_secrets_readable(cloud, keystone, tmp_path):
    km = castellan(cloud, "member1")
    phrase = random_passphrase()
    pid = km.store_passphrase(phrase)
    archive = tmp_path / "cloud.kcmbak"
    srv = cloud.srv
    cli_ok(subprocess.run([str(KCM_BIN), "--endpoint", srv.url, "--credentials-file", str(srv.credentials_path),
                           "--profile", "system-admin", "--output", "json", "backup", "-o", str(archive)],
                          capture_output=True, timeout=120))
    assert phrase.encode() not in archive.read_bytes()
    kept = tmp_path / "kept"
    kept.mkdir()
    master = kept / "master.key"
    shutil.copy2(srv.data_dir / "master.key", master)
    credentials = kept / "credentials"
    shutil.copy2(srv.credentials_path, credentials)
    assert srv.stop() == 0
    shutil.rmtree(srv.data_dir)
    cli_ok(subprocess.run([str(KCM_BIN), "--output", "json", "restore", "--input", str(archive),
                           "--data-dir", str(srv.data_dir), "--master-key-file", str(master)],
                          capture_output=True, timeout=120))
    shutil.copy2(credentials, srv.credentials_path)
    srv.start()
    poll(lambda: requests.get(cloud.barbican_url + "/", timeout=2).status_code == 300, 15, what="the door")
    assert text(km.get(pid)) == phrase


def test_no_auth_mode_refuses_to_start_off_loopback(spawn_server, tmp_path):
    config = tmp_path / "noauth.toml"
    config.write_text('[barbican]\nlisten = "0.0.0.0:9311"\n\n[barbican.no_auth]\ntenant = "default"\n'
                      'project_id = "p1"\nuser_id = "u1"\n')
    srv = spawn_server(env={"KCM_CONFIG": str(config)}, start=False)
    with pytest.raises(ServerStartError):
        srv.start(timeout=10)
    assert "loopback" in srv.log_tail(), srv.log_tail()

