"""kcm's Vault-compatible API (`[vault_server]`) against hvac, the Vault client most tools
use, over HTTPS: the `sys/` endpoints tools probe first, the token's own endpoints, and the
Transit engine on kcm service keys — keys, encrypt and decrypt (single and batch, with a
context), rotation and rewrap, data keys, random bytes and hashes — with kcm's
authorisation, kill switch and audit log behind them.

One server for the module; tokens are minted with the kcm CLI (`access-key create --kind
vault`): a key-admin of the system "apps", a key-user of it, and a key-admin and a
key-user of another system "other".
"""

from __future__ import annotations

import base64
import hashlib
import json

import hvac
import hvac.exceptions
import pytest
import requests

from kcmtest import cli_ok, kcm_cli, unique
from vault_harness import start_vault_server, until_refused, until_served, vault_client, vault_token

pytestmark = pytest.mark.timeout(120)

BOUND_MS = 500


def b64(b: bytes) -> str:
    return base64.b64encode(b).decode()


@pytest.fixture(scope="module")
def vault(tmp_path_factory):
    srv, address, pki = start_vault_server(tmp_path_factory.mktemp("vault"), BOUND_MS,
                                           env={"KCM_METRICS": "public"})
    for system in ("apps", "other"):
        srv.v1_ok("POST", "/v1/systems", expect=(201,), json_body={"name": system})
    tokens = {
        "admin": vault_token(srv, "apps", "key-admin"),
        "user": vault_token(srv, "apps", "key-user"),
        "other": vault_token(srv, "other", "key-admin"),
        "other-user": vault_token(srv, "other", "key-user"),
    }
    yield srv, address, pki, tokens
    srv.stop()


@pytest.fixture()
def admin(vault):
    srv, address, pki, tokens = vault
    return vault_client(address, pki, tokens["admin"]["vault_token"])


@pytest.fixture()
def user(vault):
    srv, address, pki, tokens = vault
    return vault_client(address, pki, tokens["user"]["vault_token"])


def test_what_tools_probe_first(vault, admin):
    srv, address, pki, tokens = vault
    anonymous = vault_client(address, pki, None)
    health = anonymous.sys.read_health_status(method="GET")
    assert (health["initialized"], health["sealed"], health["standby"]) == (True, False, False)
    assert health["version"].startswith("kcm ")
    assert anonymous.sys.is_sealed() is False
    mounts = admin.sys.list_mounted_secrets_engines()["data"]
    assert mounts["transit/"]["type"] == "transit"
    me = admin.auth.token.lookup_self()["data"]
    assert me["accessor"] == tokens["admin"]["access_key_id"] and me["ttl"] == 0
    assert me["meta"]["kcm_role"] == "key-admin"
    assert tokens["admin"]["vault_token"].split(".")[-1] not in json.dumps(me), "the secret is echoed"
    renewed = admin.auth.token.renew_self()
    assert renewed["auth"]["renewable"] is False and renewed["auth"]["client_token"] == ""


def test_transit_keys_encrypt_and_decrypt(admin, user):
    name = unique("orders")
    made = admin.secrets.transit.create_key(name=name)
    assert made["data"]["type"] == "aes256-gcm96" and made["data"]["latest_version"] == 1
    # Creating it again changes nothing and succeeds, as Vault's does.
    assert admin.secrets.transit.create_key(name=name)["data"]["kcm_key_id"] == made["data"]["kcm_key_id"]
    assert name in admin.secrets.transit.list_keys()["data"]["keys"]
    # The key-user encrypts and decrypts with it; the ciphertext is Vault's form.
    sealed = user.secrets.transit.encrypt_data(name=name, plaintext=b64(b"attack at dawn"))["data"]
    assert sealed["ciphertext"].startswith("vault:v1:") and sealed["key_version"] == 1
    opened = user.secrets.transit.decrypt_data(name=name, ciphertext=sealed["ciphertext"])["data"]
    assert base64.b64decode(opened["plaintext"]) == b"attack at dawn"
    # A context is bound: decrypting needs the same one.
    context = b64(b"bucket/object")
    bound = user.secrets.transit.encrypt_data(name=name, plaintext=b64(b"x"), context=context)["data"]
    assert base64.b64decode(user.secrets.transit.decrypt_data(
        name=name, ciphertext=bound["ciphertext"], context=context)["data"]["plaintext"]) == b"x"
    for wrong in (None, b64(b"another/object")):
        with pytest.raises(hvac.exceptions.InvalidRequest):
            user.secrets.transit.decrypt_data(name=name, ciphertext=bound["ciphertext"], context=wrong)
    # A ciphertext changed by one bit, or not a ciphertext at all, is refused.
    blob = bytearray(base64.b64decode(sealed["ciphertext"].split(":", 2)[2]))
    blob[-1] ^= 1
    for bad in ("vault:v1:" + b64(bytes(blob)), "vault:v1:bm90", "not-a-ciphertext"):
        with pytest.raises(hvac.exceptions.InvalidRequest):
            user.secrets.transit.decrypt_data(name=name, ciphertext=bad)


def test_batches_answer_item_by_item(user, admin):
    name = unique("batch")
    admin.secrets.transit.create_key(name=name)
    items = [{"plaintext": b64(f"item {i}".encode()), "context": b64(f"c{i}".encode())} for i in range(5)]
    sealed = user.secrets.transit.encrypt_data(name=name, plaintext="", batch_input=items)["data"]["batch_results"]
    assert len(sealed) == 5 and all(r["ciphertext"].startswith("vault:v1:") for r in sealed)
    back = [{"ciphertext": r["ciphertext"], "context": items[i]["context"]} for i, r in enumerate(sealed)]
    back[2]["context"] = b64(b"wrong")
    opened = user.secrets.transit.decrypt_data(name=name, ciphertext="", batch_input=back)["data"]["batch_results"]
    assert [base64.b64decode(r["plaintext"]) for i, r in enumerate(opened) if i != 2] == \
        [f"item {i}".encode() for i in (0, 1, 3, 4)]
    assert "error" in opened[2] and "plaintext" not in opened[2]


def test_rotation_rewrap_and_data_keys(admin, user):
    name = unique("rotated")
    admin.secrets.transit.create_key(name=name)
    old = user.secrets.transit.encrypt_data(name=name, plaintext=b64(b"before"))["data"]["ciphertext"]
    assert admin.secrets.transit.rotate_key(name=name)["data"]["latest_version"] == 2
    assert admin.secrets.transit.read_key(name=name)["data"]["latest_version"] == 2
    new = user.secrets.transit.encrypt_data(name=name, plaintext=b64(b"after"))["data"]["ciphertext"]
    assert new.startswith("vault:v2:")
    assert base64.b64decode(user.secrets.transit.decrypt_data(name=name, ciphertext=old)["data"]["plaintext"]) == b"before"
    rewrapped = user.secrets.transit.rewrap_data(name=name, ciphertext=old)["data"]["ciphertext"]
    assert rewrapped.startswith("vault:v2:")
    assert base64.b64decode(user.secrets.transit.decrypt_data(name=name, ciphertext=rewrapped)["data"]["plaintext"]) == b"before"
    # A data key: the plaintext and its ciphertext, which decrypts to it.
    context = b64(b'{"aws:s3:arn": "arn:aws:s3:::bucket/object"}')
    key = user.secrets.transit.generate_data_key(name=name, key_type="plaintext", context=context)["data"]
    plaintext = base64.b64decode(key["plaintext"])
    assert len(plaintext) == 32 and key["ciphertext"].startswith("vault:v2:")
    assert base64.b64decode(user.secrets.transit.decrypt_data(
        name=name, ciphertext=key["ciphertext"], context=context)["data"]["plaintext"]) == plaintext
    wrapped = user.secrets.transit.generate_data_key(name=name, key_type="wrapped", bits=512)["data"]
    assert "plaintext" not in wrapped
    assert len(base64.b64decode(user.secrets.transit.decrypt_data(
        name=name, ciphertext=wrapped["ciphertext"])["data"]["plaintext"])) == 64


def test_random_bytes_and_hashes(user):
    random = base64.b64decode(user.secrets.transit.generate_random_bytes(n_bytes=24)["data"]["random_bytes"])
    assert len(random) == 24 and random != bytes(24)
    summed = user.secrets.transit.hash_data(hash_input=b64(b"abc"), algorithm="sha2-512")["data"]["sum"]
    assert summed == hashlib.sha512(b"abc").hexdigest()


def test_deleting_a_key_needs_deletion_allowed(admin, user):
    name = unique("deleted")
    admin.secrets.transit.create_key(name=name)
    with pytest.raises(hvac.exceptions.InvalidRequest):
        admin.secrets.transit.delete_key(name=name)
    assert admin.secrets.transit.update_key_configuration(name=name, deletion_allowed=True)["data"]["deletion_allowed"]
    admin.secrets.transit.delete_key(name=name)
    with pytest.raises(hvac.exceptions.InvalidPath):
        admin.secrets.transit.read_key(name=name)
    # The name is free again.
    assert admin.secrets.transit.create_key(name=name)["data"]["latest_version"] == 1


def test_tokens_and_authorisation(vault, admin, user):
    srv, address, pki, tokens = vault
    name = unique("guarded")
    admin.secrets.transit.create_key(name=name)
    # A key-user may not create keys: the core's authorisation says so, as 403.
    with pytest.raises(hvac.exceptions.Forbidden):
        user.secrets.transit.create_key(name=unique("not-allowed"))
    # Another system's token sees no key of this name.
    other = vault_client(address, pki, tokens["other"]["vault_token"])
    with pytest.raises(hvac.exceptions.InvalidPath):
        other.secrets.transit.read_key(name=name)
    other_user = vault_client(address, pki, tokens["other-user"]["vault_token"])
    with pytest.raises(hvac.exceptions.InvalidPath):
        other_user.secrets.transit.encrypt_data(name=name, plaintext=b64(b"x"))
    # No token, a token with a wrong secret, and kcm's own access key written as a token.
    access_key = srv.creds()
    wrong_secret = tokens["user"]["vault_token"][:-2] + "AA"
    for token in (None, "", wrong_secret, f"kcm.{access_key[0]}.{access_key[1]}", "s.vaulttoken"):
        with pytest.raises(hvac.exceptions.Forbidden):
            vault_client(address, pki, token).secrets.transit.encrypt_data(name=name, plaintext=b64(b"x"))
    # A disabled token is cut off within the revocation bound.
    made = vault_token(srv, "apps", "key-user")
    c = vault_client(address, pki, made["vault_token"])
    c.secrets.transit.encrypt_data(name=name, plaintext=b64(b"x"))
    cli_ok(kcm_cli(srv, "access-key", "disable", made["access_key_id"]))
    until_refused(lambda: c.secrets.transit.encrypt_data(name=name, plaintext=b64(b"x")),
                  hvac.exceptions.Forbidden, BOUND_MS / 1000, "a disabled token refused")


def test_a_namespace_names_the_tokens_system(vault):
    srv, address, pki, tokens = vault
    token = tokens["user"]["vault_token"]
    inside = hvac.Client(url=address, token=token, verify=pki.ca_file, namespace="apps")
    assert len(base64.b64decode(inside.secrets.transit.generate_random_bytes(n_bytes=8)["data"]["random_bytes"])) == 8
    outside = hvac.Client(url=address, token=token, verify=pki.ca_file, namespace="other")
    with pytest.raises(hvac.exceptions.Forbidden):
        outside.secrets.transit.generate_random_bytes(n_bytes=8)


def test_errors_are_vaults(vault, admin):
    srv, address, pki, tokens = vault
    headers = {"X-Vault-Token": tokens["admin"]["vault_token"]}
    unknown = requests.get(f"{address}/v1/cubbyhole/x", headers=headers, verify=pki.ca_file, timeout=10)
    assert unknown.status_code == 404 and unknown.json()["errors"], unknown.text
    wrong_method = requests.get(f"{address}/v1/transit/encrypt/x", headers=headers, verify=pki.ca_file, timeout=10)
    assert wrong_method.status_code == 405 and wrong_method.json()["errors"]
    not_json = requests.post(f"{address}/v1/transit/encrypt/x", data=b"{", headers=headers,
                             verify=pki.ca_file, timeout=10)
    assert not_json.status_code == 400 and "JSON" in not_json.json()["errors"][0]
    missing = requests.get(f"{address}/v1/transit/keys/{unique('none')}", headers=headers,
                           verify=pki.ca_file, timeout=10)
    assert missing.status_code == 404 and missing.json() == {"errors": []}
    # RGW sends the token twice (accepted); two different tokens are refused.
    import http.client
    import ssl

    def random_with(tokens: list[str]) -> int:
        ctx = ssl.create_default_context(cafile=pki.ca_file)
        conn = http.client.HTTPSConnection("127.0.0.1", int(address.rsplit(":", 1)[1]), context=ctx, timeout=10)
        conn.putrequest("POST", "/v1/transit/random")
        for t in tokens:
            conn.putheader("X-Vault-Token", t)
        conn.putheader("Content-Length", "0")
        conn.endheaders()
        status = conn.getresponse().status
        conn.close()
        return status

    token = tokens["user"]["vault_token"]
    assert random_with([token, token]) == 200
    assert random_with([token, tokens["admin"]["vault_token"]]) == 400


def test_the_kill_switch_and_the_audit_log(vault, admin, user):
    srv, address, pki, tokens = vault
    name = unique("switched")
    admin.secrets.transit.create_key(name=name)
    sealed = user.secrets.transit.encrypt_data(name=name, plaintext=b64(b"data"))["data"]["ciphertext"]
    root = srv.default_root_id()
    preview = cli_ok(kcm_cli(srv, "root-key", "disable", root, "--dry-run", output_json=False)).stdout.decode()
    apps = next(line for line in preview.splitlines() if " system apps " in line)
    assert "Vault API token(s)" in apps and tokens["user"]["access_key_id"] in apps, preview
    cli_ok(kcm_cli(srv, "root-key", "disable", root))
    try:
        refusal = until_refused(lambda: user.secrets.transit.decrypt_data(name=name, ciphertext=sealed),
                                hvac.exceptions.InvalidRequest, BOUND_MS / 1000,
                                "Decrypt refused after the kill switch")
        assert "disabled" in str(refusal), refusal
        with pytest.raises(hvac.exceptions.InvalidRequest):
            user.secrets.transit.generate_data_key(name=name, key_type="plaintext")
    finally:
        cli_ok(kcm_cli(srv, "root-key", "enable", root))
    opened = until_served(lambda: user.secrets.transit.decrypt_data(name=name, ciphertext=sealed),
                          hvac.exceptions.InvalidRequest, BOUND_MS / 1000, "Decrypt served after enable")
    assert base64.b64decode(opened["data"]["plaintext"]) == b"data"
    records = srv.v1_ok("GET", f"/v1/audit?principal={tokens['user']['access_key_id']}&limit=1000")["records"]
    assert records and all(r["front_door"] == "vault" for r in records), records[-3:]
    operations = {r["operation"] for r in records}
    assert {"Encrypt", "Decrypt", "GenerateDataKey"} <= operations, operations
    metrics = requests.get(srv.url + "/metrics", verify=srv.trusted_ca, timeout=10).text
    assert 'kcm_requests_total{door="vault",operation="Encrypt",status="200"}' in metrics


@pytest.mark.parametrize("key_type", ["ecdsa-p256", "ecdsa-p384", "ed25519", "rsa-2048"])
def test_sign_and_verify_with_each_signing_key_type(admin, user, key_type):
    name = unique(key_type)
    admin.secrets.transit.create_key(name=name, key_type=key_type)
    described = admin.secrets.transit.read_key(name=name)["data"]
    assert (described["type"], described["supports_signing"], described["supports_encryption"]) == (
        key_type, True, False)
    message = b64(b"release manifest v1.2.3")
    signed = user.secrets.transit.sign_data(name=name, hash_input=message)["data"]
    assert signed["signature"].startswith("vault:v1:") and signed["key_version"] == 1
    ok = user.secrets.transit.verify_signed_data(name=name, hash_input=message, signature=signed["signature"])
    assert ok["data"]["valid"] is True
    tampered = user.secrets.transit.verify_signed_data(name=name, hash_input=b64(b"release manifest v6.6.6"),
                                                       signature=signed["signature"])
    assert tampered["data"]["valid"] is False
    # After a rotation, new signatures name version 2 and old ones still verify.
    admin.secrets.transit.rotate_key(name=name)
    assert user.secrets.transit.sign_data(name=name, hash_input=message)["data"]["signature"].startswith("vault:v2:")
    assert user.secrets.transit.verify_signed_data(name=name, hash_input=message,
                                                   signature=signed["signature"])["data"]["valid"] is True
    # A signing key does not encrypt.
    with pytest.raises(hvac.exceptions.InvalidRequest):
        user.secrets.transit.encrypt_data(name=name, plaintext=message)


def test_rsa_schemes_hashes_prehashed_and_batches(admin, user):
    name = unique("rsa")
    admin.secrets.transit.create_key(name=name, key_type="rsa-3072")
    message = b"payload"
    for scheme in ("pss", "pkcs1v15"):
        for hash_algorithm in ("sha2-256", "sha2-512"):
            signed = user.secrets.transit.sign_data(name=name, hash_input=b64(message),
                                                    hash_algorithm=hash_algorithm,
                                                    signature_algorithm=scheme)["data"]["signature"]
            assert user.secrets.transit.verify_signed_data(
                name=name, hash_input=b64(message), signature=signed, hash_algorithm=hash_algorithm,
                signature_algorithm=scheme)["data"]["valid"] is True
    digest = b64(hashlib.sha256(message).digest())
    signed = user.secrets.transit.sign_data(name=name, hash_input=digest, prehashed=True)["data"]["signature"]
    assert user.secrets.transit.verify_signed_data(name=name, hash_input=b64(message),
                                                   signature=signed)["data"]["valid"] is True
    batch = user.secrets.transit.sign_data(name=name, batch_input=[
        {"input": b64(b"one")}, {"input": b64(b"two")}, {"input": "not base64!"}])["data"]["batch_results"]
    assert batch[0]["signature"].startswith("vault:v1:") and batch[1]["signature"] != batch[0]["signature"]
    assert "base64" in batch[2]["error"]
    with pytest.raises(hvac.exceptions.InvalidRequest, match="hash_algorithm"):
        user.secrets.transit.sign_data(name=name, hash_input=b64(message), hash_algorithm="sha2-224")
    with pytest.raises(hvac.exceptions.InvalidRequest, match="not served"):
        admin.secrets.transit.create_key(name=unique("chacha"), key_type="chacha20-poly1305")


def test_hmac_keys(admin, user):
    name = unique("hmac")
    # hvac's create_key does not know Vault's hmac type: its adapter sends the request.
    admin.adapter.post(f"/v1/transit/keys/{name}", json={"type": "hmac"})
    assert admin.secrets.transit.read_key(name=name)["data"]["type"] == "hmac"
    message = b64(b"webhook body")
    made = user.secrets.transit.generate_hmac(name=name, hash_input=message)["data"]["hmac"]
    assert made.startswith("vault:v1:") and len(base64.b64decode(made.split(":")[2])) == 32
    assert made == user.secrets.transit.generate_hmac(name=name, hash_input=message)["data"]["hmac"]
    assert user.secrets.transit.verify_signed_data(name=name, hash_input=message, hmac=made)["data"]["valid"] is True
    assert user.secrets.transit.verify_signed_data(name=name, hash_input=b64(b"other"),
                                                   hmac=made)["data"]["valid"] is False
    with pytest.raises(hvac.exceptions.InvalidRequest, match="sha2-256"):
        user.secrets.transit.generate_hmac(name=name, hash_input=message, algorithm="sha2-512")
    # An encryption key makes no HMAC in kcm (keys have one purpose).
    aes = unique("aes")
    admin.secrets.transit.create_key(name=aes)
    with pytest.raises(hvac.exceptions.InvalidRequest, match="type hmac"):
        user.secrets.transit.generate_hmac(name=aes, hash_input=message)
