"""Key policies in AWS's own language, through boto3, as code written for AWS KMS sends them.

kcm principals as IAM ARNs: the tenant is `arn:aws:iam::<account>:root`, every access key
of a role `arn:aws:iam::<account>:role/<role>`, one access key
`arn:aws:iam::<account>:user/<access key id>`. Conditions are evaluated against what the
request says (encryption context, algorithm, alias, grant operations) and where it came
from (source address, TLS); an operator or key kcm does not know is refused, naming it.
"""

from __future__ import annotations

import json

import pytest

from kcmtest import kms_error

LOCKOUT = "The new key policy will not allow you to update the key policy in the future."


def document(*statements: dict, version: str = "2012-10-17") -> str:
    return json.dumps({"Version": version, "Id": "test", "Statement": list(statements)})


def statement(effect: str, principal, action, sid: str | None = None, condition: dict | None = None,
              resource="*", principal_key: str = "Principal", action_key: str = "Action") -> dict:
    s = {"Effect": effect, principal_key: principal, action_key: action, "Resource": resource}
    if sid:
        s["Sid"] = sid
    if condition:
        s["Condition"] = condition
    return s


@pytest.fixture(scope="module")
def account(kms) -> str:
    return kms.create_key()["KeyMetadata"]["AWSAccountId"]


@pytest.fixture(scope="module")
def root(account) -> dict:
    """The statement AWS's default policy opens with: the account's own access control
    (in kcm, the roles) decides — so the tenant-admin writing these policies keeps them."""
    return statement("Allow", {"AWS": f"arn:aws:iam::{account}:root"}, "kms:*", sid="Enable IAM User Permissions")


@pytest.fixture(scope="module")
def app(server):
    """A key-user access key (its id and boto3 client) that the policies name."""
    ak = server.create_access_key("key-user", description="aws policy test app")
    return ak["access_key_id"], server.client_for(ak)


@pytest.fixture(scope="module")
def other(server):
    """A second key-user no policy names."""
    ak = server.create_access_key("key-user", description="aws policy test other")
    return ak["access_key_id"], server.client_for(ak)


def user_arn(account: str, access_key_id: str) -> str:
    return f"arn:aws:iam::{account}:user/{access_key_id}"


def test_access_keys_show_the_arn_policies_name_them_by(server, account):
    made = server.create_access_key("key-user", description="arn shown")
    arn = user_arn(account, made["access_key_id"])
    assert made["arn"] == arn
    listed = server.v1_ok("GET", "/v1/access-keys")["access_keys"]
    assert [k["arn"] for k in listed if k["access_key_id"] == made["access_key_id"]] == [arn]


def test_aws_default_policy_round_trips_and_governs_like_no_policy(kms, account, app):
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    default = kms.get_key_policy(KeyId=key, PolicyName="default")["Policy"]
    # Written back as it came (Terraform's and CloudFormation's read-modify-write).
    kms.put_key_policy(KeyId=key, PolicyName="default", Policy=default)
    assert kms.get_key_policy(KeyId=key, PolicyName="default")["Policy"] == default
    _, client = app
    blob = client.encrypt(KeyId=key, Plaintext=b"roles decide")["CiphertextBlob"]
    assert client.decrypt(CiphertextBlob=blob)["Plaintext"] == b"roles decide"
    # And a new key can be created with it.
    created = kms.create_key(Policy=default)["KeyMetadata"]["KeyId"]
    assert kms.get_key_policy(KeyId=created, PolicyName="default")["Policy"] == default


def test_a_terraform_style_policy_with_an_encryption_context_condition(kms, account, app, other):
    app_id, client = app
    _, stranger = other
    policy = document(
        statement("Allow", {"AWS": f"arn:aws:iam::{account}:role/tenant-admin"}, "kms:*", sid="KeyAdministrators"),
        statement("Allow", {"AWS": [user_arn(account, app_id)]},
                  ["kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey*", "kms:DescribeKey"],
                  sid="AllowUseForOrders",
                  condition={"StringEquals": {"kms:EncryptionContext:app": "orders"}}),
        statement("Allow", {"AWS": user_arn(account, app_id)}, "kms:DescribeKey", sid="Describe"),
    )
    key = kms.create_key(Policy=policy, Description="orders")["KeyMetadata"]["KeyId"]
    assert kms.get_key_policy(KeyId=key, PolicyName="default")["Policy"] == policy
    blob = client.encrypt(KeyId=key, Plaintext=b"order 1", EncryptionContext={"app": "orders"})["CiphertextBlob"]
    assert client.decrypt(CiphertextBlob=blob, EncryptionContext={"app": "orders"})["Plaintext"] == b"order 1"
    client.generate_data_key(KeyId=key, KeySpec="AES_256", EncryptionContext={"app": "orders"})
    for context in ({"app": "billing"}, {}):
        with kms_error("AccessDeniedException") as ei:
            client.encrypt(KeyId=key, Plaintext=b"x", EncryptionContext=context)
        assert "Encrypt" in ei.value.response["Error"]["Message"]
    with kms_error("AccessDeniedException"):
        client.generate_data_key_without_plaintext(KeyId=key, KeySpec="AES_256")
    # The unconditional statement still lets it describe the key.
    client.describe_key(KeyId=key)
    # Nobody else is named (no account-root statement hands the decision to the roles).
    with kms_error("AccessDeniedException"):
        stranger.encrypt(KeyId=key, Plaintext=b"x", EncryptionContext={"app": "orders"})
    # With the account root named, the roles decide: the stranger's role lets it in.
    root = statement("Allow", {"AWS": f"arn:aws:iam::{account}:root"}, "kms:*")
    kms.put_key_policy(KeyId=key, PolicyName="default", Policy=document(root))
    stranger.encrypt(KeyId=key, Plaintext=b"x", EncryptionContext={"app": "billing"})


def test_without_the_root_statement_only_the_named_principals_get_in(kms, account, app, other):
    app_id, client = app
    _, stranger = other
    admin_arn = f"arn:aws:iam::{account}:role/tenant-admin"
    policy = document(
        statement("Allow", {"AWS": admin_arn}, "kms:*", sid="Admins"),
        statement("Allow", {"AWS": f"arn:aws:iam::{account}:role/key-user"}, ["kms:Encrypt", "kms:Decrypt"],
                  sid="KeyUsers",
                  condition={"ForAllValues:StringEquals": {"kms:EncryptionContextKeys": ["tenant", "app"]}}),
        statement("Deny", {"AWS": admin_arn}, "kms:Decrypt", sid="AdminsDoNotRead",
                  principal_key="NotPrincipal"),
    )
    key = kms.create_key(Policy=policy)["KeyMetadata"]["KeyId"]
    blob = client.encrypt(KeyId=key, Plaintext=b"p", EncryptionContext={"app": "a"})["CiphertextBlob"]
    with kms_error("AccessDeniedException"):
        client.encrypt(KeyId=key, Plaintext=b"p", EncryptionContext={"other": "x"})
    # The NotPrincipal Deny applies to everyone but the tenant-admins.
    with kms_error("AccessDeniedException") as ei:
        client.decrypt(CiphertextBlob=blob, EncryptionContext={"app": "a"})
    assert "AdminsDoNotRead" in ei.value.response["Error"]["Message"]
    with kms_error("AccessDeniedException"):
        stranger.decrypt(CiphertextBlob=blob, EncryptionContext={"app": "a"})
    assert kms.decrypt(CiphertextBlob=blob, EncryptionContext={"app": "a"})["Plaintext"] == b"p"


def test_source_address_transport_and_alias_conditions(kms, account, root, app):
    app_id, client = app
    me = {"AWS": user_arn(account, app_id)}
    alias = "alias/aws-policy-request-alias"
    key = kms.create_key(Policy=document(root))["KeyMetadata"]["KeyId"]
    kms.create_alias(AliasName=alias, TargetKeyId=key)

    def put(*statements, bypass=False):
        kms.put_key_policy(KeyId=key, PolicyName="default", Policy=document(root, *statements),
                           BypassPolicyLockoutSafetyCheck=bypass)

    # The test client connects from 127.0.0.1.
    put(statement("Deny", me, "kms:Encrypt", sid="OnlyFromTenNet",
                  condition={"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}}))
    with kms_error("AccessDeniedException") as ei:
        client.encrypt(KeyId=key, Plaintext=b"x")
    assert "OnlyFromTenNet" in ei.value.response["Error"]["Message"]
    put(statement("Deny", me, "kms:Encrypt", condition={"NotIpAddress": {"aws:SourceIp": ["127.0.0.0/8", "::1"]}}))
    client.encrypt(KeyId=key, Plaintext=b"x")
    # This server speaks plain HTTP (test_tls.py has the same policy over TLS). The policy
    # would deny its own writer over this connection: the lockout check says so.
    tls_only = statement("Deny", "*", "kms:*", sid="TlsOnly", condition={"Bool": {"aws:SecureTransport": "false"}})
    with kms_error("MalformedPolicyDocumentException"):
        put(tls_only)
    put(tls_only, bypass=True)
    with kms_error("AccessDeniedException") as ei:
        client.encrypt(KeyId=key, Plaintext=b"x")
    assert "TlsOnly" in ei.value.response["Error"]["Message"]
    # The alias the request named: by alias yes, by key id no.
    kms.put_key_policy(KeyId=key, PolicyName="default", BypassPolicyLockoutSafetyCheck=True, Policy=document(
        statement("Allow", {"AWS": f"arn:aws:iam::{account}:role/tenant-admin"}, "kms:*"),
        statement("Allow", me, "kms:Encrypt", condition={"StringEquals": {"kms:RequestAlias": alias}}),
    ))
    client.encrypt(KeyId=alias, Plaintext=b"x")
    with kms_error("AccessDeniedException"):
        client.encrypt(KeyId=key, Plaintext=b"x")
    # Time: a statement that expired in the past allows nothing.
    put(statement("Deny", me, "kms:Encrypt", condition={"DateGreaterThan": {"aws:CurrentTime": "2020-01-01T00:00:00Z"}}))
    with kms_error("AccessDeniedException"):
        client.encrypt(KeyId=alias, Plaintext=b"x")


def test_grant_operations_condition_bounds_what_may_be_granted(kms, account, app, other):
    app_id, _ = app
    other_id, _ = other
    admin_arn = f"arn:aws:iam::{account}:role/tenant-admin"
    key = kms.create_key(Policy=document(
        statement("Allow", {"AWS": admin_arn}, ["kms:PutKeyPolicy", "kms:GetKeyPolicy", "kms:DescribeKey",
                                                 "kms:Encrypt", "kms:Decrypt", "kms:ListGrants"]),
        statement("Allow", {"AWS": admin_arn}, "kms:CreateGrant",
                  condition={"ForAllValues:StringEquals": {"kms:GrantOperations": ["Encrypt", "Decrypt"]},
                             "Bool": {"kms:GrantIsForAWSResource": "false"}}),
    ))["KeyMetadata"]["KeyId"]
    kms.create_grant(KeyId=key, GranteePrincipal=app_id, Operations=["Encrypt"])
    with kms_error("AccessDeniedException"):
        kms.create_grant(KeyId=key, GranteePrincipal=other_id, Operations=["Encrypt", "DescribeKey"])


def test_the_lockout_check_refuses_a_policy_its_writer_could_not_replace(kms, account, app):
    app_id, _ = app
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    before = kms.get_key_policy(KeyId=key, PolicyName="default")["Policy"]
    only_app = document(statement("Allow", {"AWS": user_arn(account, app_id)}, "kms:*"))
    with kms_error("MalformedPolicyDocumentException") as ei:
        kms.put_key_policy(KeyId=key, PolicyName="default", Policy=only_app)
    assert ei.value.response["Error"]["Message"] == LOCKOUT
    assert kms.get_key_policy(KeyId=key, PolicyName="default")["Policy"] == before
    with kms_error("MalformedPolicyDocumentException") as ei:
        kms.create_key(Policy=only_app)
    assert ei.value.response["Error"]["Message"] == LOCKOUT
    kms.put_key_policy(KeyId=key, PolicyName="default", Policy=only_app, BypassPolicyLockoutSafetyCheck=True)
    assert kms.get_key_policy(KeyId=key, PolicyName="default")["Policy"] == only_app
    # kcm's safety net: the tenant-admin may still replace it.
    kms.put_key_policy(KeyId=key, PolicyName="default", Policy=before)


@pytest.mark.parametrize("statement_patch, needle", [
    ({"Resource": None}, "no Resource"),
    ({"Action": "s3:GetObject"}, "\"s3:GetObject\""),
    ({"Action": "kms:Fly"}, "\"kms:Fly\""),
    ({"Principal": {"AWS": "arn:aws:iam::111122223333:role/Admin"}}, "role/Admin"),
    ({"Principal": {"Federated": "cognito-identity.amazonaws.com"}}, "\"Federated\""),
    ({"Condition": {"StringEquals": {"kms:Weather": "sunny"}}}, "\"kms:Weather\""),
    ({"Condition": {"StringEqualz": {"kms:CallerAccount": "1"}}}, "\"StringEqualz\""),
    ({"Condition": {"DateLessThan": {"aws:CurrentTime": "tomorrow"}}}, "\"tomorrow\""),
    ({"NotAction": "kms:Decrypt"}, "both Action and NotAction"),
], ids=["no-resource", "other-service", "unknown-action", "unknown-role", "federated", "unknown-key",
        "unknown-operator", "bad-date", "action-and-not-action"])
def test_malformed_aws_policies_are_refused_naming_the_problem(kms, root, statement_patch, needle):
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    before = kms.get_key_policy(KeyId=key, PolicyName="default")["Policy"]
    bad = statement("Allow", "*", "kms:Encrypt", sid="Bad")
    for field, value in statement_patch.items():
        if value is None:
            bad.pop(field)
        else:
            bad[field] = value
    with kms_error("MalformedPolicyDocumentException") as ei:
        kms.put_key_policy(KeyId=key, PolicyName="default", Policy=document(root, bad))
    assert needle in ei.value.response["Error"]["Message"], ei.value.response["Error"]["Message"]
    assert kms.get_key_policy(KeyId=key, PolicyName="default")["Policy"] == before


def restricted(kms, account) -> str:
    """A key whose policy admits only tenant-admins: others need a grant."""
    return kms.create_key(Policy=document(
        statement("Allow", {"AWS": f"arn:aws:iam::{account}:role/tenant-admin"}, "kms:*")))["KeyMetadata"]["KeyId"]


def test_grants_to_arns_with_encryption_context_constraints(kms, account, app, other):
    app_id, client = app
    other_id, stranger = other
    key = restricted(kms, account)
    equals = kms.create_grant(KeyId=key, GranteePrincipal=user_arn(account, app_id),
                              RetiringPrincipal=user_arn(account, other_id),
                              Operations=["Encrypt", "Decrypt", "GenerateDataKey"],
                              Constraints={"EncryptionContextEquals": {"App": "orders"}})
    # Constraint keys ignore case, values do not.
    blob = client.encrypt(KeyId=key, Plaintext=b"o", EncryptionContext={"app": "orders"},
                          GrantTokens=[equals["GrantToken"]])["CiphertextBlob"]
    assert client.decrypt(CiphertextBlob=blob, EncryptionContext={"app": "orders"})["Plaintext"] == b"o"
    for context in ({"app": "Orders"}, {"app": "orders", "more": "x"}, {}):
        with kms_error("AccessDeniedException"):
            client.encrypt(KeyId=key, Plaintext=b"o", EncryptionContext=context)
    listed = kms.list_grants(KeyId=key)["Grants"]
    assert [(g["GranteePrincipal"], g["RetiringPrincipal"], g["Constraints"]) for g in listed] == [
        (user_arn(account, app_id), user_arn(account, other_id), {"EncryptionContextEquals": {"App": "orders"}})]
    # Named by ARN or by access key id, the retiring principal finds and retires it.
    for name in (other_id, user_arn(account, other_id)):
        retirable = kms.list_retirable_grants(RetiringPrincipal=name)["Grants"]
        assert equals["GrantId"] in [g["GrantId"] for g in retirable], name
    stranger.retire_grant(GrantToken=equals["GrantToken"])
    with kms_error("AccessDeniedException"):
        client.decrypt(CiphertextBlob=blob, EncryptionContext={"app": "orders"})

    # A subset constraint, granted to every key-user by role ARN.
    subset = kms.create_grant(KeyId=key, GranteePrincipal=f"arn:aws:iam::{account}:role/key-user",
                              Operations=["Encrypt", "DescribeKey"],
                              Constraints={"EncryptionContextSubset": {"tenant": "t1"}})
    for who in (client, stranger):
        who.encrypt(KeyId=key, Plaintext=b"s", EncryptionContext={"tenant": "t1", "extra": "ok"})
        with kms_error("AccessDeniedException"):
            who.encrypt(KeyId=key, Plaintext=b"s", EncryptionContext={"extra": "ok"})
        # DescribeKey takes no encryption context: the constraint does not apply.
        who.describe_key(KeyId=key)
    kms.revoke_grant(KeyId=key, GrantId=subset["GrantId"])
    with kms_error("AccessDeniedException"):
        client.describe_key(KeyId=key)
