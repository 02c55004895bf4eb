"""Object storage end to end over the Vault API: Ceph's RADOS Gateway encrypts S3 objects
(SSE-KMS) with its real `vault` backend, through both of its secret engines, against kcm's
Vault-compatible API over HTTPS with a token from a 0600 file, on a real one-node Ceph
cluster (tests/python/ceph.py).

- Transit: for every PUT RGW asks `POST /v1/transit/datakey/plaintext/<key id>` with a
  context naming the object, keeps the data key's ciphertext with the object, and for
  every GET and HEAD asks `POST /v1/transit/decrypt/<key id>` with the same context.
- KV version 2: RGW reads its key from `GET /v1/secret/data/<key id>` (`data.data.key`,
  base64 of 32 bytes), a secret kcm keeps sealed under the system's key chain.

Either way the kill switch on the root key above the token's system stops reads and writes
within the revocation bound, enabling it brings them back, and RADOS never holds the
plaintext.
"""

from __future__ import annotations

import base64
import os
import secrets

import pytest
from botocore.exceptions import ClientError

from ceph import get, kill_switch_round, put, s3_error
from kcmtest import cli_ok, kcm_cli, unique
from vault_harness import start_vault_server, vault_client, vault_token

BOUND_MS = 500


# RGW's settings for each engine it can use.
ENGINES = {
    "transit": {"rgw_crypt_vault_secret_engine": "transit", "rgw_crypt_vault_prefix": "/v1/transit"},
    "kv": {"rgw_crypt_vault_secret_engine": "kv", "rgw_crypt_vault_prefix": "/v1/secret/data"},
}


@pytest.fixture(scope="module", params=sorted(ENGINES))
def rgw(request, ceph, tmp_path_factory):
    """(kcm server, cluster, s3 client, bucket, key name, RGW's token): RGW with kcm's Vault
    API as its key manager through one engine, and a key for it in the system ceph-rgw — a
    Transit key, or a KV secret holding 32 random bytes."""
    engine = request.param
    root = tmp_path_factory.mktemp(f"rgw-vault-{engine}")
    srv, address, pki = start_vault_server(root, BOUND_MS)
    try:
        srv.v1_ok("POST", "/v1/systems", expect=(201,), json_body={"name": "ceph-rgw"})
        admin = vault_token(srv, "ceph-rgw", "key-admin")
        rgw_token = vault_token(srv, "ceph-rgw", "key-user")
        key_name = unique("rgw-key")
        admin_client = vault_client(address, pki, admin["vault_token"])
        if engine == "transit":
            admin_client.secrets.transit.create_key(name=key_name)
        else:
            # Storing a secret is using keys: a key-user's work, not a key-admin's.
            writer = vault_client(address, pki, vault_token(srv, "ceph-rgw", "key-user")["vault_token"])
            writer.secrets.kv.v2.create_or_update_secret(
                path=key_name, secret={"key": base64.b64encode(secrets.token_bytes(32)).decode()})
        token_file = root / "rgw-vault-token"
        token_file.write_text(rgw_token["vault_token"])
        os.chmod(token_file, 0o600)
        cluster = ceph({
            "rgw_crypt_s3_kms_backend": "vault",
            "rgw_crypt_vault_auth": "token",
            "rgw_crypt_vault_token_file": str(token_file),
            "rgw_crypt_vault_addr": address,
            "rgw_crypt_vault_ssl_cacert": pki.ca_file,
            "rgw_crypt_vault_verify_ssl": "true",
            **ENGINES[engine],
        })
        access, secret = cluster.create_user(unique("rgw"))
        s3 = cluster.s3_client(access, secret)
        bucket = unique(f"sse-vault-{engine}")
        s3.create_bucket(Bucket=bucket)
        yield srv, cluster, s3, bucket, key_name, rgw_token, engine
    finally:
        srv.stop()


# What RGW answers when kcm's Vault API refuses it a data key: a key kcm does not have
# (404 from Transit) is S3's NoSuchKey (404); the kill switch (400) is RGW's
# InvalidArgument (400), its word for a key it could not get.
KEY_UNKNOWN = (404, "NoSuchKey")
KEY_CUT_OFF = (400, "InvalidArgument")


def test_sse_kms_objects_over_transit_read_back_and_rados_holds_no_plaintext(rgw):
    srv, cluster, s3, bucket, key_name, token, engine = rgw
    body = b"ceph-rgw-vault-plaintext-marker " + unique("m").encode() + b" " * 4096
    answer = put(s3, bucket, "doc", body, key_name)
    assert answer["ServerSideEncryption"] == "aws:kms" and answer["SSEKMSKeyId"] == key_name, answer
    assert get(s3, bucket, "doc") == body
    assert s3.head_object(Bucket=bucket, Key="doc")["ServerSideEncryption"] == "aws:kms"
    assert cluster.find_in_data(body[:40]) == [], "RADOS holds the object's plaintext"
    # RGW asked kcm's Vault door for a data key and to decrypt it (Transit), or read its key
    # (KV), as its token.
    records = srv.v1_ok("GET", f"/v1/audit?principal={token['access_key_id']}&limit=1000")["records"]
    done = {(r["operation"], r["outcome"]) for r in records if r["front_door"] == "vault"}
    asked = {"transit": {("GenerateDataKey", "success"), ("Decrypt", "success")},
             "kv": {("GetObjectPayload", "success")}}[engine]
    assert asked <= done, done
    # A key name kcm does not have is refused, and nothing is written.
    with pytest.raises(ClientError) as e:
        put(s3, bucket, "unknown-key", b"x", unique("no-such-key"))
    assert s3_error(e.value) == KEY_UNKNOWN, e.value.response
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket=bucket, Key="unknown-key")
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_the_kill_switch_stops_rgw_over_vault_within_the_bound(rgw):
    srv, cluster, s3, bucket, key_name, token, engine = rgw
    root = srv.default_root_id()
    kill_switch_round(s3, bucket, key_name, lambda: cli_ok(kcm_cli(srv, "root-key", "disable", root)),
                      lambda: cli_ok(kcm_cli(srv, "root-key", "enable", root)), KEY_CUT_OFF, BOUND_MS / 1000)
