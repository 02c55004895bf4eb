"""kcm with its root keys in a PKCS#11 token (SoftHSM2), end to end.

The server runs with `default_keystore` set to a `kind = "pkcs11"` keystore, so the
service's credential root and every tenant's root key are generated inside the token.
boto3 drives the AWS API; OpenSC's pkcs11-tool, a client independent of kcm, looks
inside the token to check what kcm created there.
"""

from __future__ import annotations

import base64
import os
import time

import pytest
from kcmtest import LOADED_SLACK_S, RoundTrips, ServerStartError, kms_error, refused_within, system_with_key, unique
from softhsm import Token


@pytest.fixture
def token(tmp_path):
    return Token(tmp_path / "hsm")


def start_on_token(spawn_server, token: Token, tmp_path, extra_env: dict | None = None, **config):
    pin_file = token.write_pin_file(tmp_path / "hsm.pin") if "pin_env" not in config else None
    conf = token.kcm_config(tmp_path / "kcm.toml", pin_file=pin_file, **config)
    env = dict(token.env, KCM_CONFIG=str(conf))
    if "pin_env" in config:
        env[config["pin_env"]] = token.pin
    return spawn_server(env=dict(env, **(extra_env or {})))


def test_root_keys_are_generated_in_the_token_and_never_leave_it(spawn_server, token, tmp_path):
    srv = start_on_token(spawn_server, token, tmp_path)
    kms = srv.client("default")
    key_id = kms.create_key(Description=unique("hsm"))["KeyMetadata"]["KeyId"]
    blob = kms.encrypt(KeyId=key_id, Plaintext=b"under an HSM root")["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"under an HSM root"

    # The keychain names the token's keystore as the home of the tenant's root key.
    chain = srv.v1_ok("GET", "/v1/keychain")
    roots = chain["root_keys"]
    assert roots and all(r["keystore"] == "hsm" for r in roots), chain

    # Inside the token: AES-256 keys kcm generated, sensitive and never extractable.
    keys = token.secret_keys()
    kcm_keys = {label: text for label, text in keys.items() if label.startswith("kcm-")}
    assert any(label.startswith("kcm-root-") for label in kcm_keys), keys
    assert any(label.startswith("kcm-credentials-") for label in kcm_keys), keys
    for label, text in kcm_keys.items():
        assert "AES length 32" in text, (label, text)
        assert "never extractable" in text, (label, text)
        assert "sensitive" in text, (label, text)
        usage = next(line for line in text.splitlines() if "Usage:" in line)
        assert usage.split(":", 1)[1].strip() == "encrypt, decrypt", (label, usage)

    # A restart logs in again and unwraps the chain from the token.
    srv.restart()
    kms = srv.client("default")
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"under an HSM root"
    dk = kms.generate_data_key(KeyId=key_id, KeySpec="AES_256")
    assert kms.decrypt(CiphertextBlob=dk["CiphertextBlob"])["Plaintext"] == dk["Plaintext"]

    # A second tenant gets its own root key in the token.
    before = {label for label in token.secret_keys() if label.startswith("kcm-root-")}
    srv.create_tenant(unique("tenant"))
    after = {label for label in token.secret_keys() if label.startswith("kcm-root-")}
    assert len(after - before) == 1, (before, after)


def test_pin_from_the_environment_works(spawn_server, token, tmp_path):
    srv = start_on_token(spawn_server, token, tmp_path, pin_env="KCM_TEST_HSM_PIN")
    kms = srv.client("default")
    key_id = kms.create_key(Description=unique("env-pin"))["KeyMetadata"]["KeyId"]
    blob = kms.encrypt(KeyId=key_id, Plaintext=b"x")["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"x"
    log = srv.stderr_path.read_text()
    assert token.pin not in log


@pytest.mark.parametrize(
    "problem, expected",
    [
        ("wrong-pin", "PIN"),
        ("open-pin-file", "chmod 600"),
        ("unknown-label", "no-such-token"),
        ("missing-pin-env", "KCM_TEST_UNSET_PIN"),
        ("bad-module", "/nonexistent/libpkcs11.so"),
    ],
)
def test_a_keystore_that_cannot_be_opened_stops_the_start_with_a_clear_error(
    spawn_server, token, tmp_path, problem, expected
):
    pin_file = tmp_path / "hsm.pin"
    config = {"pin_file": pin_file}
    if problem == "wrong-pin":
        pin_file.write_text("not-the-pin\n")
        pin_file.chmod(0o600)
    else:
        token.write_pin_file(pin_file, mode=0o644 if problem == "open-pin-file" else 0o600)
    if problem == "unknown-label":
        config["label"] = "no-such-token"
    if problem == "missing-pin-env":
        config = {"pin_env": "KCM_TEST_UNSET_PIN"}
    conf = token.kcm_config(tmp_path / "kcm.toml", **config)
    if problem == "bad-module":
        conf.write_text(conf.read_text().replace(token.module, "/nonexistent/libpkcs11.so"))
    env = dict(token.env, KCM_CONFIG=str(conf))
    srv = spawn_server(env=env, start=False)
    with pytest.raises(ServerStartError) as e:
        srv.start(timeout=20)
    message = str(e.value)
    assert 'keystore "hsm"' in message, message
    assert expected in message, message
    assert token.pin not in message and "not-the-pin" not in message, message
    if problem == "unknown-label":
        assert token.label in message, "the error should list the tokens it found: " + message


def test_a_token_that_is_gone_at_start_is_named(spawn_server, token, tmp_path):
    srv = start_on_token(spawn_server, token, tmp_path)
    kms = srv.client("default")
    key_id = kms.create_key(Description=unique("gone"))["KeyMetadata"]["KeyId"]
    kms.encrypt(KeyId=key_id, Plaintext=b"x")
    srv.stop()
    for f in token.tokendir.rglob("*"):
        if f.is_file():
            f.unlink()
    for d in sorted(token.tokendir.glob("*"), reverse=True):
        d.rmdir()
    with pytest.raises(ServerStartError) as e:
        srv.start(timeout=20)
    assert "kcm-test" in str(e.value), str(e.value)


def test_a_system_moves_from_the_software_keystore_into_the_hsm(spawn_server, token, tmp_path):
    """The migration path: a tenant that started on the software keystore generates a
    root key in the HSM and moves its system below it; nothing encrypted before changes."""
    srv = start_on_token(spawn_server, token, tmp_path, default="software")
    kms = srv.client("default")
    key_id = kms.create_key(Description=unique("migrate"))["KeyMetadata"]["KeyId"]
    blob = kms.encrypt(KeyId=key_id, Plaintext=b"before the move")["CiphertextBlob"]
    roots = srv.v1_ok("GET", "/v1/root-keys")["root_keys"]
    assert [r["keystore"] for r in roots] == ["software"], roots

    hsm_root = srv.v1_ok("POST", "/v1/root-keys", expect=(201,), json_body={"keystore": "hsm"})
    assert (hsm_root["keystore"], hsm_root["keystore_kind"]) == ("hsm", "pkcs11"), hsm_root
    assert f"kcm-root-{hsm_root['id']}" in token.secret_keys()
    system = srv.v1_ok("GET", "/v1/systems/default")
    moved = srv.v1_ok("POST", f"/v1/systems/{system['id']}/switch-root-key",
                      json_body={"root_key_id": hsm_root["id"]})
    assert moved["root_key_id"] == hsm_root["id"]
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"before the move"

    srv.restart()
    kms = srv.client("default")
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"before the move"
    # Rotating the HSM root: new material in the token, the old object destroyed.
    label = f"kcm-root-{hsm_root['id']}"
    old_id = next(line for line in token.secret_keys()[label].splitlines() if "ID:" in line)
    srv.v1_ok("POST", f"/v1/root-keys/{hsm_root['id']}/rotate")
    listing = token._tool("--list-objects", "--type", "secrkey")
    objects = [block for block in listing.split("Secret Key Object")[1:] if label in block]
    assert len(objects) == 1, listing
    assert old_id not in token.secret_keys()[label], "the old material is destroyed"
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"before the move"
    # The HSM root now holds the switch: disabling it cuts the key off.
    srv.v1_ok("POST", f"/v1/root-keys/{hsm_root['id']}/disable")
    with kms_error("DisabledException"):
        kms.decrypt(CiphertextBlob=blob)


def test_the_kill_switch_on_a_root_key_in_the_token(spawn_server, token, tmp_path):
    """boto3 under a root key generated in the token: disabled, every operation is
    refused; suspended, only Decrypt works; enabled again, everything works."""
    srv = start_on_token(spawn_server, token, tmp_path)
    kms = srv.client("default")
    key_id = kms.create_key(Description=unique("switch"))["KeyMetadata"]["KeyId"]
    blob = kms.encrypt(KeyId=key_id, Plaintext=b"behind the switch")["CiphertextBlob"]
    root = next(r for r in srv.v1_ok("GET", "/v1/root-keys")["root_keys"] if r["default"])
    assert root["keystore"] == "hsm", root

    def refused(call, code="DisabledException"):
        """Below a disabled root: DisabledException; below a suspended one:
        KMSInvalidStateException (README, "the kill switch")."""
        with kms_error(code):
            call()

    srv.v1_ok("POST", f"/v1/root-keys/{root['id']}/disable")
    refused(lambda: kms.encrypt(KeyId=key_id, Plaintext=b"x"))
    refused(lambda: kms.decrypt(CiphertextBlob=blob))
    refused(lambda: kms.generate_data_key(KeyId=key_id, KeySpec="AES_256"))
    assert srv.v1_ok("GET", "/v1/systems/default")["status"].startswith("locked: root key")

    srv.v1_ok("POST", f"/v1/root-keys/{root['id']}/enable")
    srv.v1_ok("POST", f"/v1/root-keys/{root['id']}/suspend")
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"behind the switch"
    refused(lambda: kms.encrypt(KeyId=key_id, Plaintext=b"x"), "KMSInvalidStateException")
    refused(lambda: kms.generate_data_key(KeyId=key_id, KeySpec="AES_256"), "KMSInvalidStateException")

    srv.v1_ok("POST", f"/v1/root-keys/{root['id']}/enable")
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"behind the switch"
    dk = kms.generate_data_key(KeyId=key_id, KeySpec="AES_256")
    assert kms.decrypt(CiphertextBlob=dk["CiphertextBlob"])["Plaintext"] == dk["Plaintext"]
    assert srv.v1_ok("GET", "/v1/systems/default")["status"] == "connected"


def test_byok_into_the_token(spawn_server, token, tmp_path):
    """A customer's own key material, wrapped with openssl, imported into the token as
    a sensitive, non-extractable key; keys below it work through the token."""
    from byok import new_material, wrap

    srv = start_on_token(spawn_server, token, tmp_path)
    params = srv.v1_ok("POST", "/v1/root-keys/import-parameters",
                       json_body={"keystore": "hsm", "wrapping_algorithm": "RSA_AES_KEY_WRAP_SHA_256"})
    pem = tmp_path / "wrapping.pem"
    pem.write_text(params["public_key_pem"])
    wrapped = wrap("RSA_AES_KEY_WRAP_SHA_256", pem, new_material(tmp_path / "key.bin"), tmp_path / "key.w")
    root = srv.v1_ok("POST", "/v1/root-keys/import", expect=(201,), json_body={
        "import_token": params["import_token"], "wrapped_key_material": base64.b64encode(wrapped).decode()})
    assert (root["keystore_kind"], root["origin"]) == ("pkcs11", "imported"), root

    text = token.secret_keys()[f"kcm-root-{root['id']}"]
    access = next(line for line in text.splitlines() if "Access:" in line).split(":", 1)[1]
    flags = [f.strip() for f in access.split(",")]
    assert "sensitive" in flags and "extractable" not in flags, text
    usage = next(line for line in text.splitlines() if "Usage:" in line)
    assert usage.split(":", 1)[1].strip() == "encrypt, decrypt", usage

    system, kms, key_id = system_with_key(srv, root["id"], "byok-hsm")
    blob = kms.encrypt(KeyId=key_id, Plaintext=b"under an imported HSM root")["CiphertextBlob"]
    srv.restart()
    kms = srv.client_for(srv.create_access_key("key-user", system=system["id"]))
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"under an imported HSM root"


def test_hyok_a_customer_key_in_the_token_and_its_revocation(spawn_server, token, tmp_path):
    """The customer's own key, made with pkcs11-tool, becomes a root key by reference;
    when the customer deletes it, everything below is refused within the external
    check interval — without any call to kcm."""
    token.customer_key("customer-root", "c0ffee01")
    check_ms = 500
    pin_file = token.write_pin_file(tmp_path / "hsm.pin")
    conf = token.kcm_config(tmp_path / "kcm.toml", pin_file=pin_file)
    srv = spawn_server(env=dict(token.env, KCM_CONFIG=str(conf),
                                KCM_EXTERNAL_CHECK_INTERVAL_MS=str(check_ms),
                                KCM_REVOCATION_BOUND_MS="60000"))

    # Refusals first: nothing by that name, not a usable key.
    for reference in ("label:nobody", "id:zz", "nonsense"):
        r = srv.v1("POST", "/v1/root-keys/reference", json_body={"keystore": "hsm", "reference": reference})
        assert r.status_code == 400, (reference, r.text)
    r = srv.v1("POST", "/v1/root-keys/reference", json_body={"keystore": "software", "reference": "label:x"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "Unsupported", r.text

    root = srv.v1_ok("POST", "/v1/root-keys/reference", expect=(201,),
                     json_body={"keystore": "hsm", "reference": "label:customer-root", "description": "ours"})
    assert (root["origin"], root["keystore_kind"]) == ("external", "pkcs11"), root
    again = srv.v1("POST", "/v1/root-keys/reference", json_body={"keystore": "hsm", "reference": "id:c0ffee01"})
    assert again.status_code == 409, again.text

    system, kms, key_id = system_with_key(srv, root["id"], "hyok")
    assert system["status"] == "connected", system
    blob = kms.encrypt(KeyId=key_id, Plaintext=b"held by the customer")["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"held by the customer"

    # The holder revokes the key in their own token. The revocation bound is a minute,
    # so only the external check interval can explain a refusal within seconds.
    token.delete_key("customer-root")
    # A root key its holder destroyed is unusable, not unavailable: no retry brings it
    # back (KMSInvalidStateException, not the retryable 503).
    refused_within(lambda: kms.decrypt(CiphertextBlob=blob), check_ms / 1000 + LOADED_SLACK_S,
                   "KMSInvalidStateException")
    with kms_error("KMSInvalidStateException"):
        kms.encrypt(KeyId=key_id, Plaintext=b"x")
    # The system says why.
    status = srv.v1_ok("GET", f"/v1/systems/{system['id']}")["status"]
    assert status == f"locked: root key {root['id']} is revoked by its holder", status


def test_backup_and_restore_with_the_root_keys_in_the_token(spawn_server, token, tmp_path):
    """The archive's key is wrapped by the service's root key in the token, so a
    restore needs the same keystore configuration and the token; with them, every
    ciphertext decrypts on the restored server."""
    import shutil
    import subprocess
    from kcmtest import KCM_BIN

    srv = start_on_token(spawn_server, token, tmp_path)
    kms = srv.client("default")
    key_id = kms.create_key(Description=unique("backup"))["KeyMetadata"]["KeyId"]
    blob = kms.encrypt(KeyId=key_id, Plaintext=b"kept in the token")["CiphertextBlob"]
    archive = tmp_path / "kcm.kcmbak"
    conf = tmp_path / "kcm.toml"
    env = dict(os.environ, **token.env)

    def kcm(*args):
        return subprocess.run([str(KCM_BIN), *args], capture_output=True, text=True, timeout=120, env=env)

    r = kcm("--endpoint", srv.url, "--credentials-file", str(srv.credentials_path), "--profile", "system-admin",
            "backup", "-o", str(archive))
    assert r.returncode == 0, r.stderr
    kept = tmp_path / "kept"
    kept.mkdir()
    for name in ("master.key", "credentials"):
        shutil.copy2(srv.data_dir / name, kept / name)
    assert srv.stop() == 0
    shutil.rmtree(srv.data_dir)

    # Without the keystore configuration, the archive's key cannot be unwrapped.
    r = kcm("restore", "--input", str(archive), "--data-dir", str(srv.data_dir),
            "--master-key-file", str(kept / "master.key"))
    assert r.returncode != 0 and "hsm" in r.stderr, r.stderr
    assert not srv.data_dir.exists() or not any(srv.data_dir.iterdir())

    r = kcm("restore", "--input", str(archive), "--data-dir", str(srv.data_dir), "--config", str(conf),
            "--master-key-file", str(kept / "master.key"))
    assert r.returncode == 0, r.stderr
    shutil.copy2(kept / "credentials", srv.credentials_path)
    srv.start()
    assert srv.client("default").decrypt(CiphertextBlob=blob)["Plaintext"] == b"kept in the token"


# Generous bounds for the token-loss test: any one call (a lost token is found out
# at once; measured well under a second), and the return to service once the token
# is back (the module is initialised again at most once a second; measured ~1 s).
CALL_BOUND_S = 10.0
RECOVERY_BOUND_S = 15.0


def test_a_token_lost_under_load_is_a_retryable_error_and_is_used_again_without_restart(
        spawn_server, token, tmp_path):
    """Issue 14, section 9 (RELIABILITY.md "Faults"). Four clients Encrypt and Decrypt
    without pause, every call through the token (a revocation bound of 1 ms leaves
    nothing cached). The token's files are moved out of SoftHSM2's token directory
    (as an unmounted volume or a pulled device looks to the module: searches find
    nothing, C_GetTokenInfo fails) for two seconds, then back. Meanwhile calls fail with
    a 503 DependencyTimeoutException (retryable; before, a 400 KMSInvalidStateException
    "no root key … (destroyed …)" that lasted until kcm restarted), none hangs, none
    returns something wrong; once the token is back the same kcm process serves again."""
    srv = start_on_token(spawn_server, token, tmp_path, extra_env={"KCM_REVOCATION_BOUND_MS": "1"})
    pid = srv.proc.pid
    kms = srv.client("default")  # boto3 clients are safe to share between threads
    key_id = kms.create_key(Description=unique("token-loss"))["KeyMetadata"]["KeyId"]
    kept = kms.encrypt(KeyId=key_id, Plaintext=b"before the loss")["CiphertextBlob"]

    (token_dir,) = [p for p in token.tokendir.iterdir() if p.is_dir()]
    aside = tmp_path / "token-aside"
    try:
        with RoundTrips(kms, key_id, join_timeout=CALL_BOUND_S + 5) as load:
            time.sleep(1.0)
            lost = time.monotonic()
            token_dir.rename(aside)
            time.sleep(2.0)
            aside.rename(token_dir)
            back = time.monotonic()
            load.wait_until_every_client_succeeds_after(
                back, RECOVERY_BOUND_S, "calls did not succeed again after the token came back")
    finally:
        if aside.exists():
            aside.rename(token_dir)

    calls = load.calls
    before = [c for c in calls if c[1] + c[2] < lost]
    assert before and all(o == "ok" for *_, o in before), "calls failed before the fault"
    failed, outcomes, longest = load.retryable_failures(CALL_BOUND_S, "no call noticed the token gone")
    during = [c for c in calls if lost + 0.2 < c[1] and c[1] + c[2] < back]
    assert during and all(o != "ok" for *_, o in during), "a call succeeded without the token"
    first_ok = min(s + d for _, s, d, o in calls if o == "ok" and s > back)
    print(f"errors: {outcomes}")
    print(f"{len(calls)} calls, {len(failed)} failed, longest {longest:.3f} s, "
          f"first success {first_ok - back:.3f} s after the token came back")

    # The same process (no restart) serves what it encrypted before the loss.
    assert srv.proc.pid == pid and srv.running
    assert kms.decrypt(CiphertextBlob=kept)["Plaintext"] == b"before the loss"
    log = srv.stderr_path.read_text()
    assert "pkcs11 token connection lost" in log and "pkcs11 token found again" in log, srv.log_tail()
