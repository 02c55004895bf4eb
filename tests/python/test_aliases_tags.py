"""Aliases and tags through the AWS KMS API (boto3)."""

from __future__ import annotations

import uuid

import pytest

from kcmtest import ALIAS_ARN_RE, REGION, kms_error, kms_pages, unique


def all_aliases(kms, **kw):
    return [a for page in kms_pages(kms.list_aliases, **kw) for a in page["Aliases"]]


def alias_names(kms, **kw):
    return [a["AliasName"] for a in all_aliases(kms, **kw)]


def target_of(kms, alias):
    return kms.describe_key(KeyId=alias)["KeyMetadata"]["KeyId"]


# --------------------------------------------------------------------- aliases


def test_create_alias_and_list(kms, new_key):
    kid = new_key()
    account = kms.describe_key(KeyId=kid)["KeyMetadata"]["AWSAccountId"]
    name = "alias/" + unique("list")
    kms.create_alias(AliasName=name, TargetKeyId=kid)
    entries = [a for a in all_aliases(kms) if a["AliasName"] == name]
    assert len(entries) == 1
    a = entries[0]
    assert a["TargetKeyId"] == kid
    assert ALIAS_ARN_RE.match(a["AliasArn"]), a["AliasArn"]
    assert a["AliasArn"] == f"arn:aws:kms:{REGION}:{account}:{name}"
    assert target_of(kms, name) == kid


def test_create_alias_by_key_arn(kms, new_key):
    kid = new_key()
    arn = kms.describe_key(KeyId=kid)["KeyMetadata"]["Arn"]
    name = "alias/" + unique("byarn")
    kms.create_alias(AliasName=name, TargetKeyId=arn)
    assert target_of(kms, name) == kid


def test_alias_already_exists(kms, new_key):
    k1, k2 = new_key(), new_key()
    name = "alias/" + unique("dup")
    kms.create_alias(AliasName=name, TargetKeyId=k1)
    with kms_error("AlreadyExistsException"):
        kms.create_alias(AliasName=name, TargetKeyId=k2)
    assert target_of(kms, name) == k1, "a refused CreateAlias moved the alias"


def test_alias_reserved_aws_prefix(kms, new_key):
    kid = new_key()
    name = "alias/aws/" + unique("reserved")
    # AWS reserves alias/aws/ for AWS managed keys and answers a caller's CreateAlias,
    # UpdateAlias or DeleteAlias under it with NotAuthorizedException (as observed of AWS,
    # and as moto and other AWS emulators answer), whoever asks.
    with kms_error("NotAuthorizedException") as ei:
        kms.create_alias(AliasName=name, TargetKeyId=kid)
    assert "alias/aws/" in ei.value.response["Error"]["Message"], ei.value
    assert name not in alias_names(kms)
    with kms_error("NotAuthorizedException"):
        kms.update_alias(AliasName=name, TargetKeyId=kid)
    with kms_error("NotAuthorizedException"):
        kms.delete_alias(AliasName=name)


ALIAS_PATTERN = "^[a-zA-Z0-9:/_-]+$"


@pytest.mark.parametrize(
    "name, code, message",
    [
        # Names the API reference's shape allows but KMS does not.
        ("no-prefix-" + uuid.uuid4().hex[:6], "InvalidAliasNameException", None),
        ("alias/", "InvalidAliasNameException", None),
        # Names outside the shape: AWS's validation message, word for word.
        ("alias/has space", "ValidationException",
         "1 validation error detected: Value 'alias/has space' at 'aliasName' failed to satisfy "
         f"constraint: Member must satisfy regular expression pattern: {ALIAS_PATTERN}"),
        ("alias/bad*char", "ValidationException",
         "1 validation error detected: Value 'alias/bad*char' at 'aliasName' failed to satisfy "
         f"constraint: Member must satisfy regular expression pattern: {ALIAS_PATTERN}"),
        ("alias/üñí", "ValidationException",
         "1 validation error detected: Value 'alias/üñí' at 'aliasName' failed to satisfy "
         f"constraint: Member must satisfy regular expression pattern: {ALIAS_PATTERN}"),
        ("alias/" + "a" * 251, "ValidationException",  # 257 characters in all
         f"1 validation error detected: Value 'alias/{'a' * 251}' at 'aliasName' failed to "
         "satisfy constraint: Member must have length less than or equal to 256"),
    ],
    ids=["no-prefix", "prefix-only", "space", "star", "not-ascii", "too-long"],
)
def test_alias_invalid_names(kms, new_key, name, code, message):
    kid = new_key()
    # CreateAlias's errors for a name that is not valid (AWS's API reference).
    with kms_error(code) as ei:
        kms.create_alias(AliasName=name, TargetKeyId=kid)
    if message is not None:
        assert ei.value.response["Error"]["Message"] == message
    assert name not in alias_names(kms)


def test_alias_name_max_length_ok(kms, new_key):
    kid = new_key()
    name = "alias/" + uuid.uuid4().hex + "x" * (256 - 6 - 32)
    assert len(name) == 256
    kms.create_alias(AliasName=name, TargetKeyId=kid)
    assert target_of(kms, name) == kid


def test_alias_to_unknown_key(kms):
    with kms_error("NotFoundException"):
        kms.create_alias(AliasName="alias/" + unique("nokey"), TargetKeyId=str(uuid.uuid4()))


def test_update_alias(kms, new_key):
    k1, k2 = new_key(), new_key()
    name = "alias/" + unique("upd")
    kms.create_alias(AliasName=name, TargetKeyId=k1)
    kms.update_alias(AliasName=name, TargetKeyId=k2)
    assert target_of(kms, name) == k2
    [entry] = [a for a in all_aliases(kms) if a["AliasName"] == name]
    assert entry["TargetKeyId"] == k2
    with kms_error("NotFoundException"):
        kms.update_alias(AliasName="alias/" + unique("missing"), TargetKeyId=k1)
    with kms_error("NotFoundException"):
        kms.update_alias(AliasName=name, TargetKeyId=str(uuid.uuid4()))
    assert target_of(kms, name) == k2


def test_delete_alias(kms, new_key):
    kid = new_key()
    name = "alias/" + unique("del")
    kms.create_alias(AliasName=name, TargetKeyId=kid)
    kms.delete_alias(AliasName=name)
    assert name not in alias_names(kms)
    with kms_error("NotFoundException"):
        kms.describe_key(KeyId=name)
    with kms_error("NotFoundException"):
        kms.delete_alias(AliasName=name)
    # The key itself is untouched, and the name can be reused.
    assert kms.describe_key(KeyId=kid)["KeyMetadata"]["KeyState"] == "Enabled"
    kms.create_alias(AliasName=name, TargetKeyId=kid)
    assert target_of(kms, name) == kid


def test_list_aliases_key_filter(kms, new_key):
    ka, kb = new_key(), new_key()
    a1, a2, b1 = ("alias/" + unique(p) for p in ("fa", "fa", "fb"))
    kms.create_alias(AliasName=a1, TargetKeyId=ka)
    kms.create_alias(AliasName=a2, TargetKeyId=ka)
    kms.create_alias(AliasName=b1, TargetKeyId=kb)
    assert sorted(alias_names(kms, KeyId=ka)) == sorted([a1, a2])
    assert alias_names(kms, KeyId=kb) == [b1]
    arn = kms.describe_key(KeyId=ka)["KeyMetadata"]["Arn"]
    assert sorted(alias_names(kms, KeyId=arn)) == sorted([a1, a2])
    assert alias_names(kms, KeyId=new_key()) == []
    with kms_error("NotFoundException"):
        kms.list_aliases(KeyId=str(uuid.uuid4()))


def test_list_aliases_paging(kms, new_key):
    kid = new_key()
    names = ["alias/" + unique("pg") for _ in range(5)]
    for n in names:
        kms.create_alias(AliasName=n, TargetKeyId=kid)
    seen, pages = [], 0
    for page in kms_pages(kms.list_aliases, Limit=2):
        pages += 1
        assert len(page["Aliases"]) <= 2
        seen.extend(a["AliasName"] for a in page["Aliases"])
    assert len(seen) == len(set(seen))
    for n in names:
        assert n in seen
    assert pages >= 3
    # Paging with the key filter too.
    seen_f = [a["AliasName"] for page in kms_pages(kms.list_aliases, Limit=1, KeyId=kid) for a in page["Aliases"]]
    assert sorted(seen_f) == sorted(names)
    with kms_error("InvalidMarkerException"):
        kms.list_aliases(Limit=1, Marker="definitely-not-a-marker")
    with kms_error("ValidationException"):
        kms.list_aliases(Limit=0)


def test_alias_names_are_per_tenant(kms, new_key, other_tenant):
    name = "alias/" + unique("shared")
    mine = new_key()
    kms.create_alias(AliasName=name, TargetKeyId=mine)
    okms = other_tenant["kms"]
    theirs = okms.create_key()["KeyMetadata"]["KeyId"]
    okms.create_alias(AliasName=name, TargetKeyId=theirs)
    assert target_of(kms, name) == mine
    assert target_of(okms, name) == theirs
    assert name not in [a["AliasName"] for a in all_aliases(okms) if a.get("TargetKeyId") == mine]
    # Another tenant cannot point an alias at my key: to them it does not exist.
    with kms_error("NotFoundException"):
        okms.create_alias(AliasName="alias/" + unique("steal"), TargetKeyId=mine)


# --------------------------------------------------------------------- tags


def tags_of(kms, kid):
    out = {}
    for page in kms_pages(kms.list_resource_tags, KeyId=kid):
        for t in page["Tags"]:
            assert t["TagKey"] not in out, "tag listed twice"
            out[t["TagKey"]] = t["TagValue"]
    return out


def test_tag_untag_list(kms, new_key):
    kid = new_key()
    kms.tag_resource(KeyId=kid, Tags=[{"TagKey": "a", "TagValue": "1"}, {"TagKey": "b", "TagValue": "2"}])
    assert tags_of(kms, kid) == {"a": "1", "b": "2"}
    # Same key overwrites the value.
    kms.tag_resource(KeyId=kid, Tags=[{"TagKey": "a", "TagValue": "changed"}])
    assert tags_of(kms, kid) == {"a": "changed", "b": "2"}
    kms.untag_resource(KeyId=kid, TagKeys=["a", "not-there"])
    assert tags_of(kms, kid) == {"b": "2"}
    arn = kms.describe_key(KeyId=kid)["KeyMetadata"]["Arn"]
    kms.tag_resource(KeyId=arn, Tags=[{"TagKey": "via-arn", "TagValue": "yes"}])
    assert tags_of(kms, arn) == {"b": "2", "via-arn": "yes"}


def test_tags_are_per_key(kms, new_key):
    k1, k2 = new_key(), new_key()
    kms.tag_resource(KeyId=k1, Tags=[{"TagKey": "only", "TagValue": "k1"}])
    assert tags_of(kms, k2) == {}


def test_list_resource_tags_paging(kms, new_key):
    kid = new_key()
    tags = [{"TagKey": f"k{i:02d}", "TagValue": f"v{i}"} for i in range(7)]
    kms.tag_resource(KeyId=kid, Tags=tags)
    seen = []
    for page in kms_pages(kms.list_resource_tags, KeyId=kid, Limit=3):
        assert len(page["Tags"]) <= 3
        seen.extend(t["TagKey"] for t in page["Tags"])
    assert sorted(seen) == [t["TagKey"] for t in tags]


@pytest.mark.parametrize(
    "tag, code, message",
    [
        ({"TagKey": "", "TagValue": "x"}, "ValidationException",
         "1 validation error detected: Value '' at 'tags.1.member.tagKey' failed to satisfy "
         "constraint: Member must have length greater than or equal to 1"),
        ({"TagKey": "k" * 129, "TagValue": "x"}, "ValidationException",
         f"1 validation error detected: Value '{'k' * 129}' at 'tags.1.member.tagKey' failed to "
         "satisfy constraint: Member must have length less than or equal to 128"),
        ({"TagKey": "ok-key", "TagValue": "v" * 257}, "ValidationException",
         f"1 validation error detected: Value '{'v' * 257}' at 'tags.1.member.tagValue' failed to "
         "satisfy constraint: Member must have length less than or equal to 256"),
        # Within the shape, but not a tag KMS takes.
        ({"TagKey": "bad\u0000key", "TagValue": "x"}, "TagException", None),
    ],
    ids=["empty-key", "long-key", "long-value", "control-char"],
)
def test_tag_invalid(kms, new_key, tag, code, message):
    kid = new_key()
    # TagResource's errors for a tag that is not valid (AWS's API reference).
    with kms_error(code) as ei:
        kms.tag_resource(KeyId=kid, Tags=[tag])
    if message is not None:
        assert ei.value.response["Error"]["Message"] == message
    assert tags_of(kms, kid) == {}


def test_tag_limits(kms, new_key):
    kid = new_key()
    kms.tag_resource(KeyId=kid, Tags=[{"TagKey": "k" * 128, "TagValue": "v" * 256}])
    assert tags_of(kms, kid) == {"k" * 128: "v" * 256}
    kms.untag_resource(KeyId=kid, TagKeys=["k" * 128])
    fifty = [{"TagKey": f"t{i}", "TagValue": str(i)} for i in range(50)]
    kms.tag_resource(KeyId=kid, Tags=fifty)
    assert len(tags_of(kms, kid)) == 50
    # AWS's reference names no error for the 51st tag; kcm's is TagException, as for a
    # CreateKey with more than 50 tags.
    with kms_error("TagException") as ei:
        kms.tag_resource(KeyId=kid, Tags=[{"TagKey": "one-too-many", "TagValue": "x"}])
    assert "50" in ei.value.response["Error"]["Message"], ei.value
    assert len(tags_of(kms, kid)) == 50
    assert "one-too-many" not in tags_of(kms, kid)


def test_create_key_with_reserved_tag(kms):
    desc = unique("reserved-tag")
    with kms_error("TagException"):
        kms.create_key(Description=desc, Tags=[{"TagKey": "aws:nope", "TagValue": "x"}])
    # No key was created by the refused call.
    for page in kms_pages(kms.list_keys):
        for k in page["Keys"][-20:]:
            assert kms.describe_key(KeyId=k["KeyId"])["KeyMetadata"].get("Description") != desc


def test_tag_unknown_key(kms):
    with kms_error("NotFoundException"):
        kms.tag_resource(KeyId=str(uuid.uuid4()), Tags=[{"TagKey": "a", "TagValue": "b"}])
    with kms_error("NotFoundException"):
        kms.list_resource_tags(KeyId=str(uuid.uuid4()))
    with kms_error("NotFoundException"):
        kms.untag_resource(KeyId=str(uuid.uuid4()), TagKeys=["a"])


def test_tags_tenant_isolated(kms, new_key, other_tenant):
    kid = new_key()
    kms.tag_resource(KeyId=kid, Tags=[{"TagKey": "secret-project", "TagValue": "x"}])
    okms = other_tenant["kms"]
    # Another tenant's key is answered as one that does not exist.
    with kms_error("NotFoundException"):
        okms.list_resource_tags(KeyId=kid)
    with kms_error("NotFoundException"):
        okms.tag_resource(KeyId=kid, Tags=[{"TagKey": "evil", "TagValue": "x"}])
    assert tags_of(kms, kid) == {"secret-project": "x"}
