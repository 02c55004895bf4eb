"""Cryptographic operations through the AWS KMS API (boto3)."""

from __future__ import annotations

import os
import uuid

import pytest

from kcmtest import kms_error, unique


@pytest.fixture
def key(kms, new_key):
    kid = new_key()
    arn = kms.describe_key(KeyId=kid)["KeyMetadata"]["Arn"]
    return {"id": kid, "arn": arn}


# --------------------------------------------------------------------- Encrypt / Decrypt


def test_round_trip(kms, key):
    pt = os.urandom(100)
    r = kms.encrypt(KeyId=key["id"], Plaintext=pt)
    assert r["KeyId"] in (key["arn"], key["id"])
    assert r.get("EncryptionAlgorithm", "SYMMETRIC_DEFAULT") == "SYMMETRIC_DEFAULT"
    ct = r["CiphertextBlob"]
    assert pt not in ct
    assert len(ct) > len(pt)
    d = kms.decrypt(CiphertextBlob=ct)  # no KeyId: the blob says which key
    assert d["Plaintext"] == pt
    assert d["KeyId"] in (key["arn"], key["id"])
    assert d.get("EncryptionAlgorithm", "SYMMETRIC_DEFAULT") == "SYMMETRIC_DEFAULT"
    for ident in (key["id"], key["arn"]):
        assert kms.decrypt(CiphertextBlob=ct, KeyId=ident)["Plaintext"] == pt


def test_ciphertexts_are_randomised(kms, key):
    pt = b"same plaintext every time"
    cts = {kms.encrypt(KeyId=key["id"], Plaintext=pt)["CiphertextBlob"] for _ in range(5)}
    assert len(cts) == 5
    for ct in cts:
        assert kms.decrypt(CiphertextBlob=ct)["Plaintext"] == pt


def test_encrypt_with_alias(kms, key):
    name = "alias/" + unique("crypt")
    kms.create_alias(AliasName=name, TargetKeyId=key["id"])
    account = key["arn"].split(":")[4]
    alias_arn = f"arn:aws:kms:us-east-1:{account}:{name}"
    for ident in (name, alias_arn):
        r = kms.encrypt(KeyId=ident, Plaintext=b"via alias")
        assert r["KeyId"] in (key["arn"], key["id"]), "Encrypt must report the key, not the alias"
        assert kms.decrypt(CiphertextBlob=r["CiphertextBlob"], KeyId=name)["Plaintext"] == b"via alias"


def test_encrypt_unknown_key(kms):
    with kms_error("NotFoundException"):
        kms.encrypt(KeyId=str(uuid.uuid4()), Plaintext=b"x")
    with kms_error("NotFoundException"):
        kms.encrypt(KeyId="alias/" + unique("none"), Plaintext=b"x")


def test_plaintext_size_limits(kms, key):
    with kms_error("ValidationException"):
        kms.encrypt(KeyId=key["id"], Plaintext=b"")
    with kms_error("ValidationException"):
        kms.encrypt(KeyId=key["id"], Plaintext=os.urandom(4097))
    big = os.urandom(4096)
    ct = kms.encrypt(KeyId=key["id"], Plaintext=big)["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=ct)["Plaintext"] == big
    one = kms.encrypt(KeyId=key["id"], Plaintext=b"\x00")["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=one)["Plaintext"] == b"\x00"


def test_encryption_context(kms, key):
    ctx = {"purpose": "test", "user": "alice", "ünïcode": "välue"}
    pt = os.urandom(32)
    ct = kms.encrypt(KeyId=key["id"], Plaintext=pt, EncryptionContext=ctx)["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=ct, EncryptionContext=ctx)["Plaintext"] == pt
    # Order of pairs does not matter.
    reordered = dict(reversed(list(ctx.items())))
    assert kms.decrypt(CiphertextBlob=ct, EncryptionContext=reordered)["Plaintext"] == pt
    wrong = [
        {},
        {"purpose": "test", "user": "alice"},
        {**ctx, "user": "mallory"},
        {**ctx, "extra": "pair"},
        {"Purpose": "test", "user": "alice", "ünïcode": "välue"},  # keys are case-sensitive
    ]
    for w in wrong:
        with kms_error("InvalidCiphertextException"):
            if w:
                kms.decrypt(CiphertextBlob=ct, EncryptionContext=w)
            else:
                kms.decrypt(CiphertextBlob=ct)
    # A ciphertext made without context does not decrypt with one.
    ct2 = kms.encrypt(KeyId=key["id"], Plaintext=pt)["CiphertextBlob"]
    with kms_error("InvalidCiphertextException"):
        kms.decrypt(CiphertextBlob=ct2, EncryptionContext={"purpose": "test"})


def test_context_canonicalisation_is_unambiguous(kms, key):
    """{"a": "b=c"} and {"a=b": "c"} must not be interchangeable."""
    ct = kms.encrypt(KeyId=key["id"], Plaintext=b"x", EncryptionContext={"a": "b=c"})["CiphertextBlob"]
    with kms_error("InvalidCiphertextException"):
        kms.decrypt(CiphertextBlob=ct, EncryptionContext={"a=b": "c"})
    ct = kms.encrypt(KeyId=key["id"], Plaintext=b"x", EncryptionContext={"a": "1", "b": "2"})["CiphertextBlob"]
    with kms_error("InvalidCiphertextException"):
        kms.decrypt(CiphertextBlob=ct, EncryptionContext={"a": "1,b=2"})


def test_tampered_ciphertext(kms, key):
    pt = os.urandom(48)
    ct = kms.encrypt(KeyId=key["id"], Plaintext=pt)["CiphertextBlob"]
    failures = []
    # Flip one bit in every byte position, one position at a time.
    for i in range(len(ct)):
        bad = bytearray(ct)
        bad[i] ^= 0x01
        try:
            with kms_error("InvalidCiphertextException"):
                kms.decrypt(CiphertextBlob=bytes(bad))
        except (AssertionError, pytest.fail.Exception) as e:  # collect, to report every bad position at once
            failures.append(f"byte {i}: {e}")
    assert not failures, "tampered ciphertexts not refused with InvalidCiphertextException:\n" + "\n".join(failures[:20])
    for bad in (ct[:-1], ct[: len(ct) // 2], ct[:5], ct + b"\x00", os.urandom(len(ct))):
        with kms_error("InvalidCiphertextException"):
            kms.decrypt(CiphertextBlob=bad)
    # The original still decrypts.
    assert kms.decrypt(CiphertextBlob=ct)["Plaintext"] == pt


def test_empty_ciphertext(kms):
    # Below CiphertextBlob's documented minimum length (1): the request is not valid.
    with kms_error("ValidationException"):
        kms.decrypt(CiphertextBlob=b"")


def test_decrypt_with_wrong_key_id(kms, key, new_key):
    other = new_key()
    ct = kms.encrypt(KeyId=key["id"], Plaintext=b"mine")["CiphertextBlob"]
    with kms_error("IncorrectKeyException"):
        kms.decrypt(CiphertextBlob=ct, KeyId=other)
    name = "alias/" + unique("wrong")
    kms.create_alias(AliasName=name, TargetKeyId=other)
    with kms_error("IncorrectKeyException"):
        kms.decrypt(CiphertextBlob=ct, KeyId=name)


# --------------------------------------------------------------------- ReEncrypt


def test_re_encrypt(kms, key, new_key):
    dest = new_key()
    dest_arn = kms.describe_key(KeyId=dest)["KeyMetadata"]["Arn"]
    pt = os.urandom(64)
    src_ctx = {"stage": "one"}
    dst_ctx = {"stage": "two"}
    ct = kms.encrypt(KeyId=key["id"], Plaintext=pt, EncryptionContext=src_ctx)["CiphertextBlob"]
    r = kms.re_encrypt(
        CiphertextBlob=ct,
        SourceEncryptionContext=src_ctx,
        DestinationKeyId=dest,
        DestinationEncryptionContext=dst_ctx,
    )
    assert r["SourceKeyId"] in (key["arn"], key["id"])
    assert r["KeyId"] in (dest_arn, dest)
    new_ct = r["CiphertextBlob"]
    assert pt not in new_ct
    d = kms.decrypt(CiphertextBlob=new_ct, EncryptionContext=dst_ctx)
    assert d["Plaintext"] == pt
    assert d["KeyId"] in (dest_arn, dest)
    with kms_error("InvalidCiphertextException"):
        kms.decrypt(CiphertextBlob=new_ct, EncryptionContext=src_ctx)
    with kms_error("IncorrectKeyException"):
        kms.decrypt(CiphertextBlob=new_ct, KeyId=key["id"], EncryptionContext=dst_ctx)


def test_re_encrypt_same_key_new_context(kms, key):
    ct = kms.encrypt(KeyId=key["id"], Plaintext=b"ctx", EncryptionContext={"v": "1"})["CiphertextBlob"]
    r = kms.re_encrypt(CiphertextBlob=ct, SourceEncryptionContext={"v": "1"}, DestinationKeyId=key["id"],
                       DestinationEncryptionContext={"v": "2"})
    assert kms.decrypt(CiphertextBlob=r["CiphertextBlob"], EncryptionContext={"v": "2"})["Plaintext"] == b"ctx"


def test_re_encrypt_errors(kms, key, new_key):
    dest = new_key()
    ct = kms.encrypt(KeyId=key["id"], Plaintext=b"x", EncryptionContext={"a": "b"})["CiphertextBlob"]
    with kms_error("InvalidCiphertextException"):
        kms.re_encrypt(CiphertextBlob=ct, SourceEncryptionContext={"a": "WRONG"}, DestinationKeyId=dest)
    with kms_error("IncorrectKeyException"):
        kms.re_encrypt(CiphertextBlob=ct, SourceEncryptionContext={"a": "b"}, SourceKeyId=dest,
                       DestinationKeyId=dest)
    with kms_error("NotFoundException"):
        kms.re_encrypt(CiphertextBlob=ct, SourceEncryptionContext={"a": "b"}, DestinationKeyId=str(uuid.uuid4()))
    kms.disable_key(KeyId=dest)
    with kms_error("DisabledException"):
        kms.re_encrypt(CiphertextBlob=ct, SourceEncryptionContext={"a": "b"}, DestinationKeyId=dest)
    kms.enable_key(KeyId=dest)
    kms.disable_key(KeyId=key["id"])
    with kms_error("DisabledException"):
        kms.re_encrypt(CiphertextBlob=ct, SourceEncryptionContext={"a": "b"}, DestinationKeyId=dest)
    kms.enable_key(KeyId=key["id"])


# --------------------------------------------------------------------- data keys


@pytest.mark.parametrize("spec,size", [("AES_256", 32), ("AES_128", 16)])
def test_generate_data_key_spec(kms, key, spec, size):
    r = kms.generate_data_key(KeyId=key["id"], KeySpec=spec)
    assert len(r["Plaintext"]) == size
    assert r["KeyId"] in (key["arn"], key["id"])
    assert r["Plaintext"] not in r["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=r["CiphertextBlob"])["Plaintext"] == r["Plaintext"]


@pytest.mark.parametrize("n", [1, 17, 64, 1024])
def test_generate_data_key_number_of_bytes(kms, key, n):
    r = kms.generate_data_key(KeyId=key["id"], NumberOfBytes=n, EncryptionContext={"n": str(n)})
    assert len(r["Plaintext"]) == n
    assert kms.decrypt(CiphertextBlob=r["CiphertextBlob"], EncryptionContext={"n": str(n)})["Plaintext"] == r["Plaintext"]
    with kms_error("InvalidCiphertextException"):
        kms.decrypt(CiphertextBlob=r["CiphertextBlob"])


def test_generate_data_keys_are_distinct(kms, key):
    pts = {kms.generate_data_key(KeyId=key["id"], KeySpec="AES_256")["Plaintext"] for _ in range(10)}
    assert len(pts) == 10


@pytest.mark.parametrize(
    "kwargs",
    [
        {},  # neither KeySpec nor NumberOfBytes
        {"KeySpec": "AES_256", "NumberOfBytes": 32},  # both
        {"NumberOfBytes": 0},
        {"NumberOfBytes": 1025},
        {"KeySpec": "AES_512"},
    ],
    ids=["neither", "both", "zero", "too-many", "bad-spec"],
)
def test_generate_data_key_invalid(kms, key, kwargs):
    with kms_error("ValidationException"):
        kms.generate_data_key(KeyId=key["id"], **kwargs)


def test_generate_data_key_without_plaintext(kms, key):
    r = kms.generate_data_key_without_plaintext(KeyId=key["id"], KeySpec="AES_256", EncryptionContext={"k": "v"})
    assert "Plaintext" not in r
    assert r["KeyId"] in (key["arn"], key["id"])
    d = kms.decrypt(CiphertextBlob=r["CiphertextBlob"], EncryptionContext={"k": "v"})
    assert len(d["Plaintext"]) == 32
    r = kms.generate_data_key_without_plaintext(KeyId=key["id"], NumberOfBytes=100)
    assert len(kms.decrypt(CiphertextBlob=r["CiphertextBlob"])["Plaintext"]) == 100
    with kms_error("ValidationException"):
        kms.generate_data_key_without_plaintext(KeyId=key["id"])


# --------------------------------------------------------------------- GenerateRandom


@pytest.mark.parametrize("n", [1, 16, 32, 1024])
def test_generate_random(kms, n):
    a = kms.generate_random(NumberOfBytes=n)["Plaintext"]
    assert len(a) == n
    if n >= 16:
        b = kms.generate_random(NumberOfBytes=n)["Plaintext"]
        assert a != b
        assert a != bytes(n)


@pytest.mark.parametrize("n", [0, 1025, -1])
def test_generate_random_invalid(kms, n):
    with kms_error("ValidationException"):
        kms.generate_random(NumberOfBytes=n)


# --------------------------------------------------------------------- tenants


def test_cross_tenant_ciphertext_refused(kms, key, other_tenant):
    okms = other_tenant["kms"]
    their_key = okms.create_key()["KeyMetadata"]["KeyId"]
    secret = os.urandom(32)
    ct = okms.encrypt(KeyId=their_key, Plaintext=secret)["CiphertextBlob"]
    assert okms.decrypt(CiphertextBlob=ct)["Plaintext"] == secret
    # Another tenant's key is answered exactly as a key that does not exist: the same
    # error, word for word, as a ciphertext naming a key id no tenant has (the key id
    # sits in bytes 1..17 of kcm's format).
    unknown = ct[:1] + uuid.uuid4().bytes + ct[17:]
    with kms_error("InvalidCiphertextException") as absent:
        kms.decrypt(CiphertextBlob=unknown)
    with kms_error("InvalidCiphertextException") as foreign:
        kms.decrypt(CiphertextBlob=ct)
    assert foreign.value.response["Error"] == absent.value.response["Error"]
    with kms_error("InvalidCiphertextException"):
        kms.re_encrypt(CiphertextBlob=ct, DestinationKeyId=key["id"])
    # And the other way round.
    mine = kms.encrypt(KeyId=key["id"], Plaintext=secret)["CiphertextBlob"]
    with kms_error("InvalidCiphertextException"):
        okms.decrypt(CiphertextBlob=mine)
    # An ARN of another account names no key the caller can see: NotFoundException, as
    # AWS answers.
    with kms_error("NotFoundException"):
        okms.encrypt(KeyId=key["arn"], Plaintext=b"x")
    with kms_error("NotFoundException"):
        okms.generate_data_key(KeyId=key["arn"], KeySpec="AES_256")


def test_dry_run_is_refused_and_does_nothing(kms, new_key):
    """kcm does not offer AWS's DryRun: a request with DryRun=true is refused, and
    is not carried out either (no grant is created, no ciphertext returned)."""
    key = new_key()
    with kms_error("UnsupportedOperationException"):
        kms.encrypt(KeyId=key, Plaintext=b"x", DryRun=True)
    with kms_error("UnsupportedOperationException"):
        kms.create_grant(KeyId=key, GranteePrincipal="arn:aws:iam::111122223333:root",
                         Operations=["Encrypt"], DryRun=True)
    assert kms.list_grants(KeyId=key)["Grants"] == []
    # DryRun=false is an ordinary call.
    assert kms.encrypt(KeyId=key, Plaintext=b"x", DryRun=False)["CiphertextBlob"]
