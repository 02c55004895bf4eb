"""An external keystore plugin serving as the keystore of a system, end to end.

kcm is configured with a `kind = "plugin"` keystore whose command is the example plugin
(plugins/example-keystore, written against the kcm.keystore.v1 protocol only). kcm starts
it, supervises it and calls it over a private Unix socket; boto3 drives the AWS API.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from byok import new_material, wrap
from kcmtest import REPO, RoundTrips, ServerStartError, kms_error, system_with_key, unique

PLUGIN = Path(os.environ.get("KCM_EXAMPLE_PLUGIN", str(REPO / "target" / "release" / "kcm-keystore-example")))


@pytest.fixture
def plugin_dirs(tmp_path):
    assert PLUGIN.is_file(), (
        f"{PLUGIN} is missing: build it with `cargo build --release -p kcm-keystore-example` "
        "(scripts/test does) or set KCM_EXAMPLE_PLUGIN")
    kek = tmp_path / "kek.hex"
    kek.write_text(os.urandom(32).hex() + "\n")
    kek.chmod(0o600)
    return tmp_path / "plugin-keys", kek


def plugin_config(path: Path, keys: Path, kek: Path, default: bool = False, command: Path = PLUGIN) -> str:
    path.write_text(
        ('default_keystore = "ext"\n\n' if default else "")
        + "[keystores.ext]\n"
        'kind = "plugin"\n'
        f'command = "{command}"\n'
        f'args = ["--dir", "{keys}", "--kek-file", "{kek}"]\n'
        "call_timeout_ms = 3000\n"
    )
    return str(path)


def plugin_pids(srv) -> list[int]:
    """The plugin processes kcm started (its children running the plugin binary)."""
    out = subprocess.run(["ps", "-o", "pid=,args=", "--ppid", str(srv.proc.pid)],
                         capture_output=True, text=True, timeout=10).stdout
    return [int(line.split()[0]) for line in out.splitlines() if PLUGIN.name in line]


def key_files(keys: Path) -> dict[str, dict]:
    return {p.name: json.loads(p.read_text()) for p in keys.glob("*.key")}


def test_a_system_below_a_root_key_in_the_example_plugin(spawn_server, plugin_dirs, tmp_path):
    keys, kek = plugin_dirs
    srv = spawn_server(env={"KCM_CONFIG": plugin_config(tmp_path / "kcm.toml", keys, kek)})
    assert len(plugin_pids(srv)) == 1, "kcm should run exactly one plugin process"

    root = srv.v1_ok("POST", "/v1/root-keys", expect=(201,),
                     json_body={"keystore": "ext", "description": "in the plugin"})
    assert (root["keystore"], root["keystore_kind"], root["origin"]) == ("ext", "plugin", "generated"), root
    files = key_files(keys)
    assert len(files) == 1, files
    (record,) = files.values()
    assert record["enabled"] is True, record

    system = srv.v1_ok("POST", "/v1/systems", expect=(201,),
                       json_body={"name": unique("plugged"), "root_key_id": root["id"], "region": "dc1",
                                  "labels": {"team": "storage"}})
    assert (system["status"], system["region"], system["labels"]) == ("connected", "dc1", {"team": "storage"})
    kms = srv.client_for(srv.create_access_key("tenant-admin", system=system["id"]))
    key_id = kms.create_key(Description=unique("via-plugin"))["KeyMetadata"]["KeyId"]
    blob = kms.encrypt(KeyId=key_id, Plaintext=b"kept by a plugin")["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"kept by a plugin"

    # The kill switch reaches the plugin too: the key is disabled in its own store,
    # and every operation below is refused; re-enabling restores both.
    srv.v1_ok("POST", f"/v1/root-keys/{root['id']}/disable")
    assert next(iter(key_files(keys).values()))["enabled"] is False
    for call in (lambda: kms.decrypt(CiphertextBlob=blob),
                 lambda: kms.encrypt(KeyId=key_id, Plaintext=b"x"),
                 lambda: kms.generate_data_key(KeyId=key_id, KeySpec="AES_256")):
        with kms_error("DisabledException"):
            call()
    srv.v1_ok("POST", f"/v1/root-keys/{root['id']}/enable")
    assert next(iter(key_files(keys).values()))["enabled"] is True
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"kept by a plugin"

    # A plugin that dies is restarted by kcm; calls work again within a bounded wait
    # (a fresh server start makes the next unwrap go to the plugin, not a cache).
    (pid,) = plugin_pids(srv)
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 15
    while True:
        pids = plugin_pids(srv)
        if pids and pids != [pid]:
            break
        assert time.monotonic() < deadline, "kcm did not restart the plugin"
        time.sleep(0.1)
    # Until the new process answers, calls fail fast with 503 (never hang).
    name = unique("after-restart")
    while True:
        started = time.monotonic()
        r = srv.v1("POST", "/v1/systems", json_body={"name": name, "root_key_id": root["id"]})
        # Never longer than the plugin's call timeout (3 s) and a loaded machine's slack.
        assert time.monotonic() - started < CALL_BOUND_S, "a call hung while the plugin restarted"
        if r.status_code == 201:
            break
        assert r.status_code == 503, r.text
        assert time.monotonic() < deadline, "the restarted plugin never served"
        time.sleep(0.1)
    assert r.json()["status"] == "connected", r.text
    assert "exited" in srv.stderr_path.read_text()

    # A restart of kcm starts the plugin again and unwraps the chain through it.
    srv.restart()
    kms = srv.client_for(srv.create_access_key("tenant-admin", system=system["id"]))
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"kept by a plugin"

    # kcm stops its plugin when it stops.
    pids = plugin_pids(srv)
    srv.stop()
    deadline = time.monotonic() + 10
    while any(Path(f"/proc/{p}").exists() and "zombie" not in Path(f"/proc/{p}/status").read_text().lower()
              for p in pids):
        assert time.monotonic() < deadline, "the plugin outlived kcm"
        time.sleep(0.1)


def test_the_plugin_as_the_default_keystore_holds_every_tenant_root(spawn_server, plugin_dirs, tmp_path):
    keys, kek = plugin_dirs
    srv = spawn_server(env={"KCM_CONFIG": plugin_config(tmp_path / "kcm.toml", keys, kek, default=True)})
    kms = srv.client("default")
    key_id = kms.create_key(Description=unique("default-plugin"))["KeyMetadata"]["KeyId"]
    dk = kms.generate_data_key(KeyId=key_id, KeySpec="AES_256")
    assert kms.decrypt(CiphertextBlob=dk["CiphertextBlob"])["Plaintext"] == dk["Plaintext"]
    labels = {record["label"] for record in key_files(keys).values()}
    assert any(label.startswith("kcm-root-") for label in labels), labels
    assert any(label.startswith("kcm-credentials-") for label in labels), labels
    # The key files hold sealed material only: no 32-byte key in the clear, and
    # nothing of the data key either.
    for path in keys.glob("*.key"):
        assert dk["Plaintext"].hex() not in path.read_text()


def test_a_plugin_that_cannot_start_stops_kcm_with_its_name(spawn_server, plugin_dirs, tmp_path):
    keys, kek = plugin_dirs
    missing = tmp_path / "no-such-plugin"
    srv = spawn_server(env={"KCM_CONFIG": plugin_config(tmp_path / "kcm.toml", keys, kek, command=missing)},
                       start=False)
    with pytest.raises(ServerStartError) as e:
        srv.start(timeout=20)
    text = str(e.value)
    assert "ext" in text and str(missing) in text, text

    relative = tmp_path / "rel.toml"
    relative.write_text('[keystores.ext]\nkind = "plugin"\ncommand = "kcm-keystore-example"\n')
    srv = spawn_server(env={"KCM_CONFIG": str(relative)}, start=False)
    with pytest.raises(ServerStartError) as e:
        srv.start(timeout=20)
    assert "absolute path" in str(e.value), e.value


def test_byok_and_a_referenced_key_in_the_plugin(spawn_server, plugin_dirs, tmp_path):
    """Root keys the plugin did not generate: the customer's own material, wrapped with
    openssl and imported into the plugin; and a key already in the plugin's store,
    referenced (HYOK), which kcm never destroys."""
    keys, kek = plugin_dirs
    srv = spawn_server(env={"KCM_CONFIG": plugin_config(tmp_path / "kcm.toml", keys, kek)})

    params = srv.v1_ok("POST", "/v1/root-keys/import-parameters", json_body={"keystore": "ext"})
    pem = tmp_path / "wrapping.pem"
    pem.write_text(params["public_key_pem"])
    material = new_material(tmp_path / "key.bin")
    wrapped = wrap(params["wrapping_algorithm"], pem, material, tmp_path / "key.wrapped")
    imported = srv.v1_ok("POST", "/v1/root-keys/import", expect=(201,), json_body={
        "import_token": params["import_token"], "wrapped_key_material": base64.b64encode(wrapped).decode()})
    assert (imported["keystore"], imported["origin"]) == ("ext", "imported"), imported
    files = key_files(keys)
    assert [r["origin"] for r in files.values()] == ["imported"], files
    assert material.read_bytes().hex() not in json.dumps(files), "the material is sealed on disk"

    # The imported key becomes the root of a system: boto3 round trip through it.
    _, kms, key_id = system_with_key(srv, imported["id"], "byok-plugin")
    blob = kms.encrypt(KeyId=key_id, Plaintext=b"own material")["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"own material"

    # Referencing the plugin's existing key (by the id the plugin gave it).
    (plugin_key_id,) = [r["id"] for r in files.values()]
    ref = srv.v1("POST", "/v1/root-keys/reference", json_body={"keystore": "ext", "reference": plugin_key_id})
    assert ref.status_code == 201, ref.text
    assert ref.json()["origin"] == "external"
    bad = srv.v1("POST", "/v1/root-keys/reference", json_body={"keystore": "ext", "reference": "0" * 32})
    assert bad.status_code == 400, bad.text


# A generous bound on any one call while the plugin is stalled or killed: the call
# timeout of plugin_config (3 s) and the time of a loaded machine besides.
CALL_BOUND_S = 10.0
# How long kcm may take to have the killed plugin serving again (measured: well under
# a second; the first restart waits 100 ms).
RECOVERY_BOUND_S = 15.0


def test_a_plugin_killed_mid_request_gives_a_retryable_error_and_recovers(spawn_server, plugin_dirs, tmp_path):
    """Issue 14, section 9 (RELIABILITY.md "Faults"). Four clients Encrypt and Decrypt
    without pause, every call through the plugin (a revocation bound of 1 ms leaves
    nothing cached); the plugin is stopped (SIGSTOP) so that every client's request is
    waiting on it, then killed (SIGKILL). The calls in flight and those made while kcm
    restarts it fail with a 503 DependencyTimeoutException (retryable), none hangs,
    none returns something wrong, and calls succeed again once the new plugin is up."""
    keys, kek = plugin_dirs
    conf = plugin_config(tmp_path / "kcm.toml", keys, kek, default=True)
    srv = spawn_server(env={"KCM_CONFIG": conf, "KCM_REVOCATION_BOUND_MS": "1"})
    kms = srv.client("default")  # boto3 clients are safe to share between threads
    key_id = kms.create_key(Description=unique("plugin-kill"))["KeyMetadata"]["KeyId"]
    (pid,) = plugin_pids(srv)

    with RoundTrips(kms, key_id, join_timeout=CALL_BOUND_S + 5) as load:
        time.sleep(1.0)
        os.kill(pid, signal.SIGSTOP)
        time.sleep(0.5)  # every client's next call is now waiting on the plugin
        killed = time.monotonic()
        os.kill(pid, signal.SIGKILL)
        # Run on until every client has succeeded again after the kill.
        load.wait_until_every_client_succeeds_after(
            killed, RECOVERY_BOUND_S, "calls did not succeed again after the kill")

    calls = load.calls
    before = [c for c in calls if c[1] + c[2] < killed - 0.5]
    assert before and all(o == "ok" for *_, o in before), "calls failed before the fault"
    failed, outcomes, longest = load.retryable_failures(CALL_BOUND_S, "no call noticed the plugin gone")
    # The calls in flight at the kill failed rather than hung (each client had one).
    in_flight = [c for c in failed if c[1] < killed]
    assert len({t for t, *_ in in_flight}) == load.clients, failed
    first_ok = min(s + d for _, s, d, o in calls if o == "ok" and s > killed)
    print(f"errors: {outcomes}")
    print(f"{len(calls)} calls, {len(failed)} failed ({len(in_flight)} in flight at the kill), "
          f"longest {longest:.2f} s, first success {first_ok - killed:.3f} s after the kill")

    new = plugin_pids(srv)
    assert len(new) == 1 and new != [pid], new
    log = srv.stderr_path.read_text()
    assert "keystore plugin exited; restarting it" in log and "keystore plugin restarted" in log
