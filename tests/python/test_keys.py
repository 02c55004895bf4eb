"""Key lifecycle through the AWS KMS API (boto3)."""

from __future__ import annotations

import datetime as dt
import time
import uuid

import pytest

from kcmtest import FAST_DAY_SECONDS, assert_days_after, ALIAS_ARN_RE, KEY_ARN_RE, REGION, UUID_RE, kms_error, kms_pages, poll, unique
from botocore.exceptions import ClientError


def meta(kms, key_id):
    return kms.describe_key(KeyId=key_id)["KeyMetadata"]


def now():
    return dt.datetime.now(dt.timezone.utc)


# --------------------------------------------------------------------- CreateKey


def test_create_key_metadata(kms):
    desc = unique("create")
    before = now() - dt.timedelta(minutes=5)
    md = kms.create_key(
        Description=desc,
        Tags=[{"TagKey": "team", "TagValue": "storage"}, {"TagKey": "env", "TagValue": ""}],
    )["KeyMetadata"]
    assert UUID_RE.fullmatch(md["KeyId"]), md["KeyId"]
    m = KEY_ARN_RE.match(md["Arn"])
    assert m, md["Arn"]
    assert m["id"] == md["KeyId"]
    assert m["region"] == REGION
    assert md["AWSAccountId"] == m["account"]
    assert md["Description"] == desc
    assert md["Enabled"] is True
    assert md["KeyState"] == "Enabled"
    assert md["KeyUsage"] == "ENCRYPT_DECRYPT"
    assert md["KeySpec"] == "SYMMETRIC_DEFAULT"
    assert md["Origin"] == "AWS_KMS"
    assert md["KeyManager"] == "CUSTOMER"
    assert md["EncryptionAlgorithms"] == ["SYMMETRIC_DEFAULT"]
    assert before <= md["CreationDate"] <= now() + dt.timedelta(minutes=5)
    assert "DeletionDate" not in md

    tags = kms.list_resource_tags(KeyId=md["KeyId"])["Tags"]
    assert sorted((t["TagKey"], t["TagValue"]) for t in tags) == [("env", ""), ("team", "storage")]

    # DescribeKey returns the same facts.
    d = meta(kms, md["KeyId"])
    for field in ("KeyId", "Arn", "AWSAccountId", "Description", "KeyState", "KeySpec", "KeyUsage",
                  "Origin", "KeyManager", "Enabled"):
        assert d[field] == md[field], field


def test_create_key_defaults(kms):
    md = kms.create_key()["KeyMetadata"]
    assert md["KeyState"] == "Enabled"
    assert md.get("Description", "") == ""
    assert md["KeySpec"] == "SYMMETRIC_DEFAULT"
    assert kms.list_resource_tags(KeyId=md["KeyId"])["Tags"] == []


def test_create_key_ids_are_unique(kms):
    ids = {kms.create_key()["KeyMetadata"]["KeyId"] for _ in range(5)}
    assert len(ids) == 5


@pytest.mark.parametrize("spec,usage,code", [
    # Key specs of AWS's list that kcm does not offer: "a specified parameter is not
    # supported", UnsupportedOperationException (as AWS KMS answers SM2 outside its China
    # Regions).
    ("SM2", "SIGN_VERIFY", "UnsupportedOperationException"),
    ("ML_KEM_768", "KEY_AGREEMENT", "UnsupportedOperationException"),
    ("ML_KEM_768", "ENCAPSULATE_DECAPSULATE", "UnsupportedOperationException"),
    # A usage the spec does not allow: the request is not valid.
    ("ECC_SECG_P256K1", "KEY_AGREEMENT", "ValidationException"),
    ("HMAC_256", "SIGN_VERIFY", "ValidationException"),
    # A spec that is no spec at all.
    ("RSA_1024", "SIGN_VERIFY", "ValidationException"),
])
def test_create_key_unsupported_spec_or_usage(kms, spec, usage, code):
    """Specs kcm does not offer (SM2, ML-KEM) and usages a spec does not allow are
    refused, each with its one error, and nothing is created."""
    n_before = _count_keys(kms)
    with kms_error(code) as ei:
        kms.create_key(KeySpec=spec, KeyUsage=usage)
    assert spec in ei.value.response["Error"]["Message"] or usage in ei.value.response["Error"]["Message"], ei.value
    assert _count_keys(kms) == n_before, "a refused CreateKey must not create a key"


@pytest.mark.parametrize("spec", ["SM2", "ML_KEM_512"])
def test_generate_data_key_pair_unsupported_spec(kms, spec):
    """A data key pair spec of AWS's list that kcm does not offer: UnsupportedOperationException."""
    kid = kms.create_key()["KeyMetadata"]["KeyId"]
    with kms_error("UnsupportedOperationException") as ei:
        kms.generate_data_key_pair(KeyId=kid, KeyPairSpec=spec)
    assert spec in ei.value.response["Error"]["Message"], ei.value
    with kms_error("ValidationException"):
        kms.generate_data_key_pair(KeyId=kid, KeyPairSpec="RSA_1024")


def test_create_key_bad_usage_for_symmetric(kms):
    with kms_error("ValidationException"):
        kms.create_key(KeySpec="SYMMETRIC_DEFAULT", KeyUsage="SIGN_VERIFY")


def test_create_key_description_too_long(kms):
    with kms_error("ValidationException"):
        kms.create_key(Description="x" * 8193)


def _count_keys(kms):
    return sum(len(page["Keys"]) for page in kms_pages(kms.list_keys, Limit=1000))


# --------------------------------------------------------------------- DescribeKey


def test_describe_key_by_every_identifier(kms, new_key):
    kid = new_key()
    md = meta(kms, kid)
    alias = "alias/" + unique("desc")
    kms.create_alias(AliasName=alias, TargetKeyId=kid)
    alias_arn = f"arn:aws:kms:{REGION}:{md['AWSAccountId']}:alias/{alias[len('alias/'):]}"
    assert ALIAS_ARN_RE.match(alias_arn)
    for ident in (kid, md["Arn"], alias, alias_arn):
        got = meta(kms, ident)
        assert got["KeyId"] == kid, ident
        assert got["Arn"] == md["Arn"], ident


def test_describe_unknown_key(kms):
    with kms_error("NotFoundException"):
        kms.describe_key(KeyId=str(uuid.uuid4()))
    acct = kms.describe_key(KeyId=kms.create_key()["KeyMetadata"]["KeyId"])["KeyMetadata"]["AWSAccountId"]
    with kms_error("NotFoundException"):
        kms.describe_key(KeyId=f"arn:aws:kms:{REGION}:{acct}:key/{uuid.uuid4()}")
    with kms_error("NotFoundException"):
        kms.describe_key(KeyId="alias/" + unique("nosuch"))


@pytest.mark.parametrize("bad", ["not-a-key", "1234", "arn:aws:kms:us-east-1:abc:key/zzz", "key/", "../../etc/passwd"])
def test_describe_malformed_key_id(kms, bad):
    with kms_error("NotFoundException"):
        kms.describe_key(KeyId=bad)


def test_describe_empty_key_id(kms):
    with kms_error("ValidationException"):
        kms.describe_key(KeyId="")


def test_missing_required_parameter(kms):
    # KeyId missing altogether (client-side validation is off in these tests).
    with kms_error("ValidationException"):
        kms.describe_key()


def test_keys_are_tenant_isolated(kms, new_key, other_tenant):
    kid = new_key()
    arn = meta(kms, kid)["Arn"]
    okms = other_tenant["kms"]
    for ident in (kid, arn):
        with kms_error("NotFoundException"):
            okms.describe_key(KeyId=ident)
    seen = {k["KeyId"] for page in kms_pages(okms.list_keys) for k in page["Keys"]}
    assert kid not in seen
    with kms_error("NotFoundException"):
        okms.disable_key(KeyId=arn)
    assert meta(kms, kid)["KeyState"] == "Enabled"


# --------------------------------------------------------------------- ListKeys


def test_list_keys_paging(kms):
    created = [kms.create_key(Description=unique("page"))["KeyMetadata"] for _ in range(5)]
    arns = {m["KeyId"]: m["Arn"] for m in created}
    seen = []
    marker = None
    pages = 0
    for _ in range(5000):
        kw = {"Limit": 2}
        if marker:
            kw["Marker"] = marker
        r = kms.list_keys(**kw)
        pages += 1
        assert len(r["Keys"]) <= 2
        for k in r["Keys"]:
            seen.append(k["KeyId"])
            if k["KeyId"] in arns:
                assert k["KeyArn"] == arns[k["KeyId"]]
        if r.get("Truncated"):
            assert r.get("NextMarker"), "Truncated without NextMarker"
            marker = r["NextMarker"]
        else:
            assert not r.get("NextMarker")
            break
    else:
        raise AssertionError("ListKeys paging did not end")
    assert len(seen) == len(set(seen)), "a key was listed twice"
    for kid in arns:
        assert seen.count(kid) == 1, kid
    assert pages >= 3
    # Unpaged listing agrees with the paged one.
    assert _count_keys(kms) == len(seen)


def test_list_keys_bad_marker(kms):
    kms.create_key()
    with kms_error("InvalidMarkerException"):
        kms.list_keys(Limit=1, Marker="this-is-not-a-marker!!")


@pytest.mark.parametrize("limit", [0, 1001])
def test_list_keys_bad_limit(kms, limit):
    with kms_error("ValidationException"):
        kms.list_keys(Limit=limit)


# --------------------------------------------------------------------- description, enable/disable


def test_update_key_description(kms, new_key):
    kid = new_key(Description="before")
    kms.update_key_description(KeyId=kid, Description="after")
    assert meta(kms, kid)["Description"] == "after"
    with kms_error("ValidationException"):
        kms.update_key_description(KeyId=kid, Description="y" * 8193)
    assert meta(kms, kid)["Description"] == "after"
    with kms_error("NotFoundException"):
        kms.update_key_description(KeyId=str(uuid.uuid4()), Description="x")


def test_disable_and_enable(kms, new_key):
    kid = new_key()
    ct = kms.encrypt(KeyId=kid, Plaintext=b"hello")["CiphertextBlob"]
    kms.disable_key(KeyId=kid)
    md = meta(kms, kid)
    assert md["KeyState"] == "Disabled"
    assert md["Enabled"] is False
    with kms_error("DisabledException"):
        kms.encrypt(KeyId=kid, Plaintext=b"hello")
    with kms_error("DisabledException"):
        kms.decrypt(CiphertextBlob=ct)
    with kms_error("DisabledException"):
        kms.generate_data_key(KeyId=kid, KeySpec="AES_256")
    # Disabling twice is fine (AWS: idempotent).
    kms.disable_key(KeyId=kid)
    kms.enable_key(KeyId=kid)
    md = meta(kms, kid)
    assert md["KeyState"] == "Enabled" and md["Enabled"] is True
    assert kms.decrypt(CiphertextBlob=ct)["Plaintext"] == b"hello"


def test_enable_unknown_key(kms):
    for op in (kms.enable_key, kms.disable_key):
        with kms_error("NotFoundException"):
            op(KeyId=str(uuid.uuid4()))


# --------------------------------------------------------------------- deletion


def test_schedule_and_cancel_deletion(kms, new_key):
    kid = new_key()
    arn = meta(kms, kid)["Arn"]
    ct = kms.encrypt(KeyId=kid, Plaintext=b"keep me")["CiphertextBlob"]
    t0 = now()
    r = kms.schedule_key_deletion(KeyId=kid, PendingWindowInDays=7)
    t1 = now()
    assert r["KeyId"] in (kid, arn)
    assert r["KeyState"] == "PendingDeletion"
    assert r["PendingWindowInDays"] == 7
    assert_days_after(r["DeletionDate"], t0, t1, 7)

    md = meta(kms, kid)
    assert md["KeyState"] == "PendingDeletion"
    assert md["Enabled"] is False
    assert md["DeletionDate"] == r["DeletionDate"]
    with kms_error("KMSInvalidStateException"):
        kms.encrypt(KeyId=kid, Plaintext=b"x")
    with kms_error("KMSInvalidStateException"):
        kms.decrypt(CiphertextBlob=ct)
    with kms_error("KMSInvalidStateException"):
        kms.enable_key(KeyId=kid)
    with kms_error("KMSInvalidStateException"):
        kms.schedule_key_deletion(KeyId=kid, PendingWindowInDays=7)
    assert meta(kms, kid)["KeyState"] == "PendingDeletion"

    r = kms.cancel_key_deletion(KeyId=kid)
    assert r["KeyId"] in (kid, arn)
    md = meta(kms, kid)
    assert md["KeyState"] == "Disabled"
    assert "DeletionDate" not in md
    kms.enable_key(KeyId=kid)
    assert kms.decrypt(CiphertextBlob=ct)["Plaintext"] == b"keep me"


def test_schedule_deletion_default_window_is_30_days(kms, new_key):
    kid = new_key()
    t0 = now()
    r = kms.schedule_key_deletion(KeyId=kid)
    t1 = now()
    assert r["PendingWindowInDays"] == 30  # present in the answer, as AWS sends it
    assert_days_after(r["DeletionDate"], t0, t1, 30)
    kms.cancel_key_deletion(KeyId=kid)


@pytest.mark.parametrize("days", [0, 6, 31, 365])
def test_schedule_deletion_window_out_of_range(kms, new_key, days):
    kid = new_key()
    with kms_error("ValidationException"):
        kms.schedule_key_deletion(KeyId=kid, PendingWindowInDays=days)
    assert meta(kms, kid)["KeyState"] == "Enabled", "a refused ScheduleKeyDeletion changed the key"


def test_cancel_deletion_of_key_not_pending(kms, new_key):
    kid = new_key()
    with kms_error("KMSInvalidStateException"):
        kms.cancel_key_deletion(KeyId=kid)
    assert meta(kms, kid)["KeyState"] == "Enabled"


def test_schedule_deletion_of_disabled_key(kms, new_key):
    kid = new_key()
    kms.disable_key(KeyId=kid)
    kms.schedule_key_deletion(KeyId=kid, PendingWindowInDays=7)
    assert meta(kms, kid)["KeyState"] == "PendingDeletion"
    kms.cancel_key_deletion(KeyId=kid)
    assert meta(kms, kid)["KeyState"] == "Disabled"


@pytest.mark.slow
def test_key_destroyed_after_window(fast_server):
    """With KCM_DAY_SECONDS=0.05 a 7-day window is 0.35 s (30 days: 1.5 s)."""
    kms = fast_server.client("default")
    kid = kms.create_key(Description="doomed")["KeyMetadata"]["KeyId"]
    survivor = kms.create_key(Description="survivor")["KeyMetadata"]["KeyId"]
    ct = kms.encrypt(KeyId=kid, Plaintext=b"gone soon")["CiphertextBlob"]
    ct_survivor = kms.encrypt(KeyId=survivor, Plaintext=b"stays")["CiphertextBlob"]
    kms.schedule_key_deletion(KeyId=kid, PendingWindowInDays=30)
    assert meta(kms, kid)["KeyState"] == "PendingDeletion"

    def destroyed():
        try:
            kms.describe_key(KeyId=kid)
            return False
        except ClientError as e:
            assert e.response["Error"]["Code"] == "NotFoundException", e.response["Error"]
            return True

    poll(destroyed, timeout=30, interval=0.2, what="the key to be destroyed")
    # A ciphertext whose key is gone answers as one whose key never existed
    # (test_no_oracles.py); a key id that names nothing is NotFoundException.
    with kms_error("InvalidCiphertextException"):
        kms.decrypt(CiphertextBlob=ct)
    with kms_error("NotFoundException"):
        kms.encrypt(KeyId=kid, Plaintext=b"x")
    with kms_error("NotFoundException"):
        kms.cancel_key_deletion(KeyId=kid)
    listed = {k["KeyId"] for page in kms_pages(kms.list_keys) for k in page["Keys"]}
    assert kid not in listed
    assert survivor in listed
    # Other keys are untouched.
    assert kms.decrypt(CiphertextBlob=ct_survivor)["Plaintext"] == b"stays"


@pytest.mark.slow
def test_cancelled_deletion_is_not_carried_out(fast_server):
    kms = fast_server.client("default")
    kid = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.schedule_key_deletion(KeyId=kid, PendingWindowInDays=30)  # 1.5 s
    kms.cancel_key_deletion(KeyId=kid)
    time.sleep(30 * FAST_DAY_SECONDS + 1.0)
    assert meta(kms, kid)["KeyState"] == "Disabled"
