"""Key policies and grants through the AWS API, with boto3, in kcm's earlier small
policy form (`"Version": "kcm-2026-11"`, principals "*", "role:<role>" or an access key id,
no Resource), which kcm still reads so that stored policies keep their meaning; the AWS
form is tested in test_key_policies_aws.py.

A key without a policy has AWS's default one (roles decide); a key with one admits a caller
only if no Deny matches and an Allow or an active grant does. Roles stay the ceiling.
"""

from __future__ import annotations

import json

import pytest

from kcmtest import kms_error

VERSION = "kcm-2026-11"


def policy(*statements: dict) -> str:
    return json.dumps({"Version": VERSION, "Statement": list(statements)})


def allow(principal, action="*", sid=None) -> dict:
    s = {"Effect": "Allow", "Principal": principal, "Action": action}
    if sid:
        s["Sid"] = sid
    return s


def deny(principal, action="*", sid=None) -> dict:
    s = dict(allow(principal, action, sid))
    s["Effect"] = "Deny"
    return s


@pytest.fixture(scope="module")
def users(server):
    """Two key-users and a key-admin of the default tenant, with their boto3 clients."""
    out = {}
    for name, role in (("alice", "key-user"), ("bob", "key-user"), ("kadmin", "key-admin")):
        ak = server.create_access_key(role, description=f"policy test {name}")
        out[name] = (ak["access_key_id"], server.client_for(ak))
    return out


def test_a_key_without_a_policy_shows_aws_default_policy(kms):
    meta = kms.create_key()["KeyMetadata"]
    key, account = meta["KeyId"], meta["AWSAccountId"]
    assert kms.list_key_policies(KeyId=key)["PolicyNames"] == ["default"]
    doc = json.loads(kms.get_key_policy(KeyId=key, PolicyName="default")["Policy"])
    assert doc == {
        "Version": "2012-10-17",
        "Id": "key-default-1",
        "Statement": [{
            "Sid": "Enable IAM User Permissions",
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{account}:root"},
            "Action": "kms:*",
            "Resource": "*",
        }],
    }
    with kms_error("NotFoundException"):
        kms.get_key_policy(KeyId=key, PolicyName="other")


def test_policy_given_at_creation_is_returned_as_written_and_enforced(kms, users):
    alice_id, alice = users["alice"]
    _, bob = users["bob"]
    doc = policy(allow(alice_id, ["Encrypt", "Decrypt", "DescribeKey"]), allow("role:tenant-admin"))
    key = kms.create_key(Policy=doc)["KeyMetadata"]["KeyId"]
    assert kms.get_key_policy(KeyId=key)["Policy"] == doc
    blob = alice.encrypt(KeyId=key, Plaintext=b"for alice")["CiphertextBlob"]
    assert alice.decrypt(CiphertextBlob=blob)["Plaintext"] == b"for alice"
    with kms_error("AccessDeniedException") as ei:
        alice.generate_data_key(KeyId=key, KeySpec="AES_256")
    assert "GenerateDataKey" in ei.value.response["Error"]["Message"]
    with kms_error("AccessDeniedException"):
        bob.encrypt(KeyId=key, Plaintext=b"x")
    with kms_error("AccessDeniedException"):
        bob.decrypt(CiphertextBlob=blob)
    # The admin is allowed by its own statement.
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"for alice"


def test_deny_wins_and_changes_apply_at_once(kms, users):
    alice_id, alice = users["alice"]
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    blob = alice.encrypt(KeyId=key, Plaintext=b"p")["CiphertextBlob"]
    kms.put_key_policy(KeyId=key, PolicyName="default",
                       Policy=policy(allow("*"), deny(alice_id, "Decrypt", sid="no-alice-decrypt")))
    with kms_error("AccessDeniedException") as ei:
        alice.decrypt(CiphertextBlob=blob)
    assert "no-alice-decrypt" in ei.value.response["Error"]["Message"]
    alice.encrypt(KeyId=key, Plaintext=b"still allowed")
    kms.put_key_policy(KeyId=key, PolicyName="default", Policy=policy(allow("*")))
    assert alice.decrypt(CiphertextBlob=blob)["Plaintext"] == b"p"


def test_a_policy_cannot_lock_the_tenant_admin_out(kms):
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    # AWS's lockout check refuses a policy its writer could not replace ...
    with kms_error("MalformedPolicyDocumentException") as ei:
        kms.put_key_policy(KeyId=key, Policy=policy(deny("*")))
    assert ei.value.response["Error"]["Message"] == (
        "The new key policy will not allow you to update the key policy in the future.")
    # ... unless the request bypasses it.
    kms.put_key_policy(KeyId=key, Policy=policy(deny("*")), BypassPolicyLockoutSafetyCheck=True)
    with kms_error("AccessDeniedException"):
        kms.describe_key(KeyId=key)
    # ... but the tenant-admin can still read and replace the policy.
    assert json.loads(kms.get_key_policy(KeyId=key)["Policy"])["Statement"][0]["Effect"] == "Deny"
    kms.put_key_policy(KeyId=key, Policy=policy(allow("*")))
    kms.describe_key(KeyId=key)


def test_roles_stay_the_ceiling(kms, users):
    kadmin_id, kadmin = users["kadmin"]
    key = kms.create_key(Policy=policy(allow(kadmin_id)),
                         BypassPolicyLockoutSafetyCheck=True)["KeyMetadata"]["KeyId"]
    # The policy allows everything to the key-admin, but its role cannot use keys.
    with kms_error("AccessDeniedException") as ei:
        kadmin.encrypt(KeyId=key, Plaintext=b"x")
    assert "key-admin" in ei.value.response["Error"]["Message"]
    kadmin.disable_key(KeyId=key)
    kadmin.enable_key(KeyId=key)


@pytest.mark.parametrize("doc, needle", [
    ("not json", "not valid JSON"),
    (json.dumps({"Version": "2012-10-18", "Statement": [allow("*")]}), "Version must be"),
    (policy(allow("*", "Fly")), "Fly"),
    (policy(allow("somebody")), "somebody"),
    (policy(allow("role:king")), "unknown role"),
    (json.dumps({"Version": VERSION, "Statement": [{**allow("*"), "Condition": {"StringEqualz": {}}}]}),
     "StringEqualz"),
    (policy(allow("*")) + " " * 40_000, "at most"),
], ids=["not-json", "unknown-version", "unknown-action", "bad-principal", "unknown-role", "condition", "too-big"])
def test_malformed_policies_are_refused_and_change_nothing(kms, doc, needle):
    good = policy(allow("*"))
    key = kms.create_key(Policy=good)["KeyMetadata"]["KeyId"]
    with kms_error("MalformedPolicyDocumentException") as ei:
        kms.put_key_policy(KeyId=key, Policy=doc)
    assert needle in ei.value.response["Error"]["Message"]
    assert kms.get_key_policy(KeyId=key)["Policy"] == good
    with kms_error("MalformedPolicyDocumentException"):
        kms.create_key(Policy=doc)


def restricted_key(kms) -> str:
    """A key whose policy admits only tenant-admins: others need a grant."""
    return kms.create_key(Policy=policy(allow("role:tenant-admin")))["KeyMetadata"]["KeyId"]


def test_a_grant_admits_its_grantee_for_its_operations_until_retired(kms, users):
    alice_id, alice = users["alice"]
    bob_id, bob = users["bob"]
    key = restricted_key(kms)
    with kms_error("AccessDeniedException"):
        alice.encrypt(KeyId=key, Plaintext=b"x")
    g = kms.create_grant(KeyId=key, GranteePrincipal=alice_id, RetiringPrincipal=bob_id,
                         Operations=["Encrypt", "Decrypt", "ReEncryptFrom", "ReEncryptTo"])
    assert len(g["GrantId"]) == 64 and g["GrantToken"]
    blob = alice.encrypt(KeyId=key, Plaintext=b"granted")["CiphertextBlob"]
    assert alice.decrypt(CiphertextBlob=blob)["Plaintext"] == b"granted"
    with kms_error("AccessDeniedException"):
        alice.generate_data_key(KeyId=key, KeySpec="AES_256")
    with kms_error("AccessDeniedException"):
        bob.encrypt(KeyId=key, Plaintext=b"x")

    listed = kms.list_grants(KeyId=key)["Grants"]
    assert len(listed) == 1
    entry = listed[0]
    assert entry["GrantId"] == g["GrantId"] and entry["GranteePrincipal"] == alice_id
    assert entry["RetiringPrincipal"] == bob_id
    assert sorted(entry["Operations"]) == sorted(["Encrypt", "Decrypt", "ReEncryptFrom", "ReEncryptTo"])
    assert entry["KeyId"].endswith(key)
    retirable = kms.list_retirable_grants(RetiringPrincipal=bob_id)["Grants"]
    assert g["GrantId"] in [x["GrantId"] for x in retirable]

    # Bob is a key-user (no key management), but as the retiring principal he may retire it.
    bob.retire_grant(GrantToken=g["GrantToken"])
    assert kms.list_grants(KeyId=key)["Grants"] == []
    with kms_error("AccessDeniedException"):
        alice.decrypt(CiphertextBlob=blob)


def test_revoke_and_retire_by_id(kms, users):
    alice_id, alice = users["alice"]
    key = restricted_key(kms)
    g1 = kms.create_grant(KeyId=key, GranteePrincipal=alice_id, Operations=["Encrypt"])
    g2 = kms.create_grant(KeyId=key, GranteePrincipal=alice_id, Operations=["DescribeKey", "RetireGrant"])
    alice.encrypt(KeyId=key, Plaintext=b"x")
    kms.revoke_grant(KeyId=key, GrantId=g1["GrantId"])
    with kms_error("AccessDeniedException"):
        alice.encrypt(KeyId=key, Plaintext=b"x")
    # A grantee whose grant includes RetireGrant may retire it itself.
    alice.describe_key(KeyId=key)
    alice.retire_grant(KeyId=key, GrantId=g2["GrantId"])
    with kms_error("AccessDeniedException"):
        alice.describe_key(KeyId=key)
    with kms_error("NotFoundException"):
        kms.revoke_grant(KeyId=key, GrantId=g2["GrantId"])


def test_someone_else_cannot_retire_a_grant(kms, users):
    alice_id, _ = users["alice"]
    _, bob = users["bob"]
    key = restricted_key(kms)
    g = kms.create_grant(KeyId=key, GranteePrincipal=alice_id, Operations=["Encrypt"])
    with kms_error("AccessDeniedException"):
        bob.retire_grant(GrantToken=g["GrantToken"])
    assert len(kms.list_grants(KeyId=key)["Grants"]) == 1


def test_named_grants_are_idempotent_and_paged(kms, users):
    alice_id, _ = users["alice"]
    key = restricted_key(kms)
    a = kms.create_grant(KeyId=key, GranteePrincipal=alice_id, Operations=["Decrypt"], Name="app-1")
    b = kms.create_grant(KeyId=key, GranteePrincipal=alice_id, Operations=["Decrypt"], Name="app-1")
    assert a["GrantId"] == b["GrantId"]
    for i in range(4):
        kms.create_grant(KeyId=key, GranteePrincipal=alice_id, Operations=["Encrypt"], Name=f"more-{i}")
    seen, marker = [], None
    while True:
        kw = {"KeyId": key, "Limit": 2}
        if marker:
            kw["Marker"] = marker
        page = kms.list_grants(**kw)
        seen += [g["GrantId"] for g in page["Grants"]]
        if not page["Truncated"]:
            break
        marker = page["NextMarker"]
    assert len(seen) == len(set(seen)) == 5
    only = kms.list_grants(KeyId=key, GrantId=a["GrantId"])["Grants"]
    assert [g["GrantId"] for g in only] == [a["GrantId"]]


@pytest.mark.parametrize("kwargs, code, needle", [
    ({"Operations": ["SignEverything"]}, "ValidationException", "SignEverything"),
    # Not among the grant operations of AWS's API reference: its enumeration message.
    ({"Operations": ["ScheduleKeyDeletion"]}, "ValidationException",
     "Member must satisfy constraint: [Member must satisfy enum value set: [Decrypt, Encrypt,"),
    ({"Operations": []}, "ValidationException", "at least one"),
    ({"GranteePrincipal": "KCMNOTAREALKEY000000"}, "ValidationException", "GranteePrincipal"),
    ({"GranteePrincipal": "arn:aws:iam::999999999999:role/key-user"}, "ValidationException", "999999999999"),
    ({"GranteePrincipal": "arn:aws:iam::111122223333:role/Admin"}, "ValidationException", "role/Admin"),
    ({"RetiringPrincipal": "arn:aws:iam::999999999999:root"}, "ValidationException", "RetiringPrincipal"),
    ({"Constraints": {"EncryptionContextEquals": {"": "b"}}}, "ValidationException", "empty key"),
], ids=["unknown-operation", "not-grantable", "no-operations", "unknown-grantee", "other-account",
        "unknown-role", "other-account-retiring", "empty-constraint-key"])
def test_bad_grants_are_refused_and_change_nothing(kms, users, kwargs, code, needle):
    alice_id, _ = users["alice"]
    key = restricted_key(kms)
    args = {"KeyId": key, "GranteePrincipal": alice_id, "Operations": ["Encrypt"], **kwargs}
    with kms_error(code) as ei:
        kms.create_grant(**args)
    assert needle in ei.value.response["Error"]["Message"]
    assert kms.list_grants(KeyId=key)["Grants"] == []


def test_grants_do_not_cross_tenants(kms, other_tenant):
    other_kms = other_tenant["kms"]
    other_id = other_tenant["access_key"]["access_key_id"]
    key = restricted_key(kms)
    with kms_error("ValidationException"):
        kms.create_grant(KeyId=key, GranteePrincipal=other_id, Operations=["Encrypt"])
    with kms_error("NotFoundException"):
        other_kms.list_grants(KeyId=key)
