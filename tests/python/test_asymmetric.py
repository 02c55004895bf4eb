"""Asymmetric (RSA, ECC, Ed25519, ML-DSA), HMAC and key-agreement keys through the AWS
KMS API (boto3), checked against independent implementations offline: every signature
kcm makes is verified with `cryptography` (or pycryptodome for Ed25519ph) using the
public key from GetPublicKey; every RSA ciphertext made offline with that public key
must decrypt in kcm; every ECDH shared secret must equal the one computed offline.

Keys are expensive to make (RSA_4096), so each (KeySpec, KeyUsage) pair is created once
per module (`keys` fixture) and shared by every test that only reads it; tests that
change a key (rotation, disable) make their own.
"""

from __future__ import annotations

import hashlib
import hmac
import os

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, mldsa, padding, rsa
from Crypto.Hash import SHA512 as CryptoSHA512
from Crypto.PublicKey import ECC as CryptoECC
from Crypto.Signature import eddsa as crypto_eddsa

from kcmtest import kms_error, unique

# ----------------------------------------------------------------------------- the spec

ED, SV, MAC, KA = "ENCRYPT_DECRYPT", "SIGN_VERIFY", "GENERATE_VERIFY_MAC", "KEY_AGREEMENT"
ALL_USAGES = (ED, SV, MAC, KA)

RSA_SPECS = ("RSA_2048", "RSA_3072", "RSA_4096")
NIST_SPECS = ("ECC_NIST_P256", "ECC_NIST_P384", "ECC_NIST_P521")
ML_DSA_SPECS = ("ML_DSA_44", "ML_DSA_65", "ML_DSA_87")
HMAC_SPECS = ("HMAC_224", "HMAC_256", "HMAC_384", "HMAC_512")

ALLOWED_USAGES: dict[str, tuple[str, ...]] = {
    **{s: (ED, SV) for s in RSA_SPECS},
    **{s: (SV, KA) for s in NIST_SPECS},
    "ECC_SECG_P256K1": (SV,),
    "ECC_NIST_EDWARDS25519": (SV,),
    **{s: (SV,) for s in ML_DSA_SPECS},
    **{s: (MAC,) for s in HMAC_SPECS},
}

RSA_SIGNING = (
    "RSASSA_PSS_SHA_256", "RSASSA_PSS_SHA_384", "RSASSA_PSS_SHA_512",
    "RSASSA_PKCS1_V1_5_SHA_256", "RSASSA_PKCS1_V1_5_SHA_384", "RSASSA_PKCS1_V1_5_SHA_512",
)
SIGNING: dict[str, tuple[str, ...]] = {
    **{s: RSA_SIGNING for s in RSA_SPECS},
    "ECC_NIST_P256": ("ECDSA_SHA_256",),
    "ECC_NIST_P384": ("ECDSA_SHA_384",),
    "ECC_NIST_P521": ("ECDSA_SHA_512",),
    "ECC_SECG_P256K1": ("ECDSA_SHA_256",),
    "ECC_NIST_EDWARDS25519": ("ED25519_SHA_512", "ED25519_PH_SHA_512"),
    **{s: ("ML_DSA_SHAKE_256",) for s in ML_DSA_SPECS},
}
ALL_SIGNING = tuple(dict.fromkeys(a for algs in SIGNING.values() for a in algs))
SIGN_CASES = [(spec, alg) for spec, algs in SIGNING.items() for alg in algs]
# Algorithms that sign a digest the caller may send instead of the message (MessageType DIGEST).
DIGEST_CASES = [(s, a) for s, a in SIGN_CASES if a not in ("ED25519_SHA_512", "ML_DSA_SHAKE_256")]

RSA_ENCRYPTION = ("RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256")
HMAC_ALG = {s: "HMAC_SHA_" + s.split("_")[1] for s in HMAC_SPECS}
HMAC_LEN = {"HMAC_224": 28, "HMAC_256": 32, "HMAC_384": 48, "HMAC_512": 64}

RSA_BITS = {"RSA_2048": 2048, "RSA_3072": 3072, "RSA_4096": 4096}
EC_CURVE = {
    "ECC_NIST_P256": ec.SECP256R1, "ECC_NIST_P384": ec.SECP384R1,
    "ECC_NIST_P521": ec.SECP521R1, "ECC_SECG_P256K1": ec.SECP256K1,
}
ML_DSA_CLASSES = {
    "ML_DSA_44": (mldsa.MLDSA44PublicKey, mldsa.MLDSA44PrivateKey),
    "ML_DSA_65": (mldsa.MLDSA65PublicKey, mldsa.MLDSA65PrivateKey),
    "ML_DSA_87": (mldsa.MLDSA87PublicKey, mldsa.MLDSA87PrivateKey),
}
KEY_PAIR_SPECS = RSA_SPECS + NIST_SPECS + ("ECC_SECG_P256K1", "ECC_NIST_EDWARDS25519")

VALID_COMBOS = [(spec, usage) for spec, usages in ALLOWED_USAGES.items() for usage in usages]
INVALID_COMBOS = [(spec, usage) for spec, usages in ALLOWED_USAGES.items()
                  for usage in ALL_USAGES if usage not in usages]



def hash_of(alg: str) -> hashes.HashAlgorithm:
    """The hash a signing / OAEP algorithm name ends in."""
    if alg.endswith("SHA_1"):
        return hashes.SHA1()
    bits = alg.rsplit("_", 1)[1]
    return {"224": hashes.SHA224(), "256": hashes.SHA256(), "384": hashes.SHA384(), "512": hashes.SHA512()}[bits]


def digest(alg: str, message: bytes) -> bytes:
    return hashlib.new(hash_of(alg).name, message).digest()


def flip(data: bytes, index: int, bit: int = 0x01) -> bytes:
    b = bytearray(data)
    b[index] ^= bit
    return bytes(b)


def ids(kid_or_md) -> tuple[str, str]:
    return kid_or_md["KeyId"], kid_or_md["Arn"]


# ----------------------------------------------------------------------------- offline crypto


def load_public(der: bytes):
    return serialization.load_der_public_key(der)


def spki(public_key) -> bytes:
    return public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def verify_offline(public_der: bytes, alg: str, message: bytes, signature: bytes) -> None:
    """Raise if `signature` is not a valid `alg` signature of `message` (the message itself,
    never its digest) under the SubjectPublicKeyInfo `public_der`."""
    if alg == "ED25519_PH_SHA_512":
        key = CryptoECC.import_key(public_der)
        try:
            crypto_eddsa.new(key, "rfc8032").verify(CryptoSHA512.new(message), signature)
        except ValueError as e:
            raise InvalidSignature(str(e)) from e
        return
    pub = load_public(public_der)
    if alg.startswith("RSASSA_PSS_"):
        h = hash_of(alg)
        pub.verify(signature, message, padding.PSS(mgf=padding.MGF1(h), salt_length=h.digest_size), h)
    elif alg.startswith("RSASSA_PKCS1_V1_5_"):
        pub.verify(signature, message, padding.PKCS1v15(), hash_of(alg))
    elif alg.startswith("ECDSA_"):
        pub.verify(signature, message, ec.ECDSA(hash_of(alg)))  # DER-encoded (r, s)
    elif alg == "ED25519_SHA_512":
        assert isinstance(pub, ed25519.Ed25519PublicKey), type(pub)
        pub.verify(signature, message)
    elif alg == "ML_DSA_SHAKE_256":
        pub.verify(signature, message)  # pure ML-DSA, empty context
    else:
        raise AssertionError(f"no offline verifier for {alg}")


def offline_valid(public_der: bytes, alg: str, message: bytes, signature: bytes) -> bool:
    try:
        verify_offline(public_der, alg, message, signature)
        return True
    except (InvalidSignature, ValueError):
        return False


def foreign_signature(spec: str, alg: str, message: bytes) -> bytes:
    """A valid `alg` signature of `message` made offline by a fresh key of the same spec."""
    if spec in RSA_BITS:
        priv = rsa.generate_private_key(public_exponent=65537, key_size=RSA_BITS[spec])
        h = hash_of(alg)
        pad = (padding.PSS(mgf=padding.MGF1(h), salt_length=h.digest_size) if "PSS" in alg
               else padding.PKCS1v15())
        return priv.sign(message, pad, h)
    if spec in EC_CURVE:
        return ec.generate_private_key(EC_CURVE[spec]()).sign(message, ec.ECDSA(hash_of(alg)))
    if alg == "ED25519_SHA_512":
        return ed25519.Ed25519PrivateKey.generate().sign(message)
    if alg == "ED25519_PH_SHA_512":
        return crypto_eddsa.new(CryptoECC.generate(curve="ed25519"), "rfc8032").sign(CryptoSHA512.new(message))
    if spec in ML_DSA_CLASSES:
        return ML_DSA_CLASSES[spec][1].generate().sign(message)
    raise AssertionError(spec)


def oaep(alg: str) -> padding.OAEP:
    h = hash_of(alg)
    return padding.OAEP(mgf=padding.MGF1(algorithm=h), algorithm=h, label=None)


def oaep_max(spec: str, alg: str) -> int:
    return RSA_BITS[spec] // 8 - 2 * hash_of(alg).digest_size - 2


# ----------------------------------------------------------------------------- fixtures


class Keys:
    """One key per (KeySpec, KeyUsage, tag) on the session server, made on first use."""

    def __init__(self, kms):
        self.kms = kms
        self._md: dict[tuple, dict] = {}
        self._pub: dict[tuple, bytes] = {}

    def md(self, spec: str, usage: str, tag: str = "") -> dict:
        """CreateKey's KeyMetadata."""
        k = (spec, usage, tag)
        if k not in self._md:
            self._md[k] = self.kms.create_key(KeySpec=spec, KeyUsage=usage,
                                              Description=unique(f"{spec}-{usage}"))["KeyMetadata"]
        return self._md[k]

    def id(self, spec: str, usage: str, tag: str = "") -> str:
        return self.md(spec, usage, tag)["KeyId"]

    def pub(self, spec: str, usage: str, tag: str = "") -> bytes:
        k = (spec, usage, tag)
        if k not in self._pub:
            self._pub[k] = self.kms.get_public_key(KeyId=self.id(spec, usage, tag))["PublicKey"]
        return self._pub[k]


@pytest.fixture(scope="module")
def keys(kms):
    return Keys(kms)


@pytest.fixture(scope="module")
def sym_key(kms):
    """A SYMMETRIC_DEFAULT ENCRYPT_DECRYPT key."""
    return kms.create_key(Description=unique("sym"))["KeyMetadata"]["KeyId"]


# ============================================================================= CreateKey / DescribeKey


def expected_algorithm_fields(spec: str, usage: str) -> dict[str, list[str]]:
    if usage == SV:
        return {"SigningAlgorithms": sorted(SIGNING[spec])}
    if usage == ED:
        return {"EncryptionAlgorithms": sorted(RSA_ENCRYPTION)}
    if usage == MAC:
        return {"MacAlgorithms": [HMAC_ALG[spec]]}
    return {"KeyAgreementAlgorithms": ["ECDH"]}


ALGORITHM_FIELDS = ("SigningAlgorithms", "EncryptionAlgorithms", "MacAlgorithms", "KeyAgreementAlgorithms")


def check_algorithm_fields(md: dict, spec: str, usage: str) -> None:
    want = expected_algorithm_fields(spec, usage)
    for field in ALGORITHM_FIELDS:
        if field in want:
            assert sorted(md.get(field) or []) == want[field], (field, md.get(field))
            assert len(md[field]) == len(set(md[field])), (field, md[field])
        else:
            assert not md.get(field), f"{spec}/{usage} should have no {field}: {md.get(field)}"


@pytest.mark.parametrize("spec,usage", VALID_COMBOS, ids=[f"{s}-{u}" for s, u in VALID_COMBOS])
def test_create_key_metadata(kms, keys, spec, usage):
    """CreateKey makes a key of every supported spec/usage, and CreateKey's and
    DescribeKey's metadata name its spec, usage and exactly the algorithms it allows."""
    created = keys.md(spec, usage)
    described = kms.describe_key(KeyId=created["KeyId"])["KeyMetadata"]
    for md in (created, described):
        assert md["KeySpec"] == spec, md
        assert md["CustomerMasterKeySpec"] == spec, md
        assert md["KeyUsage"] == usage, md
        assert md["KeyState"] == "Enabled" and md["Enabled"] is True, md
        assert md["Origin"] == "AWS_KMS", md
        check_algorithm_fields(md, spec, usage)


@pytest.mark.parametrize("spec,usage", INVALID_COMBOS + [("SYMMETRIC_DEFAULT", SV)],
                         ids=[f"{s}-{u}" for s, u in INVALID_COMBOS + [("SYMMETRIC_DEFAULT", SV)]])
def test_create_key_usage_not_allowed(kms, spec, usage):
    """A KeyUsage the spec does not support is a ValidationException that names the
    usages the spec does support."""
    allowed = ALLOWED_USAGES.get(spec, (ED,))
    with kms_error("ValidationException") as ei:
        kms.create_key(KeySpec=spec, KeyUsage=usage, Description=unique("bad-usage"))
    message = ei.value.response["Error"]["Message"]
    for u in allowed:
        assert u in message, f"message does not name the allowed usage {u}: {message!r}"


@pytest.mark.parametrize("spec", ["RSA_1024", "ECC_NIST_P224", "HMAC_128", "ML_DSA_99", "rsa_2048", "ECC"])
def test_create_key_unknown_spec(kms, spec):
    """An unknown KeySpec (spelling is exact) is a ValidationException."""
    with kms_error("ValidationException"):
        kms.create_key(KeySpec=spec, KeyUsage=SV, Description=unique("bad-spec"))


@pytest.mark.parametrize("spec,usage", [("RSA_2048", SV), ("RSA_2048", ED), ("ECC_NIST_P256", SV),
                                        ("ECC_NIST_EDWARDS25519", SV), ("ML_DSA_44", SV),
                                        ("HMAC_256", MAC)])
def test_create_external_non_symmetric_unsupported(kms, keys, spec, usage):
    """Origin EXTERNAL (imported key material) is only for symmetric keys (while the same
    spec and usage with kcm-generated material works)."""
    assert keys.md(spec, usage)["KeySpec"] == spec
    with kms_error("UnsupportedOperationException"):
        kms.create_key(KeySpec=spec, KeyUsage=usage, Origin="EXTERNAL", Description=unique("ext"))


# ============================================================================= GetPublicKey


@pytest.mark.parametrize("spec,usage", [c for c in VALID_COMBOS if c[1] != MAC],
                         ids=[f"{s}-{u}" for s, u in VALID_COMBOS if u != MAC])
def test_get_public_key(kms, keys, spec, usage):
    """GetPublicKey returns a canonical DER SubjectPublicKeyInfo of the right type and
    size, plus the key's spec, usage and algorithms (as DescribeKey has them)."""
    md = keys.md(spec, usage)
    r = kms.get_public_key(KeyId=md["KeyId"])
    assert r["KeyId"] in ids(md)
    assert r["KeySpec"] == spec and r["CustomerMasterKeySpec"] == spec and r["KeyUsage"] == usage, r
    check_algorithm_fields(r, spec, usage)
    der = r["PublicKey"]
    pub = load_public(der)
    if spec in RSA_BITS:
        assert isinstance(pub, rsa.RSAPublicKey) and pub.key_size == RSA_BITS[spec], pub
        assert pub.public_numbers().e == 65537
    elif spec in EC_CURVE:
        assert isinstance(pub, ec.EllipticCurvePublicKey), pub
        assert pub.curve.name == EC_CURVE[spec].name, pub.curve.name
    elif spec == "ECC_NIST_EDWARDS25519":
        assert isinstance(pub, ed25519.Ed25519PublicKey), pub
    else:
        assert isinstance(pub, ML_DSA_CLASSES[spec][0]), type(pub)
    assert spki(pub) == der, "PublicKey is not canonical DER (e.g. a compressed EC point)"
    assert kms.get_public_key(KeyId=md["Arn"])["PublicKey"] == der, "not the same key every time"


@pytest.mark.parametrize("spec", ["ECC_NIST_P256", "ECC_NIST_EDWARDS25519", "ML_DSA_44", "RSA_2048"])
def test_keys_of_the_same_spec_differ(kms, keys, spec):
    """Two keys of the same spec have different key material."""
    assert keys.pub(spec, SV) != keys.pub(spec, SV, tag="second")


@pytest.mark.parametrize("which", ["symmetric", "hmac"])
def test_get_public_key_of_key_without_one(kms, keys, sym_key, which):
    """Symmetric and HMAC keys have no public key: UnsupportedOperationException."""
    kid = sym_key if which == "symmetric" else keys.id("HMAC_256", MAC)
    with kms_error("UnsupportedOperationException"):
        kms.get_public_key(KeyId=kid)


# ============================================================================= Sign / Verify


@pytest.mark.parametrize("spec,alg", SIGN_CASES, ids=[f"{s}-{a}" for s, a in SIGN_CASES])
def test_sign_raw_verifies_offline_and_in_kcm(kms, keys, spec, alg):
    """A RAW Sign is a standard signature of the message: it verifies offline with the
    public key from GetPublicKey, and Verify in kcm says it is valid."""
    md = keys.md(spec, SV)
    message = os.urandom(200)
    r = kms.sign(KeyId=md["KeyId"], Message=message, MessageType="RAW", SigningAlgorithm=alg)
    assert r["KeyId"] in ids(md) and r["SigningAlgorithm"] == alg, r
    sig = r["Signature"]
    verify_offline(keys.pub(spec, SV), alg, message, sig)
    # MessageType defaults to RAW.
    sig2 = kms.sign(KeyId=md["Arn"], Message=message, SigningAlgorithm=alg)["Signature"]
    verify_offline(keys.pub(spec, SV), alg, message, sig2)
    for s in (sig, sig2):
        v = kms.verify(KeyId=md["KeyId"], Message=message, MessageType="RAW", Signature=s, SigningAlgorithm=alg)
        assert v["SignatureValid"] is True and v["SigningAlgorithm"] == alg and v["KeyId"] in ids(md), v
    # The signature does not verify for another message.
    assert not offline_valid(keys.pub(spec, SV), alg, message + b"!", sig)


@pytest.mark.parametrize("spec,alg", SIGN_CASES, ids=[f"{s}-{a}" for s, a in SIGN_CASES])
def test_sign_smallest_and_largest_message(kms, keys, spec, alg):
    """RAW messages of 1 and 4096 bytes (the bounds) sign and verify, offline and in kcm."""
    kid = keys.id(spec, SV)
    for message in (b"\x00", os.urandom(4096)):
        sig = kms.sign(KeyId=kid, Message=message, SigningAlgorithm=alg)["Signature"]
        verify_offline(keys.pub(spec, SV), alg, message, sig)
        assert kms.verify(KeyId=kid, Message=message, Signature=sig, SigningAlgorithm=alg)["SignatureValid"] is True


@pytest.mark.parametrize("spec,alg", DIGEST_CASES, ids=[f"{s}-{a}" for s, a in DIGEST_CASES])
def test_sign_digest(kms, keys, spec, alg):
    """MessageType DIGEST signs a caller-computed hash: the result is a valid signature of
    the original message (offline, and in kcm's Verify as RAW and as DIGEST)."""
    kid = keys.id(spec, SV)
    message = os.urandom(300)
    d = digest(alg, message)
    sig = kms.sign(KeyId=kid, Message=d, MessageType="DIGEST", SigningAlgorithm=alg)["Signature"]
    verify_offline(keys.pub(spec, SV), alg, message, sig)
    assert kms.verify(KeyId=kid, Message=d, MessageType="DIGEST", Signature=sig,
                      SigningAlgorithm=alg)["SignatureValid"] is True
    assert kms.verify(KeyId=kid, Message=message, MessageType="RAW", Signature=sig,
                      SigningAlgorithm=alg)["SignatureValid"] is True
    # And a RAW signature verifies as DIGEST of the same message.
    raw = kms.sign(KeyId=kid, Message=message, SigningAlgorithm=alg)["Signature"]
    assert kms.verify(KeyId=kid, Message=d, MessageType="DIGEST", Signature=raw,
                      SigningAlgorithm=alg)["SignatureValid"] is True


@pytest.mark.parametrize("spec,alg", DIGEST_CASES, ids=[f"{s}-{a}" for s, a in DIGEST_CASES])
def test_sign_digest_of_wrong_length(kms, keys, spec, alg):
    """A DIGEST whose length is not the algorithm's hash length is a ValidationException
    (for Sign and for Verify)."""
    kid = keys.id(spec, SV)
    n = hash_of(alg).digest_size
    good_sig = kms.sign(KeyId=kid, Message=b"m", SigningAlgorithm=alg)["Signature"]
    for length in sorted({n - 1, n + 1, 20, 32, 48, 64} - {n}):
        with kms_error("ValidationException"):
            kms.sign(KeyId=kid, Message=os.urandom(length), MessageType="DIGEST", SigningAlgorithm=alg)
        with kms_error("ValidationException"):
            kms.verify(KeyId=kid, Message=os.urandom(length), MessageType="DIGEST", Signature=good_sig,
                       SigningAlgorithm=alg)


@pytest.mark.parametrize("spec,alg", [("ECC_NIST_EDWARDS25519", "ED25519_SHA_512")]
                         + [(s, "ML_DSA_SHAKE_256") for s in ML_DSA_SPECS])
def test_digest_not_allowed_for_pure_signatures(kms, keys, spec, alg):
    """Pure Ed25519 and ML-DSA sign the whole message: MessageType DIGEST is refused."""
    kid = keys.id(spec, SV)
    for length in (32, 64):
        with kms_error("ValidationException"):
            kms.sign(KeyId=kid, Message=os.urandom(length), MessageType="DIGEST", SigningAlgorithm=alg)


@pytest.mark.parametrize("spec", ML_DSA_SPECS)
def test_ml_dsa_external_mu(kms, keys, spec):
    """MessageType EXTERNAL_MU: the caller computes mu (FIPS 204 §6.2) from the public
    key and the message; kcm's signature of mu is a valid ML-DSA signature of the
    message itself, offline. Verify takes the mu too, and a signature of another
    message fails; a mu that is not 64 bytes, or EXTERNAL_MU with another algorithm,
    is a ValidationException."""
    kid = keys.id(spec, SV)
    message = os.urandom(100)
    hasher = mldsa.MLDSAMuHasher(load_public(keys.pub(spec, SV)))
    hasher.update(message)
    mu = hasher.finalize()
    r = kms.sign(KeyId=kid, Message=mu, MessageType="EXTERNAL_MU", SigningAlgorithm="ML_DSA_SHAKE_256")
    verify_offline(keys.pub(spec, SV), "ML_DSA_SHAKE_256", message, r["Signature"])
    assert kms.verify(KeyId=kid, Message=mu, MessageType="EXTERNAL_MU", Signature=r["Signature"],
                      SigningAlgorithm="ML_DSA_SHAKE_256")["SignatureValid"] is True
    raw_sig = kms.sign(KeyId=kid, Message=message, SigningAlgorithm="ML_DSA_SHAKE_256")["Signature"]
    assert kms.verify(KeyId=kid, Message=mu, MessageType="EXTERNAL_MU", Signature=raw_sig,
                      SigningAlgorithm="ML_DSA_SHAKE_256")["SignatureValid"] is True
    with kms_error("KMSInvalidSignatureException"):
        kms.verify(KeyId=kid, Message=flip(mu, 5), MessageType="EXTERNAL_MU", Signature=r["Signature"],
                   SigningAlgorithm="ML_DSA_SHAKE_256")
    with kms_error("ValidationException"):
        kms.sign(KeyId=kid, Message=mu[:63], MessageType="EXTERNAL_MU", SigningAlgorithm="ML_DSA_SHAKE_256")
    with kms_error("ValidationException"):
        kms.sign(KeyId=keys.id("ECC_NIST_P256", SV), Message=mu, MessageType="EXTERNAL_MU",
                 SigningAlgorithm="ECDSA_SHA_256")


@pytest.mark.parametrize("spec,alg", SIGN_CASES, ids=[f"{s}-{a}" for s, a in SIGN_CASES])
def test_verify_rejects_tampering(kms, keys, spec, alg):
    """A flipped bit in the signature or in the message, or a truncated signature, is
    KMSInvalidSignatureException."""
    kid = keys.id(spec, SV)
    message = os.urandom(64)
    sig = kms.sign(KeyId=kid, Message=message, SigningAlgorithm=alg)["Signature"]
    bad = [flip(sig, len(sig) // 2), flip(sig, len(sig) - 1, 0x80), sig[:-1]]
    for s in bad:
        with kms_error("KMSInvalidSignatureException"):
            kms.verify(KeyId=kid, Message=message, Signature=s, SigningAlgorithm=alg)
    with kms_error("KMSInvalidSignatureException"):
        kms.verify(KeyId=kid, Message=flip(message, 0), Signature=sig, SigningAlgorithm=alg)
    # The control: unaltered, it is valid.
    assert kms.verify(KeyId=kid, Message=message, Signature=sig, SigningAlgorithm=alg)["SignatureValid"] is True


# RSA_4096 key generation offline is slow: two of its six algorithms are enough.
FOREIGN_CASES = [(s, a) for s, a in SIGN_CASES
                 if s != "RSA_4096" or a in ("RSASSA_PSS_SHA_256", "RSASSA_PKCS1_V1_5_SHA_512")]


@pytest.mark.parametrize("spec,alg", FOREIGN_CASES, ids=[f"{s}-{a}" for s, a in FOREIGN_CASES])
def test_verify_rejects_signature_of_another_key(kms, keys, spec, alg):
    """A valid signature of the same message by another key of the same spec (made
    offline) is KMSInvalidSignatureException."""
    kid = keys.id(spec, SV)
    message = os.urandom(64)
    sig = foreign_signature(spec, alg, message)
    with kms_error("KMSInvalidSignatureException"):
        kms.verify(KeyId=kid, Message=message, Signature=sig, SigningAlgorithm=alg)


@pytest.mark.parametrize("spec", list(SIGNING))
def test_signing_algorithm_not_for_the_key(kms, keys, spec):
    """Every signing algorithm the key's spec does not support is refused by Sign and
    Verify with InvalidKeyUsageException."""
    kid = keys.id(spec, SV)
    sig = kms.sign(KeyId=kid, Message=b"m", SigningAlgorithm=SIGNING[spec][0])["Signature"]
    failures = []
    for alg in ALL_SIGNING:
        if alg in SIGNING[spec]:
            continue
        for op, call in (("Sign", lambda: kms.sign(KeyId=kid, Message=b"m", SigningAlgorithm=alg)),
                         ("Verify", lambda: kms.verify(KeyId=kid, Message=b"m", Signature=sig,
                                                       SigningAlgorithm=alg))):
            try:
                with kms_error("InvalidKeyUsageException"):
                    call()
            except (AssertionError, pytest.fail.Exception) as e:
                failures.append(f"{op} {alg}: {e}")
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("which", ["symmetric", "rsa-encrypt", "hmac", "ecc-key-agreement"])
def test_sign_needs_a_sign_verify_key(kms, keys, sym_key, which):
    """Sign and Verify with a key whose usage is not SIGN_VERIFY: InvalidKeyUsageException."""
    kid, alg = {
        "symmetric": (sym_key, "RSASSA_PSS_SHA_256"),
        "rsa-encrypt": (keys.id("RSA_2048", ED), "RSASSA_PSS_SHA_256"),
        "hmac": (keys.id("HMAC_256", MAC), "ECDSA_SHA_256"),
        "ecc-key-agreement": (keys.id("ECC_NIST_P256", KA), "ECDSA_SHA_256"),
    }[which]
    with kms_error("InvalidKeyUsageException"):
        kms.sign(KeyId=kid, Message=b"m", SigningAlgorithm=alg)
    with kms_error("InvalidKeyUsageException"):
        kms.verify(KeyId=kid, Message=b"m", Signature=b"\x30" * 64, SigningAlgorithm=alg)


def test_sign_parameter_validation(kms, keys):
    """Message of 0 or more than 4096 bytes, a missing or unknown SigningAlgorithm and an
    unknown MessageType are ValidationExceptions; 4096 bytes are fine."""
    kid = keys.id("ECC_NIST_P256", SV)
    for kw in ({"Message": b"", "SigningAlgorithm": "ECDSA_SHA_256"},
               {"Message": os.urandom(4097), "SigningAlgorithm": "ECDSA_SHA_256"},
               {"Message": b"m"},
               {"Message": b"m", "SigningAlgorithm": "ECDSA_SHA_1"},
               {"Message": b"m", "SigningAlgorithm": "ECDSA_SHA_256", "MessageType": "HASH"}):
        with kms_error("ValidationException"):
            kms.sign(KeyId=kid, **kw)
    sig = kms.sign(KeyId=kid, Message=b"m", SigningAlgorithm="ECDSA_SHA_256")["Signature"]
    with kms_error("ValidationException"):
        kms.verify(KeyId=kid, Message=os.urandom(4097), Signature=sig, SigningAlgorithm="ECDSA_SHA_256")
    big = os.urandom(4096)
    sig = kms.sign(KeyId=kid, Message=big, SigningAlgorithm="ECDSA_SHA_256")["Signature"]
    verify_offline(keys.pub("ECC_NIST_P256", SV), "ECDSA_SHA_256", big, sig)


def test_sign_with_another_tenants_key(kms, keys, other_tenant):
    """Another tenant can neither sign with nor read the public key of this tenant's key."""
    md = keys.md("ECC_NIST_P256", SV)
    okms = other_tenant["kms"]
    # An ARN of another account names no key the caller can see: NotFoundException, as
    # AWS answers (test_no_oracles.py); a key id names a key of the caller's own account.
    with kms_error("NotFoundException"):
        okms.sign(KeyId=md["Arn"], Message=b"m", SigningAlgorithm="ECDSA_SHA_256")
    with kms_error("NotFoundException"):
        okms.sign(KeyId=md["KeyId"], Message=b"m", SigningAlgorithm="ECDSA_SHA_256")
    with kms_error("NotFoundException"):
        okms.get_public_key(KeyId=md["Arn"])


# ============================================================================= RSA encryption


@pytest.mark.parametrize("spec", RSA_SPECS)
@pytest.mark.parametrize("alg", RSA_ENCRYPTION)
def test_rsa_offline_encrypt_kcm_decrypt(kms, keys, spec, alg):
    """OAEP ciphertexts made offline with the public key decrypt in kcm; with the other
    OAEP hash, or altered, they are InvalidCiphertextException."""
    md = keys.md(spec, ED)
    pub = load_public(keys.pub(spec, ED))
    pt = os.urandom(oaep_max(spec, alg))
    ct = pub.encrypt(pt, oaep(alg))
    d = kms.decrypt(KeyId=md["KeyId"], CiphertextBlob=ct, EncryptionAlgorithm=alg)
    assert d["Plaintext"] == pt and d["EncryptionAlgorithm"] == alg and d["KeyId"] in ids(md), d
    short = pub.encrypt(b"x", oaep(alg))
    assert kms.decrypt(KeyId=md["Arn"], CiphertextBlob=short, EncryptionAlgorithm=alg)["Plaintext"] == b"x"
    other = next(a for a in RSA_ENCRYPTION if a != alg)
    with kms_error("InvalidCiphertextException"):
        kms.decrypt(KeyId=md["KeyId"], CiphertextBlob=ct, EncryptionAlgorithm=other)
    for bad in (flip(ct, 0), flip(ct, len(ct) // 2), flip(ct, len(ct) - 1)):
        with kms_error("InvalidCiphertextException"):
            kms.decrypt(KeyId=md["KeyId"], CiphertextBlob=bad, EncryptionAlgorithm=alg)


@pytest.mark.parametrize("spec", RSA_SPECS)
@pytest.mark.parametrize("alg", RSA_ENCRYPTION)
def test_rsa_kcm_encrypt_decrypt(kms, keys, spec, alg):
    """Encrypt with an RSAES_OAEP algorithm gives a randomised modulus-sized ciphertext
    that Decrypt (with KeyId and the same algorithm) turns back into the plaintext."""
    md = keys.md(spec, ED)
    pt = os.urandom(100)
    r = kms.encrypt(KeyId=md["KeyId"], Plaintext=pt, EncryptionAlgorithm=alg)
    assert r["EncryptionAlgorithm"] == alg and r["KeyId"] in ids(md), r
    ct = r["CiphertextBlob"]
    assert len(ct) == RSA_BITS[spec] // 8, len(ct)
    ct2 = kms.encrypt(KeyId=md["KeyId"], Plaintext=pt, EncryptionAlgorithm=alg)["CiphertextBlob"]
    assert ct != ct2, "OAEP must be randomised"
    for c in (ct, ct2):
        assert kms.decrypt(KeyId=md["KeyId"], CiphertextBlob=c, EncryptionAlgorithm=alg)["Plaintext"] == pt


@pytest.mark.parametrize("spec", RSA_SPECS)
@pytest.mark.parametrize("alg", RSA_ENCRYPTION)
def test_rsa_plaintext_limit(kms, keys, spec, alg):
    """The longest plaintext OAEP allows (k - 2*hLen - 2 bytes) encrypts; one byte more is
    a ValidationException."""
    kid = keys.id(spec, ED)
    n = oaep_max(spec, alg)
    if spec == "RSA_2048":  # AWS's documented limits
        assert n == {"RSAES_OAEP_SHA_1": 214, "RSAES_OAEP_SHA_256": 190}[alg]
    pt = os.urandom(n)
    ct = kms.encrypt(KeyId=kid, Plaintext=pt, EncryptionAlgorithm=alg)["CiphertextBlob"]
    assert kms.decrypt(KeyId=kid, CiphertextBlob=ct, EncryptionAlgorithm=alg)["Plaintext"] == pt
    with kms_error("ValidationException"):
        kms.encrypt(KeyId=kid, Plaintext=os.urandom(n + 1), EncryptionAlgorithm=alg)


def test_rsa_encrypt_needs_an_rsa_algorithm(kms, keys, sym_key):
    """An RSA key with no EncryptionAlgorithm / SYMMETRIC_DEFAULT, and a symmetric key with
    RSAES_OAEP_*, are InvalidKeyUsageException."""
    kid = keys.id("RSA_2048", ED)
    with kms_error("InvalidKeyUsageException"):
        kms.encrypt(KeyId=kid, Plaintext=b"x")
    with kms_error("InvalidKeyUsageException"):
        kms.encrypt(KeyId=kid, Plaintext=b"x", EncryptionAlgorithm="SYMMETRIC_DEFAULT")
    for alg in RSA_ENCRYPTION:
        with kms_error("InvalidKeyUsageException"):
            kms.encrypt(KeyId=sym_key, Plaintext=b"x", EncryptionAlgorithm=alg)
    # Decrypting with an RSA key as SYMMETRIC_DEFAULT does not work either: the algorithm
    # does not fit the key's spec, InvalidKeyUsageException (AWS's API reference) —
    # whatever the ciphertext's bytes are, even a ciphertext in kcm's symmetric format
    # that names another key (an RSA ciphertext's first bytes look like one by chance).
    ct = kms.encrypt(KeyId=kid, Plaintext=b"x", EncryptionAlgorithm="RSAES_OAEP_SHA_256")["CiphertextBlob"]
    with kms_error("InvalidKeyUsageException"):
        kms.decrypt(KeyId=kid, CiphertextBlob=ct)
    symmetric_ct = kms.encrypt(KeyId=sym_key, Plaintext=b"x")["CiphertextBlob"]
    for blob in (symmetric_ct, symmetric_ct[:17] + ct[17:]):
        with kms_error("InvalidKeyUsageException"):
            kms.decrypt(KeyId=kid, CiphertextBlob=blob)
        with kms_error("InvalidKeyUsageException"):
            kms.re_encrypt(SourceKeyId=kid, CiphertextBlob=blob, DestinationKeyId=sym_key)
    sign_kid = keys.id("ECC_NIST_P256", SV)
    with kms_error("InvalidKeyUsageException"):
        kms.decrypt(KeyId=sign_kid, CiphertextBlob=symmetric_ct)
    # No KeyId: read as kcm's format, an RSA ciphertext is not a valid one.
    with kms_error("InvalidCiphertextException"):
        kms.decrypt(CiphertextBlob=ct)
    # Not an algorithm of AWS's list at all: the request is not valid.
    with kms_error("ValidationException"):
        kms.encrypt(KeyId=kid, Plaintext=b"x", EncryptionAlgorithm="RSAES_PKCS1_V1_5")


def test_rsa_encryption_context_refused(kms, keys):
    """EncryptionContext cannot be bound to an RSA ciphertext: ValidationException."""
    kid = keys.id("RSA_2048", ED)
    with kms_error("ValidationException"):
        kms.encrypt(KeyId=kid, Plaintext=b"x", EncryptionAlgorithm="RSAES_OAEP_SHA_256",
                    EncryptionContext={"a": "b"})


def test_re_encrypt_between_rsa_and_symmetric_keys(kms, keys, sym_key):
    """ReEncrypt moves data from an RSA key (offline OAEP ciphertext, named by
    SourceKeyId) to a symmetric key, and from a symmetric key to an RSA key (an OAEP
    ciphertext kcm's Decrypt opens), without the plaintext leaving kcm."""
    md = keys.md("RSA_2048", ED)
    pt = os.urandom(64)
    offline = load_public(keys.pub("RSA_2048", ED)).encrypt(pt, oaep("RSAES_OAEP_SHA_256"))
    r = kms.re_encrypt(CiphertextBlob=offline, SourceKeyId=md["KeyId"],
                       SourceEncryptionAlgorithm="RSAES_OAEP_SHA_256",
                       DestinationKeyId=sym_key, DestinationEncryptionContext={"to": "sym"})
    assert r["SourceEncryptionAlgorithm"] == "RSAES_OAEP_SHA_256", r
    assert r["DestinationEncryptionAlgorithm"] == "SYMMETRIC_DEFAULT", r
    assert r["SourceKeyId"] in ids(md), r
    assert kms.decrypt(CiphertextBlob=r["CiphertextBlob"], EncryptionContext={"to": "sym"})["Plaintext"] == pt

    sym_ct = kms.encrypt(KeyId=sym_key, Plaintext=pt, EncryptionContext={"from": "sym"})["CiphertextBlob"]
    r = kms.re_encrypt(CiphertextBlob=sym_ct, SourceEncryptionContext={"from": "sym"},
                       DestinationKeyId=md["Arn"], DestinationEncryptionAlgorithm="RSAES_OAEP_SHA_1")
    assert r["DestinationEncryptionAlgorithm"] == "RSAES_OAEP_SHA_1" and r["KeyId"] in ids(md), r
    assert kms.decrypt(KeyId=md["KeyId"], CiphertextBlob=r["CiphertextBlob"],
                       EncryptionAlgorithm="RSAES_OAEP_SHA_1")["Plaintext"] == pt

    # An RSA source must be named; an RSA side takes no context; a wrong algorithm for a
    # key is InvalidKeyUsageException; an altered RSA ciphertext InvalidCiphertextException.
    with kms_error("ValidationException"):
        kms.re_encrypt(CiphertextBlob=offline, SourceEncryptionAlgorithm="RSAES_OAEP_SHA_256",
                       DestinationKeyId=sym_key)
    with kms_error("ValidationException"):
        kms.re_encrypt(CiphertextBlob=sym_ct, SourceEncryptionContext={"from": "sym"},
                       DestinationKeyId=md["KeyId"], DestinationEncryptionAlgorithm="RSAES_OAEP_SHA_1",
                       DestinationEncryptionContext={"a": "b"})
    with kms_error("InvalidKeyUsageException"):
        kms.re_encrypt(CiphertextBlob=sym_ct, SourceEncryptionContext={"from": "sym"},
                       DestinationKeyId=sym_key, DestinationEncryptionAlgorithm="RSAES_OAEP_SHA_256")
    with kms_error("InvalidCiphertextException"):
        kms.re_encrypt(CiphertextBlob=flip(offline, 3), SourceKeyId=md["KeyId"],
                       SourceEncryptionAlgorithm="RSAES_OAEP_SHA_256", DestinationKeyId=sym_key)


@pytest.mark.parametrize("spec,usage", [("RSA_2048", SV), ("ECC_NIST_P256", SV), ("ML_DSA_44", SV),
                                        ("ECC_NIST_P256", KA), ("HMAC_256", MAC), ("RSA_2048", ED)])
def test_symmetric_operations_refused_on_non_symmetric_keys(kms, keys, spec, usage):
    """Encrypt (except RSA ENCRYPT_DECRYPT with OAEP), GenerateDataKey and
    GenerateDataKeyWithoutPlaintext need a symmetric encryption key:
    InvalidKeyUsageException."""
    kid = keys.id(spec, usage)
    if usage != ED:
        for kw in ({}, {"EncryptionAlgorithm": "RSAES_OAEP_SHA_256"}):
            with kms_error("InvalidKeyUsageException"):
                kms.encrypt(KeyId=kid, Plaintext=b"x", **kw)
    with kms_error("InvalidKeyUsageException"):
        kms.generate_data_key(KeyId=kid, KeySpec="AES_256")
    with kms_error("InvalidKeyUsageException"):
        kms.generate_data_key_without_plaintext(KeyId=kid, KeySpec="AES_256")


# ============================================================================= HMAC


@pytest.mark.parametrize("spec", HMAC_SPECS)
def test_generate_and_verify_mac(kms, keys, spec):
    """GenerateMac gives a MAC of the hash's length, the same for the same message and key,
    another for another message or key; VerifyMac accepts it."""
    md = keys.md(spec, MAC)
    alg = HMAC_ALG[spec]
    message = os.urandom(100)
    r = kms.generate_mac(KeyId=md["KeyId"], Message=message, MacAlgorithm=alg)
    assert r["MacAlgorithm"] == alg and r["KeyId"] in ids(md), r
    mac = r["Mac"]
    assert len(mac) == HMAC_LEN[spec]
    assert kms.generate_mac(KeyId=md["Arn"], Message=message, MacAlgorithm=alg)["Mac"] == mac
    assert kms.generate_mac(KeyId=md["KeyId"], Message=message + b"!", MacAlgorithm=alg)["Mac"] != mac
    other = keys.id(spec, MAC, tag="second")
    assert kms.generate_mac(KeyId=other, Message=message, MacAlgorithm=alg)["Mac"] != mac
    v = kms.verify_mac(KeyId=md["KeyId"], Message=message, Mac=mac, MacAlgorithm=alg)
    assert v["MacValid"] is True and v["MacAlgorithm"] == alg and v["KeyId"] in ids(md), v
    with kms_error("KMSInvalidMacException"):
        kms.verify_mac(KeyId=other, Message=message, Mac=mac, MacAlgorithm=alg)
    # Not a keyless hash, nor HMAC under an empty / all-zero key.
    for key in (b"", bytes(32), bytes(64)):
        assert mac != hmac.new(key, message, hash_of(alg).name).digest()[:len(mac)]
    assert mac != hashlib.new(hash_of(alg).name, message).digest()


@pytest.mark.parametrize("spec", HMAC_SPECS)
def test_verify_mac_rejects_tampering(kms, keys, spec):
    """A flipped bit in the MAC or the message, or a truncated MAC: KMSInvalidMacException."""
    kid, alg = keys.id(spec, MAC), HMAC_ALG[spec]
    message = os.urandom(50)
    mac = kms.generate_mac(KeyId=kid, Message=message, MacAlgorithm=alg)["Mac"]
    for m, msg in ((flip(mac, 0), message), (flip(mac, len(mac) - 1, 0x80), message), (mac[:-1], message),
                   (mac, flip(message, 10))):
        with kms_error("KMSInvalidMacException"):
            kms.verify_mac(KeyId=kid, Message=msg, Mac=m, MacAlgorithm=alg)


@pytest.mark.parametrize("spec", HMAC_SPECS)
def test_mac_algorithm_not_for_the_key(kms, keys, spec):
    """Every other HMAC algorithm is InvalidKeyUsageException for GenerateMac and VerifyMac."""
    kid = keys.id(spec, MAC)
    mac = kms.generate_mac(KeyId=kid, Message=b"m", MacAlgorithm=HMAC_ALG[spec])["Mac"]
    for other in HMAC_SPECS:
        if other == spec:
            continue
        with kms_error("InvalidKeyUsageException"):
            kms.generate_mac(KeyId=kid, Message=b"m", MacAlgorithm=HMAC_ALG[other])
        with kms_error("InvalidKeyUsageException"):
            kms.verify_mac(KeyId=kid, Message=b"m", Mac=mac, MacAlgorithm=HMAC_ALG[other])


@pytest.mark.parametrize("which", ["symmetric", "ecc-sign"])
def test_mac_needs_an_hmac_key(kms, keys, sym_key, which):
    """GenerateMac / VerifyMac with a symmetric or signing key: InvalidKeyUsageException."""
    kid = sym_key if which == "symmetric" else keys.id("ECC_NIST_P256", SV)
    with kms_error("InvalidKeyUsageException"):
        kms.generate_mac(KeyId=kid, Message=b"m", MacAlgorithm="HMAC_SHA_256")
    with kms_error("InvalidKeyUsageException"):
        kms.verify_mac(KeyId=kid, Message=b"m", Mac=bytes(32), MacAlgorithm="HMAC_SHA_256")


def test_mac_parameter_validation(kms, keys):
    """Empty or > 4096-byte messages and unknown MAC algorithms are ValidationExceptions;
    other HMAC-key misuse (Encrypt, Sign) is InvalidKeyUsageException."""
    kid = keys.id("HMAC_256", MAC)
    for kw in ({"Message": b"", "MacAlgorithm": "HMAC_SHA_256"},
               {"Message": os.urandom(4097), "MacAlgorithm": "HMAC_SHA_256"},
               {"Message": b"m", "MacAlgorithm": "HMAC_SHA_1"}):
        with kms_error("ValidationException"):
            kms.generate_mac(KeyId=kid, **kw)
    big = os.urandom(4096)
    mac = kms.generate_mac(KeyId=kid, Message=big, MacAlgorithm="HMAC_SHA_256")["Mac"]
    assert kms.verify_mac(KeyId=kid, Message=big, Mac=mac, MacAlgorithm="HMAC_SHA_256")["MacValid"] is True


# ============================================================================= ECDH


@pytest.mark.parametrize("spec", NIST_SPECS)
def test_derive_shared_secret(kms, keys, spec):
    """DeriveSharedSecret's SharedSecret is the ECDH secret computed offline from the peer's
    private key and kcm's public key; another peer gets another secret."""
    md = keys.md(spec, KA)
    kms_pub = load_public(keys.pub(spec, KA))
    curve = EC_CURVE[spec]()
    for _ in range(2):
        peer = ec.generate_private_key(curve)
        r = kms.derive_shared_secret(KeyId=md["KeyId"], KeyAgreementAlgorithm="ECDH",
                                     PublicKey=spki(peer.public_key()))
        assert r["KeyAgreementAlgorithm"] == "ECDH" and r["KeyOrigin"] == "AWS_KMS", r
        assert r["KeyId"] in ids(md), r
        assert r["SharedSecret"] == peer.exchange(ec.ECDH(), kms_pub)
        assert len(r["SharedSecret"]) == (curve.key_size + 7) // 8


@pytest.mark.parametrize("spec", NIST_SPECS)
def test_derive_shared_secret_bad_peer_key(kms, keys, spec):
    """A peer key on another curve, of another type, or not DER at all: ValidationException;
    an unknown KeyAgreementAlgorithm too."""
    kid = keys.id(spec, KA)
    others = [ec.generate_private_key(EC_CURVE[s]()).public_key() for s in EC_CURVE if s != spec]
    others.append(ed25519.Ed25519PrivateKey.generate().public_key())
    for pub in others:
        with kms_error("ValidationException"):
            kms.derive_shared_secret(KeyId=kid, KeyAgreementAlgorithm="ECDH", PublicKey=spki(pub))
    with kms_error("ValidationException"):
        kms.derive_shared_secret(KeyId=kid, KeyAgreementAlgorithm="ECDH", PublicKey=b"\x30\x03not der")
    good = spki(ec.generate_private_key(EC_CURVE[spec]()).public_key())
    with kms_error("ValidationException"):
        kms.derive_shared_secret(KeyId=kid, KeyAgreementAlgorithm="ECDH_COFACTOR", PublicKey=good)


@pytest.mark.parametrize("which", ["ecc-sign", "symmetric", "rsa"])
def test_derive_shared_secret_needs_a_key_agreement_key(kms, keys, sym_key, which):
    """DeriveSharedSecret with a SIGN_VERIFY, symmetric or RSA key: InvalidKeyUsageException."""
    kid = {"ecc-sign": keys.id("ECC_NIST_P256", SV), "symmetric": sym_key,
           "rsa": keys.id("RSA_2048", ED)}[which]
    peer = spki(ec.generate_private_key(ec.SECP256R1()).public_key())
    with kms_error("InvalidKeyUsageException"):
        kms.derive_shared_secret(KeyId=kid, KeyAgreementAlgorithm="ECDH", PublicKey=peer)


# ============================================================================= data key pairs


def check_pair(kms, sym_key, spec, r, ctx, private_der):
    assert r["KeyPairSpec"] == spec, r.get("KeyPairSpec")
    assert r["KeyId"] == kms.describe_key(KeyId=sym_key)["KeyMetadata"]["Arn"] or r["KeyId"] == sym_key
    priv = serialization.load_der_private_key(private_der, password=None)
    assert spki(priv.public_key()) == r["PublicKey"], "PublicKey does not belong to the private key"
    if spec in RSA_BITS:
        assert isinstance(priv, rsa.RSAPrivateKey) and priv.key_size == RSA_BITS[spec]
    elif spec in EC_CURVE:
        assert isinstance(priv, ec.EllipticCurvePrivateKey) and priv.curve.name == EC_CURVE[spec].name
    else:
        assert isinstance(priv, ed25519.Ed25519PrivateKey)
    # The private key is usable: it signs something its public key verifies.
    if isinstance(priv, rsa.RSAPrivateKey):
        priv.public_key().verify(priv.sign(b"m", padding.PKCS1v15(), hashes.SHA256()), b"m",
                                 padding.PKCS1v15(), hashes.SHA256())
    elif isinstance(priv, ec.EllipticCurvePrivateKey):
        priv.public_key().verify(priv.sign(b"m", ec.ECDSA(hashes.SHA256())), b"m", ec.ECDSA(hashes.SHA256()))
    else:
        priv.public_key().verify(priv.sign(b"m"), b"m")
    blob = r["PrivateKeyCiphertextBlob"]
    assert private_der not in blob
    d = kms.decrypt(CiphertextBlob=blob, EncryptionContext=ctx)
    assert d["Plaintext"] == private_der
    with kms_error("InvalidCiphertextException"):
        kms.decrypt(CiphertextBlob=blob, EncryptionContext={**ctx, "pair": "other"})
    with kms_error("InvalidCiphertextException"):
        kms.decrypt(CiphertextBlob=blob)


@pytest.mark.parametrize("spec", KEY_PAIR_SPECS)
def test_generate_data_key_pair(kms, sym_key, spec):
    """GenerateDataKeyPair returns a PKCS#8 private key, its SPKI public key, and the
    private key encrypted under the symmetric key (bound to the EncryptionContext)."""
    ctx = {"pair": spec}
    r = kms.generate_data_key_pair(KeyId=sym_key, KeyPairSpec=spec, EncryptionContext=ctx)
    check_pair(kms, sym_key, spec, r, ctx, r["PrivateKeyPlaintext"])


@pytest.mark.parametrize("spec", ["RSA_2048", "ECC_NIST_P256", "ECC_SECG_P256K1", "ECC_NIST_EDWARDS25519"])
def test_generate_data_key_pair_without_plaintext(kms, sym_key, spec):
    """GenerateDataKeyPairWithoutPlaintext returns no private key; its ciphertext decrypts
    to one that matches PublicKey."""
    ctx = {"pair": spec, "mode": "without"}
    r = kms.generate_data_key_pair_without_plaintext(KeyId=sym_key, KeyPairSpec=spec, EncryptionContext=ctx)
    assert "PrivateKeyPlaintext" not in r
    private_der = kms.decrypt(CiphertextBlob=r["PrivateKeyCiphertextBlob"], EncryptionContext=ctx)["Plaintext"]
    check_pair(kms, sym_key, spec, r, ctx, private_der)


def test_data_key_pairs_are_fresh(kms, sym_key):
    """Every call makes a new pair."""
    pubs = {kms.generate_data_key_pair(KeyId=sym_key, KeyPairSpec="ECC_NIST_P256")["PublicKey"] for _ in range(3)}
    pubs |= {kms.generate_data_key_pair_without_plaintext(KeyId=sym_key, KeyPairSpec="ECC_NIST_P256")["PublicKey"]
             for _ in range(2)}
    assert len(pubs) == 5


def test_generate_data_key_pair_errors(kms, keys, sym_key):
    """Unknown KeyPairSpec: ValidationException. A non-symmetric wrapping key:
    InvalidKeyUsageException."""
    for spec in ("RSA_1024", "HMAC_256", "ML_DSA_65", "SYMMETRIC_DEFAULT", ""):
        with kms_error("ValidationException"):
            kms.generate_data_key_pair(KeyId=sym_key, KeyPairSpec=spec)
        with kms_error("ValidationException"):
            kms.generate_data_key_pair_without_plaintext(KeyId=sym_key, KeyPairSpec=spec)
    for kid in (keys.id("RSA_2048", ED), keys.id("ECC_NIST_P256", SV), keys.id("HMAC_256", MAC)):
        with kms_error("InvalidKeyUsageException"):
            kms.generate_data_key_pair(KeyId=kid, KeyPairSpec="ECC_NIST_P256")
        with kms_error("InvalidKeyUsageException"):
            kms.generate_data_key_pair_without_plaintext(KeyId=kid, KeyPairSpec="ECC_NIST_P256")


# ============================================================================= rotation


def rotation_count(kms, kid):
    return len(kms.list_key_rotations(KeyId=kid)["Rotations"])


def test_rotate_ecc_signing_key(kms):
    """After RotateKeyOnDemand an ECC signing key has a new public key; old signatures still
    verify in kcm, new ones verify offline under the new public key only."""
    kid = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage=SV)["KeyMetadata"]["KeyId"]
    old_pub = kms.get_public_key(KeyId=kid)["PublicKey"]
    message = os.urandom(40)
    old_sig = kms.sign(KeyId=kid, Message=message, SigningAlgorithm="ECDSA_SHA_256")["Signature"]
    verify_offline(old_pub, "ECDSA_SHA_256", message, old_sig)

    kms.rotate_key_on_demand(KeyId=kid)
    assert rotation_count(kms, kid) == 1
    new_pub = kms.get_public_key(KeyId=kid)["PublicKey"]
    assert new_pub != old_pub
    assert kms.verify(KeyId=kid, Message=message, Signature=old_sig,
                      SigningAlgorithm="ECDSA_SHA_256")["SignatureValid"] is True
    new_sig = kms.sign(KeyId=kid, Message=message, SigningAlgorithm="ECDSA_SHA_256")["Signature"]
    verify_offline(new_pub, "ECDSA_SHA_256", message, new_sig)
    assert not offline_valid(old_pub, "ECDSA_SHA_256", message, new_sig), "signed with the old version"
    assert kms.verify(KeyId=kid, Message=message, Signature=new_sig,
                      SigningAlgorithm="ECDSA_SHA_256")["SignatureValid"] is True
    # Still not a free pass: a foreign signature is refused after rotation too.
    with kms_error("KMSInvalidSignatureException"):
        kms.verify(KeyId=kid, Message=message, Signature=foreign_signature("ECC_NIST_P256", "ECDSA_SHA_256", message),
                   SigningAlgorithm="ECDSA_SHA_256")
    md = kms.describe_key(KeyId=kid)["KeyMetadata"]
    assert md["KeySpec"] == "ECC_NIST_P256" and md["KeyUsage"] == SV and md["KeyState"] == "Enabled"


def test_rotate_rsa_encryption_key(kms):
    """After RotateKeyOnDemand an RSA encryption key still decrypts what was encrypted offline
    under its old public key, and what is encrypted under the new one."""
    kid = kms.create_key(KeySpec="RSA_2048", KeyUsage=ED)["KeyMetadata"]["KeyId"]
    alg = "RSAES_OAEP_SHA_256"
    old_pub_der = kms.get_public_key(KeyId=kid)["PublicKey"]
    old_ct = load_public(old_pub_der).encrypt(b"before rotation", oaep(alg))
    kms_old_ct = kms.encrypt(KeyId=kid, Plaintext=b"kcm before", EncryptionAlgorithm=alg)["CiphertextBlob"]

    kms.rotate_key_on_demand(KeyId=kid)
    assert rotation_count(kms, kid) == 1
    new_pub_der = kms.get_public_key(KeyId=kid)["PublicKey"]
    assert new_pub_der != old_pub_der
    assert kms.decrypt(KeyId=kid, CiphertextBlob=old_ct, EncryptionAlgorithm=alg)["Plaintext"] == b"before rotation"
    assert kms.decrypt(KeyId=kid, CiphertextBlob=kms_old_ct, EncryptionAlgorithm=alg)["Plaintext"] == b"kcm before"
    new_ct = load_public(new_pub_der).encrypt(b"after rotation", oaep(alg))
    assert kms.decrypt(KeyId=kid, CiphertextBlob=new_ct, EncryptionAlgorithm=alg)["Plaintext"] == b"after rotation"
    ct = kms.encrypt(KeyId=kid, Plaintext=b"kcm after", EncryptionAlgorithm=alg)["CiphertextBlob"]
    assert kms.decrypt(KeyId=kid, CiphertextBlob=ct, EncryptionAlgorithm=alg)["Plaintext"] == b"kcm after"
    with kms_error("InvalidCiphertextException"):
        kms.decrypt(KeyId=kid, CiphertextBlob=flip(old_ct, 5), EncryptionAlgorithm=alg)


def test_rotate_hmac_key(kms):
    """After RotateKeyOnDemand an HMAC key still verifies MACs made before, and makes new
    (different) MACs that verify too."""
    kid = kms.create_key(KeySpec="HMAC_256", KeyUsage=MAC)["KeyMetadata"]["KeyId"]
    message = os.urandom(30)
    old_mac = kms.generate_mac(KeyId=kid, Message=message, MacAlgorithm="HMAC_SHA_256")["Mac"]
    kms.rotate_key_on_demand(KeyId=kid)
    assert rotation_count(kms, kid) == 1
    assert kms.verify_mac(KeyId=kid, Message=message, Mac=old_mac, MacAlgorithm="HMAC_SHA_256")["MacValid"] is True
    new_mac = kms.generate_mac(KeyId=kid, Message=message, MacAlgorithm="HMAC_SHA_256")["Mac"]
    assert new_mac != old_mac
    assert kms.verify_mac(KeyId=kid, Message=message, Mac=new_mac, MacAlgorithm="HMAC_SHA_256")["MacValid"] is True
    with kms_error("KMSInvalidMacException"):
        kms.verify_mac(KeyId=kid, Message=message + b"x", Mac=old_mac, MacAlgorithm="HMAC_SHA_256")


# ============================================================================= lifecycle, kill switch, roles


def test_disabled_keys_refuse_everything(kms):
    """A disabled signing / HMAC key refuses Sign, Verify, GetPublicKey, GenerateMac and
    VerifyMac with DisabledException; enabled again, they all work."""
    sk = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage=SV)["KeyMetadata"]["KeyId"]
    hk = kms.create_key(KeySpec="HMAC_256", KeyUsage=MAC)["KeyMetadata"]["KeyId"]
    sig = kms.sign(KeyId=sk, Message=b"m", SigningAlgorithm="ECDSA_SHA_256")["Signature"]
    mac = kms.generate_mac(KeyId=hk, Message=b"m", MacAlgorithm="HMAC_SHA_256")["Mac"]
    kms.disable_key(KeyId=sk)
    kms.disable_key(KeyId=hk)
    with kms_error("DisabledException"):
        kms.sign(KeyId=sk, Message=b"m", SigningAlgorithm="ECDSA_SHA_256")
    with kms_error("DisabledException"):
        kms.verify(KeyId=sk, Message=b"m", Signature=sig, SigningAlgorithm="ECDSA_SHA_256")
    with kms_error("DisabledException"):
        kms.get_public_key(KeyId=sk)
    with kms_error("DisabledException"):
        kms.generate_mac(KeyId=hk, Message=b"m", MacAlgorithm="HMAC_SHA_256")
    with kms_error("DisabledException"):
        kms.verify_mac(KeyId=hk, Message=b"m", Mac=mac, MacAlgorithm="HMAC_SHA_256")
    kms.enable_key(KeyId=sk)
    kms.enable_key(KeyId=hk)
    pub = kms.get_public_key(KeyId=sk)["PublicKey"]
    new_sig = kms.sign(KeyId=sk, Message=b"n", SigningAlgorithm="ECDSA_SHA_256")["Signature"]
    verify_offline(pub, "ECDSA_SHA_256", b"n", new_sig)
    assert kms.verify(KeyId=sk, Message=b"m", Signature=sig,
                      SigningAlgorithm="ECDSA_SHA_256")["SignatureValid"] is True
    assert kms.generate_mac(KeyId=hk, Message=b"m", MacAlgorithm="HMAC_SHA_256")["Mac"] == mac
    assert kms.verify_mac(KeyId=hk, Message=b"m", Mac=mac, MacAlgorithm="HMAC_SHA_256")["MacValid"] is True


def _refused_at_once(call, code: str) -> None:
    """The kill switch is immediate on the node that threw it (it drops its caches
    before it answers): the first call after the change is refused, with `code`."""
    with kms_error(code):
        call()


def test_root_key_kill_switch_on_asymmetric_and_hmac_keys(spawn_server):
    """Disabling the tenant's root key refuses Sign, Verify, GenerateMac, VerifyMac, RSA
    Decrypt, DeriveSharedSecret and GetPublicKey; suspending it (decrypt-only) refuses
    Sign, GenerateMac and RSA Encrypt but keeps Verify, VerifyMac, RSA Decrypt,
    DeriveSharedSecret (it reads what was sent to the key) and GetPublicKey; enabling
    it restores everything."""
    srv = spawn_server(env={"KCM_REVOCATION_BOUND_MS": "500"})
    kms = srv.client("default")
    root = next(r for r in srv.v1_ok("GET", "/v1/root-keys")["root_keys"] if r["default"])
    sk = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage=SV)["KeyMetadata"]["KeyId"]
    hk = kms.create_key(KeySpec="HMAC_256", KeyUsage=MAC)["KeyMetadata"]["KeyId"]
    pub = kms.get_public_key(KeyId=sk)["PublicKey"]
    sig = kms.sign(KeyId=sk, Message=b"m", SigningAlgorithm="ECDSA_SHA_256")["Signature"]
    mac = kms.generate_mac(KeyId=hk, Message=b"m", MacAlgorithm="HMAC_SHA_256")["Mac"]
    rk = kms.create_key(KeySpec="RSA_2048", KeyUsage=ED)["KeyMetadata"]["KeyId"]
    rsa_pub = serialization.load_der_public_key(kms.get_public_key(KeyId=rk)["PublicKey"])
    oaep = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)
    rsa_ct = rsa_pub.encrypt(b"for the key", oaep)
    ak = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage=KA)["KeyMetadata"]["KeyId"]
    peer = ec.generate_private_key(ec.SECP256R1())
    peer_spki = peer.public_key().public_bytes(serialization.Encoding.DER,
                                               serialization.PublicFormat.SubjectPublicKeyInfo)
    expected_secret = peer.exchange(ec.ECDH(), serialization.load_der_public_key(
        kms.get_public_key(KeyId=ak)["PublicKey"]))

    def rsa_decrypt():
        return kms.decrypt(KeyId=rk, CiphertextBlob=rsa_ct, EncryptionAlgorithm="RSAES_OAEP_SHA_256")

    def rsa_encrypt():
        return kms.encrypt(KeyId=rk, Plaintext=b"new", EncryptionAlgorithm="RSAES_OAEP_SHA_256")

    def derive():
        return kms.derive_shared_secret(KeyId=ak, KeyAgreementAlgorithm="ECDH", PublicKey=peer_spki)

    def public_key():
        return kms.get_public_key(KeyId=sk)

    def sign():
        return kms.sign(KeyId=sk, Message=b"m", SigningAlgorithm="ECDSA_SHA_256")

    def verify():
        return kms.verify(KeyId=sk, Message=b"m", Signature=sig, SigningAlgorithm="ECDSA_SHA_256")

    def gen_mac():
        return kms.generate_mac(KeyId=hk, Message=b"m", MacAlgorithm="HMAC_SHA_256")

    def verify_mac():
        return kms.verify_mac(KeyId=hk, Message=b"m", Mac=mac, MacAlgorithm="HMAC_SHA_256")

    # Disabled: DisabledException; suspended: KMSInvalidStateException (README, "the
    # kill switch").
    srv.v1_ok("POST", f"/v1/root-keys/{root['id']}/disable")
    _refused_at_once(sign, "DisabledException")
    for call in (verify, gen_mac, verify_mac, rsa_decrypt, rsa_encrypt, derive, public_key):
        with kms_error("DisabledException"):
            call()

    srv.v1_ok("POST", f"/v1/root-keys/{root['id']}/enable")
    srv.v1_ok("POST", f"/v1/root-keys/{root['id']}/suspend")
    _refused_at_once(sign, "KMSInvalidStateException")
    for call in (gen_mac, rsa_encrypt):
        with kms_error("KMSInvalidStateException"):
            call()
    assert verify()["SignatureValid"] is True
    assert verify_mac()["MacValid"] is True
    assert rsa_decrypt()["Plaintext"] == b"for the key"
    assert derive()["SharedSecret"] == expected_secret
    assert public_key()["PublicKey"] == pub

    srv.v1_ok("POST", f"/v1/root-keys/{root['id']}/enable")
    verify_offline(pub, "ECDSA_SHA_256", b"m", sign()["Signature"])
    assert gen_mac()["Mac"] == mac
    assert verify()["SignatureValid"] is True and verify_mac()["MacValid"] is True


def test_key_admin_cannot_use_asymmetric_keys(server, kms, keys):
    """A key-admin (manages keys, no data-plane use) may create a signing key but is refused
    Sign and GenerateMac with AccessDeniedException; a key-user may sign with the same key."""
    admin = server.client_for(server.create_access_key("key-admin"))
    user = server.client_for(server.create_access_key("key-user"))
    kid = admin.create_key(KeySpec="ECC_NIST_P256", KeyUsage=SV)["KeyMetadata"]["KeyId"]
    assert admin.describe_key(KeyId=kid)["KeyMetadata"]["KeySpec"] == "ECC_NIST_P256"
    with kms_error("AccessDeniedException"):
        admin.sign(KeyId=kid, Message=b"m", SigningAlgorithm="ECDSA_SHA_256")
    with kms_error("AccessDeniedException"):
        admin.generate_mac(KeyId=keys.id("HMAC_256", MAC), Message=b"m", MacAlgorithm="HMAC_SHA_256")
    sig = user.sign(KeyId=kid, Message=b"m", SigningAlgorithm="ECDSA_SHA_256")["Signature"]
    verify_offline(kms.get_public_key(KeyId=kid)["PublicKey"], "ECDSA_SHA_256", b"m", sig)
