"""Key rotation through the AWS KMS API (boto3)."""

from __future__ import annotations

import datetime as dt
import os
import uuid

import pytest

from kcmtest import FAST_DAY_SECONDS, assert_days_after, kms_error, kms_pages, poll


def now():
    return dt.datetime.now(dt.timezone.utc)


def rotations(kms, kid, limit=None):
    limit_arg = {"Limit": limit} if limit else {}
    return [r for page in kms_pages(kms.list_key_rotations, KeyId=kid, **limit_arg) for r in page["Rotations"]]


def test_rotation_status_default_off(kms, new_key):
    kid = new_key()
    st = kms.get_key_rotation_status(KeyId=kid)
    assert st["KeyRotationEnabled"] is False
    assert rotations(kms, kid) == []


def test_enable_disable_rotation(kms, new_key):
    kid = new_key()
    t0 = now()
    kms.enable_key_rotation(KeyId=kid)
    t1 = now()
    st = kms.get_key_rotation_status(KeyId=kid)
    assert st["KeyRotationEnabled"] is True
    assert st["RotationPeriodInDays"] == 365
    assert_days_after(st["NextRotationDate"], t0, t1, 365)

    # A new period counts from when it was set.
    t0 = now()
    kms.enable_key_rotation(KeyId=kid, RotationPeriodInDays=180)
    t1 = now()
    st = kms.get_key_rotation_status(KeyId=kid)
    assert st["KeyRotationEnabled"] is True
    assert st["RotationPeriodInDays"] == 180
    assert_days_after(st["NextRotationDate"], t0, t1, 180)

    kms.disable_key_rotation(KeyId=kid)
    st = kms.get_key_rotation_status(KeyId=kid)
    assert st["KeyRotationEnabled"] is False
    assert "NextRotationDate" not in st


def test_rotation_status_by_arn(kms, new_key):
    kid = new_key()
    arn = kms.describe_key(KeyId=kid)["KeyMetadata"]["Arn"]
    kms.enable_key_rotation(KeyId=arn, RotationPeriodInDays=90)
    st = kms.get_key_rotation_status(KeyId=arn)
    assert st["KeyRotationEnabled"] is True and st["RotationPeriodInDays"] == 90


@pytest.mark.parametrize("days", [89, 0, 2561])
def test_rotation_period_out_of_range(kms, new_key, days):
    kid = new_key()
    with kms_error("ValidationException"):
        kms.enable_key_rotation(KeyId=kid, RotationPeriodInDays=days)
    assert kms.get_key_rotation_status(KeyId=kid)["KeyRotationEnabled"] is False


def test_rotation_period_bounds_accepted(kms, new_key):
    for days in (90, 2560):
        kid = new_key()
        kms.enable_key_rotation(KeyId=kid, RotationPeriodInDays=days)
        assert kms.get_key_rotation_status(KeyId=kid)["RotationPeriodInDays"] == days


def test_rotation_of_disabled_key(kms, new_key):
    kid = new_key()
    kms.disable_key(KeyId=kid)
    with kms_error("DisabledException"):
        kms.enable_key_rotation(KeyId=kid)
    with kms_error("DisabledException"):
        kms.rotate_key_on_demand(KeyId=kid)
    assert rotations(kms, kid) == []


def test_rotation_unknown_key(kms):
    for op in (kms.enable_key_rotation, kms.disable_key_rotation, kms.get_key_rotation_status,
               kms.rotate_key_on_demand, kms.list_key_rotations):
        with kms_error("NotFoundException"):
            op(KeyId=str(uuid.uuid4()))


def test_rotate_on_demand(kms, new_key):
    kid = new_key()
    arn = kms.describe_key(KeyId=kid)["KeyMetadata"]["Arn"]
    pt_old = os.urandom(32)
    ct_old = kms.encrypt(KeyId=kid, Plaintext=pt_old, EncryptionContext={"v": "old"})["CiphertextBlob"]
    dk_old = kms.generate_data_key(KeyId=kid, KeySpec="AES_256")

    t0 = now() - dt.timedelta(minutes=5)
    r = kms.rotate_key_on_demand(KeyId=kid)
    assert r["KeyId"] in (kid, arn)
    rots = rotations(kms, kid)
    assert len(rots) == 1, rots
    assert rots[0]["RotationType"] == "ON_DEMAND"
    assert rots[0]["KeyId"] in (kid, arn)
    assert t0 <= rots[0]["RotationDate"] <= now() + dt.timedelta(minutes=5)

    # Old ciphertexts still decrypt; new ones decrypt too and are made with the new version.
    assert kms.decrypt(CiphertextBlob=ct_old, EncryptionContext={"v": "old"})["Plaintext"] == pt_old
    assert kms.decrypt(CiphertextBlob=dk_old["CiphertextBlob"])["Plaintext"] == dk_old["Plaintext"]
    pt_new = os.urandom(32)
    ct_new = kms.encrypt(KeyId=kid, Plaintext=pt_new)["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=ct_new)["Plaintext"] == pt_new

    kms.rotate_key_on_demand(KeyId=kid)
    rots = rotations(kms, kid)
    assert len(rots) == 2 and all(x["RotationType"] == "ON_DEMAND" for x in rots)
    assert kms.decrypt(CiphertextBlob=ct_old, EncryptionContext={"v": "old"})["Plaintext"] == pt_old
    assert kms.decrypt(CiphertextBlob=ct_new)["Plaintext"] == pt_new
    # Rotation does not change the key's identity or state.
    md = kms.describe_key(KeyId=kid)["KeyMetadata"]
    assert md["KeyId"] == kid and md["KeyState"] == "Enabled"


def test_list_key_rotations_paging(kms, new_key):
    kid = new_key()
    for _ in range(3):
        kms.rotate_key_on_demand(KeyId=kid)
    seen = []
    for page in kms_pages(kms.list_key_rotations, KeyId=kid, Limit=1):
        assert len(page["Rotations"]) <= 1
        seen.extend(page["Rotations"])
    assert len(seen) == 3
    assert all(x["RotationType"] == "ON_DEMAND" for x in seen)


def test_on_demand_rotation_limit(kms, new_key):
    """AWS allows at most 10 on-demand rotations per key."""
    kid = new_key()
    for _ in range(10):
        kms.rotate_key_on_demand(KeyId=kid)
    with kms_error("LimitExceededException"):
        kms.rotate_key_on_demand(KeyId=kid)
    assert len(rotations(kms, kid)) == 10


@pytest.mark.slow
def test_automatic_rotation(fast_server):
    """With KCM_DAY_SECONDS=0.05 a 90-day rotation period is 4.5 s."""
    kms = fast_server.client("default")
    kid = kms.create_key(Description="auto-rotate")["KeyMetadata"]["KeyId"]
    pt = os.urandom(32)
    ct = kms.encrypt(KeyId=kid, Plaintext=pt)["CiphertextBlob"]
    kms.enable_key_rotation(KeyId=kid, RotationPeriodInDays=90)
    st = kms.get_key_rotation_status(KeyId=kid)
    assert st["KeyRotationEnabled"] is True
    assert st["RotationPeriodInDays"] == 90
    first_next = st["NextRotationDate"]
    assert first_next > now() - dt.timedelta(seconds=5)

    period = 90 * FAST_DAY_SECONDS

    def automatic():
        return [x for x in rotations(kms, kid) if x["RotationType"] == "AUTOMATIC"]

    auto = poll(automatic, timeout=period * 4 + 20, interval=0.25, what="an AUTOMATIC rotation")
    assert auto[0]["KeyId"] in (kid, kms.describe_key(KeyId=kid)["KeyMetadata"]["Arn"])
    assert kms.decrypt(CiphertextBlob=ct)["Plaintext"] == pt
    ct2 = kms.encrypt(KeyId=kid, Plaintext=pt)["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=ct2)["Plaintext"] == pt
    st = kms.get_key_rotation_status(KeyId=kid)
    assert st["KeyRotationEnabled"] is True
    assert st["NextRotationDate"] > first_next, "NextRotationDate did not move on after the rotation"


@pytest.mark.slow
def test_no_automatic_rotation_when_disabled(fast_server):
    kms = fast_server.client("default")
    kid = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.enable_key_rotation(KeyId=kid, RotationPeriodInDays=90)
    kms.disable_key_rotation(KeyId=kid)
    import time

    time.sleep(90 * FAST_DAY_SECONDS * 1.5 + 1.0)
    assert [x for x in rotations(kms, kid) if x["RotationType"] == "AUTOMATIC"] == []
