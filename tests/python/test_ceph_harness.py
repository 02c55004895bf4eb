"""The Ceph harness (tests/python/ceph.py) itself: a real one-node cluster whose RADOS Gateway
stores S3 objects in RADOS, where a test can read their raw bytes.

With RGW's built-in `testing` SSE-KMS backend (keys given in ceph.conf), these show what the
later Barbican tests against kcm will rely on: an object PUT with SSE-KMS reads back as its
plaintext through S3, while its bytes in RADOS do not contain it; an object PUT without
encryption is stored as it is; and RGW really encrypts with the key its KMS backend hands
it (with another key material under the same key id, the object no longer reads back).
"""

from __future__ import annotations

import os

import pytest
from botocore.exceptions import ClientError

from ceph import new_testing_kms_key
from kcmtest import unique

KEY_ID = "testkey-1"
KEY = new_testing_kms_key()
TESTING_KMS = {
    "rgw_crypt_s3_kms_backend": "testing",
    "rgw_crypt_s3_kms_encryption_keys": f"{KEY_ID}={KEY}",
}


@pytest.fixture(scope="module")
def s3_user(ceph):
    """(cluster, S3 client, bucket) for one new RGW user with one new bucket."""
    cluster = ceph(TESTING_KMS)
    access, secret = cluster.create_user(unique("harness"))
    s3 = cluster.s3_client(access, secret)
    bucket = unique("bucket")
    s3.create_bucket(Bucket=bucket)
    return cluster, s3, bucket


def marker(label: str) -> bytes:
    """A byte string that appears nowhere else."""
    return f"{label}-{os.urandom(12).hex()}-".encode()


def test_cluster_is_healthy(s3_user):
    cluster, _, _ = s3_user
    assert cluster.health().startswith("HEALTH_OK"), cluster.health()
    states = cluster.pg_states()
    assert set(states) == {"active+clean"}, states
    for name, pid in cluster.pids().items():
        assert pid is not None and os.path.exists(f"/proc/{pid}"), f"{name} is not running"


def test_unencrypted_object_is_plaintext_in_rados(s3_user):
    cluster, s3, bucket = s3_user
    m = marker("plain")
    body = m * 100
    put = s3.put_object(Bucket=bucket, Key="plain.txt", Body=body)
    assert "ServerSideEncryption" not in put
    assert s3.get_object(Bucket=bucket, Key="plain.txt")["Body"].read() == body
    found = cluster.find_in_data(m)
    assert len(found) == 1 and found[0].endswith("_plain.txt"), found
    assert "user.rgw.crypt.mode" not in cluster.object_xattrs(found[0])


@pytest.mark.parametrize("size", [1000, 9 * 1024 * 1024], ids=["small", "striped"])
def test_sse_kms_object_is_not_plaintext_in_rados(s3_user, size):
    cluster, s3, bucket = s3_user
    m = marker("secret")
    body = (m * (size // len(m) + 1))[:size]
    key = f"enc-{size}"
    before = set(cluster.data_objects())
    put = s3.put_object(Bucket=bucket, Key=key, Body=body, ServerSideEncryption="aws:kms",
                        SSEKMSKeyId=KEY_ID)
    assert put["ServerSideEncryption"] == "aws:kms"
    assert put["SSEKMSKeyId"] == KEY_ID
    got = s3.get_object(Bucket=bucket, Key=key)
    assert got["ServerSideEncryption"] == "aws:kms" and got["SSEKMSKeyId"] == KEY_ID
    assert got["Body"].read() == body

    new = sorted(set(cluster.data_objects()) - before)
    assert new, "the object left nothing in the data pool"
    if size > 4 * 1024 * 1024:
        assert len(new) > 1, f"a {size}-byte object should be striped over RADOS objects: {new}"
    raw = cluster.raw_data(names=new)
    assert sum(len(v) for v in raw.values()) >= size
    assert cluster.find_in_data(m) == []
    assert not any(m[:16] in v for v in raw.values())
    head = next(n for n in new if n.endswith("_" + key))
    xattrs = cluster.object_xattrs(head)
    assert xattrs.get("user.rgw.crypt.mode") == b"SSE-KMS", sorted(xattrs)
    assert xattrs.get("user.rgw.crypt.keyid") == KEY_ID.encode()


def test_rgw_decrypts_with_the_key_its_kms_gives(ceph, s3_user):
    """RGW restarted with other key material under the same key id: the object it encrypted
    no longer reads back (RGW has no integrity check, so it answers with other bytes), and a key
    id its KMS does not know is refused. Restored with the right key, it reads back again."""
    cluster, s3, bucket = s3_user
    body = marker("rekey") * 50
    s3.put_object(Bucket=bucket, Key="rekey", Body=body, ServerSideEncryption="aws:kms",
                  SSEKMSKeyId=KEY_ID)
    try:
        ceph({**TESTING_KMS, "rgw_crypt_s3_kms_encryption_keys": f"{KEY_ID}={new_testing_kms_key()}"})
        try:
            data = s3.get_object(Bucket=bucket, Key="rekey")["Body"].read()
        except ClientError:
            data = None
        assert data != body
        with pytest.raises(ClientError) as e:
            s3.put_object(Bucket=bucket, Key="nokey", Body=b"x", ServerSideEncryption="aws:kms",
                          SSEKMSKeyId="no-such-key")
        # Ceph's own testing KMS has no such key: RGW's 403 InvalidAccessKeyId.
        assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403, e.value.response
        assert e.value.response["Error"]["Code"] == "InvalidAccessKeyId", e.value.response
    finally:
        ceph(TESTING_KMS)
    assert s3.get_object(Bucket=bucket, Key="rekey")["Body"].read() == body
