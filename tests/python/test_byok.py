"""Bring your own root key (BYOK), end to end: import parameters from kcm, key
material generated and wrapped with the `openssl` command line exactly as the README
shows, the import through the kcm CLI and the REST API, and keys below the imported
root used with boto3. (Importing into a PKCS#11 token: test_pkcs11.py.)"""

from __future__ import annotations

import base64
import json
import subprocess
import time

import pytest
from byok import new_material, wrap
from kcmtest import KCM_BIN, LOADED_SLACK_S, kms_error, poll, system_with_key, unique


def kcm(srv, *args: str) -> dict:
    base = [str(KCM_BIN), "--endpoint", srv.url, "--credentials-file", str(srv.credentials_path),
            "--output", "json"]
    r = subprocess.run(base + list(args), capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, (args, r.stdout, r.stderr)
    return json.loads(r.stdout)


@pytest.fixture
def srv(spawn_server):
    return spawn_server()


def test_import_with_openssl_and_the_cli(srv, tmp_path):
    pem = tmp_path / "wrapping.pem"
    params = kcm(srv, "root-key", "import-params", "--public-key-out", str(pem))
    assert params["wrapping_algorithm"] == "RSAES_OAEP_SHA_256" and params["wrapping_key_spec"] == "RSA_3072"
    assert pem.read_text().startswith("-----BEGIN PUBLIC KEY-----")
    material = new_material(tmp_path / "key.bin")
    wrapped = tmp_path / "key.wrapped"
    wrap("RSAES_OAEP_SHA_256", pem, material, wrapped)
    root = kcm(srv, "root-key", "import", "--import-token", params["import_token"],
               "--wrapped-material", str(wrapped), "--description", "our own key")
    assert (root["origin"], root["state"], root["keystore"]) == ("imported", "active", "software"), root
    assert root["description"] == "our own key"

    system, client, key_id = system_with_key(srv, root["id"], "byok")
    blob = client.encrypt(KeyId=key_id, Plaintext=b"under our own root")["CiphertextBlob"]
    # Its material is the customer's: kcm does not replace it.
    r = srv.v1("POST", f"/v1/root-keys/{root['id']}/rotate")
    assert r.status_code == 400 and r.json()["error"]["code"] == "Unsupported", r.text
    assert client.decrypt(CiphertextBlob=blob)["Plaintext"] == b"under our own root"

    # The token was single-use.
    r = srv.v1("POST", "/v1/root-keys/import", json_body={
        "import_token": params["import_token"],
        "wrapped_key_material": base64.b64encode(wrapped.read_bytes()).decode()})
    assert r.status_code == 400 and r.json()["error"]["code"] == "InvalidImportToken", r.text

    # The imported root survives a restart and holds the kill switch.
    srv.restart()
    client = srv.client_for(srv.create_access_key("key-user", system=system["id"]))
    assert client.decrypt(CiphertextBlob=blob)["Plaintext"] == b"under our own root"
    node = next(r for r in srv.v1_ok("GET", "/v1/keychain")["root_keys"] if r["id"] == root["id"])
    assert node["origin"] == "imported" and [s["id"] for s in node["systems"]] == [system["id"]]
    srv.v1_ok("POST", f"/v1/root-keys/{root['id']}/disable")
    with kms_error("DisabledException"):
        client.decrypt(CiphertextBlob=blob)
    srv.v1_ok("POST", f"/v1/root-keys/{root['id']}/enable")
    assert client.decrypt(CiphertextBlob=blob)["Plaintext"] == b"under our own root"


@pytest.mark.parametrize("algorithm,key_spec", [
    ("RSAES_OAEP_SHA_256", "RSA_4096"),
    ("RSA_AES_KEY_WRAP_SHA_256", "RSA_3072"),
    ("RSA_AES_KEY_WRAP_SHA_256", "RSA_4096"),
])
def test_both_wrapping_schemes_and_key_sizes(srv, tmp_path, algorithm, key_spec):
    params = srv.v1_ok("POST", "/v1/root-keys/import-parameters",
                       json_body={"wrapping_algorithm": algorithm, "wrapping_key_spec": key_spec})
    assert (params["wrapping_algorithm"], params["wrapping_key_spec"]) == (algorithm, key_spec)
    pem = tmp_path / "wrapping.pem"
    pem.write_text(params["public_key_pem"])
    # The PEM and the DER name the same key.
    assert base64.b64decode(params["public_key"]) == base64.b64decode(
        "".join(pem.read_text().splitlines()[1:-1]))
    wrapped = wrap(algorithm, pem, new_material(tmp_path / "key.bin"), tmp_path / "key.wrapped")
    root = srv.v1_ok("POST", "/v1/root-keys/import", expect=(201,), json_body={
        "import_token": params["import_token"], "wrapped_key_material": base64.b64encode(wrapped).decode()})
    assert root["origin"] == "imported"
    _, client, key_id = system_with_key(srv, root["id"], "byok")
    dk = client.generate_data_key(KeyId=key_id, KeySpec="AES_256")
    assert client.decrypt(CiphertextBlob=dk["CiphertextBlob"])["Plaintext"] == dk["Plaintext"]


def test_bad_imports_are_refused_and_create_nothing(srv, spawn_server, tmp_path):
    def roots():
        return sorted(r["id"] for r in srv.v1_ok("GET", "/v1/root-keys")["root_keys"])

    before = roots()

    def params(**body):
        p = srv.v1_ok("POST", "/v1/root-keys/import-parameters", json_body=body)
        pem = tmp_path / f"{p['import_token'][-8:]}.pem"
        pem.write_text(p["public_key_pem"])
        return p, pem

    def attempt(token: str, wrapped: bytes, creds=None):
        return srv.v1("POST", "/v1/root-keys/import", creds=creds, json_body={
            "import_token": token, "wrapped_key_material": base64.b64encode(wrapped).decode()})

    # 16 bytes of material: not an AES-256 key. The token is used up by the attempt.
    p, pem = params()
    short = wrap("RSAES_OAEP_SHA_256", pem, new_material(tmp_path / "short.bin", 16), tmp_path / "short.w")
    r = attempt(p["import_token"], short)
    assert r.status_code == 400 and r.json()["error"]["code"] == "InvalidCiphertext", r.text
    assert "32 bytes" in r.json()["error"]["message"]
    good = wrap("RSAES_OAEP_SHA_256", pem, new_material(tmp_path / "k.bin"), tmp_path / "k.w")
    assert attempt(p["import_token"], good).status_code == 400

    # Material wrapped to another import's key, or with the other scheme.
    p1, pem1 = params()
    p2, _ = params()
    r = attempt(p2["import_token"], wrap("RSAES_OAEP_SHA_256", pem1, new_material(tmp_path / "a.bin"), tmp_path / "a.w"))
    assert r.status_code == 400 and r.json()["error"]["code"] == "InvalidCiphertext", r.text
    p3, pem3 = params(wrapping_algorithm="RSA_AES_KEY_WRAP_SHA_256")
    r = attempt(p3["import_token"], wrap("RSAES_OAEP_SHA_256", pem3, new_material(tmp_path / "b.bin"), tmp_path / "b.w"))
    assert r.status_code == 400, r.text

    # Tampered bytes.
    p4, pem4 = params()
    tampered = bytearray(wrap("RSAES_OAEP_SHA_256", pem4, new_material(tmp_path / "c.bin"), tmp_path / "c.w"))
    tampered[10] ^= 1
    assert attempt(p4["import_token"], bytes(tampered)).status_code == 400

    # Another tenant's token is unknown to this one, and stays usable by its owner.
    other = srv.create_tenant(unique("other"))["access_key"]
    other_creds = (other["access_key_id"], other["secret_access_key"])
    p5, pem5 = params()
    wrapped5 = wrap("RSAES_OAEP_SHA_256", pem5, new_material(tmp_path / "d.bin"), tmp_path / "d.w")
    r = attempt(p5["import_token"], wrapped5, creds=other_creds)
    assert r.status_code == 400 and "unknown" in r.json()["error"]["message"], r.text

    # Malformed requests name the problem.
    r = srv.v1("POST", "/v1/root-keys/import", json_body={"import_token": "x", "wrapped_key_material": "%%%"})
    assert r.status_code == 400 and "base64" in r.json()["error"]["message"], r.text
    r = srv.v1("POST", "/v1/root-keys/import-parameters", json_body={"wrapping_algorithm": "RSAES_PKCS1_V1_5"})
    assert r.status_code == 400 and "RSAES_OAEP_SHA_256" in r.json()["error"]["message"], r.text
    r = srv.v1("POST", "/v1/root-keys/import-parameters", json_body={"wrapping_key_spec": "RSA_2048"})
    assert r.status_code == 400, r.text
    r = srv.v1("POST", "/v1/root-keys/import-parameters", json_body={"keystore": "nope"})
    assert r.status_code == 400 and "software" in r.json()["error"]["message"], r.text

    assert roots() == before
    # The owner's token still works after the other tenant tried it.
    assert attempt(p5["import_token"], wrapped5).status_code == 201
    assert len(roots()) == len(before) + 1

    # Only a tenant-admin imports. A token carries its own import: it survives a
    # restart, works once, and an altered token is refused and creates nothing.
    ak = srv.create_access_key("key-admin")
    r = srv.v1("POST", "/v1/root-keys/import-parameters", json_body={},
               creds=(ak["access_key_id"], ak["secret_access_key"]))
    assert r.status_code == 403, r.text
    p6, pem6 = params()
    wrapped6 = wrap("RSAES_OAEP_SHA_256", pem6, new_material(tmp_path / "e.bin"), tmp_path / "e.w")
    token6 = p6["import_token"]
    flipped = token6[:40] + ("A" if token6[40] != "A" else "B") + token6[41:]
    r = attempt(flipped, wrapped6)
    assert r.status_code == 400 and "unknown" in r.json()["error"]["message"], r.text
    counted = len(roots())
    srv.restart()
    assert attempt(token6, wrapped6).status_code == 201
    r = attempt(token6, wrapped6)
    assert r.status_code == 400 and "used" in r.json()["error"]["message"], r.text
    assert len(roots()) == counted + 1


# ----------------------------------------------------------------- the AWS API (Origin EXTERNAL)

def aws_import(kms, key_id: str, material, tmp_path, algorithm="RSAES_OAEP_SHA_256", spec="RSA_3072"):
    from byok import der_to_pem
    params = kms.get_parameters_for_import(KeyId=key_id, WrappingAlgorithm=algorithm, WrappingKeySpec=spec)
    pem = der_to_pem(params["PublicKey"], tmp_path / f"{unique('pub')}.pem")
    wrapped = wrap(algorithm, pem, material, tmp_path / f"{unique('w')}.bin")
    return params, wrapped


@pytest.mark.parametrize("algorithm,spec", [("RSAES_OAEP_SHA_256", "RSA_3072"),
                                            ("RSA_AES_KEY_WRAP_SHA_256", "RSA_4096")])
def test_aws_import_key_material_with_boto3_and_openssl(srv, tmp_path, algorithm, spec):
    kms = srv.client("default")
    meta = kms.create_key(Origin="EXTERNAL", Description=unique("ext"))["KeyMetadata"]
    key_id = meta["KeyId"]
    assert (meta["Origin"], meta["KeyState"], meta["Enabled"]) == ("EXTERNAL", "PendingImport", False)
    with kms_error("KMSInvalidStateException"):
        kms.encrypt(KeyId=key_id, Plaintext=b"x")

    material = new_material(tmp_path / "key.bin")
    params, wrapped = aws_import(kms, key_id, material, tmp_path, algorithm, spec)
    assert params["KeyId"].endswith(key_id) and params["ImportToken"]
    kms.import_key_material(KeyId=key_id, ImportToken=params["ImportToken"], EncryptedKeyMaterial=wrapped,
                            ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE")
    meta = kms.describe_key(KeyId=key_id)["KeyMetadata"]
    assert (meta["KeyState"], meta["ExpirationModel"]) == ("Enabled", "KEY_MATERIAL_DOES_NOT_EXPIRE")
    blob = kms.encrypt(KeyId=key_id, Plaintext=b"imported")["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"imported"

    # The token is used up; while the key is enabled, new parameters may be had, the
    # same material imported again (to change its expiry, as AWS allows) and other
    # material is refused.
    with kms_error("InvalidImportTokenException"):
        kms.import_key_material(KeyId=key_id, ImportToken=params["ImportToken"], EncryptedKeyMaterial=wrapped)
    params, other = aws_import(kms, key_id, new_material(tmp_path / "other-while-enabled.bin"), tmp_path)
    with kms_error("IncorrectKeyMaterialException"):
        kms.import_key_material(KeyId=key_id, ImportToken=params["ImportToken"], EncryptedKeyMaterial=other,
                                ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE")
    valid_to = int(time.time()) + 30 * 86400
    params, same = aws_import(kms, key_id, material, tmp_path, algorithm, spec)
    kms.import_key_material(KeyId=key_id, ImportToken=params["ImportToken"], EncryptedKeyMaterial=same,
                            ExpirationModel="KEY_MATERIAL_EXPIRES", ValidTo=valid_to)
    meta = kms.describe_key(KeyId=key_id)["KeyMetadata"]
    assert (meta["KeyState"], meta["ExpirationModel"], int(meta["ValidTo"].timestamp())) == (
        "Enabled", "KEY_MATERIAL_EXPIRES", valid_to), meta
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"imported"
    # Importing it once more without an expiry makes it last again.
    params, same = aws_import(kms, key_id, material, tmp_path, algorithm, spec)
    kms.import_key_material(KeyId=key_id, ImportToken=params["ImportToken"], EncryptedKeyMaterial=same,
                            ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE")
    meta = kms.describe_key(KeyId=key_id)["KeyMetadata"]
    assert meta["ExpirationModel"] == "KEY_MATERIAL_DOES_NOT_EXPIRE" and "ValidTo" not in meta, meta

    # Deleting the material makes every ciphertext undecryptable until it comes back.
    kms.delete_imported_key_material(KeyId=key_id)
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "PendingImport"
    with kms_error("KMSInvalidStateException"):
        kms.decrypt(CiphertextBlob=blob)
    # Other material is refused; the same material restores everything.
    params, other = aws_import(kms, key_id, new_material(tmp_path / "other.bin"), tmp_path)
    with kms_error("IncorrectKeyMaterialException"):
        kms.import_key_material(KeyId=key_id, ImportToken=params["ImportToken"], EncryptedKeyMaterial=other)
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "PendingImport"
    params, again = aws_import(kms, key_id, material, tmp_path)
    kms.import_key_material(KeyId=key_id, ImportToken=params["ImportToken"], EncryptedKeyMaterial=again)
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"imported"
    srv.restart()
    kms = srv.client("default")
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"imported"


def test_aws_import_refusals(srv, tmp_path):
    kms = srv.client("default")
    generated = kms.create_key()["KeyMetadata"]["KeyId"]
    with kms_error("UnsupportedOperationException"):
        kms.get_parameters_for_import(KeyId=generated, WrappingAlgorithm="RSAES_OAEP_SHA_256",
                                      WrappingKeySpec="RSA_3072")
    with kms_error("UnsupportedOperationException"):
        kms.delete_imported_key_material(KeyId=generated)
    a = kms.create_key(Origin="EXTERNAL")["KeyMetadata"]["KeyId"]
    b = kms.create_key(Origin="EXTERNAL")["KeyMetadata"]["KeyId"]
    with kms_error("UnsupportedOperationException"):
        kms.get_parameters_for_import(KeyId=a, WrappingAlgorithm="RSAES_PKCS1_V1_5", WrappingKeySpec="RSA_3072")
    # A token for key a does not import into key b (and stays usable for a).
    params, wrapped = aws_import(kms, a, new_material(tmp_path / "a.bin"), tmp_path)
    with kms_error("InvalidImportTokenException"):
        kms.import_key_material(KeyId=b, ImportToken=params["ImportToken"], EncryptedKeyMaterial=wrapped)
    # An expiry that is not one is refused before the token is used: none with
    # KEY_MATERIAL_EXPIRES, one with KEY_MATERIAL_DOES_NOT_EXPIRE, one in the past or more
    # than 365 days away.
    now = int(time.time())
    for model, valid_to in (("KEY_MATERIAL_EXPIRES", None), ("KEY_MATERIAL_DOES_NOT_EXPIRE", now + 3600),
                            ("KEY_MATERIAL_EXPIRES", now - 60), ("KEY_MATERIAL_EXPIRES", now + 400 * 86400)):
        extra = {"ValidTo": valid_to} if valid_to else {}
        with kms_error("ValidationException"):
            kms.import_key_material(KeyId=a, ImportToken=params["ImportToken"], EncryptedKeyMaterial=wrapped,
                                    ExpirationModel=model, **extra)
    kms.import_key_material(KeyId=a, ImportToken=params["ImportToken"], EncryptedKeyMaterial=wrapped)
    # Material kcm cannot make: no automatic rotation, and no rotation on demand
    # without new material imported for it (as AWS).
    with kms_error("UnsupportedOperationException"):
        kms.enable_key_rotation(KeyId=a)
    with kms_error("KMSInvalidStateException"):
        kms.rotate_key_on_demand(KeyId=a)
    # Garbage material uses up the token and changes nothing.
    params, _ = aws_import(kms, b, new_material(tmp_path / "b.bin"), tmp_path)
    with kms_error("InvalidCiphertextException"):
        kms.import_key_material(KeyId=b, ImportToken=params["ImportToken"], EncryptedKeyMaterial=b"\0" * 384)
    assert kms.describe_key(KeyId=b)["KeyMetadata"]["KeyState"] == "PendingImport"


def test_new_key_material_is_rotated_to_on_demand(srv, tmp_path):
    """ImportType NEW_KEY_MATERIAL, then RotateKeyOnDemand, as AWS KMS: the new
    material waits (the current one keeps encrypting) until the rotation makes it
    current; every material the key had keeps decrypting what it made; deleting the
    current material and importing it again brings all of them back."""
    kms = srv.client("default")
    key_id = kms.create_key(Origin="EXTERNAL", Description=unique("rotating"))["KeyMetadata"]["KeyId"]
    first = new_material(tmp_path / "first.bin")
    params, wrapped = aws_import(kms, key_id, first, tmp_path)
    out = kms.import_key_material(KeyId=key_id, ImportToken=params["ImportToken"], EncryptedKeyMaterial=wrapped)
    first_id = kms.describe_key(KeyId=key_id)["KeyMetadata"]["CurrentKeyMaterialId"]
    assert out["KeyMaterialId"] == first_id and len(first_id) == 64
    old_blob = kms.encrypt(KeyId=key_id, Plaintext=b"under the first material")["CiphertextBlob"]
    arn = kms.describe_key(KeyId=key_id)["KeyMetadata"]["Arn"]
    with kms_error("KMSInvalidStateException") as ei:
        kms.rotate_key_on_demand(KeyId=key_id)
    assert ei.value.response["Error"]["Message"] == \
        f"No available key material pending rotation for the key: {arn}."

    second = new_material(tmp_path / "second.bin")
    params, wrapped = aws_import(kms, key_id, second, tmp_path)
    out = kms.import_key_material(KeyId=key_id, ImportToken=params["ImportToken"], EncryptedKeyMaterial=wrapped,
                                  ImportType="NEW_KEY_MATERIAL", ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE")
    second_id = out["KeyMaterialId"]
    assert len(second_id) == 64 and second_id != first_id
    # Waiting: the first material still encrypts, and no rotation has happened.
    meta = kms.describe_key(KeyId=key_id)["KeyMetadata"]
    assert (meta["KeyState"], meta["CurrentKeyMaterialId"]) == ("Enabled", first_id), meta
    assert kms.list_key_rotations(KeyId=key_id)["Rotations"] == []
    # One waits at a time (refused before the token is used: it then works for
    # EXISTING material); new material does not expire.
    params, wrapped = aws_import(kms, key_id, new_material(tmp_path / "third.bin"), tmp_path)
    with kms_error("KMSInvalidStateException"):
        kms.import_key_material(KeyId=key_id, ImportToken=params["ImportToken"], EncryptedKeyMaterial=wrapped,
                                ImportType="NEW_KEY_MATERIAL")
    params, wrapped = aws_import(kms, key_id, new_material(tmp_path / "fourth.bin"), tmp_path)
    with kms_error("ValidationException"):
        kms.import_key_material(KeyId=key_id, ImportToken=params["ImportToken"], EncryptedKeyMaterial=wrapped,
                                ImportType="NEW_KEY_MATERIAL", ExpirationModel="KEY_MATERIAL_EXPIRES",
                                ValidTo=int(time.time()) + 86400)

    kms.rotate_key_on_demand(KeyId=key_id)
    meta = kms.describe_key(KeyId=key_id)["KeyMetadata"]
    assert meta["CurrentKeyMaterialId"] == second_id, meta
    rotations = kms.list_key_rotations(KeyId=key_id)["Rotations"]
    assert [(r["RotationType"], r["KeyMaterialId"]) for r in rotations] == [("ON_DEMAND", second_id)], rotations
    new_blob = kms.encrypt(KeyId=key_id, Plaintext=b"under the second material")["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=old_blob)["Plaintext"] == b"under the first material"
    assert kms.decrypt(CiphertextBlob=new_blob)["Plaintext"] == b"under the second material"
    # Material the key has had is not new.
    for material in (first, second):
        params, wrapped = aws_import(kms, key_id, material, tmp_path)
        with kms_error("IncorrectKeyMaterialException"):
            kms.import_key_material(KeyId=key_id, ImportToken=params["ImportToken"], EncryptedKeyMaterial=wrapped,
                                    ImportType="NEW_KEY_MATERIAL")
    # The current material is now the second: only it is "existing".
    params, wrapped = aws_import(kms, key_id, first, tmp_path)
    with kms_error("IncorrectKeyMaterialException"):
        kms.import_key_material(KeyId=key_id, ImportToken=params["ImportToken"], EncryptedKeyMaterial=wrapped,
                                ImportType="EXISTING_KEY_MATERIAL")

    # Material the key was rotated away from is not deleted (kcm could not take it
    # back); an id the key never had is not found.
    with kms_error("UnsupportedOperationException"):
        kms.delete_imported_key_material(KeyId=key_id, KeyMaterialId=first_id)
    with kms_error("NotFoundException"):
        kms.delete_imported_key_material(KeyId=key_id, KeyMaterialId="0" * 64)
    # While the current material expires, no new material (a rotation would end that
    # expiry): refused before the token is used, which works once it no longer expires.
    params, wrapped = aws_import(kms, key_id, second, tmp_path)
    kms.import_key_material(KeyId=key_id, ImportToken=params["ImportToken"], EncryptedKeyMaterial=wrapped,
                            ExpirationModel="KEY_MATERIAL_EXPIRES", ValidTo=int(time.time()) + 86400)
    third = new_material(tmp_path / "third-new.bin")
    third_params, third_wrapped = aws_import(kms, key_id, third, tmp_path)
    with kms_error("KMSInvalidStateException"):
        kms.import_key_material(KeyId=key_id, ImportToken=third_params["ImportToken"],
                                EncryptedKeyMaterial=third_wrapped, ImportType="NEW_KEY_MATERIAL")
    params, wrapped = aws_import(kms, key_id, second, tmp_path)
    kms.import_key_material(KeyId=key_id, ImportToken=params["ImportToken"], EncryptedKeyMaterial=wrapped,
                            ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE")
    out = kms.import_key_material(KeyId=key_id, ImportToken=third_params["ImportToken"],
                                  EncryptedKeyMaterial=third_wrapped, ImportType="NEW_KEY_MATERIAL")
    # New material waiting can be deleted by its id: the key is unchanged, and has
    # nothing to rotate to.
    deleted = kms.delete_imported_key_material(KeyId=key_id, KeyMaterialId=out["KeyMaterialId"])
    assert deleted["KeyMaterialId"] == out["KeyMaterialId"]
    meta = kms.describe_key(KeyId=key_id)["KeyMetadata"]
    assert (meta["KeyState"], meta["CurrentKeyMaterialId"]) == ("Enabled", second_id), meta
    with kms_error("KMSInvalidStateException"):
        kms.rotate_key_on_demand(KeyId=key_id)

    # Deleting the current material stops the key; importing it again brings back
    # what every material made (and the rotation it was made current by).
    assert kms.delete_imported_key_material(KeyId=key_id)["KeyMaterialId"] == second_id
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "PendingImport"
    with kms_error("KMSInvalidStateException"):
        kms.decrypt(CiphertextBlob=old_blob)
    params, wrapped = aws_import(kms, key_id, new_material(tmp_path / "fifth.bin"), tmp_path)
    with kms_error("KMSInvalidStateException"):
        kms.import_key_material(KeyId=key_id, ImportToken=params["ImportToken"], EncryptedKeyMaterial=wrapped,
                                ImportType="NEW_KEY_MATERIAL")
    params, wrapped = aws_import(kms, key_id, second, tmp_path)
    out = kms.import_key_material(KeyId=key_id, ImportToken=params["ImportToken"], EncryptedKeyMaterial=wrapped)
    assert out["KeyMaterialId"] == second_id
    rotations = kms.list_key_rotations(KeyId=key_id)["Rotations"]
    assert [(r["RotationType"], r["KeyMaterialId"]) for r in rotations] == [("ON_DEMAND", second_id)], rotations
    srv.restart()
    kms = srv.client("default")
    assert kms.decrypt(CiphertextBlob=old_blob)["Plaintext"] == b"under the first material"
    assert kms.decrypt(CiphertextBlob=new_blob)["Plaintext"] == b"under the second material"


def test_imported_material_that_expires_is_erased_at_its_valid_to(srv, tmp_path):
    """KEY_MATERIAL_EXPIRES: at ValidTo kcm erases the material, as AWS KMS does — the key
    goes back to PendingImport and its ciphertexts stop decrypting — until the same
    material is imported again."""
    kms = srv.client("default")
    key_id = kms.create_key(Origin="EXTERNAL", Description=unique("expiring"))["KeyMetadata"]["KeyId"]
    material = new_material(tmp_path / "expiring.bin")
    params, wrapped = aws_import(kms, key_id, material, tmp_path)
    valid_to = int(time.time()) + 3
    kms.import_key_material(KeyId=key_id, ImportToken=params["ImportToken"], EncryptedKeyMaterial=wrapped,
                            ExpirationModel="KEY_MATERIAL_EXPIRES", ValidTo=valid_to)
    blob = kms.encrypt(KeyId=key_id, Plaintext=b"until it expires")["CiphertextBlob"]
    # The scheduler runs every second; a loaded machine may take longer.
    poll(lambda: kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "PendingImport",
         valid_to - time.time() + 2 + LOADED_SLACK_S, interval=0.2, what="the key pending import after ValidTo")
    meta = kms.describe_key(KeyId=key_id)["KeyMetadata"]
    assert "ValidTo" not in meta and meta["Enabled"] is False, meta
    with kms_error("KMSInvalidStateException"):
        kms.decrypt(CiphertextBlob=blob)
    params, again = aws_import(kms, key_id, material, tmp_path)
    kms.import_key_material(KeyId=key_id, ImportToken=params["ImportToken"], EncryptedKeyMaterial=again)
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"until it expires"


# ----------------------------------------------------------------- expired import tokens

def test_an_expired_token_is_refused_on_both_apis_and_a_fresh_one_works(spawn_server, tmp_path):
    """Tokens stop working at the end of their lifetime: AWS ImportKeyMaterial answers
    ExpiredImportTokenException and /v1 ExpiredImportToken, and nothing is imported.
    The lifetime is shortened for the test (24 h otherwise); it is long enough that a
    token taken at once still works, so only expiry can explain the refusals."""
    import datetime
    import time


    lifetime_s = 15
    srv = spawn_server(env={"KCM_IMPORT_TOKEN_LIFETIME_MS": str(lifetime_s * 1000)})
    kms = srv.client("default")

    # Tokens to let expire, each with correctly wrapped material, on both APIs.
    rest_params = srv.v1_ok("POST", "/v1/root-keys/import-parameters", json_body={})
    rest_pem = tmp_path / "rest.pem"
    rest_pem.write_text(rest_params["public_key_pem"])
    rest_wrapped = wrap("RSAES_OAEP_SHA_256", rest_pem, new_material(tmp_path / "rest.bin"),
                        tmp_path / "rest.w")
    ext_key = kms.create_key(Origin="EXTERNAL")["KeyMetadata"]["KeyId"]
    aws_params, aws_wrapped = aws_import(kms, ext_key, new_material(tmp_path / "aws.bin"), tmp_path)
    rest_expiry = datetime.datetime.fromisoformat(rest_params["expires_at"].replace("Z", "+00:00"))
    for expiry in (rest_expiry, aws_params["ParametersValidTo"]):
        left = (expiry - datetime.datetime.now(datetime.timezone.utc)).total_seconds()
        assert 0 < left <= lifetime_s + 1, (expiry, left)

    # Meanwhile a fresh token works on each API, on the same server.
    fresh = srv.v1_ok("POST", "/v1/root-keys/import-parameters", json_body={})
    fresh_pem = tmp_path / "fresh.pem"
    fresh_pem.write_text(fresh["public_key_pem"])
    fresh_wrapped = wrap("RSAES_OAEP_SHA_256", fresh_pem, new_material(tmp_path / "fresh.bin"),
                         tmp_path / "fresh.w")
    root = srv.v1_ok("POST", "/v1/root-keys/import", expect=(201,), json_body={
        "import_token": fresh["import_token"],
        "wrapped_key_material": base64.b64encode(fresh_wrapped).decode()})
    assert root["origin"] == "imported"
    other_key = kms.create_key(Origin="EXTERNAL")["KeyMetadata"]["KeyId"]
    p, w = aws_import(kms, other_key, new_material(tmp_path / "other.bin"), tmp_path)
    kms.import_key_material(KeyId=other_key, ImportToken=p["ImportToken"], EncryptedKeyMaterial=w)
    assert kms.describe_key(KeyId=other_key)["KeyMetadata"]["KeyState"] == "Enabled"

    # Wait until both first tokens are past the expiry the server announced.
    last = max(rest_expiry, aws_params["ParametersValidTo"])
    time.sleep(max(0.0, (last - datetime.datetime.now(datetime.timezone.utc)).total_seconds()) + 1.0)

    roots = {r["id"] for r in srv.v1_ok("GET", "/v1/root-keys")["root_keys"]}
    r = srv.v1("POST", "/v1/root-keys/import", json_body={
        "import_token": rest_params["import_token"],
        "wrapped_key_material": base64.b64encode(rest_wrapped).decode()})
    assert r.status_code == 400 and r.json()["error"]["code"] == "ExpiredImportToken", r.text
    assert {r["id"] for r in srv.v1_ok("GET", "/v1/root-keys")["root_keys"]} == roots

    with kms_error("ExpiredImportTokenException"):
        kms.import_key_material(KeyId=ext_key, ImportToken=aws_params["ImportToken"],
                                EncryptedKeyMaterial=aws_wrapped)
    assert kms.describe_key(KeyId=ext_key)["KeyMetadata"]["KeyState"] == "PendingImport"
