"""Object storage end to end over KMIP: Ceph's RADOS Gateway encrypts S3 objects (SSE-KMS)
with keys it fetches from kcm's KMIP server — RGW's real `kmip` backend (compiled into
Debian's Ceph 16.2), a real one-node Ceph cluster (tests/python/ceph.py), and mutual TLS.

RGW connects with its client certificate (mapped by kcm to a key-user of the system
ceph-rgw) and, for every PUT, GET and HEAD of an encrypted object, sends Locate with one
Name (the S3 key id, through `rgw_crypt_kmip_kms_key_template = $keyid`), expects exactly
one object, then Get, and needs 32 raw bytes. So the kill switch on the root key above the
system stops reads and writes of those objects within the revocation bound, enabling it
brings them back, and RADOS never holds their plaintext.
"""

from __future__ import annotations


import pytest
from botocore.exceptions import ClientError
from kmip.core import enums

from ceph import get, kill_switch_round, put, s3_error
from kcmtest import cli_ok, kcm_cli, unique
from kmip_harness import Pki, client, start_kmip_server

BOUND_MS = 500


@pytest.fixture(scope="module")
def rgw(ceph, tmp_path_factory):
    """(kcm server, cluster, s3 client, bucket, key name): RGW configured with kcm's KMIP
    server as its key manager, and an AES-256 key named for it in RGW's system."""
    pki = Pki(tmp_path_factory.mktemp("rgw-kmip-pki"))
    srv, port, clients = start_kmip_server(tmp_path_factory.mktemp("rgw-kmip"), pki, ("ceph-rgw",), BOUND_MS)
    try:
        rgw_client = clients["ceph-rgw"]
        key_name = unique("rgw-key")
        c = client(pki, port, rgw_client["cert"], rgw_client["key"])
        try:
            c.create(enums.CryptographicAlgorithm.AES, 256, name=key_name)
        finally:
            c.close()
        cluster = ceph({
            "rgw_crypt_s3_kms_backend": "kmip",
            "rgw_crypt_kmip_addr": f"127.0.0.1:{port}",
            "rgw_crypt_kmip_ca_path": pki.ca_file,
            "rgw_crypt_kmip_client_cert": rgw_client["cert"],
            "rgw_crypt_kmip_client_key": rgw_client["key"],
            "rgw_crypt_kmip_kms_key_template": "$keyid",
        })
        access, secret = cluster.create_user(unique("rgw"))
        s3 = cluster.s3_client(access, secret)
        bucket = unique("sse-kmip")
        s3.create_bucket(Bucket=bucket)
        yield srv, cluster, s3, bucket, key_name
    finally:
        srv.stop()


# What RGW answers when kcm's KMIP server refuses it the key: a Locate that finds no
# object is S3's NoSuchKey (404); a Get refused (the kill switch: Illegal Operation) is
# RGW's InvalidArgument (400), its word for a key it could not fetch.
KEY_UNKNOWN = (404, "NoSuchKey")
KEY_CUT_OFF = (400, "InvalidArgument")


def test_sse_kms_objects_over_kmip_read_back_and_rados_holds_no_plaintext(rgw):
    srv, cluster, s3, bucket, key_name = rgw
    body = b"ceph-rgw-kmip-plaintext-marker " + unique("m").encode() + b" " * 4096
    answer = put(s3, bucket, "doc", body, key_name)
    assert answer["ServerSideEncryption"] == "aws:kms" and answer["SSEKMSKeyId"] == key_name, answer
    assert get(s3, bucket, "doc") == body
    assert s3.head_object(Bucket=bucket, Key="doc")["ServerSideEncryption"] == "aws:kms"
    assert cluster.find_in_data(body[:40]) == [], "RADOS holds the object's plaintext"
    # RGW located the key by its name and read it through the KMIP door.
    records = srv.v1_ok("GET", "/v1/audit?operation=GetObjectPayload&limit=1000")["records"]
    assert any(r["front_door"] == "kmip" and r["outcome"] == "success" for r in records), records
    # A key name kcm does not have is refused, and nothing is written.
    with pytest.raises(ClientError) as e:
        put(s3, bucket, "unknown-key", b"x", unique("no-such-key"))
    assert s3_error(e.value) == KEY_UNKNOWN, e.value.response
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket=bucket, Key="unknown-key")
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_the_kill_switch_stops_rgw_over_kmip_within_the_bound(rgw):
    srv, cluster, s3, bucket, key_name = rgw
    root = srv.default_root_id()
    kill_switch_round(s3, bucket, key_name, lambda: cli_ok(kcm_cli(srv, "root-key", "disable", root)),
                      lambda: cli_ok(kcm_cli(srv, "root-key", "enable", root)), KEY_CUT_OFF, BOUND_MS / 1000)
