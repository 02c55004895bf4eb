"""No plaintext key material or customer plaintext is ever written to the data directory.

The scan reads every file under the data dir (the SQLite database and its -wal/-shm files,
keystore files, anything else) both while the server runs and after it stopped, and looks
for each secret in the forms a store might plausibly write it: raw bytes, hex (both cases),
and base64 (standard and URL-safe, with and without padding).
"""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest
import requests

from kcmtest import free_port

pytestmark = pytest.mark.slow

N_DATA_KEYS = 150
N_PLAINTEXTS = 60


def encodings(secret: bytes) -> list[bytes]:
    forms = [
        secret,
        secret.hex().encode(),
        secret.hex().upper().encode(),
        base64.b64encode(secret),
        base64.b64encode(secret).rstrip(b"="),
        base64.urlsafe_b64encode(secret),
        base64.urlsafe_b64encode(secret).rstrip(b"="),
    ]
    return forms


def data_files(root: Path, exclude_names=()) -> list[Path]:
    out = []
    for dirpath, _dirs, files in os.walk(root):
        for f in files:
            p = Path(dirpath) / f
            if p.name in exclude_names or not p.is_file():
                continue
            out.append(p)
    return out


def find_leaks(root: Path, secrets: dict[str, bytes], exclude_names=()) -> list[str]:
    files = data_files(root, exclude_names)
    assert files, f"no files at all under {root}"
    blobs = {p: p.read_bytes() for p in files}
    leaks = []
    for label, secret in secrets.items():
        for form in encodings(secret):
            for p, blob in blobs.items():
                if form in blob:
                    leaks.append(f"{label} ({len(secret)} bytes) found in {p.relative_to(root)}")
                    break
    return leaks


def exercise(srv) -> tuple[dict[str, bytes], dict[str, bytes]]:
    """Drive the server; return (key material/plaintexts, access-key secrets)."""
    kms = srv.client("default")
    keys = [kms.create_key(Description=f"scan-{i}")["KeyMetadata"]["KeyId"] for i in range(3)]
    kms.rotate_key_on_demand(KeyId=keys[0])
    material: dict[str, bytes] = {}
    for i in range(N_DATA_KEYS):
        kid = keys[i % len(keys)]
        spec = {"KeySpec": "AES_256"} if i % 3 else {"NumberOfBytes": 24}
        r = kms.generate_data_key(KeyId=kid, EncryptionContext={"i": str(i)}, **spec)
        material[f"data key #{i}"] = r["Plaintext"]
        if i % 10 == 0:  # also the plaintext of ReEncrypt, which passes through the server
            kms.re_encrypt(CiphertextBlob=r["CiphertextBlob"], SourceEncryptionContext={"i": str(i)},
                           DestinationKeyId=keys[(i + 1) % len(keys)])
    for i in range(N_PLAINTEXTS):
        pt = os.urandom(32)
        ct = kms.encrypt(KeyId=keys[i % len(keys)], Plaintext=pt)["CiphertextBlob"]
        assert kms.decrypt(CiphertextBlob=ct)["Plaintext"] == pt
        material[f"encrypted plaintext #{i}"] = pt
    for i in range(10):
        material[f"random #{i}"] = kms.generate_random(NumberOfBytes=32)["Plaintext"]
    material.update(exercise_asymmetric(kms, keys[0]))

    secrets: dict[str, bytes] = {}
    for role in ("key-user", "key-admin", "auditor", "tenant-admin"):
        ak = srv.create_access_key(role)
        secrets[f"secret of {role} access key {ak['access_key_id']}"] = ak["secret_access_key"].encode()
    tenant = srv.create_tenant()
    secrets["secret of new tenant's admin key"] = tenant["access_key"]["secret_access_key"].encode()
    for profile, (kid, sec) in srv.credentials().items():
        secrets[f"secret of bootstrap profile [{profile}]"] = sec.encode()
    return material, secrets


def exercise_asymmetric(kms, symmetric_key: str) -> dict[str, bytes]:
    """Asymmetric keys: what must never be written. kcm stores no public keys (it
    derives them from the wrapped private key when the chain loads), so an RSA
    key's modulus found on disk would mean its private key (PKCS#8 holds the
    modulus) or something derived from it was stored unwrapped. Data key pairs'
    private keys and ECDH shared secrets are returned to the caller only."""
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import (Encoding, PublicFormat,
                                                              load_der_public_key)
    found: dict[str, bytes] = {}
    def modulus(key_id: str) -> bytes:
        n = load_der_public_key(kms.get_public_key(KeyId=key_id)["PublicKey"]).public_numbers().n
        return n.to_bytes(256, "big")

    for usage in ("SIGN_VERIFY", "ENCRYPT_DECRYPT"):
        rsa = kms.create_key(KeySpec="RSA_2048", KeyUsage=usage)["KeyMetadata"]["KeyId"]
        found[f"modulus of RSA {usage} key v1"] = modulus(rsa)
        kms.rotate_key_on_demand(KeyId=rsa)
        found[f"modulus of RSA {usage} key v2"] = modulus(rsa)
        if usage == "SIGN_VERIFY":
            kms.sign(KeyId=rsa, Message=b"m", SigningAlgorithm="RSASSA_PSS_SHA_256")
    for spec in ("RSA_2048", "ECC_NIST_P256", "ECC_NIST_EDWARDS25519"):
        pair = kms.generate_data_key_pair(KeyId=symmetric_key, KeyPairSpec=spec)
        found[f"data key pair {spec} private key"] = pair["PrivateKeyPlaintext"]
    agree = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="KEY_AGREEMENT")["KeyMetadata"]["KeyId"]
    peer = ec.generate_private_key(ec.SECP256R1()).public_key()
    spki = peer.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    found["ECDH shared secret"] = kms.derive_shared_secret(
        KeyId=agree, KeyAgreementAlgorithm="ECDH", PublicKey=spki)["SharedSecret"]
    return found


def barbican_no_auth(tmp_path: Path) -> tuple[dict, str]:
    """The server's environment for a Barbican door in no-auth mode, and its URL."""
    port = free_port()
    config = tmp_path / "barbican.toml"
    config.write_text(f'[barbican]\nlisten = "127.0.0.1:{port}"\n\n[barbican.no_auth]\n'
                      'tenant = "default"\nproject_id = "scan"\nuser_id = "scanner"\nrole = "admin"\n')
    return {"KCM_CONFIG": str(config)}, f"http://127.0.0.1:{port}"


def exercise_barbican(url: str) -> dict[str, bytes]:
    """Managed objects: secrets stored through the Barbican door (text and binary, in one
    step and in two), generated keys and key pairs read back. Their payloads are sealed
    under the project system's key, never written as given."""
    found: dict[str, bytes] = {}

    def post(path, body):
        r = requests.post(url + path, json=body, timeout=30)
        assert r.status_code in (201, 202), r.text
        return r.json()

    def payload(ref):
        r = requests.get(ref + "/payload", headers={"Accept": "application/octet-stream"}, timeout=30)
        assert r.status_code == 200, r.text
        return r.content

    for i in range(5):
        phrase = os.urandom(24).hex().encode()
        post("/v1/secrets", {"payload": phrase.decode(), "payload_content_type": "text/plain",
                             "secret_type": "passphrase"})
        found[f"stored passphrase #{i}"] = phrase
        key = os.urandom(32)
        post("/v1/secrets", {"payload": base64.b64encode(key).decode(), "secret_type": "symmetric",
                             "payload_content_type": "application/octet-stream",
                             "payload_content_encoding": "base64"})
        found[f"stored key #{i}"] = key
    later = os.urandom(32)
    ref = post("/v1/secrets", {"name": "two steps"})["secret_ref"]
    r = requests.put(ref, data=later, headers={"Content-Type": "application/octet-stream"}, timeout=30)
    assert r.status_code == 204, r.text
    found["payload put later"] = later
    for i in range(3):
        order = post("/v1/orders", {"type": "key", "meta": {"algorithm": "aes", "bit_length": 256}})
        secret_ref = requests.get(order["order_ref"], timeout=30).json()["secret_ref"]
        found[f"ordered key #{i}"] = payload(secret_ref)
    order = post("/v1/orders", {"type": "asymmetric", "meta": {"algorithm": "rsa", "bit_length": 2048}})
    container = requests.get(requests.get(order["order_ref"], timeout=30).json()["container_ref"], timeout=30).json()
    private_ref = next(s["secret_ref"] for s in container["secret_refs"] if s["name"] == "private_key")
    pem = payload(private_ref)
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----"), pem[:40]
    found["ordered RSA private key (PEM body)"] = b"".join(pem.splitlines()[1:-1])[:200]
    return found


def test_no_plaintext_or_secrets_on_disk(spawn_server, tmp_path):
    env, barbican_url = barbican_no_auth(tmp_path)
    srv = spawn_server(env=env)
    material, secrets = exercise(srv)
    material.update(exercise_barbican(barbican_url))

    # While running (WAL not yet checkpointed), then after a clean stop.
    leaks = find_leaks(srv.data_dir, material) + find_leaks(srv.data_dir, secrets, exclude_names={"credentials"})
    assert not leaks, "found while running:\n" + "\n".join(leaks[:20])
    assert srv.stop() == 0
    leaks = find_leaks(srv.data_dir, material) + find_leaks(srv.data_dir, secrets, exclude_names={"credentials"})
    assert not leaks, "found after stop:\n" + "\n".join(leaks[:20])
    # The credentials file itself is 0600 and holds only the bootstrap secrets.
    mode = srv.credentials_path.stat().st_mode & 0o777
    assert mode == 0o600, oct(mode)
    cred_text = srv.credentials_path.read_bytes()
    for label, s in secrets.items():
        if "bootstrap" not in label:
            assert s not in cred_text, label


def test_no_plaintext_in_logs(spawn_server):
    """DESIGN: secrets never appear in logs. Run with the most verbose log filter."""
    srv = spawn_server(env={"KCM_LOG": "trace"})
    material, secrets = exercise(srv)
    srv.stop()
    leaks = find_leaks(srv.log_dir, {**material, **secrets})
    assert not leaks, "\n".join(leaks[:20])


def _lp(b: bytes) -> bytes:
    return len(b).to_bytes(4, "big") + b


def _wrap_aad(level: bytes, tenant: str, kid: str, version: int, parent: str, parent_version: int) -> bytes:
    """kcm_core::crypto::WrapBinding::to_aad, re-implemented from its documentation."""
    return (b"kcm-wrap-v1" + _lp(level) + _lp(tenant.encode()) + _lp(kid.encode())
            + version.to_bytes(4, "big") + _lp(parent.encode()) + parent_version.to_bytes(4, "big"))


def _open(key: bytes, sealed: bytes, aad: bytes) -> bytes:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    return AESGCM(key).decrypt(sealed[:12], sealed[12:], aad)


def derive_key_material(data_dir: Path) -> dict[str, bytes]:
    """Unseal every root, system and service key the way an attacker holding the master key
    would: from the store file and the master key only. Returns label -> key (32 bytes, or
    an asymmetric service key version's PKCS#8)."""
    import sqlite3

    master = bytes.fromhex((data_dir / "master.key").read_text().strip())
    db = sqlite3.connect(f"file:{data_dir / 'kcm.db'}?mode=ro", uri=True)
    out: dict[str, bytes] = {}
    roots = {}
    for rid, handle in db.execute("SELECT id, handle FROM root_keys"):
        assert handle[0] == 1, "unknown software keystore handle format"
        n = int.from_bytes(handle[1:3], "big")
        label, sealed = handle[3:3 + n], handle[3 + n:]
        roots[rid] = _open(master, sealed, b"kcm-software-root-v1" + label)
        out[f"root key {rid}"] = roots[rid]
    systems = {sid: tid for sid, tid in db.execute("SELECT id, tenant_id FROM systems")}
    l2 = {}
    for sid, ver, rid, wrapped in db.execute("SELECT system_id, version, root_key_id, wrapped FROM system_keys"):
        aad = _wrap_aad(b"L2", systems[sid], sid, ver, rid, 1)
        l2[(sid, ver)] = _open(roots[rid], wrapped, aad)
        out[f"system key {sid} v{ver}"] = l2[(sid, ver)]
    rows = db.execute(
        "SELECT v.key_id, v.version, v.system_key_version, v.wrapped, k.tenant_id, k.system_id "
        "FROM key_versions v JOIN service_keys k ON k.id = v.key_id")
    for kid, ver, sver, wrapped, tid, sid in rows:
        aad = _wrap_aad(b"L3", tid, kid, ver, sid, sver)
        out[f"service key {kid} v{ver}"] = _open(l2[(sid, sver)], wrapped, aad)
    # Service secrets wrapped by the credential root: the key access-key secrets are
    # derived from, and the audit signing key (the 32-byte Ed25519 seed inside its PKCS#8,
    # which follows the OCTET STRING headers 04 22 04 20; the public key is not secret).
    meta = dict(db.execute("SELECT key, value FROM meta"))
    credential_root = meta["credential_root_key_id"]
    for meta_key, level, ident in (("credential_key", b"CK", "credential-key"),
                                   ("audit_signing_key", b"AS", "audit-signing-key")):
        if meta_key in meta:
            aad = _wrap_aad(level, "", ident, 1, credential_root, 1)
            plain = _open(roots[credential_root], bytes.fromhex(meta[meta_key]), aad)
            if meta_key == "audit_signing_key":
                at = plain.index(b"\x04\x22\x04\x20") + 4
                plain = plain[at:at + 32]
            out[f"{meta_key.replace('_', ' ')}"] = plain
    db.close()
    return out


def test_no_key_material_of_the_chain_on_disk(spawn_server):
    """Every root, system and service key the server generated is absent from every file of
    the data directory in plaintext (raw, hex or base64) — only its sealed/wrapped form is there."""
    srv = spawn_server()
    exercise(srv)
    # Make sure the audit signing key exists, so it is part of the scan.
    srv.v1_ok("GET", "/v1/audit/signing-key")
    assert srv.stop() == 0
    material = derive_key_material(srv.data_dir)
    kinds = {label.split(" ")[0] for label in material}
    # The derivation itself must have worked, or the scan below would prove nothing.
    assert {"root", "system", "service", "credential", "audit"} <= kinds, kinds
    assert sum(1 for k in material if k.startswith("service")) >= 4  # 3 keys + 1 rotation
    # Symmetric keys are 32 bytes; asymmetric service key versions are their private
    # key as PKCS#8 DER (a SEQUENCE), scanned whole, like the AES keys.
    pkcs8 = [k for k, v in material.items() if k.startswith("service") and v[:1] == b"\x30" and len(v) > 100]
    assert len(pkcs8) >= 4, f"expected the RSA keys' versions as PKCS#8: {pkcs8}"
    assert all(len(v) == 32 or k in pkcs8 for k, v in material.items())
    leaks = find_leaks(srv.data_dir, material)
    assert not leaks, "\n".join(leaks[:20])


def test_access_keys_are_stored_only_as_verifiers(spawn_server):
    """A new access key's secret is not in the store in any form: its row holds a salt and
    a SHA-256 verifier, which together cannot sign a request (the secret is derived from a
    key that exists only wrapped by the keystore)."""
    import hashlib
    import sqlite3

    srv = spawn_server()
    ak = srv.create_access_key("key-user")
    kid, secret = ak["access_key_id"], ak["secret_access_key"]
    assert srv.stop() == 0
    db = sqlite3.connect(f"file:{srv.data_dir / 'kcm.db'}?mode=ro", uri=True)
    sealed, salt, verifier = db.execute(
        "SELECT sealed_secret, secret_salt, secret_verifier FROM access_keys WHERE id = ?", (kid,)
    ).fetchone()
    db.close()
    assert sealed == b"" and len(salt) == 16 and len(verifier) == 32
    expected = hashlib.sha256(b"kcm-access-key-verifier-v1\n" + kid.encode() + b"\n" + secret.encode())
    assert verifier == expected.digest()
    assert not find_leaks(srv.data_dir, {"secret": secret.encode()}, exclude_names={"credentials"})
