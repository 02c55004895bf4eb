"""The authorisation matrix: every operation of every front door × every role × every
context that applies: own tenant (no policy), other tenant (by id and by ARN), a key or
object that does not exist (the control for "existence is not revealed"), own / other
system (for keys scoped to a system), denied by policy, granted, an access key limited to
a set of operations, and an access key limited to exactly the operation under test (so an
operation authorised under another operation's name shows up).

Each cell asserts

1. the outcome an independent table in this file predicts (success, or the exact AWS
   error type / REST status and code);
2. for a denial, that nothing changed: a fingerprint of both tenants and of the
   operator's tenant list (as their tenant-admins / the system-admin) is taken before and
   after each batch of cells that must not change anything, and compared;
3. that it was audited: the record with the response's request id is in the caller's
   audit chain (the operator's chain for the system-admin) with the operation, the
   error code and the outcome: ``denied`` for AccessDenied, ``success`` for allowed
   calls; for a NotFound answer about another tenant's object, the same outcome as the
   NotFound of an object that does not exist (else the audit log reveals existence).

The expected outcome comes only from the role table and the rules below (`expect_aws`,
`expect_rest`), never from asking the server. The rules, in order (the first "no" wins):

* the role must allow the operation's class (ROLE_MAY);
* an access key limited to a set of operations may call only those;
* a key scoped to one system cannot manage the tenant (access keys, systems, root keys)
  and is refused keys and systems of another system of its tenant, and root keys other
  than the one above its own system;
* another tenant's key named by id is ``NotFoundException`` (existence is not revealed:
  the same answer, and the same audit outcome, as for a key that does not exist); by a
  full ARN of the other account ``NotFoundException`` too (an ARN of an account not the
  caller's names no key it can see, as AWS answers); another tenant's ciphertext
  ``InvalidCiphertextException`` (the answer for a ciphertext naming a key that does not
  exist, so again nothing is revealed); REST paths naming another tenant's objects 404 (a root key
  of another tenant like one that does not exist);
* on a key with a policy, a matching Deny refuses; otherwise an Allow statement or an
  active grant for the caller must admit it (a tenant-admin may always Get/PutKeyPolicy);
  roles stay the ceiling. A key without a policy is governed by roles alone.
* no privilege escalation: what a caller creates gives no more than it holds. A new
  access key's role, operation set and system scope are each at most the caller's (a
  limited caller must set a limit, a subset of its own); a grant's operations must each
  be allowed to the caller on the key by these same rules; a key policy (PutKeyPolicy,
  CreateKey with one) may Allow only operations on keys the caller may do itself on the
  key, a tenant-admin judged without the policy in force. The matrix's CreateGrant
  grants Encrypt and its PutKeyPolicy sends policies that Allow everything; the rows of
  `test_no_privilege_escalation` try every such combination.

Every key context with real keys has, beside its symmetric key, a signing key (ECC_NIST_P256,
SIGN_VERIFY), an HMAC_256 key and a key-agreement key (ECC_NIST_P256, KEY_AGREEMENT) of
the same tenant and system, with the same policy and grants, so each operation names a key
of the type it needs and can succeed for allowed callers (a key of the wrong type would be
InvalidKeyUsageException). Verify and VerifyMac send a signature / MAC of the message made
by a tenant-admin during setup, so an allowed call succeeds.

Cells that are allowed and change state (key management, access keys, systems, root
keys, tenants) run after the denial batch, each on throwaway objects made for it, so cells
never interfere with each other (no cell ever disables or suspends a root key with
systems below it).
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import shutil
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

import pytest
from botocore import xform_name
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from byok import der_to_pem, new_material, wrap
from softhsm import Token
from kcmtest import REPO, Server, error_code, kms_pages, start_or_fail, unique, v1_error_code

# =====================================================================================
# The oracle: roles, classes, operations. Written from the rules, not from the code.
# =====================================================================================

TA, KA, KU, AU, SA = "tenant-admin", "key-admin", "key-user", "auditor", "system-admin"

READ_KEYS = "ReadKeys"
MANAGE_KEYS = "ManageKeys"
USE_KEYS = "UseKeys"
RANDOM = "GenerateRandom"
READ_TENANT = "ReadTenant"
MANAGE_TENANT = "ManageTenant"
READ_AUDIT = "ReadAudit"
MANAGE_TENANTS = "ManageTenants"
BACKUP = "Backup"

ROLE_MAY: dict[str, set[str]] = {
    TA: {READ_KEYS, MANAGE_KEYS, USE_KEYS, RANDOM, READ_TENANT, MANAGE_TENANT, READ_AUDIT},
    KA: {READ_KEYS, MANAGE_KEYS, READ_TENANT},
    KU: {READ_KEYS, USE_KEYS, RANDOM},
    AU: {READ_KEYS, READ_TENANT, READ_AUDIT},
    SA: {READ_AUDIT, MANAGE_TENANTS, BACKUP},
}

OK = "ok"
AWS_DENIED = "AccessDeniedException"
AWS_NOT_FOUND = "NotFoundException"
AWS_INVALID_CIPHERTEXT = "InvalidCiphertextException"
REST_DENIED = "AccessDenied"
REST_NOT_FOUND = "NotFound"
# Error codes whose audit outcome must be "denied". NotFound answers to "another
# tenant's object" must look exactly like answers for objects that do not exist, in the
# caller's audit chain too: their outcome must equal that of the nonexistent-object cell.
DENIAL_CODES = {AWS_DENIED, REST_DENIED}
NOT_FOUND_CODES = {AWS_NOT_FOUND, AWS_INVALID_CIPHERTEXT, REST_NOT_FOUND}

POLICY_VERSION = "kcm-2026-11"
ALLOW_ALL = json.dumps({"Version": POLICY_VERSION, "Statement": [
    {"Sid": "everyone", "Effect": "Allow", "Principal": "*", "Action": "*"}]})
# The "granted" key: only tenant-admins by policy; the others through grants.
ADMINS_ONLY = json.dumps({"Version": POLICY_VERSION, "Statement": [
    {"Sid": "admins-only", "Effect": "Allow", "Principal": "role:tenant-admin", "Action": "*"}]})


def deny_policy(denied_admin_ids: list[str]) -> str:
    """Everyone is allowed, then every matrix caller is denied everything: the other roles
    by role, the matrix tenant-admins by access key id (so the fingerprinting tenant-admin
    can still read the key)."""
    return json.dumps({"Version": POLICY_VERSION, "Statement": [
        {"Sid": "everyone", "Effect": "Allow", "Principal": "*", "Action": "*"},
        {"Sid": "deny-roles", "Effect": "Deny",
         "Principal": ["role:key-admin", "role:key-user", "role:auditor"], "Action": "*"},
        {"Sid": "deny-admins", "Effect": "Deny", "Principal": denied_admin_ids, "Action": "*"},
    ]})


# Grants on the "granted" key (whose policy admits only tenant-admins), per caller. Some
# name operations the grantee's role may not do: roles stay the ceiling.
# The key-user's grant names some operations next to ones it leaves out (Sign but not
# Verify, GenerateMac but not VerifyMac, GenerateDataKey(Pair) but not the
# WithoutPlaintext twins), so one admitted under another's name shows up.
GRANTED_OPS = {
    "key-admin": ["DescribeKey", "CreateGrant", "Encrypt", "Sign"],
    "key-user": ["Encrypt", "Decrypt", "GenerateDataKey", "DescribeKey", "GenerateDataKeyPair",
                 "Sign", "GetPublicKey", "GenerateMac", "DeriveSharedSecret"],
    "auditor": ["DescribeKey", "Decrypt", "GetPublicKey", "VerifyMac"],
}
# A grant to the key-user on the "denied by policy" keys: the Deny wins over it.
DENY_KEY_GRANT = ["Encrypt", "DescribeKey", "GenerateDataKeyPair", "GenerateDataKeyPairWithoutPlaintext",
                  "Sign", "Verify", "GetPublicKey", "GenerateMac", "VerifyMac", "DeriveSharedSecret"]

# What the CreateGrant cells grant: the caller must be allowed each itself on the key.
CELL_GRANT_OPS = ["Encrypt"]
# The classes of the operations a key policy is asked about (what an Allow can give).
KEY_CLASSES = {READ_KEYS, MANAGE_KEYS, USE_KEYS}

# What the operations on keys of other types send.
SIGN_KEY = {"KeySpec": "ECC_NIST_P256", "KeyUsage": "SIGN_VERIFY"}
MAC_KEY = {"KeySpec": "HMAC_256", "KeyUsage": "GENERATE_VERIFY_MAC"}
AGREE_KEY = {"KeySpec": "ECC_NIST_P256", "KeyUsage": "KEY_AGREEMENT"}
SIGNING_ALGORITHM = "ECDSA_SHA_256"
MAC_ALGORITHM = "HMAC_SHA_256"
MESSAGE = b"matrix message"

# The access key limited to a set of operations (a tenant-admin, so only the limit refuses).
LIMITED_OPS = ["Encrypt", "Decrypt", "DescribeKey", "ListKeys", "ListSystems", "GetSystem"]


@dataclass
class Tgt:
    """What a cell names, in one context (see World.shared_target / World.fresh_target)."""
    key: Optional[str]                 # KeyId to send (id or ARN)
    alias: Optional[str] = None        # an alias name (DeleteAlias)
    update_alias: Optional[str] = None  # AliasName for UpdateAlias
    grant: Optional[str] = None        # a grant id on `key` (RetireGrant/RevokeGrant)
    ct: Optional[bytes] = None         # a ciphertext for Decrypt
    decrypt_key: Optional[str] = None  # KeyId sent with Decrypt, if any
    reenc_ct: Optional[bytes] = None   # CiphertextBlob for ReEncrypt
    dest: Optional[str] = None         # DestinationKeyId for ReEncrypt
    policy: str = ALLOW_ALL            # what PutKeyPolicy sends
    external: bool = False             # `key` has Origin EXTERNAL and waits for its material
    # Keys of other types in the same context (see TypedKeys); None on fresh targets.
    sign_key: Optional[str] = None     # Sign, Verify, GetPublicKey
    signature: Optional[bytes] = None  # a valid signature of MESSAGE by sign_key
    mac_key: Optional[str] = None      # GenerateMac, VerifyMac
    mac: Optional[bytes] = None        # a valid MAC of MESSAGE by mac_key
    agree_key: Optional[str] = None    # DeriveSharedSecret


def _key(t: Tgt, w) -> dict:
    return {"KeyId": t.key}


def _decrypt(t: Tgt, w) -> Optional[dict]:
    if t.ct is None:
        return None
    p: dict[str, Any] = {"CiphertextBlob": t.ct}
    if t.decrypt_key:
        p["KeyId"] = t.decrypt_key
    return p


def _alias_or_none(t: Tgt, w) -> Optional[dict]:
    return {"AliasName": t.alias} if t.alias else None


def _update_alias(t: Tgt, w) -> Optional[dict]:
    return {"AliasName": t.update_alias, "TargetKeyId": t.key} if t.update_alias else None


def _import_material(t: Tgt, w) -> dict:
    """ImportKeyMaterial naming `t.key`: a real import (parameters fetched by tenant A's
    admin, fresh material wrapped with openssl) when the key waits for material, else a
    made-up token (a denial is decided before the token is looked at)."""
    if not t.external:
        return {"KeyId": t.key, "ImportToken": b"kcm-import-v1.matrix-made-up",
                "EncryptedKeyMaterial": b"\0" * 384}
    params = w.kms.get_parameters_for_import(KeyId=t.key, WrappingAlgorithm="RSAES_OAEP_SHA_256",
                                             WrappingKeySpec="RSA_3072")
    work = Path(tempfile.mkdtemp(prefix="kcm-matrix-byok-"))
    try:
        pem = der_to_pem(params["PublicKey"], work / "wrapping.pem")
        wrapped = wrap("RSAES_OAEP_SHA_256", pem, new_material(work / "key.bin"), work / "key.wrapped")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return {"KeyId": t.key, "ImportToken": params["ImportToken"], "EncryptedKeyMaterial": wrapped}


def _grant_ref(t: Tgt, w) -> Optional[dict]:
    return {"KeyId": t.key, "GrantId": t.grant} if t.grant else None


def _sign(t: Tgt, w) -> dict:
    return {"KeyId": t.sign_key, "Message": MESSAGE, "MessageType": "RAW", "SigningAlgorithm": SIGNING_ALGORITHM}


def _verify(t: Tgt, w) -> dict:
    return dict(_sign(t, w), Signature=t.signature)


def _generate_mac(t: Tgt, w) -> dict:
    return {"KeyId": t.mac_key, "Message": MESSAGE, "MacAlgorithm": MAC_ALGORITHM}


def _verify_mac(t: Tgt, w) -> dict:
    return dict(_generate_mac(t, w), Mac=t.mac)


def _derive(t: Tgt, w) -> dict:
    return {"KeyId": t.agree_key, "KeyAgreementAlgorithm": "ECDH", "PublicKey": w.peer_public_key}


@dataclass(frozen=True)
class AwsOp:
    cls: str
    # Parameters when the operation names a key (contexts KEY_CONTEXTS), or None.
    key: Optional[Callable[[Tgt, Any], Optional[dict]]]
    # Parameters when it is called without naming a key (contexts PLAIN_CONTEXTS), or None.
    plain: Optional[Callable[[Any], dict]] = None


AWS_OPS: dict[str, AwsOp] = {
    # ReadKeys
    "DescribeKey": AwsOp(READ_KEYS, _key),
    "ListKeys": AwsOp(READ_KEYS, None, lambda w: {}),
    "ListAliases": AwsOp(READ_KEYS, _key, lambda w: {}),
    "ListResourceTags": AwsOp(READ_KEYS, _key),
    "GetKeyRotationStatus": AwsOp(READ_KEYS, _key),
    "ListKeyRotations": AwsOp(READ_KEYS, _key),
    "GetKeyPolicy": AwsOp(READ_KEYS, lambda t, w: {"KeyId": t.key, "PolicyName": "default"}),
    "ListKeyPolicies": AwsOp(READ_KEYS, _key),
    "ListGrants": AwsOp(READ_KEYS, _key),
    "ListRetirableGrants": AwsOp(READ_KEYS, None, lambda w: {"RetiringPrincipal": w.victim_id}),
    # ManageKeys
    "CreateKey": AwsOp(MANAGE_KEYS, None, lambda w: {"Description": unique("mx-created")}),
    "UpdateKeyDescription": AwsOp(MANAGE_KEYS, lambda t, w: {"KeyId": t.key, "Description": unique("changed")}),
    "EnableKey": AwsOp(MANAGE_KEYS, _key),
    "DisableKey": AwsOp(MANAGE_KEYS, _key),
    "ScheduleKeyDeletion": AwsOp(MANAGE_KEYS, lambda t, w: {"KeyId": t.key, "PendingWindowInDays": 7}),
    "CancelKeyDeletion": AwsOp(MANAGE_KEYS, _key),
    "CreateAlias": AwsOp(MANAGE_KEYS, lambda t, w: {"AliasName": "alias/" + unique("mx-new"), "TargetKeyId": t.key}),
    "UpdateAlias": AwsOp(MANAGE_KEYS, _update_alias),
    "DeleteAlias": AwsOp(MANAGE_KEYS, _alias_or_none),
    "TagResource": AwsOp(MANAGE_KEYS, lambda t, w: {"KeyId": t.key, "Tags": [{"TagKey": "k1", "TagValue": "v1"}]}),
    "UntagResource": AwsOp(MANAGE_KEYS, lambda t, w: {"KeyId": t.key, "TagKeys": ["k0"]}),
    "EnableKeyRotation": AwsOp(MANAGE_KEYS, _key),
    "DisableKeyRotation": AwsOp(MANAGE_KEYS, _key),
    "RotateKeyOnDemand": AwsOp(MANAGE_KEYS, _key),
    # The matrix asks who may replace a policy, not AWS's lockout check (which refuses a
    # policy its writer could not replace again; test_key_policies_aws.py): it bypasses it.
    "PutKeyPolicy": AwsOp(MANAGE_KEYS, lambda t, w: {"KeyId": t.key, "PolicyName": "default", "Policy": t.policy,
                                                     "BypassPolicyLockoutSafetyCheck": True}),
    "CreateGrant": AwsOp(MANAGE_KEYS, lambda t, w: {"KeyId": t.key, "GranteePrincipal": w.victim_id,
                                                    "Operations": CELL_GRANT_OPS}),
    "RetireGrant": AwsOp(MANAGE_KEYS, _grant_ref),
    "RevokeGrant": AwsOp(MANAGE_KEYS, _grant_ref),
    "GetParametersForImport": AwsOp(MANAGE_KEYS, lambda t, w: {
        "KeyId": t.key, "WrappingAlgorithm": "RSAES_OAEP_SHA_256", "WrappingKeySpec": "RSA_3072"}),
    "ImportKeyMaterial": AwsOp(MANAGE_KEYS, _import_material),
    "DeleteImportedKeyMaterial": AwsOp(MANAGE_KEYS, _key),
    # UseKeys
    "Encrypt": AwsOp(USE_KEYS, lambda t, w: {"KeyId": t.key, "Plaintext": b"matrix plaintext"}),
    "Decrypt": AwsOp(USE_KEYS, _decrypt),
    "ReEncrypt": AwsOp(USE_KEYS, lambda t, w: {"CiphertextBlob": t.reenc_ct, "DestinationKeyId": t.dest}
                       if t.reenc_ct is not None else None),
    "GenerateDataKey": AwsOp(USE_KEYS, lambda t, w: {"KeyId": t.key, "KeySpec": "AES_256"}),
    "GenerateDataKeyWithoutPlaintext": AwsOp(USE_KEYS, lambda t, w: {"KeyId": t.key, "KeySpec": "AES_256"}),
    # A data key pair is encrypted under the context's symmetric key.
    "GenerateDataKeyPair": AwsOp(USE_KEYS, lambda t, w: {"KeyId": t.key, "KeyPairSpec": "ECC_NIST_P256"}),
    "GenerateDataKeyPairWithoutPlaintext": AwsOp(USE_KEYS, lambda t, w: {"KeyId": t.key,
                                                                         "KeyPairSpec": "ECC_NIST_P256"}),
    "Sign": AwsOp(USE_KEYS, _sign),
    "Verify": AwsOp(USE_KEYS, _verify),
    "GetPublicKey": AwsOp(USE_KEYS, lambda t, w: {"KeyId": t.sign_key}),
    "GenerateMac": AwsOp(USE_KEYS, _generate_mac),
    "VerifyMac": AwsOp(USE_KEYS, _verify_mac),
    "DeriveSharedSecret": AwsOp(USE_KEYS, _derive),
    # GenerateRandom
    "GenerateRandom": AwsOp(RANDOM, None, lambda w: {"NumberOfBytes": 16}),
}

# What a fresh target needs before an allowed state-changing cell can succeed on it.
FRESH_PREP = {"EnableKey": "disable", "CancelKeyDeletion": "pending",
              # Import operations act only on keys created with Origin EXTERNAL.
              "GetParametersForImport": "external", "ImportKeyMaterial": "external",
              "DeleteImportedKeyMaterial": "external"}

# Callers (names): unscoped roles, roles scoped to system A, and the limited key.
UNSCOPED = ("tenant-admin", "key-admin", "key-user", "auditor", "system-admin")
SCOPED = ("tenant-admin@sys-a", "key-admin@sys-a", "key-user@sys-a", "auditor@sys-a")
LIMITED = ("tenant-admin/limited",)
# Stands for "a tenant-admin access key limited to exactly the operation of the cell": it
# must be allowed, so an operation authorised under another operation's name shows up.
SELF_LIMITED = ("tenant-admin/only-<op>",)


def self_limited_name(op: str) -> str:
    return f"tenant-admin/only-{op}"

# Contexts of operations that name a key, and who is tried in each.
KEY_CONTEXTS: dict[str, tuple[str, ...]] = {
    "own/no-policy": UNSCOPED,          # a key of the caller's tenant without a policy
    "nonexistent": UNSCOPED,            # control: a key / alias / grant that does not exist
    "other-tenant": UNSCOPED,           # another tenant's key, alias, grant, ciphertext (by id)
    "other-tenant-arn": UNSCOPED,       # another tenant's key by its full ARN
    "policy-deny": UNSCOPED,            # a key whose policy denies the caller
    "granted": UNSCOPED,                # a key whose policy admits only tenant-admins, plus grants
    "own-system": SCOPED,               # a scoped caller, a key of its own system
    "other-system": SCOPED,             # a scoped caller, a key of another system of its tenant
    "op-limited": LIMITED,              # an access key limited to LIMITED_OPS, a key without policy
    "op-limited-self": SELF_LIMITED,    # an access key limited to [this operation], same key
}
# Contexts of operations called without naming a key.
PLAIN_CONTEXTS: dict[str, tuple[str, ...]] = {
    "own/no-key": UNSCOPED,
    "own-system/no-key": SCOPED,
    "op-limited/no-key": LIMITED,
    "op-limited-self/no-key": SELF_LIMITED,
}


def expect_aws(op: str, caller: "Caller", ctx: str) -> str:
    """The expected outcome of AWS operation `op` by `caller` in `ctx` (OK or an error type)."""
    outcome = expect_aws_access(op, caller, ctx)
    if outcome != OK:
        return outcome
    # No privilege escalation (the cells' grant and policies; see the module docstring).
    if op == "CreateGrant" and any(expect_aws_access(g, caller, ctx) != OK for g in CELL_GRANT_OPS):
        return AWS_DENIED
    if op == "PutKeyPolicy" and not allows_every_key_operation(caller):
        return AWS_DENIED
    return OK


def allows_every_key_operation(caller: "Caller") -> bool:
    """Whether `caller` holds every operation on keys, as a policy Allowing "*" needs: only
    an unlimited tenant-admin does (judged without the policy in force, which it may always
    replace; the other roles lack a class of operations on keys whatever the policy says)."""
    return KEY_CLASSES <= ROLE_MAY[caller.role] and caller.ops is None


def expect_aws_access(op: str, caller: "Caller", ctx: str) -> str:
    """May `caller` do `op` in `ctx` (roles, limit, scope, tenant, policy and grants)?"""
    if AWS_OPS[op].cls not in ROLE_MAY[caller.role]:
        return AWS_DENIED
    if caller.ops is not None and op not in caller.ops:
        return AWS_DENIED
    base = ctx.split("/")[0]
    if base == "nonexistent":
        return AWS_NOT_FOUND
    if base == "other-tenant":
        # Another tenant's key is answered as a key that does not exist: through its
        # ciphertext (Decrypt, and ReEncrypt, which decrypts) as an invalid ciphertext,
        # by id as "not found".
        return AWS_INVALID_CIPHERTEXT if op in ("Decrypt", "ReEncrypt") else AWS_NOT_FOUND
    if base == "other-tenant-arn":
        return AWS_NOT_FOUND
    if base == "other-system":
        return AWS_DENIED
    if base == "policy-deny":
        if caller.role == TA and op in ("GetKeyPolicy", "PutKeyPolicy"):
            return OK
        return AWS_DENIED
    if base == "granted":
        if caller.role == TA:
            return OK  # the policy allows role:tenant-admin everything
        return OK if op in GRANTED_OPS.get(caller.name, ()) else AWS_DENIED
    return OK


# ----------------------------------------------------------------------------- REST

@dataclass(frozen=True)
class RestRoute:
    method: str
    template: str          # path with {} for the parameter
    audit_op: str          # operation name in the audit log (the OpenAPI operationId)
    core_op: str           # operation name an access key's `operations` list uses
    cls: str
    ok_status: int
    # which Rtgt field fills the {} / the body; None: the route names nothing
    param: Optional[str] = None


REST_ROUTES: list[RestRoute] = [
    RestRoute("POST", "/v1/tenants", "CreateTenant", "CreateTenant", MANAGE_TENANTS, 201),
    RestRoute("GET", "/v1/tenants", "ListTenants", "ListTenants", MANAGE_TENANTS, 200),
    # For the operator this is tenant management (it may read any tenant); for a tenant's
    # access key it is reading its own tenant.
    RestRoute("GET", "/v1/tenants/{}", "GetTenant", "GetTenant", READ_TENANT, 200, "tenant"),
    RestRoute("POST", "/v1/access-keys", "CreateAccessKey", "CreateAccessKey", MANAGE_TENANT, 201, "ak_system"),
    # ReadTenant for a tenant's keys; for the operator it lists the operator's own access
    # keys and is judged as tenant management (see rest_class).
    RestRoute("GET", "/v1/access-keys", "ListAccessKeys", "ListAccessKeys", READ_TENANT, 200),
    RestRoute("DELETE", "/v1/access-keys/{}", "DeleteAccessKey", "DeleteAccessKey", MANAGE_TENANT, 204, "access_key"),
    RestRoute("POST", "/v1/access-keys/{}/disable", "DisableAccessKey", "DisableAccessKey", MANAGE_TENANT, 200,
              "access_key"),
    RestRoute("POST", "/v1/access-keys/{}/enable", "EnableAccessKey", "EnableAccessKey", MANAGE_TENANT, 200,
              "access_key"),
    RestRoute("POST", "/v1/systems", "CreateSystem", "CreateSystem", MANAGE_TENANT, 201),
    RestRoute("GET", "/v1/systems", "ListSystems", "ListSystems", READ_TENANT, 200),
    RestRoute("GET", "/v1/systems/{}", "GetSystem", "GetSystem", READ_TENANT, 200, "system"),
    RestRoute("POST", "/v1/systems/{}/rotate-key", "RotateSystemKey", "RotateSystemKey", MANAGE_TENANT, 200,
              "system"),
    RestRoute("POST", "/v1/systems/{}/rewrap", "RewrapSystemKeys", "RewrapSystemKeys", MANAGE_TENANT, 200,
              "system"),
    # Moves the named system below the root key of the same context (body root_key_id).
    RestRoute("POST", "/v1/systems/{}/switch-root-key", "SwitchSystemRootKey", "SwitchSystemRootKey",
              MANAGE_TENANT, 200, "system"),
    # Link a registered-but-unlinked system (to the default root); unlink a system without keys.
    RestRoute("POST", "/v1/systems/{}/link", "LinkSystem", "LinkSystem", MANAGE_TENANT, 200, "system"),
    RestRoute("POST", "/v1/systems/{}/unlink", "UnlinkSystem", "UnlinkSystem", MANAGE_TENANT, 200, "system"),
    RestRoute("GET", "/v1/keychain", "GetKeychain", "GetKeychain", READ_TENANT, 200),
    RestRoute("POST", "/v1/root-keys", "CreateRootKey", "CreateRootKey", MANAGE_TENANT, 201),
    RestRoute("GET", "/v1/root-keys", "ListRootKeys", "ListRootKeys", READ_TENANT, 200),
    RestRoute("GET", "/v1/root-keys/{}", "GetRootKey", "GetRootKey", READ_TENANT, 200, "root_key"),
    # The kill switch. Allowed cells run on a fresh root key without systems (phase 2).
    RestRoute("POST", "/v1/root-keys/{}/disable", "DisableRootKey", "DisableRootKey", MANAGE_TENANT, 200,
              "root_key"),
    RestRoute("POST", "/v1/root-keys/{}/suspend", "SuspendRootKey", "SuspendRootKey", MANAGE_TENANT, 200,
              "root_key"),
    RestRoute("POST", "/v1/root-keys/{}/enable", "EnableRootKey", "EnableRootKey", MANAGE_TENANT, 200,
              "root_key"),
    RestRoute("POST", "/v1/root-keys/{}/compromise", "MarkRootKeyCompromised", "MarkRootKeyCompromised",
              MANAGE_TENANT, 200, "root_key"),
    # Service key lifecycle changes the AWS API has no words for. Allowed cells run on a
    # fresh key of the context's system (destroy: one marked compromised first).
    RestRoute("POST", "/v1/keys/{}/compromise", "MarkKeyCompromised", "MarkKeyCompromised", MANAGE_KEYS, 200,
              "key"),
    RestRoute("POST", "/v1/keys/{}/destroy", "DestroyCompromisedKey", "DestroyCompromisedKey", MANAGE_KEYS,
              200, "key"),
    RestRoute("POST", "/v1/root-keys/{}/rotate", "RotateRootKey", "RotateRootKey", MANAGE_TENANT, 200,
              "root_key"),
    RestRoute("POST", "/v1/root-keys/import-parameters", "GetRootKeyImportParameters",
              "GetRootKeyImportParameters", MANAGE_TENANT, 200),
    # Denied cells send a made-up token; allowed ones a real import wrapped with openssl.
    RestRoute("POST", "/v1/root-keys/import", "ImportRootKey", "ImportRootKey", MANAGE_TENANT, 201),
    # Denied cells name a key the token does not have; allowed ones a fresh customer key.
    RestRoute("POST", "/v1/root-keys/reference", "ReferenceRootKey", "ReferenceRootKey", MANAGE_TENANT, 201),
    RestRoute("GET", "/v1/audit", "ListAuditRecords", "ListAuditRecords", READ_AUDIT, 200),
    RestRoute("GET", "/v1/audit/checkpoints", "ListAuditCheckpoints", "ListAuditCheckpoints", READ_AUDIT, 200),
    RestRoute("GET", "/v1/audit/signing-key", "GetAuditSigningKey", "GetAuditSigningKey", READ_AUDIT, 200),
    RestRoute("GET", "/v1/audit/head", "GetAuditHead", "GetAuditHead", READ_AUDIT, 200),
    # A backup of the whole store, every tenant's keys included: the operator's alone.
    RestRoute("GET", "/v1/backup", "GetBackup", "GetBackup", BACKUP, 200),
]
REST_BY_KEY = {(r.method, r.template): r for r in REST_ROUTES}
# Routes of the REST router this matrix does not cover (public, nothing to authorise).
REST_IGNORED_PATHS = {"/v1/openapi.json"}


@dataclass
class Rtgt:
    """What a REST cell names in one context."""
    tenant: Optional[str] = None       # tenant id for GET /v1/tenants/{}
    system: Optional[str] = None       # system id for GET /v1/systems/{}
    access_key: Optional[str] = None   # access key id for …/access-keys/{}…
    root_key: Optional[str] = None     # root key id for …/root-keys/{}…
    key: Optional[str] = None          # service key id for …/keys/{}…
    ak_system: Optional[str] = ""      # "": POST /v1/access-keys without a system; None: not applicable


REST_CONTEXTS: dict[str, tuple[str, ...]] = {
    "own": UNSCOPED,
    "nonexistent": UNSCOPED,
    "other-tenant": UNSCOPED,
    "own-system": SCOPED,
    "other-system": SCOPED,
    "op-limited": LIMITED,
    "op-limited-self": SELF_LIMITED,
}
# Contexts in which routes that name nothing are tried (naming nothing, "other tenant"
# and "nonexistent" mean nothing).
REST_PLAIN_CONTEXTS = {"own", "own-system", "op-limited", "op-limited-self"}


def rest_class(route: RestRoute, caller: "Caller") -> str:
    if route.template == "/v1/tenants/{}" and caller.role == SA:
        return MANAGE_TENANTS
    if (route.method, route.template) == ("GET", "/v1/access-keys") and caller.role == SA:
        return MANAGE_TENANTS
    return route.cls


def expect_rest(route: RestRoute, caller: "Caller", ctx: str) -> tuple[int, str]:
    """(HTTP status, code) expected of `route` by `caller` in `ctx` (code OK on success)."""
    cls = rest_class(route, caller)
    if cls not in ROLE_MAY[caller.role]:
        return 403, REST_DENIED
    if caller.ops is not None and route.core_op not in caller.ops:
        return 403, REST_DENIED
    if caller.scoped and cls == MANAGE_TENANT:
        return 403, REST_DENIED
    if ctx == "nonexistent":
        return 404, REST_NOT_FOUND
    if route.audit_op == "CreateAccessKey" and caller.ops is not None and ctx != "other-tenant":
        # The cell asks for a key without an operation limit: every operation, more than
        # a limited caller holds. (Another tenant's system is not found before that.)
        return 403, REST_DENIED
    if ctx == "other-tenant":
        if caller.role == SA:
            return route.ok_status, OK  # the operator may read every tenant
        return 404, REST_NOT_FOUND
    if ctx == "other-system":
        return 403, REST_DENIED
    return route.ok_status, OK


# =====================================================================================
# The world: one server, two tenants, systems, callers and keys for every context.
# =====================================================================================


@dataclass
class Caller:
    name: str
    role: str
    akid: str
    secret: str
    kms: Any
    scoped: bool = False
    ops: Optional[frozenset] = None
    operator: bool = False

    @property
    def creds(self) -> tuple[str, str]:
        return (self.akid, self.secret)


@dataclass
class TypedKeys:
    """A signing, an HMAC and a key-agreement key beside a context's symmetric key, with
    a signature and a MAC of MESSAGE made at setup."""
    sign: str
    sign_arn: str
    signature: bytes
    mac: str
    mac_arn: str
    mac_value: bytes
    agree: str
    agree_arn: str

    def ids(self) -> list[str]:
        return [self.sign, self.mac, self.agree]


@dataclass
class KeyFix:
    id: str
    arn: str
    alias: str
    grant: str
    ct: Optional[bytes]
    policy: Optional[str]
    typed: Optional[TypedKeys] = None


class World:
    def __init__(self, srv: Server):
        self.srv = srv
        self.kms = srv.client("default")            # tenant A's tenant-admin: setup + fingerprints
        self.creds = srv.creds("default")
        sa_id, sa_secret = srv.creds("system-admin")
        self.sa_creds = (sa_id, sa_secret)
        tenant = srv.v1_ok("GET", "/v1/keychain")["tenant"]
        self.tenant_a = tenant["id"]

        # Root keys of tenant A: the default one (above sys-a, created without naming a root),
        # one above sys-b, and a spare without systems (the target of the "own" context).
        self.root_default = next(r["id"] for r in srv.v1_ok("GET", "/v1/root-keys")["root_keys"] if r["default"])
        self.root_b = srv.v1_ok("POST", "/v1/root-keys", expect=(201,),
                                json_body={"description": "matrix root above sys-b"})["id"]
        self.root_spare = srv.v1_ok("POST", "/v1/root-keys", expect=(201,),
                                    json_body={"description": "matrix spare root, no systems"})["id"]

        # Systems of tenant A.
        self.sys_a = srv.v1_ok("POST", "/v1/systems", expect=(201,), json_body={"name": unique("sys-a")})
        self.sys_b = srv.v1_ok("POST", "/v1/systems", expect=(201,),
                               json_body={"name": unique("sys-b"), "root_key_id": self.root_b})

        # Access keys of tenant A.
        victim = srv.create_access_key(KU, description="matrix victim (grantee, target of access-key ops)")
        self.victim_id = victim["access_key_id"]
        self.callers: dict[str, Caller] = {}
        for role in (TA, KA, KU, AU):
            ak = srv.create_access_key(role, description=f"matrix {role}")
            self._add(Caller(role, role, ak["access_key_id"], ak["secret_access_key"], None))
        for role in (TA, KA, KU, AU):
            ak = srv.create_access_key(role, system=self.sys_a["name"], description=f"matrix {role}@sys-a")
            self._add(Caller(f"{role}@sys-a", role, ak["access_key_id"], ak["secret_access_key"], None,
                             scoped=True))
        lim = srv.v1_ok("POST", "/v1/access-keys", expect=(201,),
                        json_body={"role": TA, "operations": LIMITED_OPS, "description": "matrix limited"})
        self._add(Caller("tenant-admin/limited", TA, lim["access_key_id"], lim["secret_access_key"], None,
                         ops=frozenset(LIMITED_OPS)))
        self._add(Caller("system-admin", SA, sa_id, sa_secret, None, operator=True))
        for op in sorted(set(AWS_OPS) | {r.core_op for r in REST_ROUTES}):
            one = srv.v1_ok("POST", "/v1/access-keys", expect=(201,),
                            json_body={"role": TA, "operations": [op], "description": f"matrix only {op}"})
            self._add(Caller(self_limited_name(op), TA, one["access_key_id"], one["secret_access_key"], None,
                             ops=frozenset([op])))
        setup_a = srv.create_access_key(TA, system=self.sys_a["name"], description="matrix setup sys-a")
        setup_b = srv.create_access_key(TA, system=self.sys_b["name"], description="matrix setup sys-b")
        self.kms_sys_a = srv.client_for(setup_a)
        self.kms_sys_b = srv.client_for(setup_b)

        # Tenant B, made by the operator.
        tb = srv.create_tenant(unique("tenant-b"))
        self.tenant_b = tb["tenant"]["id"]
        b_ak = tb["access_key"]
        self.b_creds = (b_ak["access_key_id"], b_ak["secret_access_key"])
        self.b_kms = srv.client_for(b_ak)
        self.b_system = srv.v1_ok("POST", "/v1/systems", expect=(201,), creds=self.b_creds,
                                  json_body={"name": unique("b-only")})
        self.b_root = next(r["id"] for r in srv.v1_ok("GET", "/v1/root-keys", creds=self.b_creds)["root_keys"]
                           if r["default"])
        self.b_victim_id = srv.create_access_key(KU, creds=self.b_creds)["access_key_id"]
        self.b_key = self.make_key(self.b_kms, admin=self.b_kms, victim=b_ak["access_key_id"], typed=True)

        # Keys of tenant A, one per context.
        ta_ids = [self.callers["tenant-admin"].akid]
        self.deny_doc = deny_policy(ta_ids)
        self.key_plain = self.make_key(self.kms, typed=True)
        self.key_sys_a = self.make_key(self.kms_sys_a, typed=True)
        self.key_sys_b = self.make_key(self.kms_sys_b, typed=True)
        self.key_deny = self.make_key(self.kms, policy=self.deny_doc, typed=True,
                                      grants=[(self.callers["key-user"].akid, DENY_KEY_GRANT)])
        self.key_granted = self.make_key(self.kms, policy=ADMINS_ONLY, grants=self._granted_grants(), typed=True)

        # A peer's public key (P-256, SubjectPublicKeyInfo DER) for DeriveSharedSecret.
        self.peer_public_key = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)

        # Ids that must never show up in tenant A's answers or audit records.
        self.tenant_b_ids = [self.tenant_b, self.b_key.id, self.b_key.grant, self.b_system["id"],
                             self.b_victim_id, b_ak["access_key_id"], self.b_root] + self.b_key.typed.ids()

    def _add(self, c: Caller) -> None:
        c.kms = self.srv.new_client(c.akid, c.secret)
        self.callers[c.name] = c

    def _granted_grants(self):
        return [(self.callers[name].akid, ops) for name, ops in GRANTED_OPS.items()]

    def make_key(self, creator, admin=None, victim=None, policy=None, grants=(), with_ct=True,
                 prep=None, typed=False) -> KeyFix:
        """A key with an alias, a tag k0, a grant to the victim and (optionally) a ciphertext,
        then its policy, then `prep` (disable / schedule deletion; "external": the key is
        created with Origin EXTERNAL and left waiting for its material). With `typed`, also
        a signing, an HMAC and a key-agreement key made by the same creator with the same
        grants and policy (TypedKeys)."""
        admin = admin or self.kms
        victim = victim or self.victim_id
        origin = {"Origin": "EXTERNAL"} if prep == "external" else {}
        md = creator.create_key(Description=unique("mx-key"),
                                Tags=[{"TagKey": "k0", "TagValue": "v0"}], **origin)["KeyMetadata"]
        kid = md["KeyId"]
        alias = "alias/" + unique("mx")
        admin.create_alias(AliasName=alias, TargetKeyId=kid)
        grant = admin.create_grant(KeyId=kid, GranteePrincipal=victim, Operations=["Encrypt"])["GrantId"]
        for grantee, ops in grants:
            admin.create_grant(KeyId=kid, GranteePrincipal=grantee, Operations=list(ops))
        ct = admin.encrypt(KeyId=kid, Plaintext=b"matrix secret")["CiphertextBlob"] if with_ct else None
        if policy:
            admin.put_key_policy(KeyId=kid, PolicyName="default", Policy=policy,
                                 BypassPolicyLockoutSafetyCheck=True)
        if prep == "disable":
            admin.disable_key(KeyId=kid)
        elif prep == "pending":
            admin.schedule_key_deletion(KeyId=kid, PendingWindowInDays=7)
        return KeyFix(kid, md["Arn"], alias, grant, ct, policy,
                      self.make_typed_keys(creator, admin, policy, grants) if typed else None)

    @staticmethod
    def make_typed_keys(creator, admin, policy, grants) -> TypedKeys:
        made = {}
        for kind, spec in (("sign", SIGN_KEY), ("mac", MAC_KEY), ("agree", AGREE_KEY)):
            md = creator.create_key(Description=unique(f"mx-{kind}"), **spec)["KeyMetadata"]
            for grantee, ops in grants:
                admin.create_grant(KeyId=md["KeyId"], GranteePrincipal=grantee, Operations=list(ops))
            made[kind] = md
        signature = admin.sign(KeyId=made["sign"]["KeyId"], Message=MESSAGE, MessageType="RAW",
                               SigningAlgorithm=SIGNING_ALGORITHM)["Signature"]
        mac = admin.generate_mac(KeyId=made["mac"]["KeyId"], Message=MESSAGE, MacAlgorithm=MAC_ALGORITHM)["Mac"]
        if policy:
            for md in made.values():
                admin.put_key_policy(KeyId=md["KeyId"], PolicyName="default", Policy=policy,
                                     BypassPolicyLockoutSafetyCheck=True)
        return TypedKeys(made["sign"]["KeyId"], made["sign"]["Arn"], signature,
                         made["mac"]["KeyId"], made["mac"]["Arn"], mac,
                         made["agree"]["KeyId"], made["agree"]["Arn"])

    # -- targets ------------------------------------------------------------------------
    @staticmethod
    def _tgt(k: KeyFix) -> Tgt:
        t = Tgt(key=k.id, alias=k.alias, update_alias=k.alias, grant=k.grant, ct=k.ct,
                reenc_ct=k.ct, dest=k.id, policy=ALLOW_ALL)
        if k.typed:
            ty = k.typed
            t.sign_key, t.signature, t.mac_key, t.mac, t.agree_key = (
                ty.sign, ty.signature, ty.mac, ty.mac_value, ty.agree)
        return t

    def shared_target(self, ctx: str) -> Tgt:
        """Targets of the denial batch (and of allowed cells that change nothing)."""
        p, b = self.key_plain, self.b_key
        if ctx in ("own/no-policy", "op-limited", "op-limited-self"):
            return self._tgt(p)
        if ctx == "own-system":
            return self._tgt(self.key_sys_a)
        if ctx == "other-system":
            return self._tgt(self.key_sys_b)
        if ctx == "policy-deny":
            return self._tgt(self.key_deny)
        if ctx == "granted":
            return self._tgt(self.key_granted)
        if ctx == "other-tenant":
            # B's key / alias / grant / ciphertext; ReEncrypt of B's ciphertext into our key;
            # UpdateAlias of our alias onto B's key.
            # B's keys of other types, with B's own valid signature / MAC.
            bt = b.typed
            return Tgt(key=b.id, alias=b.alias, update_alias=p.alias, grant=b.grant, ct=b.ct,
                       reenc_ct=b.ct, dest=p.id, sign_key=bt.sign, signature=bt.signature,
                       mac_key=bt.mac, mac=bt.mac_value, agree_key=bt.agree)
        if ctx == "other-tenant-arn":
            bt = b.typed
            return Tgt(key=b.arn, alias=None, update_alias=p.alias, grant=b.grant, ct=b.ct,
                       decrypt_key=b.arn, reenc_ct=p.ct, dest=b.arn, sign_key=bt.sign_arn,
                       signature=bt.signature, mac_key=bt.mac_arn, mac=bt.mac_value, agree_key=bt.agree_arn)
        if ctx == "nonexistent":
            # Well-formed signature / MAC (our own key's), for a key that does not exist.
            return Tgt(key=str(uuid.uuid4()), alias="alias/" + unique("mx-missing"), update_alias=p.alias,
                       grant=secrets.token_hex(32), ct=None, reenc_ct=p.ct, dest=str(uuid.uuid4()),
                       sign_key=str(uuid.uuid4()), signature=p.typed.signature,
                       mac_key=str(uuid.uuid4()), mac=p.typed.mac_value, agree_key=str(uuid.uuid4()))
        raise AssertionError(ctx)

    def fresh_target(self, ctx: str, op: str) -> Tgt:
        """A throwaway key for one allowed, state-changing cell, set up like the context's."""
        prep = FRESH_PREP.get(op)
        if ctx in ("own/no-policy", "op-limited", "op-limited-self"):
            k = self.make_key(self.kms, with_ct=False, prep=prep)
        elif ctx == "own-system":
            k = self.make_key(self.kms_sys_a, with_ct=False, prep=prep)
        elif ctx == "policy-deny":
            k = self.make_key(self.kms, policy=self.deny_doc, with_ct=False, prep=prep,
                              grants=[(self.callers["key-user"].akid, DENY_KEY_GRANT)])
        elif ctx == "granted":
            k = self.make_key(self.kms, policy=ADMINS_ONLY, with_ct=False, prep=prep,
                              grants=self._granted_grants())
        else:
            raise AssertionError(f"no allowed state-changing cell expected in context {ctx}")
        t = self._tgt(k)
        t.policy = k.policy or ALLOW_ALL
        t.external = prep == "external"
        return t

    def rest_target(self, ctx: str) -> Rtgt:
        if ctx in ("own", "op-limited", "op-limited-self", "own-system"):
            # A scoped caller names the root key above its own system; the others a root key
            # without systems (denied state changes on it must change nothing).
            root = self.root_default if ctx == "own-system" else self.root_spare
            key = self.key_sys_a.id if ctx == "own-system" else self.key_plain.id
            return Rtgt(tenant=self.tenant_a, system=self.sys_a["id"], access_key=self.victim_id, ak_system="",
                        root_key=root, key=key)
        if ctx == "other-system":
            return Rtgt(system=self.sys_b["id"], ak_system=self.sys_b["name"], root_key=self.root_b,
                        key=self.key_sys_b.id)
        if ctx == "other-tenant":
            return Rtgt(tenant=self.tenant_b, system=self.b_system["id"], access_key=self.b_victim_id,
                        ak_system=self.b_system["name"], root_key=self.b_root, key=self.b_key.id)
        if ctx == "nonexistent":
            return Rtgt(tenant=str(uuid.uuid4()), system=str(uuid.uuid4()),
                        access_key="KCM" + "".join(secrets.choice("ABCDEFGHJKLMNPQRSTUVWXYZ23456789")
                                                   for _ in range(17)),
                        ak_system=unique("no-such-system"), root_key=str(uuid.uuid4()), key=str(uuid.uuid4()))
        raise AssertionError(ctx)

    # -- fingerprints ---------------------------------------------------------------------
    def fingerprint(self) -> dict:
        return {
            "tenant A": fingerprint_tenant(self.srv, self.kms, self.creds),
            "tenant B": fingerprint_tenant(self.srv, self.b_kms, self.b_creds),
            "operator": _strip(self.srv.v1_ok("GET", "/v1/tenants", creds=self.sa_creds)),
        }


def _strip(v):
    if isinstance(v, dict):
        return {k: _strip(x) for k, x in v.items() if k != "ResponseMetadata"}
    if isinstance(v, list):
        return [_strip(x) for x in v]
    if hasattr(v, "isoformat"):
        return v.isoformat()
    if isinstance(v, bytes):
        return v.hex()
    return v


def _snap(fn, **kw):
    try:
        return _strip(fn(**kw))
    except ClientError as e:
        return {"error": error_code(e)}


def fingerprint_tenant(srv: Server, kms, creds) -> dict:
    """Everything a tenant-admin can see of a tenant's keys, aliases, systems, access keys,
    root keys (ids, states, descriptions)."""
    keys = [k["KeyId"] for page in kms_pages(kms.list_keys, Limit=1000) for k in page["Keys"]]
    out: dict[str, Any] = {"keys": {}}
    for kid in sorted(keys):
        out["keys"][kid] = {
            "describe": _snap(kms.describe_key, KeyId=kid),
            "tags": _snap(kms.list_resource_tags, KeyId=kid, Limit=50),
            "policy": _snap(kms.get_key_policy, KeyId=kid, PolicyName="default"),
            "grants": _snap(kms.list_grants, KeyId=kid, Limit=100),
            "rotation": _snap(kms.get_key_rotation_status, KeyId=kid),
            "rotations": _snap(kms.list_key_rotations, KeyId=kid),
        }
    aliases = [_strip(a) for page in kms_pages(kms.list_aliases, Limit=100) for a in page["Aliases"]]
    out["aliases"] = sorted(aliases, key=lambda a: a["AliasName"])
    out["systems"] = srv.v1_ok("GET", "/v1/systems", creds=creds)
    out["access_keys"] = srv.v1_ok("GET", "/v1/access-keys", creds=creds)
    out["root_keys"] = {r["id"]: r for r in srv.v1_ok("GET", "/v1/root-keys", creds=creds)["root_keys"]}
    return out


def fingerprint_diff(before: dict, after: dict, path: str = "") -> list[str]:
    """Paths at which two fingerprints differ (short, for the failure report)."""
    if type(before) is not type(after):
        return [f"{path}: {str(before)[:150]} -> {str(after)[:150]}"]
    if isinstance(before, dict):
        out = []
        for k in sorted(set(before) | set(after), key=str):
            if k not in before:
                out.append(f"{path}/{k}: appeared: {str(after[k])[:200]}")
            elif k not in after:
                out.append(f"{path}/{k}: disappeared")
            else:
                out += fingerprint_diff(before[k], after[k], f"{path}/{k}")
        return out
    if before != after:
        return [f"{path}: {str(before)[:200]} -> {str(after)[:200]}"]
    return []


# =====================================================================================
# Cells
# =====================================================================================


@dataclass
class Cell:
    door: str                      # "aws" or "rest"
    op: str                        # AWS operation, or "METHOD /v1/template"
    caller: str
    ctx: str
    expect: str                    # OK or the error code
    status: Optional[int] = None   # REST: expected status
    audit_op: str = ""
    phase: int = 1                 # 1: denial batch (and allowed read/use), 2: allowed changes
    params: Any = None             # phase 1: the request, built in advance
    # results
    got: str = ""
    got_status: Optional[int] = None
    message: str = ""
    request_id: Optional[str] = None
    text: str = ""

    def coord(self) -> str:
        return f"[{self.door}] {self.op} × {self.caller} × {self.ctx}"

    def expected_str(self) -> str:
        return f"{self.status} {self.expect}" if self.door == "rest" else self.expect

    def got_str(self) -> str:
        return f"{self.got_status} {self.got}" if self.door == "rest" else self.got


def build_aws_cells(w: World) -> list[Cell]:
    cells = []
    for op, spec in AWS_OPS.items():
        variants = []
        if spec.key:
            variants += [(ctx, names, True) for ctx, names in KEY_CONTEXTS.items()]
        if spec.plain:
            variants += [(ctx, names, False) for ctx, names in PLAIN_CONTEXTS.items()]
        for ctx, names, keyed in variants:
            for name in names:
                name = self_limited_name(op) if name == SELF_LIMITED[0] else name
                caller = w.callers[name]
                params = spec.key(w.shared_target(ctx), w) if keyed else spec.plain(w)
                if params is None:
                    continue  # the operation names nothing this context has (e.g. Decrypt of a missing key)
                expect = expect_aws(op, caller, ctx)
                phase = 2 if expect == OK and spec.cls == MANAGE_KEYS else 1
                cells.append(Cell("aws", op, name, ctx, expect, audit_op=op, phase=phase,
                                  params=params if phase == 1 else None))
    return cells


def rest_request(route: RestRoute, t: Rtgt) -> Optional[tuple[str, Any]]:
    """(path, json body) of `route` naming what `t` holds, or None if `t` holds nothing for it."""
    body = None
    if route.param in ("tenant", "system", "access_key", "root_key", "key"):
        value = getattr(t, route.param)
        if value is None:
            return None
        path = route.template.replace("{}", value)
    else:
        path = route.template
    if route.template == "/v1/access-keys" and route.method == "POST":
        if t.ak_system is None:
            return None
        body = {"role": KU, "description": "matrix: must not exist"}
        if t.ak_system:
            body["system"] = t.ak_system
    elif route.template == "/v1/systems" and route.method == "POST":
        body = {"name": unique("mx-sys")}
    elif route.template == "/v1/tenants" and route.method == "POST":
        body = {"name": unique("mx-tenant")}
    elif route.template == "/v1/root-keys" and route.method == "POST":
        body = {"description": unique("mx-root")}
    elif route.template == "/v1/root-keys/import-parameters":
        body = {}
    elif route.template == "/v1/root-keys/reference":
        body = {"keystore": "hsm", "reference": "label:matrix-no-such-key"}
    elif route.template == "/v1/root-keys/import":
        body = {"import_token": "kcm-import-v1.matrix-made-up",
                "wrapped_key_material": base64.b64encode(b"\0" * 384).decode()}
    elif route.template == "/v1/systems/{}/switch-root-key":
        if t.root_key is None:
            return None
        body = {"root_key_id": t.root_key}
    elif route.template in ("/v1/systems/{}/link", "/v1/systems/{}/unlink"):
        body = {}
    return path, body


def real_import(w: World) -> dict:
    """The body of an import that succeeds: parameters for tenant A (as its tenant-admin)
    and fresh key material wrapped to them with openssl, as a customer does."""
    params = w.srv.v1_ok("POST", "/v1/root-keys/import-parameters", creds=w.creds, json_body={})
    work = Path(tempfile.mkdtemp(prefix="kcm-matrix-byok-"))
    pem = work / "wrapping.pem"
    pem.write_text(params["public_key_pem"])
    wrapped = wrap("RSAES_OAEP_SHA_256", pem, new_material(work / "key.bin"), work / "key.wrapped")
    shutil.rmtree(work, ignore_errors=True)
    return {"import_token": params["import_token"], "wrapped_key_material": base64.b64encode(wrapped).decode()}


def build_rest_cells(w: World) -> list[Cell]:
    cells = []
    for route in REST_ROUTES:
        key = f"{route.method} {route.template}"
        for ctx, names in REST_CONTEXTS.items():
            if route.param is None and ctx not in REST_PLAIN_CONTEXTS:
                continue
            req = rest_request(route, w.rest_target(ctx))
            if req is None:
                continue
            for name in names:
                name = self_limited_name(route.core_op) if name == SELF_LIMITED[0] else name
                caller = w.callers[name]
                status, code = expect_rest(route, caller, ctx)
                phase = 2 if code == OK and route.cls in (MANAGE_TENANT, MANAGE_TENANTS, MANAGE_KEYS) \
                    and route.method != "GET" else 1
                cells.append(Cell("rest", key, name, ctx, code, status=status, audit_op=route.audit_op,
                                  phase=phase, params=req if phase == 1 else None))
    return cells


def run_aws(w: World, cell: Cell, params: dict) -> None:
    caller = w.callers[cell.caller]
    fn = getattr(caller.kms, xform_name(cell.op))
    try:
        resp = fn(**params)
        cell.got = OK
        cell.request_id = resp.get("ResponseMetadata", {}).get("RequestId")
        cell.text = json.dumps(_strip(resp), default=str)
    except ClientError as e:
        cell.got = error_code(e)
        cell.message = e.response.get("Error", {}).get("Message", "")
        cell.request_id = e.response.get("ResponseMetadata", {}).get("RequestId")
        cell.got_status = e.response.get("ResponseMetadata", {}).get("HTTPStatusCode")


def run_rest(w: World, cell: Cell, path: str, body: Any) -> None:
    caller = w.callers[cell.caller]
    method = cell.op.split(" ", 1)[0]
    r = w.srv.v1(method, path, creds=caller.creds, json_body=body)
    cell.got_status = r.status_code
    cell.request_id = r.headers.get("x-kcm-request-id")
    cell.text = r.text
    if r.status_code >= 400:
        cell.got = v1_error_code(r)
        cell.message = r.text[:300]
    else:
        cell.got = OK


def check_outcome(cell: Cell) -> Optional[str]:
    if cell.door == "aws":
        if cell.got == cell.expect:
            return None
    elif cell.got == cell.expect and cell.got_status == cell.status:
        return None
    return f"{cell.coord()}: expected {cell.expected_str()}, got {cell.got_str()} {cell.message[:200]!r}"


def check_no_leak(w: World, cell: Cell) -> Optional[str]:
    """Allowed answers show nothing of the other tenant, nor a scoped caller other systems'."""
    if cell.got != OK or not cell.text:
        return None
    caller = w.callers[cell.caller]
    forbidden = [] if caller.operator else list(w.tenant_b_ids)
    if caller.scoped and cell.op in ("ListKeys", "GET /v1/systems", "GET /v1/keychain", "GET /v1/root-keys"):
        # documented: a scoped key sees only its own system's keys and systems, and the
        # root key above its own system
        forbidden += [w.sys_b["id"], w.key_sys_b.id, w.key_plain.id, w.root_b, w.root_spare]
        forbidden += w.key_sys_b.typed.ids() + w.key_plain.typed.ids()
    hits = [f for f in forbidden if f and f in cell.text]
    if hits:
        return f"{cell.coord()}: the answer shows what the caller must not see: {hits}"
    if cell.op == "GET /v1/audit":
        want = None if caller.operator else w.tenant_a
        other = {r.get("tenant") for r in json.loads(cell.text)["records"]} - {want}
        if other:
            return f"{cell.coord()}: the audit page holds records of other chains: {sorted(map(str, other))}"
    return None


# =====================================================================================
# Audit
# =====================================================================================


def audit_records(w: World, caller: Caller) -> dict[str, dict]:
    """request_id -> record, of every record of `caller` in its chain."""
    creds = w.sa_creds if caller.operator else w.creds
    out: dict[str, dict] = {}
    after = None
    for _ in range(1000):
        q = f"/v1/audit?principal={caller.akid}&limit=1000" + (f"&after={after}" if after else "")
        page = w.srv.v1_ok("GET", q, creds=creds)
        for rec in page["records"]:
            out[rec["request_id"]] = rec
        after = page.get("next_after")
        if not after:
            break
    return out


def check_audit(w: World, cells: list[Cell]) -> list[str]:
    failures = []
    by_caller: dict[str, dict[str, dict]] = {}
    for name in {c.caller for c in cells}:
        by_caller[name] = audit_records(w, w.callers[name])
    # audit outcome of the "nonexistent" control cells, by (door, op, caller)
    control = {}
    for c in cells:
        if c.ctx.startswith("nonexistent") and c.request_id in by_caller[c.caller]:
            control[(c.door, c.op, c.caller)] = by_caller[c.caller][c.request_id]["outcome"]
    for c in cells:
        caller = w.callers[c.caller]
        if not c.request_id:
            failures.append(f"{c.coord()}: the response carries no request id")
            continue
        rec = by_caller[c.caller].get(c.request_id)
        if rec is None:
            failures.append(f"{c.coord()}: no audit record with request id {c.request_id} "
                            f"in the {'operator' if caller.operator else 'tenant'} chain")
            continue
        problems = []
        if rec.get("operation") != c.audit_op:
            problems.append(f"operation {rec.get('operation')!r} != {c.audit_op!r}")
        if rec.get("front_door") != c.door:
            problems.append(f"front_door {rec.get('front_door')!r} != {c.door!r}")
        want_tenant = None if caller.operator else w.tenant_a
        if rec.get("tenant") != want_tenant:
            problems.append(f"tenant {rec.get('tenant')!r} != {want_tenant!r}")
        if c.got == OK:
            if rec.get("outcome") != "success" or rec.get("error") is not None:
                problems.append(f"allowed call audited as {rec.get('outcome')!r} / {rec.get('error')!r}")
        else:
            if rec.get("error") != c.got:
                problems.append(f"error {rec.get('error')!r} != {c.got!r}")
            if c.got in DENIAL_CODES and rec.get("outcome") != "denied":
                problems.append(f"outcome {rec.get('outcome')!r} != 'denied'")
            if c.got in NOT_FOUND_CODES:
                ctl = control.get((c.door, c.op, c.caller))
                if rec.get("outcome") not in ("denied", "failed"):
                    problems.append(f"outcome {rec.get('outcome')!r}")
                elif ctl is not None and rec.get("outcome") != ctl:
                    problems.append(f"outcome {rec.get('outcome')!r} differs from a nonexistent object's "
                                    f"({ctl!r}): the audit log reveals existence")
            if c.ctx.startswith("other-tenant"):
                text = json.dumps(rec)
                hits = [i for i in w.tenant_b_ids if i in text]
                if hits:
                    problems.append(f"the record names the other tenant's objects {hits}")
        if problems:
            failures.append(f"{c.coord()}: audit record {c.request_id}: " + "; ".join(problems))
    return failures


# =====================================================================================
# Running a matrix
# =====================================================================================


def run_matrix(w: World, cells: list[Cell]) -> tuple[list[str], dict]:
    failures: list[str] = []
    started = time.monotonic()
    phase1 = [c for c in cells if c.phase == 1]
    phase2 = [c for c in cells if c.phase == 2]

    before = w.fingerprint()
    for c in phase1:
        if c.door == "aws":
            run_aws(w, c, c.params)
        else:
            run_rest(w, c, *c.params)
    after = w.fingerprint()
    diff = fingerprint_diff(before, after)
    if diff:
        denied = sorted({c.coord() for c in phase1 if c.expect != OK and c.got == OK})
        failures.append(
            "the batch of denied cells changed state:\n    " + "\n    ".join(diff[:40])
            + ("\n  cells that were expected denied but succeeded:\n    " + "\n    ".join(denied[:40])
               if denied else ""))

    for c in phase2:  # allowed, state-changing: each on its own throwaway objects
        if c.door == "aws":
            spec = AWS_OPS[c.op]
            if c.ctx.endswith("/no-key"):
                params = spec.plain(w)
            else:
                params = spec.key(w.fresh_target(c.ctx, c.op), w)
            run_aws(w, c, params)
        else:
            route = REST_BY_KEY[tuple(c.op.split(" ", 1))]
            t = w.rest_target(c.ctx)
            if route.param == "access_key":
                ak = w.srv.create_access_key(KU, description="matrix throwaway")["access_key_id"]
                if route.audit_op == "EnableAccessKey":
                    w.srv.v1_ok("POST", f"/v1/access-keys/{ak}/disable", creds=w.creds)
                t.access_key = ak
            elif route.param == "root_key":
                # never the default root nor one with systems: a fresh root key of its own
                rk = w.srv.v1_ok("POST", "/v1/root-keys", expect=(201,), creds=w.creds,
                                 json_body={"description": "matrix throwaway root"})["id"]
                if route.audit_op == "EnableRootKey":
                    w.srv.v1_ok("POST", f"/v1/root-keys/{rk}/disable", creds=w.creds)
                t.root_key = rk
            elif route.param == "key":
                # a fresh key of the context's system; destroy needs it compromised first
                maker = w.kms_sys_a if c.ctx == "own-system" else w.kms
                t.key = maker.create_key(Description="matrix throwaway")["KeyMetadata"]["KeyId"]
                if route.audit_op == "DestroyCompromisedKey":
                    w.srv.v1_ok("POST", f"/v1/keys/{t.key}/compromise", creds=w.creds)
            elif route.audit_op == "ReferenceRootKey":
                label = unique("mx-customer")
                w.srv.token.customer_key(label, secrets.token_hex(8))
                run_rest(w, c, route.template, {"keystore": "hsm", "reference": f"label:{label}"})
                continue
            elif route.audit_op == "ImportRootKey":
                path, _ = rest_request(route, t)
                run_rest(w, c, path, real_import(w))
                continue
            elif route.audit_op in ("RotateSystemKey", "RewrapSystemKeys"):
                # a throwaway system: rotating a shared one would move other cells' keys
                t.system = w.srv.v1_ok("POST", "/v1/systems", expect=(201,), creds=w.creds,
                                       json_body={"name": unique("mx-rotate")})["id"]
            elif route.audit_op in ("LinkSystem", "UnlinkSystem"):
                # a throwaway system: unlinked to be linked, or linked (and empty) to be unlinked
                t.system = w.srv.v1_ok("POST", "/v1/systems", expect=(201,), creds=w.creds,
                                       json_body={"name": unique("mx-link"),
                                                  "link": route.audit_op == "UnlinkSystem"})["id"]
            elif route.audit_op == "SwitchSystemRootKey":
                # a throwaway system (below the default root) moved below a fresh root key
                t.system = w.srv.v1_ok("POST", "/v1/systems", expect=(201,), creds=w.creds,
                                       json_body={"name": unique("mx-switch")})["id"]
                t.root_key = w.srv.v1_ok("POST", "/v1/root-keys", expect=(201,), creds=w.creds,
                                         json_body={"description": "matrix throwaway root"})["id"]
            run_rest(w, c, *rest_request(route, t))

    if any(c.got == OK for c in phase2) and w.fingerprint() == after:
        failures.append("self-check: the fingerprint did not see the allowed state changes of phase 2")

    for c in cells:
        for check in (check_outcome(c), check_no_leak(w, c)):
            if check:
                failures.append(check)
    failures += check_audit(w, cells)
    stats = {
        "cells": len(cells),
        "allowed": sum(c.expect == OK for c in cells),
        "denied": sum(c.expect != OK for c in cells),
        "phase-2 (fresh objects)": len(phase2),
        "seconds": round(time.monotonic() - started, 1),
    }
    return failures, stats


def report(failures: list[str], cells: list[Cell], stats: dict) -> str:
    wrong = Counter((c.ctx, c.expected_str(), c.got_str()) for c in cells
                    if (c.got != c.expect) or (c.door == "rest" and c.got_status != c.status))
    summary = "\n".join(f"  {n:4d} × context {ctx}: expected {e}, got {g}" for (ctx, e, g), n in wrong.most_common())
    return (f"{len(failures)} failure(s) in {stats}\n"
            + (f"wrong outcomes by context:\n{summary}\n" if summary else "")
            + "\n".join(failures))


# =====================================================================================
# No privilege escalation: what a caller creates gives no more than it holds
# =====================================================================================

# Tenant-admin access keys limited to sets of operations, made for these rows.
ESCALATION_LIMITS = {
    "tenant-admin/mint": ["CreateAccessKey", "Encrypt", "Decrypt", "DescribeKey"],
    "tenant-admin/grant-encrypt": ["CreateGrant", "Encrypt"],
    "tenant-admin/policy-describe": ["PutKeyPolicy", "DescribeKey"],
    "tenant-admin/create-encrypt": ["CreateKey", "Encrypt"],
}
MINT_OPS = ESCALATION_LIMITS["tenant-admin/mint"]
ACCESS_KEY_ROUTE = "POST /v1/access-keys"
# The words a denial uses for the part that exceeded.
ROLE, OPERATIONS, SCOPE, NO_TENANT = "role", "operation", "system", "tenant"


def pol(*statements: tuple[str, str, list[str]]) -> str:
    """A policy of (Effect, Principal, Actions) statements."""
    return json.dumps({"Version": POLICY_VERSION, "Statement": [
        {"Effect": effect, "Principal": principal, "Action": actions}
        for effect, principal, actions in statements]})


KA_MANAGES = ["DescribeKey", "PutKeyPolicy", "ScheduleKeyDeletion"]
# The key-admin may allow what it may do itself; a Deny gives nothing.
KA_OWN_POLICY = pol(("Allow", "role:key-admin", KA_MANAGES), ("Deny", "*", ["Encrypt"]))


@dataclass(frozen=True)
class Esc:
    """One row: `caller` asks for something that gives `what`; `part` is None when it is
    allowed, else the word its denial names (the part that exceeded)."""
    door: str                    # "rest" (an access key) or "aws"
    op: str                      # ACCESS_KEY_ROUTE or an AWS operation
    caller: str
    what: str                    # for the report
    body: dict                   # the request, without the key it names
    part: Optional[str]          # None: allowed
    key: Optional[str] = None    # the kind of key it names (World.escalation_key)
    invalid: bool = False        # refused as invalid input rather than denied


def access_key_row(caller: str, role: str, ops: Optional[list[str]] = None, system: Optional[str] = None,
                   part: Optional[str] = None, invalid: bool = False) -> Esc:
    body: dict[str, Any] = {"role": role, "description": "matrix escalation row"}
    if ops is not None:
        body["operations"] = ops
    if system is not None:
        body["system"] = system
    what = f"access key {role}" + (f" limited to {ops}" if ops is not None else " without a limit") \
        + (f" in {system}" if system else "")
    return Esc("rest", ACCESS_KEY_ROUTE, caller, what, body, part, invalid=invalid)


def pol_label(doc: str) -> str:
    """`Allow role:key-user ['Encrypt']; Deny * ['Decrypt']`: a policy, short, for the report."""
    return "; ".join(f"{st['Effect']} {st['Principal']} {st['Action']}" for st in json.loads(doc)["Statement"])


def grant_row(caller: str, key: str, ops: list[str], part: Optional[str] = None) -> Esc:
    return Esc("aws", "CreateGrant", caller, f"grant of {ops} on a {key} key",
               {"Operations": ops}, part, key=key)


# Policy rows ask what a policy may give, not AWS's lockout check: they bypass it.
def policy_row(caller: str, key: str, doc: str, part: Optional[str] = None) -> Esc:
    return Esc("aws", "PutKeyPolicy", caller, f"policy {pol_label(doc)} on a {key} key",
               {"PolicyName": "default", "Policy": doc, "BypassPolicyLockoutSafetyCheck": True}, part, key=key)


def create_key_row(caller: str, doc: str, part: Optional[str] = None) -> Esc:
    return Esc("aws", "CreateKey", caller, f"new key with policy {pol_label(doc)}",
               {"Policy": doc, "BypassPolicyLockoutSafetyCheck": True}, part)


def escalation_rows(w: World) -> list[Esc]:
    """Every combination, with its expected outcome written out from the rule."""
    sys_a, sys_b = w.sys_a["name"], w.sys_b["name"]
    rows: list[Esc] = []
    # Creator role × requested role: only a tenant-admin manages access keys, and it
    # covers every tenant role; system-admin is no tenant role at all.
    for creator in (TA, KA, KU, AU, SA):
        for role in (TA, KA, KU, AU, SA):
            if creator == TA:
                rows.append(access_key_row(creator, role, invalid=role == SA))
            else:
                rows.append(access_key_row(creator, role, part=NO_TENANT if creator == SA else ROLE))
    # Limited creator × a wider set, or no limit (which is every operation).
    only = self_limited_name("CreateAccessKey")
    rows += [
        access_key_row(only, TA, part=OPERATIONS),
        access_key_row(only, KU, part=OPERATIONS),
        access_key_row(only, AU, ["CreateAccessKey", "DescribeKey"], part=OPERATIONS),
        access_key_row(only, TA, ["CreateAccessKey"]),
        access_key_row(only, KU, ["CreateAccessKey"]),
        access_key_row("tenant-admin/mint", KU, part=OPERATIONS),
        access_key_row("tenant-admin/mint", KU, MINT_OPS + ["GenerateDataKey"], part=OPERATIONS),
        access_key_row("tenant-admin/mint", TA, MINT_OPS + ["CreateSystem"], part=OPERATIONS),
        access_key_row("tenant-admin/mint", KA, ["DescribeKey", "ScheduleKeyDeletion"], part=OPERATIONS),
        access_key_row("tenant-admin/mint", KU, ["Encrypt", "Decrypt"]),
        access_key_row("tenant-admin/mint", AU, ["DescribeKey"]),
        access_key_row("tenant-admin/mint", TA, MINT_OPS),
        access_key_row("tenant-admin/limited", KU, ["Encrypt"], part=OPERATIONS),
    ]
    # Scoped creator × no scope, another system, its own system: a scoped key manages
    # no access keys at all.
    for role in (TA, KA, KU, AU):
        for system in (None, sys_b, sys_a):
            rows.append(access_key_row(f"{role}@sys-a", KU, system=system, part=SCOPE if role == TA else ROLE))
    # Grants: each operation must be the creator's own on that key.
    rows += [
        grant_row(TA, "plain", ["Encrypt", "Decrypt"]),
        grant_row(KA, "plain", ["Encrypt"], part=OPERATIONS),
        grant_row(KA, "plain", ["DescribeKey", "Decrypt"], part=OPERATIONS),
        grant_row(KA, "plain", ["DescribeKey"]),
        grant_row(KA, "plain", ["CreateGrant", "RetireGrant"]),
        grant_row(KU, "plain", ["Encrypt"], part=ROLE),
        grant_row(AU, "plain", ["DescribeKey"], part=ROLE),
        grant_row("key-admin@sys-a", "sys-a", ["Sign"], part=OPERATIONS),
        grant_row("key-admin@sys-a", "sys-a", ["DescribeKey"]),
        grant_row("tenant-admin@sys-a", "sys-a", ["Encrypt"]),
        grant_row(self_limited_name("CreateGrant"), "plain", ["Decrypt"], part=OPERATIONS),
        grant_row(self_limited_name("CreateGrant"), "plain", ["CreateGrant"]),
        grant_row("tenant-admin/grant-encrypt", "admins-only", ["Encrypt", "Decrypt"], part=OPERATIONS),
        grant_row("tenant-admin/grant-encrypt", "admins-only", ["Encrypt"]),
        # The key-admin holds DescribeKey and CreateGrant there through its own grant.
        grant_row(KA, "admins-only", ["GenerateDataKey"], part=OPERATIONS),
        grant_row(KA, "admins-only", ["DescribeKey"]),
        # The policy bounds its tenant-admin too: denied Decrypt, it grants no Decrypt.
        grant_row(TA, "no-admin-decrypt", ["Decrypt"], part=OPERATIONS),
        grant_row(TA, "no-admin-decrypt", ["Encrypt"]),
    ]
    # Key policies: Allow only what the writer may do itself on the key.
    rows += [
        policy_row(TA, "plain", ALLOW_ALL),
        policy_row(KA, "plain", ALLOW_ALL, part=OPERATIONS),
        policy_row(KA, "plain", pol(("Allow", "role:key-user", ["Encrypt"])), part=OPERATIONS),
        policy_row(KA, "plain", KA_OWN_POLICY),
        # Bounded by the policy in force: denied ScheduleKeyDeletion, it may not allow it.
        policy_row(KA, "ka-no-schedule", pol(("Allow", "role:key-admin", ["PutKeyPolicy", "ScheduleKeyDeletion"])),
                   part=OPERATIONS),
        policy_row(KA, "ka-no-schedule", pol(("Allow", "role:key-admin", ["PutKeyPolicy", "DescribeKey"]))),
        policy_row(self_limited_name("PutKeyPolicy"), "plain", pol(("Allow", "*", ["Decrypt"])), part=OPERATIONS),
        policy_row(self_limited_name("PutKeyPolicy"), "plain", pol(("Allow", "*", ["PutKeyPolicy"]))),
        policy_row("tenant-admin/policy-describe", "plain", pol(("Allow", "*", ["DescribeKey", "Encrypt"])),
                   part=OPERATIONS),
        policy_row("tenant-admin/policy-describe", "plain", pol(("Allow", "*", ["DescribeKey"]))),
        # A tenant-admin may always replace a policy: one denying it Decrypt does not
        # bound the next, so the tenant is never locked out of its key.
        policy_row(TA, "no-admin-decrypt", ALLOW_ALL),
        policy_row("key-admin@sys-a", "sys-a", ALLOW_ALL, part=OPERATIONS),
        policy_row("tenant-admin@sys-a", "sys-a", ALLOW_ALL),
        # A new key's policy: judged by the creator's role, limit and scope.
        create_key_row(TA, ALLOW_ALL),
        create_key_row(KA, ALLOW_ALL, part=OPERATIONS),
        create_key_row(KA, pol(("Allow", "role:key-user", ["Encrypt", "Decrypt"])), part=OPERATIONS),
        create_key_row(KA, pol(("Allow", "role:key-admin", ["DescribeKey", "PutKeyPolicy"]))),
        create_key_row(self_limited_name("CreateKey"), pol(("Allow", "*", ["Encrypt"])), part=OPERATIONS),
        create_key_row(self_limited_name("CreateKey"), pol(("Deny", "*", ["Decrypt"]))),
        create_key_row("tenant-admin/create-encrypt", pol(("Allow", "*", ["Encrypt", "Decrypt"])), part=OPERATIONS),
        create_key_row("tenant-admin/create-encrypt", pol(("Allow", "*", ["Encrypt"]), ("Deny", "*", ["Decrypt"]))),
        create_key_row("key-admin@sys-a", ALLOW_ALL, part=OPERATIONS),
        create_key_row("tenant-admin@sys-a", ALLOW_ALL),
    ]
    return rows


def escalation_key(w: World, kind: str) -> str:
    """A new key of `kind` (made by tenant A's admins) for the escalation rows."""
    ta = w.callers[TA].akid
    if kind == "plain":
        return w.make_key(w.kms, with_ct=False).id
    if kind == "sys-a":
        return w.make_key(w.kms_sys_a, with_ct=False).id
    if kind == "admins-only":
        return w.make_key(w.kms, policy=ADMINS_ONLY, with_ct=False,
                          grants=[(w.callers[KA].akid, ["DescribeKey", "CreateGrant"])]).id
    if kind == "no-admin-decrypt":
        return w.make_key(w.kms, with_ct=False,
                          policy=pol(("Allow", "*", ["*"]), ("Deny", ta, ["Decrypt"]))).id
    if kind == "ka-no-schedule":
        return w.make_key(w.kms, with_ct=False, policy=pol(("Allow", "role:key-admin", KA_MANAGES),
                                                           ("Deny", "role:key-admin", ["ScheduleKeyDeletion"]))).id
    raise AssertionError(kind)


def escalation_request(w: World, row: Esc, keys: dict[str, str]) -> Any:
    """What the cell of `row` sends: a REST (path, body), or AWS parameters naming a key of
    its kind from `keys` (a new one of that kind when `keys` lacks it)."""
    if row.door == "rest":
        return ("/v1/access-keys", row.body)
    params = dict(row.body)
    if row.op == "CreateGrant":
        params["GranteePrincipal"] = w.victim_id
    if row.op == "CreateKey":
        params["Description"] = unique("mx-escalation")
    if row.key:
        params["KeyId"] = keys.get(row.key) or escalation_key(w, row.key)
    return params


def escalation_cell(row: Esc) -> Cell:
    if row.invalid:
        expect, status = "InvalidInput", 400
    elif row.part is not None:
        expect, status = (REST_DENIED, 403) if row.door == "rest" else (AWS_DENIED, None)
    else:
        expect, status = OK, (201 if row.door == "rest" else None)
    return Cell(row.door, row.op, row.caller, row.what, expect, status=status,
                audit_op="CreateAccessKey" if row.door == "rest" else row.op,
                phase=1 if expect != OK else 2)


def add_escalation_callers(w: World) -> None:
    for name, ops in ESCALATION_LIMITS.items():
        if name not in w.callers:
            ak = w.srv.v1_ok("POST", "/v1/access-keys", expect=(201,), creds=w.creds,
                             json_body={"role": TA, "operations": ops, "description": f"matrix {name}"})
            w._add(Caller(name, TA, ak["access_key_id"], ak["secret_access_key"], None, ops=frozenset(ops)))


# =====================================================================================
# Fixtures and tests
# =====================================================================================


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("authz-matrix")
    # A SoftHSM2 token as a second keystore ("hsm"), for ReferenceRootKey (HYOK).
    token = Token(root / "hsm")
    conf = token.kcm_config(root / "kcm.toml", pin_file=token.write_pin_file(root / "hsm.pin"),
                            default="software")
    srv = Server(root / "data", root / "logs", name="authz-matrix",
                 env=dict(token.env, KCM_CONFIG=str(conf)))
    srv.token = token
    start_or_fail(srv)
    try:
        yield World(srv)
    finally:
        srv.stop()


def _aws_operations_in_source() -> list[str]:
    """The operations the core's one table (crates/kcm-core/src/authz.rs) marks `aws`."""
    src = (REPO / "crates" / "kcm-core" / "src" / "authz.rs").read_text()
    m = re.search(r"^operations! \{(.*?)^\}", src, re.S | re.M)
    assert m, "the operations! table not found in crates/kcm-core/src/authz.rs"
    ops = re.findall(r"^\s*([A-Za-z]+)\s*=>\s*\w+,\s*[-\w]+,\s*aws;", m.group(1), re.M)
    assert len(ops) > 40, ops
    return ops


def _rest_routes_in_source() -> set[tuple[str, str]]:
    src = (REPO / "crates" / "kcm-rest-api" / "src" / "lib.rs").read_text()
    start = src.index("pub fn router(")
    body = src[start:src.index("\n}\n", start)]
    routes = set()
    for chunk in body.split(".route(")[1:]:
        m = re.match(r'\s*"([^"]+)"\s*,(.*)', chunk, re.S)
        assert m, chunk[:200]
        path, handlers = m.group(1), m.group(2)
        if path in REST_IGNORED_PATHS or any(path.startswith(p + "/") for p in REST_IGNORED_PATHS):
            continue
        for method in re.findall(r"(?<![A-Za-z_])(get|post|put|patch|delete)\s*\(", handlers):
            routes.add((method.upper(), re.sub(r"\{[^}]*\}", "{}", path)))
    return routes


def test_matrix_covers_every_aws_operation():
    """A new AWS operation without a row in AWS_OPS fails here."""
    served = _aws_operations_in_source()
    assert len(served) == len(set(served)), f"duplicate names in OPERATIONS: {served}"
    assert set(served) == set(AWS_OPS), (
        f"operations without a matrix row: {sorted(set(served) - set(AWS_OPS))}; "
        f"rows for operations not served: {sorted(set(AWS_OPS) - set(served))}")


def test_matrix_covers_every_rest_route(world):
    """A new REST route without a row in REST_ROUTES fails here (router source and OpenAPI)."""
    in_source = _rest_routes_in_source()
    mine = set(REST_BY_KEY)
    assert in_source == mine, (
        f"routes without a matrix row: {sorted(in_source - mine)}; rows for no route: {sorted(mine - in_source)}")
    doc = world.srv.v1_ok("GET", "/v1/openapi.json", auth=False)
    documented = {}
    for path, item in doc["paths"].items():
        if path in REST_IGNORED_PATHS:
            continue
        for method, op in item.items():
            if method.lower() in ("get", "post", "put", "patch", "delete"):
                documented[(method.upper(), re.sub(r"\{[^}]*\}", "{}", path))] = op.get("operationId")
    assert set(documented) == mine, f"OpenAPI paths {sorted(documented)} != matrix rows {sorted(mine)}"
    wrong = {k: (v, REST_BY_KEY[k].audit_op) for k, v in documented.items() if v != REST_BY_KEY[k].audit_op}
    assert not wrong, f"operationId differs from the matrix's audit name: {wrong}"


def test_every_cell_of_the_matrix_is_built(world):
    """Every AWS operation and REST route is tried by every role, and each context has cells."""
    aws = build_aws_cells(world)
    rest = build_rest_cells(world)
    roles_by_op: dict[str, set] = {}
    for c in aws + rest:
        roles_by_op.setdefault(c.op, set()).add(world.callers[c.caller].role)
    missing = {op: sorted({TA, KA, KU, AU, SA} - roles) for op, roles in roles_by_op.items()
               if {TA, KA, KU, AU, SA} - roles}
    assert not missing, f"operations not tried by every role: {missing}"
    assert set(roles_by_op) == set(AWS_OPS) | {f"{m} {t}" for m, t in REST_BY_KEY}
    contexts = Counter(c.ctx for c in aws) + Counter("rest:" + c.ctx for c in rest)
    for ctx in list(KEY_CONTEXTS) + list(PLAIN_CONTEXTS) + ["rest:" + c for c in REST_CONTEXTS]:
        assert contexts[ctx] > 0, f"context {ctx} has no cells"


def test_aws_api_matrix(world):
    """Every AWS operation × role × context: outcome, nothing changed on denial, audited."""
    cells = build_aws_cells(world)
    failures, stats = run_matrix(world, cells)
    print(f"\nAWS matrix: {stats}")
    assert not failures, report(failures, cells, stats)


def test_rest_api_matrix(world):
    """Every REST route × role × context: outcome, nothing changed on denial, audited."""
    cells = build_rest_cells(world)
    failures, stats = run_matrix(world, cells)
    print(f"\nREST matrix: {stats}")
    assert not failures, report(failures, cells, stats)


def test_no_privilege_escalation(world):
    """No caller creates an access key, grant or key policy that gives more than it holds:
    creator role × requested role, a limited creator × a wider set or no limit, a scoped
    creator × no scope or another system, grants and policies × what the creator may do on
    the key. Each refusal is AccessDenied naming the part that exceeded, changes nothing
    and is audited as denied; each allowed row succeeds."""
    w = world
    add_escalation_callers(w)
    rows = escalation_rows(w)
    cells = [escalation_cell(r) for r in rows]
    shared = {kind: escalation_key(w, kind) for kind in {r.key for r in rows if r.key}}
    run = {"rest": lambda c, req: run_rest(w, c, *req), "aws": lambda c, req: run_aws(w, c, req)}
    failures: list[str] = []

    before = w.fingerprint()
    for row, cell in zip(rows, cells):
        if cell.phase == 1:
            run[row.door](cell, escalation_request(w, row, shared))
    diff = fingerprint_diff(before, w.fingerprint())
    if diff:
        failures.append("the refused rows changed state:\n    " + "\n    ".join(diff[:40]))
    for row, cell in zip(rows, cells):
        if cell.phase == 2:  # allowed: each on a key of its own
            run[row.door](cell, escalation_request(w, row, {}))

    for row, cell in zip(rows, cells):
        problem = check_outcome(cell)
        if problem:
            failures.append(problem)
        elif row.part and row.part not in (cell.message + cell.text).lower():
            failures.append(f"{cell.coord()}: the denial does not name the {row.part}: {cell.message[:300]!r}")
    failures += check_audit(w, cells)
    stats = {"rows": len(cells), "allowed": sum(c.expect == OK for c in cells),
             "refused": sum(c.expect != OK for c in cells)}
    print(f"\nescalation rows: {stats}")
    assert not failures, report(failures, cells, stats)
