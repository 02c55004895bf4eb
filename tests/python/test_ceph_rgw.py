"""Object storage end to end: Ceph's RADOS Gateway encrypts S3 objects (SSE-KMS) with keys
it fetches from kcm's Barbican door — RGW's real `barbican` backend, with a real Keystone
and a real one-node Ceph cluster (tests/python/ceph.py).

RGW authenticates to Keystone as a project member (by password, v3), then for every PUT, GET
and HEAD of an encrypted object fetches `GET /v1/secrets/<key id>` (Accept:
application/octet-stream) and needs exactly 32 raw bytes. So the kill switch on the root key
above the project's system stops reads and writes of those objects within the revocation
bound, and enabling it brings them back; RADOS never holds their plaintext.
"""

from __future__ import annotations


import pytest
from botocore.exceptions import ClientError

from ceph import get, kill_switch_round, put, s3_error
from kcmtest import unique
from openstack_clients import Castellan
from openstack_cloud import OpenStackCloud

BOUND_S = 0.5


@pytest.fixture(scope="module")
def rgw(keystone, ceph, tmp_path_factory):
    """(cloud, cluster, s3 client, bucket, key id): RGW configured with kcm as its key
    manager, acting as member1 of project p1, and an AES-256 key ordered in p1."""
    cloud = OpenStackCloud.start(keystone, tmp_path_factory.mktemp("rgw"), revocation_bound_ms=int(BOUND_S * 1000))
    try:
        member = cloud.users["member1"]
        cluster = ceph({
            "rgw_crypt_s3_kms_backend": "barbican",
            "rgw_barbican_url": cloud.barbican_url,
            "rgw_keystone_url": keystone.url,
            "rgw_keystone_api_version": 3,
            "rgw_keystone_barbican_user": member.name,
            "rgw_keystone_barbican_password": member.password,
            "rgw_keystone_barbican_project": "p1",
            "rgw_keystone_barbican_domain": cloud.domain_name,
            "rgw_keystone_verify_ssl": "false",
        })
        access, secret = cluster.create_user(unique("rgw"))
        s3 = cluster.s3_client(access, secret)
        bucket = unique("sse")
        s3.create_bucket(Bucket=bucket)
        key_id = Castellan(cloud.auth("member1"), cloud.barbican_url).create_volume_key(name="rgw-sse")
        yield cloud, cluster, s3, bucket, key_id
    finally:
        cloud.stop()


# What RGW answers when kcm's Barbican door refuses it the key: RGW passes kcm's HTTP status
# on and names it in its own words — kcm's 404 (no such secret) as NoSuchKey, kcm's 409 (the
# root key above the secret is disabled) as BucketNotEmpty, RGW's name for every 409. A HEAD
# has no body, so its code is the status.
KEY_UNKNOWN = (404, "NoSuchKey")
KEY_CUT_OFF = (409, "BucketNotEmpty")
NOT_WRITTEN = (404, "404")


def test_sse_kms_objects_read_back_and_rados_holds_no_plaintext(rgw):
    cloud, cluster, s3, bucket, key_id = rgw
    body = b"ceph-rgw-plaintext-marker " + unique("m").encode() + b" " * 4096
    answer = put(s3, bucket, "doc", body, key_id)
    assert answer["ServerSideEncryption"] == "aws:kms" and answer["SSEKMSKeyId"] == key_id, answer
    assert get(s3, bucket, "doc") == body
    head = s3.head_object(Bucket=bucket, Key="doc")
    assert head["ServerSideEncryption"] == "aws:kms", head
    marker = body[:40]
    assert cluster.find_in_data(marker) == [], "RADOS holds the object's plaintext"
    # RGW asked kcm's Barbican door, as the project member, for the key.
    principal = f"keystone:{cloud.users['member1'].id}"
    records = cloud.srv.v1_ok("GET", f"/v1/audit?principal={principal}&operation=GetObjectPayload&limit=1000")
    assert any(r["front_door"] == "barbican" and r["outcome"] == "success" for r in records["records"]), records
    # A key id kcm does not have is refused, and nothing is written.
    with pytest.raises(ClientError) as e:
        put(s3, bucket, "unknown-key", b"x", "00000000-0000-4000-8000-000000000000")
    assert s3_error(e.value) == KEY_UNKNOWN, e.value.response
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket=bucket, Key="unknown-key")
    assert s3_error(e.value) == NOT_WRITTEN, e.value.response


def test_the_kill_switch_stops_reads_and_writes_within_the_bound(rgw):
    cloud, cluster, s3, bucket, key_id = rgw
    kill_switch_round(s3, bucket, key_id, lambda: cloud.kill_switch("disable"),
                      lambda: cloud.kill_switch("enable"), KEY_CUT_OFF, BOUND_S, not_written=NOT_WRITTEN)
