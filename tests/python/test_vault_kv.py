"""kcm's Vault KV version 2 engine (`secret/`) against hvac over HTTPS: versioned writes with
check-and-set, reads of any version, metadata and its settings, soft deletion, undeletion,
destruction, listing, hvac's patch — with the values sealed under kcm's key chain (never in
the store in plaintext), the core's authorisation between roles and systems, the kill
switch, and the audit log.

One server for the module; tokens minted with the kcm CLI: a key-user and an auditor of the
system "apps", and a key-user of another system "other".
"""

from __future__ import annotations

import sqlite3

import hvac
import hvac.exceptions
import pytest
import requests

from kcmtest import cli_ok, kcm_cli, unique
from vault_harness import start_vault_server, until_refused, until_served, vault_client, vault_token

pytestmark = pytest.mark.timeout(120)

BOUND_MS = 500


@pytest.fixture(scope="module")
def vault(tmp_path_factory):
    srv, address, pki = start_vault_server(tmp_path_factory.mktemp("vault-kv"), BOUND_MS)
    for system in ("apps", "other"):
        srv.v1_ok("POST", "/v1/systems", expect=(201,), json_body={"name": system})
    tokens = {
        "user": vault_token(srv, "apps", "key-user"),
        "auditor": vault_token(srv, "apps", "auditor"),
        "other": vault_token(srv, "other", "key-user"),
    }
    clients = {name: vault_client(address, pki, t["vault_token"]) for name, t in tokens.items()}
    yield srv, address, pki, tokens, clients
    srv.stop()


@pytest.fixture()
def kv(vault):
    return vault[4]["user"].secrets.kv.v2


def test_versions_check_and_set_and_reads_of_any_version(vault, kv):
    path = f"csi/{unique('volume')}"
    first = kv.create_or_update_secret(path=path, secret={"passphrase": "one"}, cas=0)["data"]
    assert first["version"] == 1 and first["destroyed"] is False and first["deletion_time"] == ""
    # cas=0 means "only if nothing is there": a second create is refused.
    with pytest.raises(hvac.exceptions.InvalidRequest, match="check-and-set"):
        kv.create_or_update_secret(path=path, secret={"passphrase": "again"}, cas=0)
    kv.create_or_update_secret(path=path, secret={"passphrase": "two", "n": 2}, cas=1)
    with pytest.raises(hvac.exceptions.InvalidRequest, match="did not match"):
        kv.create_or_update_secret(path=path, secret={"passphrase": "stale"}, cas=1)
    latest = kv.read_secret_version(path=path, raise_on_deleted_version=True)["data"]
    assert latest["data"] == {"passphrase": "two", "n": 2}
    assert latest["metadata"]["version"] == 2 and latest["metadata"]["created_time"].endswith("Z")
    old = kv.read_secret_version(path=path, version=1, raise_on_deleted_version=True)["data"]
    assert old["data"] == {"passphrase": "one"}
    # hvac's patch: read, merge, write back with cas.
    kv.patch(path=path, secret={"extra": "x"})
    assert kv.read_secret(path=path)["data"]["data"] == {"passphrase": "two", "n": 2, "extra": "x"}
    with pytest.raises(hvac.exceptions.InvalidPath):
        kv.read_secret_version(path=path, version=9, raise_on_deleted_version=True)
    with pytest.raises(hvac.exceptions.InvalidPath):
        kv.read_secret_version(path=f"csi/{unique('never')}", raise_on_deleted_version=True)


def test_metadata_settings_and_the_version_limit(kv):
    path = unique("settings")
    kv.update_metadata(path=path, max_versions=2, cas_required=True,
                       custom_metadata={"owner": "storage-team"}, delete_version_after="1h30m")
    with pytest.raises(hvac.exceptions.InvalidRequest, match="required"):
        kv.create_or_update_secret(path=path, secret={"v": "1"})
    for version in range(3):
        kv.create_or_update_secret(path=path, secret={"v": str(version)}, cas=version)
    meta = kv.read_secret_metadata(path=path)["data"]
    assert (meta["current_version"], meta["oldest_version"], meta["max_versions"]) == (3, 2, 2)
    assert meta["cas_required"] is True and meta["delete_version_after"] == "1h30m0s"
    assert meta["custom_metadata"] == {"owner": "storage-team"}
    assert sorted(meta["versions"]) == ["2", "3"], "the oldest version is dropped beyond max_versions"
    assert meta["versions"]["3"]["deletion_time"] != "", "delete_version_after schedules deletion"
    with pytest.raises(hvac.exceptions.InvalidPath):
        kv.read_secret_version(path=path, version=1, raise_on_deleted_version=True)
    with pytest.raises(hvac.exceptions.InvalidRequest, match="max_versions"):
        kv.update_metadata(path=path, max_versions=1000)


def test_delete_undelete_destroy_and_delete_everything(kv):
    path = unique("lifecycle")
    for v in ("a", "b", "c"):
        kv.create_or_update_secret(path=path, secret={"v": v})
    kv.delete_latest_version_of_secret(path=path)
    with pytest.raises(hvac.exceptions.InvalidPath):
        kv.read_secret_version(path=path, raise_on_deleted_version=True)
    meta = kv.read_secret_metadata(path=path)["data"]
    assert meta["versions"]["3"]["deletion_time"] != "" and meta["versions"]["3"]["destroyed"] is False
    kv.undelete_secret_versions(path=path, versions=[3])
    assert kv.read_secret(path=path)["data"]["data"] == {"v": "c"}
    kv.delete_secret_versions(path=path, versions=[1, 2])
    kv.destroy_secret_versions(path=path, versions=[1])
    kv.undelete_secret_versions(path=path, versions=[1, 2])
    assert kv.read_secret_version(path=path, version=2, raise_on_deleted_version=True)["data"]["data"] == {"v": "b"}
    with pytest.raises(hvac.exceptions.InvalidPath):
        kv.read_secret_version(path=path, version=1, raise_on_deleted_version=True)
    assert kv.read_secret_metadata(path=path)["data"]["versions"]["1"]["destroyed"] is True
    kv.delete_metadata_and_all_versions(path=path)
    with pytest.raises(hvac.exceptions.InvalidPath):
        kv.read_secret_metadata(path=path)


def test_listing_shows_names_and_folders(vault, kv):
    top = unique("tree")
    for leaf in ("a", "b/c", "b/d/e"):
        kv.create_or_update_secret(path=f"{top}/{leaf}", secret={"x": "1"})
    assert kv.list_secrets(path=top)["data"]["keys"] == ["a", "b/"]
    assert kv.list_secrets(path=f"{top}/b")["data"]["keys"] == ["c", "d/"]
    assert f"{top}/" in kv.list_secrets(path="")["data"]["keys"]
    with pytest.raises(hvac.exceptions.InvalidPath):
        kv.list_secrets(path=f"{top}/nothing")
    # The mount is announced as KV version 2, as ceph-csi and Vault's CLI ask.
    srv, address, pki, tokens, clients = vault
    headers = {"X-Vault-Token": tokens["user"]["vault_token"]}
    mount = requests.get(f"{address}/v1/sys/internal/ui/mounts/secret/{top}", headers=headers,
                         verify=pki.ca_file, timeout=10).json()["data"]
    assert (mount["type"], mount["options"]["version"], mount["path"]) == ("kv", "2", "secret/")


def test_values_are_sealed_in_the_store(vault, kv):
    srv = vault[0]
    marker = unique("plaintext-marker")
    kv.create_or_update_secret(path=unique("sealed"), secret={"key": marker})
    store = srv.data_dir / "kcm.db"
    db = sqlite3.connect(f"file:{store}?mode=ro", uri=True)
    try:
        dump = "\n".join(db.iterdump())
    finally:
        db.close()
    assert marker not in dump, "a KV value is stored in plaintext"
    for wal in srv.data_dir.glob("kcm.db*"):
        assert marker.encode() not in wal.read_bytes(), f"a KV value is in {wal.name} in plaintext"


def test_roles_and_systems(vault):
    srv, address, pki, tokens, clients = vault
    path = unique("guarded")
    clients["user"].secrets.kv.v2.create_or_update_secret(path=path, secret={"k": "v"})
    auditor = clients["auditor"].secrets.kv.v2
    assert auditor.read_secret_metadata(path=path)["data"]["current_version"] == 1
    with pytest.raises(hvac.exceptions.Forbidden):
        auditor.read_secret_version(path=path, raise_on_deleted_version=True)
    with pytest.raises(hvac.exceptions.Forbidden):
        auditor.create_or_update_secret(path=path, secret={"k": "w"})
    # Another system's token has its own store: the same path is not there.
    with pytest.raises(hvac.exceptions.InvalidPath):
        clients["other"].secrets.kv.v2.read_secret_version(path=path, raise_on_deleted_version=True)
    headers = {"X-Vault-Token": tokens["user"]["vault_token"]}
    for bad in ("a//b", "a/%2E%2E/b"):
        answer = requests.post(f"{address}/v1/secret/data/{bad}", json={"data": {"k": "v"}},
                               headers=headers, verify=pki.ca_file, timeout=10)
        assert answer.status_code == 400 and "no secret path" in answer.json()["errors"][0], answer.text
    # Escapes are decoded, as Vault decodes them.
    clients["user"].secrets.kv.v2.create_or_update_secret(path=f"{path} spaced", secret={"k": "v"})
    assert f"{path} spaced" in clients["user"].secrets.kv.v2.list_secrets(path="")["data"]["keys"]
    answer = requests.post(f"{address}/v1/secret/data/{path}", json={"options": {}},
                           headers=headers, verify=pki.ca_file, timeout=10)
    assert answer.status_code == 400 and "no data" in answer.json()["errors"][0], answer.text


def test_the_kill_switch_and_the_audit_log(vault, kv):
    srv, address, pki, tokens, clients = vault
    path = unique("switched")
    kv.create_or_update_secret(path=path, secret={"key": "volume"})
    root = srv.default_root_id()
    cli_ok(kcm_cli(srv, "root-key", "disable", root))
    try:
        refusal = until_refused(lambda: kv.read_secret_version(path=path, raise_on_deleted_version=True),
                                hvac.exceptions.InvalidRequest, BOUND_MS / 1000,
                                "a KV read refused after the kill switch")
        assert "disabled" in str(refusal), refusal
        with pytest.raises(hvac.exceptions.InvalidRequest):
            kv.create_or_update_secret(path=path, secret={"key": "new"})
    finally:
        cli_ok(kcm_cli(srv, "root-key", "enable", root))
    read = until_served(lambda: kv.read_secret(path=path), hvac.exceptions.InvalidRequest,
                        BOUND_MS / 1000, "a KV read served after enable")
    assert read["data"]["data"] == {"key": "volume"}
    records = srv.v1_ok("GET", f"/v1/audit?principal={tokens['user']['access_key_id']}&limit=1000")["records"]
    assert records and all(r["front_door"] == "vault" for r in records), records[-3:]
    operations = {r["operation"] for r in records}
    assert {"GetObjectPayload", "UpdateObject", "GetObject", "ListObjects"} <= operations, operations
    refused = [r for r in records if r["operation"] == "GetObjectPayload" and r["outcome"] != "success"]
    assert refused, "the refused read under the kill switch is not in the audit log"
