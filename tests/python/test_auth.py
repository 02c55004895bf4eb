"""Authentication (SigV4) and authorisation (roles, tenants, system scope) on the AWS KMS API."""

from __future__ import annotations

import datetime as dt
import json
from unittest import mock

import boto3
import botocore.auth
import pytest
import requests
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

from kcmtest import REGION, kms_error, kms_pages, raw_error_type, sigv4_headers, unique


def utcnow():
    return dt.datetime.now(dt.timezone.utc)


# --------------------------------------------------------------------- our signer is right


def test_hand_signer_matches_botocore():
    """The hand-made SigV4 signer used below signs exactly as botocore does (no server needed)."""
    when = dt.datetime(2024, 5, 17, 12, 34, 56)
    body = json.dumps({"KeyId": "alias/x"}).encode()
    url = "http://127.0.0.1:43210/"
    headers = {"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "TrentService.DescribeKey"}
    req = AWSRequest(method="POST", url=url, data=body, headers=dict(headers))
    with mock.patch.object(botocore.auth, "get_current_datetime", return_value=when):
        botocore.auth.SigV4Auth(Credentials("AKIDEXAMPLE", "secret/Example+Key"), "kms", REGION).add_auth(req)
    mine = sigv4_headers("POST", url, body, headers, "AKIDEXAMPLE", "secret/Example+Key",
                         when=when.replace(tzinfo=dt.timezone.utc))
    assert mine["X-Amz-Date"] == req.headers["X-Amz-Date"]
    assert mine["Authorization"] == req.headers["Authorization"]


def botocore_signed_request(server, operation, payload, creds, when):
    """Sign with botocore's own SigV4Auth at a chosen time; returns (url, headers, body)."""
    body = json.dumps(payload).encode()
    url = server.url + "/"
    req = AWSRequest(method="POST", url=url, data=body, headers={
        "Content-Type": "application/x-amz-json-1.1",
        "X-Amz-Target": f"TrentService.{operation}",
    })
    with mock.patch.object(botocore.auth, "get_current_datetime",
                           return_value=when.astimezone(dt.timezone.utc).replace(tzinfo=None)):
        botocore.auth.SigV4Auth(Credentials(*creds), "kms", REGION).add_auth(req)
    return url, dict(req.headers.items()), body


# --------------------------------------------------------------------- signatures


def test_raw_signed_request_works(server):
    """Control: a correctly hand-signed request succeeds (so the failures below mean something)."""
    r = server.aws_raw("ListKeys", {"Limit": 1})
    assert r.status_code == 200, r.text
    assert "Keys" in r.json()
    r = server.aws_raw("ListKeys", {}, when=utcnow() - dt.timedelta(minutes=3))
    assert r.status_code == 200, r.text


def test_wrong_secret(server):
    kid, _ = server.creds("default")
    bad = server.new_client(kid, "wrong-secret-" + "x" * 20)
    with kms_error("InvalidSignatureException"):
        bad.list_keys()
    with kms_error("InvalidSignatureException"):
        bad.create_key(Description="must not exist")


def test_body_changed_after_signing(server):
    kid, sec = server.creds("default")
    body = json.dumps({"Limit": 1}).encode()
    url = server.url + "/"
    headers = sigv4_headers("POST", url, body, {
        "Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "TrentService.ListKeys"}, kid, sec)
    r = requests.post(url, data=json.dumps({"Limit": 2}).encode(), headers=headers, timeout=30)
    assert r.status_code == 400, r.text
    assert raw_error_type(r) == "InvalidSignatureException", r.text


def test_target_changed_after_signing(server):
    kid, sec = server.creds("default")
    body = b"{}"
    url = server.url + "/"
    headers = sigv4_headers("POST", url, body, {
        "Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "TrentService.ListKeys"}, kid, sec)
    headers["X-Amz-Target"] = "TrentService.CreateKey"
    r = requests.post(url, data=body, headers=headers, timeout=30)
    assert r.status_code == 400, r.text
    assert raw_error_type(r) == "InvalidSignatureException", r.text


@pytest.mark.parametrize("minutes", [-20, -6, 6, 20])
def test_signature_outside_clock_skew(server, minutes):
    """AWS allows 5 minutes of clock skew either way, and says so in AWS's words."""
    when = utcnow() + dt.timedelta(minutes=minutes)
    url, headers, body = botocore_signed_request(server, "ListKeys", {}, server.creds("default"), when)
    r = requests.post(url, data=body, headers=headers, timeout=30)
    assert r.status_code == 400, r.text
    assert raw_error_type(r) == "InvalidSignatureException", r.text
    words = ("Signature expired: ", " is now earlier than ", " - 5 min.)") if minutes < 0 else \
        ("Signature not yet current: ", " is still later than ", " + 5 min.)")
    message = r.json()["message"]
    assert all(w in message for w in words), message
    # The same with the hand signer.
    r = server.aws_raw("ListKeys", {}, when=when)
    assert (r.status_code, raw_error_type(r)) == (400, "InvalidSignatureException"), r.text


@pytest.mark.parametrize("minutes", [-4, 4])
def test_signature_within_clock_skew(server, minutes):
    """Control for the above: inside the 5 minutes, either way, a request is served."""
    when = utcnow() + dt.timedelta(minutes=minutes)
    url, headers, body = botocore_signed_request(server, "ListKeys", {}, server.creds("default"), when)
    r = requests.post(url, data=body, headers=headers, timeout=30)
    assert r.status_code == 200, r.text


# --------------------------------------------------------------------- session tokens
# kcm issues no session tokens: a request that carries one was made by a client set up
# for somewhere else, and is refused rather than served with the token ignored.

TOKEN_MESSAGE = "The security token included in the request is invalid"


def test_session_token_is_refused(server):
    """boto3 configured with a session token (it signs X-Amz-Security-Token) is refused,
    although the access key and secret are right."""
    kid, sec = server.creds("default")
    c = boto3.session.Session().client(
        "kms", endpoint_url=server.url, region_name=REGION, aws_access_key_id=kid,
        aws_secret_access_key=sec, aws_session_token="FwoGZXIvYXdzEXAMPLETOKEN",
        config=Config(retries={"total_max_attempts": 1, "mode": "standard"}))
    with kms_error("UnrecognizedClientException") as ei:
        c.list_keys()
    assert TOKEN_MESSAGE in ei.value.response["Error"]["Message"]
    # Control: the same credentials without the token are served.
    server.new_client(kid, sec).list_keys(Limit=1)


def test_session_token_header_is_refused(server):
    r = server.aws_raw("ListKeys", {}, extra_headers={"X-Amz-Security-Token": "token"})
    assert r.status_code == 400, r.text
    assert raw_error_type(r) == "UnrecognizedClientException", r.text
    assert TOKEN_MESSAGE in r.json()["message"], r.text


def test_session_token_query_parameter_is_refused(server):
    """The query-string form (as a presigned request carries it), on a request signed with
    it in its canonical query string."""
    kid, sec = server.creds("default")
    body = b"{}"
    url = server.url + "/?X-Amz-Security-Token=token"
    headers = sigv4_headers("POST", url, body, {
        "Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "TrentService.ListKeys"}, kid, sec)
    r = requests.post(url, data=body, headers=headers, timeout=30)
    assert r.status_code == 400, r.text
    assert raw_error_type(r) == "UnrecognizedClientException", r.text
    assert TOKEN_MESSAGE in r.json()["message"], r.text


def test_session_token_is_refused_on_the_rest_api(server):
    """The native API (SigV4 with service `kcm`) refuses it too, in its own format."""
    kid, sec = server.creds("default")
    url = server.url + "/v1/systems"
    for extra, target in (({"X-Amz-Security-Token": "token"}, url),
                          ({}, url + "?X-Amz-Security-Token=token")):
        headers = sigv4_headers("GET", target, b"", extra, kid, sec, service="kcm")
        r = requests.get(target, headers=headers, timeout=30)
        assert r.status_code == 401, r.text
        assert r.json()["error"]["code"] == "Unauthenticated", r.text
        assert TOKEN_MESSAGE in r.json()["error"]["message"], r.text
    headers = sigv4_headers("GET", url, b"", {}, kid, sec, service="kcm")
    r = requests.get(url, headers=headers, timeout=30)
    assert r.status_code == 200, r.text


def test_botocore_signed_now_works(server):
    url, headers, body = botocore_signed_request(server, "ListKeys", {}, server.creds("default"), utcnow())
    r = requests.post(url, data=body, headers=headers, timeout=30)
    assert r.status_code == 200, r.text


def test_unsigned_request(server):
    r = server.aws_raw("ListKeys", {}, sign=False)
    assert r.status_code == 400, r.text
    assert raw_error_type(r) == "MissingAuthenticationTokenException", r.text
    assert "Keys" not in r.text


@pytest.mark.parametrize(
    "auth,needle",
    [
        ("AWS4-HMAC-SHA256 garbage", "'key=value'"),
        ("AWS4-HMAC-SHA256 Credential=, SignedHeaders=, Signature=", "Credential must have the form"),
        ("Basic dXNlcjpwYXNz", "Unsupported AWS 'algorithm'"),
        ("AWS4-HMAC-SHA256 Credential=AKID/20240101/us-east-1/kms/aws4_request, SignedHeaders=host, Signature=zz",
         "Signature must be 64 hexadecimal characters"),
    ],
)
def test_malformed_authorization(server, auth, needle):
    """An Authorization header that is not a whole SigV4 signature: AWS's
    IncompleteSignature ("the request signature does not conform to AWS standards"),
    each saying what is wrong, before the access key or the signature is looked at."""
    r = requests.post(server.url + "/", data=b"{}", headers={
        "Content-Type": "application/x-amz-json-1.1",
        "X-Amz-Target": "TrentService.ListKeys",
        "X-Amz-Date": utcnow().strftime("%Y%m%dT%H%M%SZ"),
        "Authorization": auth,
    }, timeout=30)
    assert r.status_code == 400, r.text
    assert raw_error_type(r) == "IncompleteSignatureException", r.text
    assert needle in r.json()["message"], r.text


def test_unknown_access_key(server):
    c = server.new_client("AKIAUNKNOWNKEY0000000", "whatever-secret")
    with kms_error("UnrecognizedClientException"):
        c.list_keys()


@pytest.mark.parametrize("service,region", [("s3", REGION), ("kms", "eu-west-1"), ("kcm", REGION)])
def test_wrong_scope(server, service, region):
    r = server.aws_raw("ListKeys", {}, service=service, region=region)
    # As AWS answers a credential scoped to another service or region.
    assert r.status_code == 400, r.text
    assert raw_error_type(r) == "InvalidSignatureException", r.text
    scoped = "a valid region" if service == "kms" else "correct service"
    assert f"Credential should be scoped to {scoped}" in r.text, r.text
    assert "Keys" not in r.text


def test_unknown_operation(server):
    r = server.aws_raw("FrobnicateKey", {})
    assert r.status_code == 400, r.text
    assert raw_error_type(r) == "UnknownOperationException", r.text


@pytest.mark.parametrize("body,error", [
    # Not JSON at all.
    (b"{not json", "SerializationException"),
    (b"[1,", "SerializationException"),
    # JSON, but not an object: every request of the AWS JSON protocol is one (a JSON
    # array is not read as the request's fields in order).
    (b"[]", "ValidationException"),
    (b"[1, null]", "ValidationException"),
    (b"null", "ValidationException"),
    # An object, with a member of the wrong type: it cannot be read, which AWS
    # answers with SerializationException ("STRING_VALUE can not be converted to an
    # Integer"); a value of the right type outside its limits is a ValidationException.
    (b'{"Limit": "two"}', "SerializationException"),
    (b'{"Limit": 0}', "ValidationException"),
])
def test_malformed_json_body(server, body, error):
    r = server.aws_raw("ListKeys", body)
    assert r.status_code == 400, r.text
    assert raw_error_type(r) == error, r.text
    assert r.json()["message"], r.text
    assert "Keys" not in r.text


# --------------------------------------------------------------------- roles


@pytest.fixture(scope="module")
def roles(server):
    """Access keys of each role in the default tenant, and a key made by the tenant-admin."""
    kms = server.client("default")
    key = kms.create_key(Description="role-matrix")["KeyMetadata"]
    ct = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"role test")["CiphertextBlob"]
    out = {"key": key, "ct": ct, "admin": kms}
    for role in ("key-user", "key-admin", "auditor", "tenant-admin"):
        ak = server.create_access_key(role, description=f"{role} for tests")
        assert ak.get("role", role) == role
        out[role] = server.client_for(ak)
    out["system-admin"] = server.client("system-admin")
    return out


def denied(fn, **kw):
    with kms_error("AccessDeniedException"):
        fn(**kw)


def test_key_user(roles):
    c, kid, ct, admin = roles["key-user"], roles["key"]["KeyId"], roles["ct"], roles["admin"]
    # Allowed: crypto and reads.
    ct2 = c.encrypt(KeyId=kid, Plaintext=b"as user")["CiphertextBlob"]
    assert c.decrypt(CiphertextBlob=ct2)["Plaintext"] == b"as user"
    assert c.decrypt(CiphertextBlob=ct)["Plaintext"] == b"role test"
    assert len(c.generate_data_key(KeyId=kid, KeySpec="AES_256")["Plaintext"]) == 32
    c.generate_data_key_without_plaintext(KeyId=kid, KeySpec="AES_128")
    c.re_encrypt(CiphertextBlob=ct, DestinationKeyId=kid)
    assert len(c.generate_random(NumberOfBytes=8)["Plaintext"]) == 8
    assert c.describe_key(KeyId=kid)["KeyMetadata"]["KeyId"] == kid
    assert c.list_keys()["Keys"] is not None
    # Denied: management.
    n_before = len(admin.list_keys(Limit=1000)["Keys"])
    denied(c.create_key, Description="user-made")
    assert len(admin.list_keys(Limit=1000)["Keys"]) == n_before
    denied(c.disable_key, KeyId=kid)
    denied(c.schedule_key_deletion, KeyId=kid, PendingWindowInDays=7)
    denied(c.update_key_description, KeyId=kid, Description="changed by user")
    denied(c.tag_resource, KeyId=kid, Tags=[{"TagKey": "by", "TagValue": "user"}])
    alias = "alias/" + unique("useralias")
    denied(c.create_alias, AliasName=alias, TargetKeyId=kid)
    denied(c.enable_key_rotation, KeyId=kid)
    denied(c.rotate_key_on_demand, KeyId=kid)
    md = admin.describe_key(KeyId=kid)["KeyMetadata"]
    assert md["KeyState"] == "Enabled", "a denied DisableKey/ScheduleKeyDeletion changed the key"
    assert md["Description"] == "role-matrix"
    assert admin.list_resource_tags(KeyId=kid)["Tags"] == []
    assert alias not in [a["AliasName"] for a in admin.list_aliases(KeyId=kid)["Aliases"]]
    assert admin.get_key_rotation_status(KeyId=kid)["KeyRotationEnabled"] is False
    assert admin.list_key_rotations(KeyId=kid)["Rotations"] == []


def test_key_admin(roles):
    c, kid, ct, admin = roles["key-admin"], roles["key"]["KeyId"], roles["ct"], roles["admin"]
    # Allowed: management.
    own = c.create_key(Description="admin-made")["KeyMetadata"]["KeyId"]
    assert c.describe_key(KeyId=own)["KeyMetadata"]["Description"] == "admin-made"
    c.disable_key(KeyId=own)
    c.enable_key(KeyId=own)
    c.update_key_description(KeyId=own, Description="renamed")
    c.tag_resource(KeyId=own, Tags=[{"TagKey": "by", "TagValue": "admin"}])
    alias = "alias/" + unique("adminalias")
    c.create_alias(AliasName=alias, TargetKeyId=own)
    c.enable_key_rotation(KeyId=own, RotationPeriodInDays=100)
    c.schedule_key_deletion(KeyId=own, PendingWindowInDays=7)
    c.cancel_key_deletion(KeyId=own)
    assert admin.describe_key(KeyId=alias)["KeyMetadata"]["KeyId"] == own
    # Denied: data plane.
    denied(c.encrypt, KeyId=kid, Plaintext=b"x")
    denied(c.decrypt, CiphertextBlob=ct)
    denied(c.generate_data_key, KeyId=kid, KeySpec="AES_256")
    denied(c.generate_data_key_without_plaintext, KeyId=kid, KeySpec="AES_256")
    denied(c.re_encrypt, CiphertextBlob=ct, DestinationKeyId=kid)
    denied(c.generate_random, NumberOfBytes=8)


def test_auditor(roles):
    c, kid, ct, admin = roles["auditor"], roles["key"]["KeyId"], roles["ct"], roles["admin"]
    assert c.describe_key(KeyId=kid)["KeyMetadata"]["KeyId"] == kid
    assert any(k["KeyId"] == kid for k in _all_keys(c))
    c.list_aliases()
    c.list_resource_tags(KeyId=kid)
    c.get_key_rotation_status(KeyId=kid)
    c.list_key_rotations(KeyId=kid)
    denied(c.create_key)
    denied(c.disable_key, KeyId=kid)
    denied(c.schedule_key_deletion, KeyId=kid, PendingWindowInDays=7)
    denied(c.tag_resource, KeyId=kid, Tags=[{"TagKey": "by", "TagValue": "auditor"}])
    denied(c.create_alias, AliasName="alias/" + unique("aud"), TargetKeyId=kid)
    denied(c.encrypt, KeyId=kid, Plaintext=b"x")
    denied(c.decrypt, CiphertextBlob=ct)
    denied(c.generate_data_key, KeyId=kid, KeySpec="AES_256")
    assert admin.describe_key(KeyId=kid)["KeyMetadata"]["KeyState"] == "Enabled"


def test_system_admin_cannot_touch_keys(roles):
    c, kid, ct, admin = roles["system-admin"], roles["key"]["KeyId"], roles["ct"], roles["admin"]
    arn = roles["key"]["Arn"]
    denied(c.list_keys)
    denied(c.create_key)
    denied(c.describe_key, KeyId=arn)
    denied(c.encrypt, KeyId=arn, Plaintext=b"x")
    denied(c.decrypt, CiphertextBlob=ct)
    denied(c.disable_key, KeyId=arn)
    denied(c.generate_random, NumberOfBytes=8)
    assert admin.describe_key(KeyId=kid)["KeyMetadata"]["KeyState"] == "Enabled"


def test_tenant_admin_access_key(roles):
    c, kid, ct = roles["tenant-admin"], roles["key"]["KeyId"], roles["ct"]
    assert c.decrypt(CiphertextBlob=ct)["Plaintext"] == b"role test"
    own = c.create_key()["KeyMetadata"]["KeyId"]
    c.disable_key(KeyId=own)
    c.enable_key(KeyId=own)
    assert c.describe_key(KeyId=kid)["KeyMetadata"]["KeyId"] == kid


def _all_keys(c):
    return [k for page in kms_pages(c.list_keys) for k in page["Keys"]]


def test_system_scoped_access_keys(server):
    admin = server.client("default")
    s1, s2 = unique("sys"), unique("sys")
    for s in (s1, s2):
        server.v1_ok("POST", "/v1/systems", expect=(201,),
                     json_body={"name": s, "kind": "application", "description": "scope test"})
    admin2 = server.client_for(server.create_access_key("key-admin", system=s2))
    user1 = server.client_for(server.create_access_key("key-user", system=s1))
    user2 = server.client_for(server.create_access_key("key-user", system=s2))

    k2 = admin2.create_key(Description="in s2")["KeyMetadata"]["KeyId"]  # lands in s2
    k_default = admin.create_key(Description="in default")["KeyMetadata"]["KeyId"]
    ct2 = admin.encrypt(KeyId=k2, Plaintext=b"s2 data")["CiphertextBlob"]
    ct_default = admin.encrypt(KeyId=k_default, Plaintext=b"default data")["CiphertextBlob"]

    # In scope: works.
    assert user2.decrypt(CiphertextBlob=ct2)["Plaintext"] == b"s2 data"
    assert user2.decrypt(CiphertextBlob=user2.encrypt(KeyId=k2, Plaintext=b"y")["CiphertextBlob"])["Plaintext"] == b"y"
    # Out of scope: refused.
    denied(user1.encrypt, KeyId=k2, Plaintext=b"x")
    denied(user1.decrypt, CiphertextBlob=ct2)
    denied(user1.generate_data_key, KeyId=k2, KeySpec="AES_256")
    denied(user2.encrypt, KeyId=k_default, Plaintext=b"x")
    denied(user2.decrypt, CiphertextBlob=ct_default)
    denied(admin2.disable_key, KeyId=k_default)
    assert admin.describe_key(KeyId=k_default)["KeyMetadata"]["KeyState"] == "Enabled"

    # The key created by the s2-scoped key-admin hangs under s2 in the keychain.
    chain = server.v1_ok("GET", "/v1/keychain")
    where = {sk["id"]: sys["name"]
             for rk in chain["root_keys"] for sys in rk["systems"] for sk in sys["service_keys"]}
    assert where.get(k2) == s2, where.get(k2)
    assert where.get(k_default) == "default", where.get(k_default)


def test_disabled_access_key_refused_on_aws_api(server):
    ak = server.create_access_key("key-user")
    c = server.client_for(ak)
    c.list_keys()
    server.v1_ok("POST", f"/v1/access-keys/{ak['access_key_id']}/disable")
    with kms_error("UnrecognizedClientException"):
        c.list_keys()
    server.v1_ok("POST", f"/v1/access-keys/{ak['access_key_id']}/enable")
    c.list_keys()
    server.v1_ok("DELETE", f"/v1/access-keys/{ak['access_key_id']}", expect=(204,))
    with kms_error("UnrecognizedClientException"):
        c.list_keys()

