"""kcm's KMIP server beyond storing keys: key pairs, Re-key, changing attributes, and
computing with an object inside kcm (Encrypt, Decrypt, Sign, Signature Verify, MAC, MAC
Verify), over real mutual TLS, with PyKMIP's client where it can send the operation and
requests written from the specification where it cannot (AES-GCM's tag, MAC Verify, Add
Attribute, KMIP 2.1). What kcm computes is checked against `cryptography`, independently.

One server for the module: "ops-a" mapped by its certificate's fingerprint, "ops-b" by
its certificate's subject (so a renewed certificate of the same subject works unchanged).
"""

from __future__ import annotations

import json
import os
import ssl
import time

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, hmac, serialization
from cryptography.hazmat.primitives import padding as sym_padding
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from kmip.core import enums
from kmip.core.exceptions import OperationFailure
from kmip.pie import exceptions as kmip_exceptions
from kmip.pie import objects as kmip_objects

from kcmtest import LOADED_SLACK_S, cli_ok, kcm_cli
from kmip_harness import (Pki, byte_string, call, client, enum, integer, items, name_attribute, request,
                          send, start_kmip_server, structure, text)

pytestmark = pytest.mark.timeout(120)

BOUND_MS = 500

# Operation numbers and tags used raw (KMIP 1.4 / 2.0 tables).
ENCRYPT, DECRYPT, MAC_VERIFY, ADD_ATTRIBUTE, DISCOVER_VERSIONS, CREATE, GET_ATTRIBUTES = (
    0x1F, 0x20, 0x24, 0x0D, 0x1E, 0x01, 0x0B)
UID, PARAMS, MODE, CRYPTO_ALG, DATA, IV, AAD, AE_TAG, MAC_DATA, VALIDITY = (
    0x420094, 0x42002B, 0x420011, 0x420028, 0x4200C2, 0x42003D, 0x4200FE, 0x4200FF, 0x4200C6, 0x42009B)
CRYPTOGRAPHIC_FAILURE = 0x0A


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Pki:
    return Pki(tmp_path_factory.mktemp("kmip-ops-pki"))


@pytest.fixture(scope="module")
def kmip(tmp_path_factory, pki):
    srv, port, clients = start_kmip_server(tmp_path_factory.mktemp("kmip-ops"), pki, ("ops-a", "ops-b"),
                                           BOUND_MS, by_subject=("ops-b",), env={"KCM_METRICS": "public"})
    yield srv, port, clients
    srv.stop()


@pytest.fixture()
def a(kmip, pki):
    srv, port, clients = kmip
    c = client(pki, port, clients["ops-a"]["cert"], clients["ops-a"]["key"])
    yield c
    c.close()


def _gcm(pki, port, who, uid, *, data=None, iv=None, aad=b"", tag=None, decrypt=False):
    params = structure(PARAMS, enum(MODE, 0x09))
    payload = text(UID, uid) + params + byte_string(DATA, data)
    if iv is not None:
        payload += byte_string(IV, iv)
    if aad:
        payload += byte_string(AAD, aad)
    if tag is not None:
        payload += byte_string(AE_TAG, tag)
    return call(pki, port, who, DECRYPT if decrypt else ENCRYPT, payload)


def test_aes_gcm_encrypts_as_aes_gcm_and_decrypts_only_what_it_sealed(kmip, pki, a):
    srv, port, clients = kmip
    who = clients["ops-a"]
    uid = a.create(enums.CryptographicAlgorithm.AES, 256, name="gcm-key")
    key = a.get(uid).value
    sealed = _gcm(pki, port, who, uid, data=b"attack at dawn", aad=b"bucket/object").ok()
    iv, tag, ct = sealed.one(IV), sealed.one(AE_TAG), sealed.one(DATA)
    assert len(iv) == 12 and len(tag) == 16
    # Independently: it is AES-256-GCM under the key, with the AAD bound.
    assert AESGCM(key).decrypt(iv, ct + tag, b"bucket/object") == b"attack at dawn"
    opened = _gcm(pki, port, who, uid, data=ct, iv=iv, aad=b"bucket/object", tag=tag, decrypt=True).ok()
    assert opened.one(DATA) == b"attack at dawn"
    # A caller-chosen IV is used as given (and not sent back).
    chosen = _gcm(pki, port, who, uid, data=b"x", iv=b"\x07" * 12).ok()
    assert IV not in chosen.payload
    assert AESGCM(key).encrypt(b"\x07" * 12, b"x", None) == chosen.one(DATA) + chosen.one(AE_TAG)
    # Anything changed is a Cryptographic Failure that reveals nothing.
    for change in ({"aad": b"other"}, {"tag": bytes(16)}, {"data": bytes(len(ct))}):
        args = {"data": ct, "iv": iv, "aad": b"bucket/object", "tag": tag, **change}
        refused = _gcm(pki, port, who, uid, decrypt=True, **args)
        assert (refused.status, refused.reason) == (1, CRYPTOGRAPHIC_FAILURE), refused.message
        assert DATA not in refused.payload
    a.destroy(uid)


def test_aes_cbc_through_pykmip_matches_an_independent_implementation(a):
    uid = a.create(enums.CryptographicAlgorithm.AES, 128, name="cbc-key")
    key = a.get(uid).value
    params = {"block_cipher_mode": enums.BlockCipherMode.CBC, "padding_method": enums.PaddingMethod.PKCS5,
              "cryptographic_algorithm": enums.CryptographicAlgorithm.AES}
    ciphertext, iv = a.encrypt(b"sixteen byte msg and more", uid=uid, cryptographic_parameters=params)
    assert len(iv) == 16
    decryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
    unpadder = sym_padding.PKCS7(128).unpadder()
    plain = unpadder.update(decryptor.update(ciphertext) + decryptor.finalize()) + unpadder.finalize()
    assert plain == b"sixteen byte msg and more"
    assert a.decrypt(ciphertext, uid=uid, cryptographic_parameters=params, iv_counter_nonce=iv) == plain
    # A mode kcm does not compute is refused by name, not answered some other way.
    with pytest.raises(kmip_exceptions.KmipOperationFailure) as e:
        a.encrypt(b"x", uid=uid, cryptographic_parameters={"block_cipher_mode": enums.BlockCipherMode.ECB})
    assert e.value.reason == enums.ResultReason.FEATURE_NOT_SUPPORTED
    a.destroy(uid)


@pytest.mark.parametrize("algorithm, length, params, check", [
    (enums.CryptographicAlgorithm.RSA, 2048,
     {"padding_method": enums.PaddingMethod.PKCS1v15, "hashing_algorithm": enums.HashingAlgorithm.SHA_256},
     lambda pub, sig, m: pub.verify(sig, m, padding.PKCS1v15(), hashes.SHA256())),
    (enums.CryptographicAlgorithm.RSA, 3072,
     {"digital_signature_algorithm": enums.DigitalSignatureAlgorithm.RSASSA_PSS,
      "hashing_algorithm": enums.HashingAlgorithm.SHA_384},
     lambda pub, sig, m: pub.verify(sig, m, padding.PSS(padding.MGF1(hashes.SHA384()), 48), hashes.SHA384())),
    (enums.CryptographicAlgorithm.EC, 256,
     {"digital_signature_algorithm": enums.DigitalSignatureAlgorithm.ECDSA_WITH_SHA256},
     lambda pub, sig, m: pub.verify(sig, m, ec.ECDSA(hashes.SHA256()))),
], ids=["rsa-pkcs1", "rsa-pss", "ecdsa-p256"])
def test_create_key_pair_sign_and_verify(a, algorithm, length, params, check):
    name = f"pair-{algorithm.name}-{length}-{time.time_ns()}"
    public_uid, private_uid = a.create_key_pair(algorithm, length, public_name=f"{name}-public",
                                                private_name=f"{name}-private")
    private = a.get(private_uid)
    public = a.get(public_uid)
    assert isinstance(private, kmip_objects.PrivateKey) and private.key_format_type == enums.KeyFormatType.PKCS_8
    assert isinstance(public, kmip_objects.PublicKey) and public.key_format_type == enums.KeyFormatType.X_509
    public_key = serialization.load_der_public_key(public.value)
    assert isinstance(serialization.load_der_private_key(private.value, None), (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey))
    assert a.locate(attributes=[name_attribute(a, f"{name}-public")]) == [public_uid]
    assert a.locate(attributes=[name_attribute(a, f"{name}-private")]) == [private_uid]
    message = b"the message signed"
    signature = a.sign(message, uid=private_uid, cryptographic_parameters=params)
    check(public_key, signature, message)  # raises if the signature is not what it claims
    for uid in (public_uid, private_uid):
        assert a.signature_verify(message, signature, uid=uid, cryptographic_parameters=params) \
            == enums.ValidityIndicator.VALID
        assert a.signature_verify(b"another message", signature, uid=uid, cryptographic_parameters=params) \
            == enums.ValidityIndicator.INVALID
    # A public key does not sign; a private key does not encrypt with AES.
    with pytest.raises(kmip_exceptions.KmipOperationFailure) as e:
        a.sign(message, uid=public_uid, cryptographic_parameters=params)
    assert e.value.reason == enums.ResultReason.FEATURE_NOT_SUPPORTED
    a.destroy(public_uid)
    a.destroy(private_uid)


def test_register_keys_and_certificates_in_their_formats(a):
    key = ec.generate_private_key(ec.SECP384R1())
    der_private = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
    der_public = key.public_key().public_bytes(serialization.Encoding.DER,
                                               serialization.PublicFormat.SubjectPublicKeyInfo)
    made = [
        kmip_objects.PrivateKey(enums.CryptographicAlgorithm.EC, 384, der_private, enums.KeyFormatType.PKCS_8,
                                name="registered-private"),
        kmip_objects.PublicKey(enums.CryptographicAlgorithm.EC, 384, der_public, enums.KeyFormatType.X_509,
                               name="registered-public"),
    ]
    uids = []
    for obj in made:
        uid = a.register(obj)
        uids.append(uid)
        back = a.get(uid)
        assert type(back) is type(obj) and back.value == obj.value
    # The registered private key signs, and its public key verifies.
    params = {"digital_signature_algorithm": enums.DigitalSignatureAlgorithm.ECDSA_WITH_SHA384}
    signature = a.sign(b"m", uid=uids[0], cryptographic_parameters=params)
    key.public_key().verify(signature, b"m", ec.ECDSA(hashes.SHA384()))
    assert a.signature_verify(b"m", signature, uid=uids[1], cryptographic_parameters=params) \
        == enums.ValidityIndicator.VALID
    # A key in a format kcm does not keep it in is refused with the reason that says so.
    with pytest.raises(kmip_exceptions.KmipOperationFailure) as e:
        a.register(kmip_objects.PublicKey(enums.CryptographicAlgorithm.EC, 384, der_public,
                                          enums.KeyFormatType.PKCS_1))
    assert e.value.reason == enums.ResultReason.KEY_FORMAT_TYPE_NOT_SUPPORTED
    for uid in uids:
        a.destroy(uid)


def test_register_a_certificate(kmip, a):
    srv, port, clients = kmip
    der = x509.load_pem_x509_certificate(open(clients["ops-a"]["cert"], "rb").read()).public_bytes(
        serialization.Encoding.DER)
    uid = a.register(kmip_objects.X509Certificate(der, name="client-certificate"))
    back = a.get(uid)
    assert isinstance(back, kmip_objects.X509Certificate) and back.value == der
    a.destroy(uid)


def test_mac_and_mac_verify(kmip, pki, a):
    srv, port, clients = kmip
    uid = a.create(enums.CryptographicAlgorithm.HMAC_SHA256, 256, name="mac-key")
    key = a.get(uid).value
    _, mac = a.mac(b"the data", uid=uid, algorithm=enums.CryptographicAlgorithm.HMAC_SHA256)
    h = hmac.HMAC(key, hashes.SHA256())
    h.update(b"the data")
    assert mac == h.finalize()

    def verify(data: bytes, tag: bytes) -> int:
        payload = (text(UID, uid) + structure(PARAMS, enum(CRYPTO_ALG, 0x09)) + byte_string(DATA, data)
                   + byte_string(MAC_DATA, tag))
        return int.from_bytes(call(pki, port, clients["ops-a"], MAC_VERIFY, payload).ok().one(VALIDITY), "big")

    assert verify(b"the data", mac) == 1  # Valid
    assert verify(b"other data", mac) == 2  # Invalid
    assert verify(b"the data", mac[:-1] + bytes([mac[-1] ^ 1])) == 2
    a.destroy(uid)


def test_rekey_moves_the_name_to_a_new_key(a):
    name = f"rotated-{time.time_ns()}"
    old = a.create(enums.CryptographicAlgorithm.AES, 256, name=name)
    old_key = a.get(old).value
    new = a.rekey(uid=old)
    assert new != old
    assert a.locate(attributes=[name_attribute(a, name)]) == [new], "a lookup by name finds the new key"
    assert len(a.get(new).value) == 32 and a.get(new).value != old_key
    assert a.get(old).value == old_key, "the old key stays, to read what it protected"
    _, attributes = a.get_attributes(old)
    assert "Name" not in {x.attribute_name.value for x in attributes}
    a.destroy(old)
    a.destroy(new)


def test_attributes_are_changed_in_each_versions_words(kmip, pki, a):
    from kmip.core import objects as kobjects

    srv, port, clients = kmip
    uid = a.create(enums.CryptographicAlgorithm.AES, 256, name="before")
    # KMIP 1.4 Add Attribute (which PyKMIP's client lacks): a custom attribute.
    custom = structure(0x420008, text(0x42000A, "x-owner"), text(0x42000B, "team storage"))
    call(pki, port, clients["ops-a"], ADD_ATTRIBUTE, text(UID, uid) + custom).ok()
    again = call(pki, port, clients["ops-a"], ADD_ATTRIBUTE, text(UID, uid) + custom)
    assert again.reason == 0x0B, again.message  # Illegal Operation: it is there; modify it
    _, got = a.get_attributes(uid, ["x-owner"])
    assert [(x.attribute_name.value, x.attribute_value.value) for x in got] == [("x-owner", "team storage")]
    # KMIP 1.2 Modify Attribute through PyKMIP: the Name.
    renamed = a.attribute_factory.create_attribute(enums.AttributeType.NAME, "after")
    a.modify_attribute(uid, attribute=renamed)
    assert a.locate(attributes=[name_attribute(a, "after")]) == [uid]
    assert a.locate(attributes=[name_attribute(a, "before")]) == []
    # A read-only attribute is refused by name (PyKMIP raises its lower layer's error here).
    with pytest.raises(OperationFailure) as e:
        a.modify_attribute(uid, attribute=a.attribute_factory.create_attribute(
            enums.AttributeType.CRYPTOGRAPHIC_LENGTH, 128))
    assert e.value.reason == enums.ResultReason.INVALID_FIELD and "Cryptographic Length" in str(e.value)
    # KMIP 1.2 Delete Attribute: the custom one, then it is gone.
    _, deleted = a.delete_attribute(uid, attribute_name="x-owner")
    assert deleted.attribute_value.value == "team storage", "1.x answers with what was deleted"
    with pytest.raises(OperationFailure) as e:
        a.delete_attribute(uid, attribute_name="x-owner")
    assert e.value.reason == enums.ResultReason.ITEM_NOT_FOUND
    # KMIP 2.0: Set Attribute and Delete Attribute of the Name.
    two = client(pki, port, clients["ops-a"]["cert"], clients["ops-a"]["key"], enums.KMIPVersion.KMIP_2_0)
    try:
        two.set_attribute(uid, attribute_name="Name", attribute_value="set-in-two")
        assert two.locate(attributes=[name_attribute(two, "set-in-two")]) == [uid]
        two.delete_attribute(uid, attribute_reference=kobjects.AttributeReference(
            vendor_identification="", attribute_name="Name"))
        assert two.locate(attributes=[name_attribute(two, "set-in-two")]) == []
        _, left = two.get_attributes(uid)
        assert "Name" not in {x.attribute_name.value for x in left}
    finally:
        two.close()
    a.destroy(uid)


def test_kmip_2_1_is_negotiated_and_spoken(kmip, pki):
    srv, port, clients = kmip
    who = clients["ops-b"]
    answer = call(pki, port, who, DISCOVER_VERSIONS, b"", version=(2, 1)).ok()
    assert answer.version == (2, 1)
    first = {t: int.from_bytes(v, "big") for t, _, v in items(answer.payload[0x420069][0])}
    assert (first[0x42006A], first[0x42006B]) == (2, 1)
    # A Create in 2.1, attributes under their own tags, answered in 2.1.
    attributes = structure(0x420125, enum(CRYPTO_ALG, 3), integer(0x42002A, 256),
                           structure(0x420053, text(0x420055, "made-in-2.1"), enum(0x420054, 1)))
    made = call(pki, port, who, CREATE, enum(0x420057, 2) + attributes, version=(2, 1)).ok()
    assert made.version == (2, 1)
    uid = made.one(UID).decode()
    got = call(pki, port, who, GET_ATTRIBUTES, text(UID, uid), version=(2, 1)).ok()
    tags = [t for t, _, _ in items(got.one(0x420125))]
    assert 0x420053 in tags and 0x42008D in tags, [hex(t) for t in tags]


def test_a_client_is_mapped_by_its_certificates_subject(kmip, pki):
    """ops-b is mapped by subject: a renewed certificate of the same subject (another key,
    another fingerprint) acts as the same access key; another subject is refused."""
    srv, port, clients = kmip
    renewed_cert, renewed_key, fingerprint = pki.issue("ops-b")
    assert fingerprint != clients["ops-b"]["fingerprint"]
    c = client(pki, port, renewed_cert, renewed_key)
    try:
        uid = c.create(enums.CryptographicAlgorithm.AES, 256, name="by-subject")
        c.destroy(uid)
    finally:
        c.close()
    other_cert, other_key, _ = pki.issue("ops-b-impostor")
    with pytest.raises((AssertionError, ssl.SSLError, ConnectionResetError, BrokenPipeError)):
        # The server closes the connection without an answer (`send` asserts one came).
        send(pki, port, other_cert, other_key, request(DISCOVER_VERSIONS, b""))


def test_the_kill_switch_cuts_off_computing_and_the_preview_names_the_clients(kmip, pki, a):
    srv, port, clients = kmip
    uid = a.create(enums.CryptographicAlgorithm.AES, 256, name="computing-under-a-switch")
    default_root = srv.default_root_id()
    preview = cli_ok(kcm_cli(srv, "root-key", "disable", default_root, "--dry-run", output_json=False)).stdout.decode()
    assert "KMIP client(s) ops-a" in preview and "KMIP client(s) ops-b" in preview, preview
    params = {"block_cipher_mode": enums.BlockCipherMode.CBC, "padding_method": enums.PaddingMethod.PKCS5}
    ciphertext, iv = a.encrypt(b"before the switch", uid=uid, cryptographic_parameters=params)
    cli_ok(kcm_cli(srv, "root-key", "disable", default_root))
    try:
        deadline = time.monotonic() + BOUND_MS / 1000 + LOADED_SLACK_S
        while True:
            try:
                a.decrypt(ciphertext, uid=uid, cryptographic_parameters=params, iv_counter_nonce=iv)
            except kmip_exceptions.KmipOperationFailure as e:
                assert e.reason == enums.ResultReason.ILLEGAL_OPERATION, e
                break
            assert time.monotonic() < deadline, "Decrypt still served after the bound"
            time.sleep(0.05)
        with pytest.raises(kmip_exceptions.KmipOperationFailure) as e:
            a.encrypt(b"x", uid=uid, cryptographic_parameters=params)
        assert e.value.reason == enums.ResultReason.ILLEGAL_OPERATION
    finally:
        cli_ok(kcm_cli(srv, "root-key", "enable", default_root))
    deadline = time.monotonic() + BOUND_MS / 1000 + LOADED_SLACK_S
    while True:
        try:
            assert a.decrypt(ciphertext, uid=uid, cryptographic_parameters=params,
                             iv_counter_nonce=iv) == b"before the switch"
            break
        except kmip_exceptions.KmipOperationFailure:
            assert time.monotonic() < deadline, "Decrypt still refused after the root key was enabled"
            time.sleep(0.05)
    a.destroy(uid)


def test_computing_is_audited_and_no_material_is_logged(kmip, a):
    srv, port, clients = kmip
    uid = a.create(enums.CryptographicAlgorithm.HMAC_SHA512, 512, name="audited-mac")
    canary = b"KMIP-PLAINTEXT-CANARY-" + os.urandom(8).hex().encode()
    a.mac(canary, uid=uid, algorithm=enums.CryptographicAlgorithm.HMAC_SHA512)
    params = {"block_cipher_mode": enums.BlockCipherMode.CBC, "padding_method": enums.PaddingMethod.PKCS5}
    with pytest.raises(kmip_exceptions.KmipOperationFailure):
        a.encrypt(canary, uid=uid, cryptographic_parameters=params)  # an HMAC key does not encrypt
    key = a.get(uid).value
    a.destroy(uid)
    principal = clients["ops-a"]["access_key_id"]
    out = cli_ok(kcm_cli(srv, "audit", "export", "--principal", principal, output_json=False)).stdout
    records = [json.loads(line) for line in out.decode().splitlines() if line.strip()]
    uses = [r for r in records if r.get("operation") == "UseObject"]
    assert uses and all(r["front_door"] == "kmip" for r in uses), records[-5:]
    # Counted in /metrics like every door's calls: by door, operation and result
    # (0: success; 8: Feature Not Supported, for the HMAC key asked to encrypt).
    metrics = requests.get(srv.url + "/metrics", verify=srv.trusted_ca, timeout=10).text
    for status in (0, 8):
        assert f'kcm_requests_total{{door="kmip",operation="UseObject",status="{status}"}}' in metrics, status
    log = "".join(p.read_text(errors="replace") for p in sorted(srv.log_dir.glob("*.log")))
    assert log, "no server log to check"
    for secret in (canary.decode(), canary.hex(), key.hex()):
        assert secret not in log, "key material or plaintext is in the server log"


def test_locate_by_algorithm_and_length_with_offset_and_count(kmip, pki, a):
    srv, port, clients = kmip
    made = [a.create(enums.CryptographicAlgorithm.HMAC_SHA384, bits, name=f"locate-{bits}-{n}")
            for bits, n in ((256, 0), (256, 1), (512, 2))]
    algorithm = a.attribute_factory.create_attribute(enums.AttributeType.CRYPTOGRAPHIC_ALGORITHM,
                                                     enums.CryptographicAlgorithm.HMAC_SHA384)
    length = a.attribute_factory.create_attribute(enums.AttributeType.CRYPTOGRAPHIC_LENGTH, 256)
    assert a.locate(attributes=[algorithm]) == made, "oldest first"
    assert a.locate(attributes=[algorithm, length]) == made[:2]
    # KMIP 1.4, raw: Offset Items skips, Located Items counts every match.
    payload = (integer(0x42004F, 1) + integer(0x4200D4, 1)
               + structure(0x420008, text(0x42000A, "Cryptographic Algorithm"), enum(0x42000B, 0x0A)))
    found = call(pki, port, clients["ops-a"], 0x08, payload, version=(1, 4)).ok()
    assert int.from_bytes(found.one(0x4200D5), "big") == 3
    assert [v.decode() for v in found.payload[UID]] == [made[1]]
    for uid in made:
        a.destroy(uid)
