"""AWS's validation contract, table-driven from the AWS KMS service model that
botocore ships (the API reference in machine form).

For every operation kcm serves, every member the model constrains is broken in
every way the model allows — left out when required, too short, too long, outside
its range, its pattern or its enumeration, a list too long or with a bad element, a
nested structure's member — one at a time, in a request that is otherwise valid.
kcm must answer each with ValidationException and AWS's message, word for word:

    1 validation error detected: Value 'x' at 'keyId' failed to satisfy constraint:
    Member must have length less than or equal to 2048

Then every member of an operation is broken at once, and all of them must be listed,
in the model's member order, in one answer. The expected messages are computed here
from the model alone; kcm's tables (crates/kcm-aws-api/src/shape) are not read.

Two rules are AWS's beyond its published model (AWS enforces them and names them in
its messages): a key identifier must be ASCII (^\\p{ASCII}+$), and Decrypt and
ReEncrypt require CiphertextBlob.
"""

import re
import uuid

import botocore.session
import pytest
from botocore import xform_name
from botocore.exceptions import ClientError

from kcmtest import kms_error, unique

MODEL = botocore.session.get_session().get_service_model("kms")

# Operations of the model kcm does not serve (custom key stores, multi-Region keys,
# key encapsulation, key-usage history).
NOT_SERVED = {
    "ConnectCustomKeyStore", "CreateCustomKeyStore", "DeleteCustomKeyStore",
    "DescribeCustomKeyStores", "DisconnectCustomKeyStore", "UpdateCustomKeyStore",
    "ReplicateKey", "UpdatePrimaryRegion", "Encapsulate", "Decapsulate", "GetKeyLastUsage",
}
SERVED = [op for op in MODEL.operation_names if op not in NOT_SERVED]

# AWS's rules beyond the published model.
KEY_ID_PATTERN = r"^\p{ASCII}+$"
ALSO_REQUIRED = {("Decrypt", "CiphertextBlob"), ("ReEncrypt", "CiphertextBlob")}

# A valid value for each patterned string type (any other string: "x" repeated).
VALID_STRINGS = {
    "KeyIdType": "alias/kcm-validation-probe",
    "AliasNameType": "alias/kcm-validation-probe",
    "PrincipalIdType": "arn:aws:iam::111122223333:root",
    "ServicePrincipalType": "kms.amazonaws.com",
    "GrantNameType": "probe",
    "PolicyType": "{}",
    "PolicyNameType": "default",
    "MarkerType": "m",
    "BackingKeyIdType": "a" * 64,
    "KeyMaterialDescriptionType": "probe",
    "XksKeyIdType": "probe",
    "ArnType": "arn:aws:kms:us-east-1:111122223333:key/probe",
}


def pattern_of(shape):
    if shape.name == "KeyIdType":
        return KEY_ID_PATTERN
    return shape.metadata.get("pattern")


def matches(pattern, text):
    """Smithy patterns match anywhere unless anchored; Java's classes are ASCII."""
    python = pattern.replace(r"\p{ASCII}", r"[\x00-\x7F]")
    return re.search(python, text, re.ASCII) is not None


def valid(shape):
    kind = shape.type_name
    md = shape.metadata
    if kind == "string":
        if shape.enum:
            return shape.enum[0]
        return VALID_STRINGS.get(shape.name, "x" * max(md.get("min", 1), 1))
    if kind == "blob":
        return b"\x01" * max(md.get("min", 1), 1)
    if kind == "integer":
        return md.get("min", 1)
    if kind == "boolean":
        return False
    if kind == "timestamp":
        return 4102444800
    if kind == "map":
        return {}
    if kind == "list":
        return [valid(shape.member)] if md.get("min", 0) > 0 else []
    if kind == "structure":
        return {n: valid(m) for n, m in shape.members.items() if n in shape.required_members}
    raise AssertionError(kind)


def required_members(op, shape):
    return set(shape.required_members) | {m for (o, m) in ALSO_REQUIRED if o == op}


def valid_request(op):
    shape = MODEL.operation_model(op).input_shape
    return {n: valid(m) for n, m in shape.members.items() if n in required_members(op, shape)}


def camel(name):
    return name[0].lower() + name[1:]


def item(shown, path, rule):
    return f"Value{shown} at '{path}' failed to satisfy constraint: Member must {rule}"


def scalar_rules(shape, value):
    """The rules `value` breaks, as `Member must …` endings, in kcm's order: length
    (or value) bounds, then pattern, then enumeration."""
    md = shape.metadata
    rules = []
    if shape.type_name in ("string", "blob"):
        n = len(value)
        if shape.type_name == "string" and shape.enum:
            if value not in shape.enum:
                rules.append(f"satisfy enum value set: [{', '.join(shape.enum)}]")
            return rules
        if "min" in md and n < md["min"]:
            rules.append(f"have length greater than or equal to {md['min']}")
        if "max" in md and n > md["max"]:
            rules.append(f"have length less than or equal to {md['max']}")
        pattern = pattern_of(shape) if shape.type_name == "string" else None
        if pattern and not matches(pattern, value):
            rules.append(f"satisfy regular expression pattern: {pattern}")
    elif shape.type_name == "integer":
        if "min" in md and value < md["min"]:
            rules.append(f"have value greater than or equal to {md['min']}")
        if "max" in md and value > md["max"]:
            rules.append(f"have value less than or equal to {md['max']}")
    return rules


def shown(shape, value, sensitive):
    if sensitive or shape.type_name == "blob":
        return ""
    if shape.type_name == "list":
        return " '[" + ", ".join(str(v) for v in value) + "]'"
    return f" '{value}'"


def expected_items(shape, value, path, sensitive):
    """AWS's message items for `value` (already known to break something)."""
    kind = shape.type_name
    if kind == "list":
        md = shape.metadata
        items = []
        if "min" in md and len(value) < md["min"]:
            items.append(item(shown(shape, value, False), path,
                              f"have length greater than or equal to {md['min']}"))
        if "max" in md and len(value) > md["max"]:
            items.append(item(shown(shape, value, False), path,
                              f"have length less than or equal to {md['max']}"))
        if shape.member.type_name == "structure":
            for i, element in enumerate(value, 1):
                items += structure_items(shape.member, element, f"{path}.{i}.member.", None)
        else:
            broken = []
            for element in value:
                for rule in scalar_rules(shape.member, element):
                    if f"Member must {rule}" not in broken:
                        broken.append(f"Member must {rule}")
            if broken:
                items.append(item(shown(shape, value, False), path,
                                  f"satisfy constraint: [{', '.join(broken)}]"))
        return items
    if kind == "structure":
        return structure_items(shape, value, f"{path}.", None)
    return [item(shown(shape, value, sensitive), path, rule)
            for rule in scalar_rules(shape, value)]


def structure_items(shape, value, prefix, op):
    items = []
    required = required_members(op, shape) if op else set(shape.required_members)
    for name, member in shape.members.items():
        sensitive = bool(member.metadata.get("sensitive"))
        path = prefix + camel(name)
        if name not in value:
            if name in required:
                items.append(item("" if sensitive else " null", path, "not be null"))
            continue
        items += expected_items(member, value[name], path, sensitive)
    return items


def breakings(shape):
    """Values of `shape` that break its constraints, one way each."""
    kind = shape.type_name
    md = shape.metadata
    out = []
    if kind == "string":
        if shape.enum:
            return ["NOT_A_VALUE"]
        base = VALID_STRINGS.get(shape.name, "x")
        if md.get("min", 0) > 0:
            out.append("" if md["min"] == 1 else base[: md["min"] - 1])
        if "max" in md:
            out.append(base + "a" * (md["max"] + 1 - len(base)))
        pattern = pattern_of(shape)
        if pattern and not matches(pattern, "€"):
            out.append("€")
    elif kind == "blob":
        if md.get("min", 0) > 0:
            out.append(b"")
        if "max" in md:
            out.append(b"\x01" * (md["max"] + 1))
    elif kind == "integer":
        if "min" in md:
            out.append(md["min"] - 1)
        if "max" in md:
            out.append(md["max"] + 1)
    elif kind == "list":
        if md.get("min", 0) > 0:
            out.append([])
        if "max" in md:
            out.append([valid(shape.member)] * (md["max"] + 1))
        if shape.member.type_name == "structure":
            out += [[b] for b in breakings(shape.member)]
        else:
            out += [[valid(shape.member), b] for b in breakings(shape.member)]
    elif kind == "structure":
        for name, member in shape.members.items():
            for b in breakings(member):
                out.append({**valid(shape), name: b})
            if name in shape.required_members:
                out.append({n: v for n, v in valid(shape).items() if n != name})
    return out


# kcm reads request bodies of up to 128 KiB (the largest legitimate KMS request is
# about 70 KiB); a value past a limit above that cannot be sent in one.
MAX_BODY = 128 * 1024


def too_large(value):
    size = len(value) * 4 // 3 if isinstance(value, bytes) else len(str(value))
    return size > MAX_BODY - 1024


def cases():
    for op in SERVED:
        shape = MODEL.operation_model(op).input_shape
        for name, member in shape.members.items():
            if name in required_members(op, shape):
                yield pytest.param(op, name, None, id=f"{op}-{name}-missing")
            for i, b in enumerate(breakings(member)):
                yield pytest.param(op, name, b, id=f"{op}-{name}-{i}")


def call(kms, op, request):
    return getattr(kms, xform_name(op))(**request)


def expected_message(op, request):
    shape = MODEL.operation_model(op).input_shape
    items = structure_items(shape, request, "", op)
    assert items, f"{op} {request}: the case breaks nothing"
    n = len(items)
    noun = "error" if n == 1 else "errors"
    return f"{n} validation {noun} detected: " + "; ".join(items)


@pytest.mark.parametrize("op, member, value", list(cases()))
def test_each_broken_constraint_gets_awss_message(kms, op, member, value):
    request = valid_request(op)
    if value is None:
        request.pop(member)
    else:
        request[member] = value
    if too_large(value):
        with kms_error("RequestEntityTooLargeException", status=413):
            call(kms, op, request)
        return
    with kms_error("ValidationException") as ei:
        call(kms, op, request)
    assert ei.value.response["Error"]["Message"] == expected_message(op, request)


@pytest.mark.parametrize("op", SERVED)
def test_every_broken_member_is_listed_in_one_answer(kms, op):
    shape = MODEL.operation_model(op).input_shape
    request = {}
    for name, member in shape.members.items():
        broken = [b for b in breakings(member) if not too_large(b)]
        if broken:
            request[name] = broken[0]
        elif name not in required_members(op, shape):
            continue
    if not any(expected_items(m, request[n], camel(n), bool(m.metadata.get("sensitive")))
               for n, m in shape.members.items() if n in request) \
            and not required_members(op, shape) - set(request):
        pytest.skip(f"{op} has no member to break")
    with kms_error("ValidationException") as ei:
        call(kms, op, request)
    assert ei.value.response["Error"]["Message"] == expected_message(op, request)


@pytest.mark.parametrize("op", sorted(NOT_SERVED))
def test_operations_not_served_are_named_as_such(kms, op):
    with kms_error("UnknownOperationException"):
        call(kms, op, valid_request(op))


def test_a_valid_request_passes_the_check(kms, new_key):
    """Validation lets a valid request through to the operation (here: Encrypt on
    an alias that does not exist is NotFoundException, not a validation error)."""
    with kms_error("NotFoundException"):
        call(kms, "Encrypt", valid_request("Encrypt"))
    kid = new_key()
    out = kms.encrypt(KeyId=kid, Plaintext=b"\x01" * 4096, GrantTokens=["t"] * 10)
    assert out["KeyId"].endswith(kid)


# ------------------------------------------------------------ AWS's sentences
# Past validation, the refusals every key operation shares are worded as AWS words
# them, naming the key by its ARN.

KEY_ONLY_OPERATIONS = {
    # operation: the request besides KeyId (valid, so that only the alias is wrong)
    "ScheduleKeyDeletion": {}, "CancelKeyDeletion": {}, "EnableKey": {}, "DisableKey": {},
    "UpdateKeyDescription": {"Description": "d"},
    "TagResource": {"Tags": [{"TagKey": "k", "TagValue": "v"}]},
    "UntagResource": {"TagKeys": ["k"]}, "ListResourceTags": {},
    "GetKeyPolicy": {}, "PutKeyPolicy": {"Policy": "{}"}, "ListKeyPolicies": {},
    "GetKeyRotationStatus": {}, "EnableKeyRotation": {}, "DisableKeyRotation": {},
    "RotateKeyOnDemand": {}, "ListKeyRotations": {},
    "CreateGrant": {"GranteePrincipal": "arn:aws:iam::111122223333:root", "Operations": ["Encrypt"]},
    "ListGrants": {}, "RevokeGrant": {"GrantId": "g"}, "RetireGrant": {"GrantId": "g"},
    "GetParametersForImport": {"WrappingAlgorithm": "RSAES_OAEP_SHA_256", "WrappingKeySpec": "RSA_3072"},
    "ImportKeyMaterial": {"ImportToken": b"t", "EncryptedKeyMaterial": b"m"},
    "DeleteImportedKeyMaterial": {},
}


@pytest.mark.parametrize("op", sorted(KEY_ONLY_OPERATIONS))
def test_operations_that_manage_a_key_refuse_an_alias(kms, new_key, op):
    kid = new_key()
    name = "alias/" + unique("manage")
    kms.create_alias(AliasName=name, TargetKeyId=kid)
    arn = kms.describe_key(KeyId=kid)["KeyMetadata"]["Arn"]
    alias_arn = arn[: arn.rindex(":") + 1] + name
    for alias in (name, alias_arn):
        with kms_error("InvalidArnException") as ei:
            call(kms, op, {"KeyId": alias, **KEY_ONLY_OPERATIONS[op]})
        assert ei.value.response["Error"]["Message"] == "Key Aliases are not supported for this operation."
    # Nothing changed: the key is as it was.
    meta = kms.describe_key(KeyId=kid)["KeyMetadata"]
    assert meta["KeyState"] == "Enabled" and meta["Description"] != "d"


def refusal_of(call_):
    with pytest.raises(ClientError) as ei:
        call_()
    return ei.value.response["Error"]["Code"], ei.value.response["Error"]["Message"]


def test_missing_keys_and_aliases_are_named_by_their_arn(kms, new_key):
    arn = kms.describe_key(KeyId=new_key())["KeyMetadata"]["Arn"]
    prefix = arn[: arn.rindex(":") + 1]
    missing = str(uuid.uuid4())
    assert refusal_of(lambda: kms.describe_key(KeyId=missing)) == \
        ("NotFoundException", f"Key '{prefix}key/{missing}' does not exist")
    assert refusal_of(lambda: kms.encrypt(KeyId=f"{prefix}key/{missing}", Plaintext=b"x")) == \
        ("NotFoundException", f"Key '{prefix}key/{missing}' does not exist")
    for alias in ("alias/kcm-missing", f"{prefix}alias/kcm-missing"):
        assert refusal_of(lambda: kms.encrypt(KeyId=alias, Plaintext=b"x")) == \
            ("NotFoundException", f"Alias {prefix}alias/kcm-missing is not found.")
    other_region = arn.replace(":us-east-1:", ":eu-west-1:") if ":us-east-1:" in arn \
        else re.sub(r":kms:[^:]+:", ":kms:us-east-1:", arn)
    region = other_region.split(":")[3]
    assert refusal_of(lambda: kms.describe_key(KeyId=other_region)) == \
        ("NotFoundException", f"Invalid arn {region}")


def test_key_state_and_usage_refusals_are_awss_sentences(kms, new_key):
    def arn_of(kid):
        return kms.describe_key(KeyId=kid)["KeyMetadata"]["Arn"]

    disabled = new_key()
    kms.disable_key(KeyId=disabled)
    assert refusal_of(lambda: kms.encrypt(KeyId=disabled, Plaintext=b"x")) == \
        ("DisabledException", f"{arn_of(disabled)} is disabled.")
    deleting = new_key()
    kms.schedule_key_deletion(KeyId=deleting, PendingWindowInDays=7)
    assert refusal_of(lambda: kms.encrypt(KeyId=deleting, Plaintext=b"x")) == \
        ("KMSInvalidStateException", f"{arn_of(deleting)} is pending deletion.")
    assert refusal_of(lambda: kms.enable_key(KeyId=deleting)) == \
        ("KMSInvalidStateException", f"{arn_of(deleting)} is pending deletion.")
    importing = new_key(Origin="EXTERNAL")
    assert refusal_of(lambda: kms.encrypt(KeyId=importing, Plaintext=b"x")) == \
        ("KMSInvalidStateException", f"{arn_of(importing)} is pending import.")
    signing = new_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")
    assert refusal_of(lambda: kms.encrypt(KeyId=signing, Plaintext=b"x")) == \
        ("InvalidKeyUsageException",
         f"{arn_of(signing)} key usage is SIGN_VERIFY which is not valid for Encrypt.")
    symmetric = new_key()
    assert refusal_of(lambda: kms.generate_mac(KeyId=symmetric, Message=b"m", MacAlgorithm="HMAC_SHA_256")) == \
        ("InvalidKeyUsageException",
         f"{arn_of(symmetric)} key usage is ENCRYPT_DECRYPT which is not valid for GenerateMac.")


def test_members_kcm_does_not_take_are_refused_not_ignored(kms, new_key):
    """A member of AWS's shape that kcm does not implement is refused by name: a
    Nitro enclave's Recipient must not get its plaintext back in the clear."""
    kid = new_key()
    blob = kms.encrypt(KeyId=kid, Plaintext=b"secret")["CiphertextBlob"]
    recipient = {"KeyEncryptionAlgorithm": "RSAES_OAEP_SHA_256", "AttestationDocument": b"\x01" * 16}
    calls = [
        ("Decrypt", {"CiphertextBlob": blob, "Recipient": recipient}, "Recipient"),
        ("GenerateDataKey", {"KeyId": kid, "KeySpec": "AES_256", "Recipient": recipient}, "Recipient"),
        ("GenerateRandom", {"NumberOfBytes": 16, "Recipient": recipient}, "Recipient"),
        ("CreateGrant", {"KeyId": kid, "Operations": ["Encrypt"],
                         "GranteeServicePrincipal": "logs.us-east-1.amazonaws.com"}, "GranteeServicePrincipal"),
        ("CreateGrant", {"KeyId": kid, "Operations": ["Encrypt"],
                         "GranteePrincipal": "arn:aws:iam::111122223333:root",
                         "Constraints": {"SourceArn": "arn:aws:s3:us-east-1:111122223333:bucket"}}, "SourceArn"),
        ("CreateKey", {"XksKeyId": "external-key-1"}, "XksKeyId"),
    ]
    for op, request, named in calls:
        with kms_error("UnsupportedOperationException") as ei:
            call(kms, op, request)
        assert named in ei.value.response["Error"]["Message"], (op, ei.value.response)
    assert kms.list_grants(KeyId=kid)["Grants"] == []
    # Required by kcm where AWS's shape lets a service principal stand in.
    with kms_error("ValidationException") as ei:
        call(kms, "CreateGrant", {"KeyId": kid, "Operations": ["Encrypt"]})
    assert "GranteePrincipal" in ei.value.response["Error"]["Message"]
