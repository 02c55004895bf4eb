"""Nothing in an answer says whether a key the caller may not see exists (issue 14, §4).

* Decrypt and ReEncrypt of another tenant's ciphertext, and Verify with another
  tenant's key, answer exactly as for a key that does not exist: the same error type and
  the same message (ids aside: a message may repeat the id the caller sent), and the
  same audit record in the caller's chain (no key named, the same outcome and error).
* A ciphertext of the caller's own key that has been destroyed answers as one whose key
  never existed.
* A key or alias ARN naming another account (whosever key it is, if anyone's), or
  another region, is NotFoundException, as AWS answers.
* Key ids are accepted only in their canonical form (lower-case, hyphenated); every
  other spelling of the same UUID names no key.

The control in every case is a key that does not exist, so a difference in the answers
is the oracle these tests look for.
"""

from __future__ import annotations

import uuid

import pytest
from botocore.exceptions import ClientError

from kcmtest import REGION, kms_error, poll, unique, v1_error_code

from test_audit import fetch_chain, the_record


def refusal(call) -> tuple[str, str, str]:
    """(error type, message, request id) of a call that must fail."""
    with pytest.raises(ClientError) as ei:
        call()
    err = ei.value.response["Error"]
    return err["Code"], err["Message"], ei.value.response["ResponseMetadata"]["RequestId"]


def without(message: str, *ids: str) -> str:
    """`message` with the ids the caller sent replaced by a placeholder."""
    for i in ids:
        message = message.replace(i, "<id>")
    return message


def naming_key(ciphertext: bytes, key_id: uuid.UUID) -> bytes:
    """`ciphertext` (kcm's format: version byte, then the key id's 16 bytes) made to name
    `key_id`: a ciphertext of a key that does not exist when `key_id` is fresh."""
    return ciphertext[:1] + key_id.bytes + ciphertext[17:]


def same_record(server, profile, a_request_id: str, b_request_id: str, creds=None) -> None:
    """The caller's audit records of two requests say the same (request ids and times aside)."""
    chain = fetch_chain(server, profile=profile, creds=creds)
    a, b = the_record(chain, a_request_id), the_record(chain, b_request_id)
    fields = ("operation", "keys", "system", "outcome", "error", "principal", "role", "front_door")
    assert {f: a.get(f) for f in fields} == {f: b.get(f) for f in fields}, (a, b)
    assert a["keys"] == [], f"the record names a key the caller cannot see: {a}"


@pytest.fixture(scope="module")
def theirs(other_tenant):
    """Another tenant's symmetric key, a ciphertext of it, its signing key and a signature."""
    kms = other_tenant["kms"]
    key = kms.create_key(Description=unique("theirs"))["KeyMetadata"]
    sign_key = kms.create_key(Description=unique("theirs-sign"), KeySpec="ECC_NIST_P256",
                              KeyUsage="SIGN_VERIFY")["KeyMetadata"]
    signature = kms.sign(KeyId=sign_key["KeyId"], Message=b"signed", MessageType="RAW",
                         SigningAlgorithm="ECDSA_SHA_256")["Signature"]
    ct = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"their secret")["CiphertextBlob"]
    return {"key": key, "ct": ct, "sign_key": sign_key, "signature": signature}


@pytest.fixture
def mine(kms, new_key):
    kid = new_key()
    meta = kms.describe_key(KeyId=kid)["KeyMetadata"]
    ct = kms.encrypt(KeyId=kid, Plaintext=b"my secret")["CiphertextBlob"]
    return {"id": kid, "arn": meta["Arn"], "account": meta["AWSAccountId"], "ct": ct}


# --------------------------------------------------------------------- another tenant's keys


def test_decrypt_of_another_tenants_ciphertext_answers_as_a_missing_key(server, kms, mine, theirs):
    missing = naming_key(mine["ct"], uuid.uuid4())
    theirs_answer = refusal(lambda: kms.decrypt(CiphertextBlob=theirs["ct"]))
    missing_answer = refusal(lambda: kms.decrypt(CiphertextBlob=missing))
    assert theirs_answer[0] == "InvalidCiphertextException", theirs_answer
    assert theirs_answer[:2] == missing_answer[:2]
    same_record(server, "default", theirs_answer[2], missing_answer[2])

    # Naming the key as well changes nothing.
    their_id, missing_id = theirs["key"]["KeyId"], str(uuid.uuid4())
    named_missing = naming_key(mine["ct"], uuid.UUID(missing_id))
    a = refusal(lambda: kms.decrypt(CiphertextBlob=theirs["ct"], KeyId=their_id))
    b = refusal(lambda: kms.decrypt(CiphertextBlob=named_missing, KeyId=missing_id))
    assert (a[0], without(a[1], their_id)) == (b[0], without(b[1], missing_id)), (a, b)
    same_record(server, "default", a[2], b[2])


def test_re_encrypt_of_another_tenants_ciphertext_answers_as_a_missing_key(server, kms, mine, theirs):
    missing = naming_key(mine["ct"], uuid.uuid4())
    a = refusal(lambda: kms.re_encrypt(CiphertextBlob=theirs["ct"], DestinationKeyId=mine["id"]))
    b = refusal(lambda: kms.re_encrypt(CiphertextBlob=missing, DestinationKeyId=mine["id"]))
    assert a[0] == "InvalidCiphertextException", a
    assert a[:2] == b[:2]
    same_record(server, "default", a[2], b[2])


def test_verify_with_another_tenants_key_answers_as_a_missing_key(server, kms, theirs):
    their_id, missing_id = theirs["sign_key"]["KeyId"], str(uuid.uuid4())

    def verify(key_id):
        return kms.verify(KeyId=key_id, Message=b"signed", MessageType="RAW",
                          Signature=theirs["signature"], SigningAlgorithm="ECDSA_SHA_256")

    a, b = refusal(lambda: verify(their_id)), refusal(lambda: verify(missing_id))
    assert a[0] == "NotFoundException", a
    assert (a[0], without(a[1], their_id)) == (b[0], without(b[1], missing_id)), (a, b)
    same_record(server, "default", a[2], b[2])


@pytest.mark.slow
def test_a_destroyed_keys_ciphertext_answers_as_a_missing_key(fast_server):
    """Destroyed is gone: its ciphertexts are as those of a key that never existed."""
    kms = fast_server.client("default")
    kid = kms.create_key(Description=unique("doomed"))["KeyMetadata"]["KeyId"]
    keep = kms.create_key(Description=unique("kept"))["KeyMetadata"]["KeyId"]
    ct = kms.encrypt(KeyId=kid, Plaintext=b"gone soon")["CiphertextBlob"]
    missing = naming_key(kms.encrypt(KeyId=keep, Plaintext=b"gone soon")["CiphertextBlob"], uuid.uuid4())
    kms.schedule_key_deletion(KeyId=kid, PendingWindowInDays=7)

    def destroyed():
        try:
            kms.describe_key(KeyId=kid)
            return False
        except ClientError as e:
            assert e.response["Error"]["Code"] == "NotFoundException", e.response["Error"]
            return True

    poll(destroyed, timeout=30, interval=0.2, what="the key to be destroyed")
    a, b = refusal(lambda: kms.decrypt(CiphertextBlob=ct)), refusal(lambda: kms.decrypt(CiphertextBlob=missing))
    assert a[0] == "InvalidCiphertextException", a
    assert a[:2] == b[:2]
    a = refusal(lambda: kms.re_encrypt(CiphertextBlob=ct, DestinationKeyId=keep))
    b = refusal(lambda: kms.re_encrypt(CiphertextBlob=missing, DestinationKeyId=keep))
    assert a[:2] == b[:2] and a[0] == "InvalidCiphertextException", (a, b)
    same_record(fast_server, "default", a[2], b[2])


# --------------------------------------------------------------------- ARNs


def another_account(account: str) -> str:
    return f"{(int(account) + 1) % 10**12:012d}"


def test_a_key_arn_of_another_account_is_not_found(kms, mine, theirs):
    """Whatever key id it names (the caller's own, another tenant's under that tenant's
    account, or none), an ARN of an account not the caller's names nothing."""
    own, other = mine["account"], another_account(mine["account"])
    missing_id = str(uuid.uuid4())
    control = f"arn:aws:kms:{REGION}:{own}:key/{missing_id}"
    arns = {
        f"arn:aws:kms:{REGION}:{other}:key/{mine['id']}": mine["id"],
        theirs["key"]["Arn"]: theirs["key"]["KeyId"],
        f"arn:aws:kms:{REGION}:{other}:key/{missing_id}": missing_id,
    }
    calls = {
        "DescribeKey": lambda k: kms.describe_key(KeyId=k),
        "Encrypt": lambda k: kms.encrypt(KeyId=k, Plaintext=b"x"),
        "Decrypt": lambda k: kms.decrypt(CiphertextBlob=mine["ct"], KeyId=k),
        "GenerateDataKey": lambda k: kms.generate_data_key(KeyId=k, KeySpec="AES_256"),
        "EnableKey": lambda k: kms.enable_key(KeyId=k),
        "ListGrants": lambda k: kms.list_grants(KeyId=k),
    }
    for op, call in calls.items():
        expected = refusal(lambda: call(control))
        assert expected[0] == "NotFoundException", (op, expected)
        for arn, key_id in arns.items():
            got = refusal(lambda: call(arn))
            # The answer may repeat the ARN the caller wrote (AWS's "Key '<arn>' does
            # not exist"), nothing else of it.
            got_text = without(without(got[1], arn), key_id)
            assert (got[0], got_text) == (expected[0], without(without(expected[1], control), missing_id)), \
                (op, arn, got, expected)
    # The caller's key is still there, by its own ARN.
    assert kms.describe_key(KeyId=mine["arn"])["KeyMetadata"]["KeyId"] == mine["id"]


def test_an_alias_arn_of_another_account_is_not_found(kms, mine, other_tenant):
    name = "alias/" + unique("oracle")
    kms.create_alias(AliasName=name, TargetKeyId=mine["id"])
    their_name = "alias/" + unique("oracle-theirs")
    their_key = other_tenant["kms"].create_key(Description=unique("theirs"))["KeyMetadata"]
    other_tenant["kms"].create_alias(AliasName=their_name, TargetKeyId=their_key["KeyId"])
    own, other = mine["account"], another_account(mine["account"])
    missing_name = "alias/" + unique("missing")
    expected = refusal(lambda: kms.describe_key(KeyId=f"arn:aws:kms:{REGION}:{own}:{missing_name}"))
    assert expected[0] == "NotFoundException", expected
    for alias_arn, shown in [
        (f"arn:aws:kms:{REGION}:{other}:{name}", name),
        (f"arn:aws:kms:{REGION}:{their_key['AWSAccountId']}:{their_name}", their_name),
        (f"arn:aws:kms:{REGION}:{other}:{missing_name}", missing_name),
    ]:
        got = refusal(lambda: kms.describe_key(KeyId=alias_arn))
        control = f"arn:aws:kms:{REGION}:{own}:{missing_name}"
        got_text = without(without(got[1], alias_arn), shown)
        assert (got[0], got_text) == (expected[0], without(without(expected[1], control), missing_name)), \
            (alias_arn, got, expected)
        got = refusal(lambda: kms.encrypt(KeyId=alias_arn, Plaintext=b"x"))
        assert got[0] == "NotFoundException", (alias_arn, got)
    assert kms.describe_key(KeyId=f"arn:aws:kms:{REGION}:{own}:{name}")["KeyMetadata"]["KeyId"] == mine["id"]


def test_a_key_arn_of_another_region_is_not_found(kms, mine):
    for region in ("eu-west-1", "us-east-2"):
        arn = mine["arn"].replace(f":{REGION}:", f":{region}:")
        with kms_error("NotFoundException"):
            kms.describe_key(KeyId=arn)
        with kms_error("NotFoundException"):
            kms.encrypt(KeyId=arn, Plaintext=b"x")


def test_an_arn_of_another_account_is_not_found_for_a_role_that_may_use_keys(server, mine):
    """A key-user (who may not manage keys) is still told "denied" for management first:
    the role comes before anything is looked up; for use, it is "not found"."""
    user = server.client_for(server.create_access_key("key-user"))
    arn = f"arn:aws:kms:{REGION}:{another_account(mine['account'])}:key/{mine['id']}"
    with kms_error("NotFoundException"):
        user.encrypt(KeyId=arn, Plaintext=b"x")
    with kms_error("AccessDeniedException"):
        user.disable_key(KeyId=arn)


# --------------------------------------------------------------------- canonical key ids


def spellings(key_id: str) -> list[str]:
    """Other spellings of the same UUID, each of which `uuid` itself accepts."""
    u = uuid.UUID(key_id)
    forms = [key_id.upper(), key_id[:9].upper() + key_id[9:], "{" + key_id + "}", u.hex,
             u.hex.upper(), "urn:uuid:" + key_id]
    for f in forms:
        assert uuid.UUID(f) == u and f != key_id
    return forms


def test_key_ids_are_accepted_only_in_canonical_form(kms, mine):
    for spelling in spellings(mine["id"]):
        for call in (lambda: kms.describe_key(KeyId=spelling),
                     lambda: kms.encrypt(KeyId=spelling, Plaintext=b"x"),
                     lambda: kms.decrypt(CiphertextBlob=mine["ct"], KeyId=spelling),
                     lambda: kms.describe_key(KeyId=f"arn:aws:kms:{REGION}:{mine['account']}:key/{spelling}"),
                     lambda: kms.create_alias(AliasName="alias/" + unique("canon"), TargetKeyId=spelling)):
            with kms_error("NotFoundException"):
                call()
    # The canonical form, by id and by ARN, is the key.
    assert kms.describe_key(KeyId=mine["id"])["KeyMetadata"]["KeyId"] == mine["id"]
    assert kms.describe_key(KeyId=mine["arn"])["KeyMetadata"]["KeyId"] == mine["id"]


def test_rest_paths_take_key_ids_only_in_canonical_form(server, mine):
    for spelling in spellings(mine["id"]):
        r = server.v1("POST", f"/v1/keys/{spelling}/compromise", json_body={})
        assert r.status_code == 404 and v1_error_code(r) == "NotFound", (spelling, r.status_code, r.text)
        r = server.v1("GET", f"/v1/audit?key={spelling}")
        assert r.status_code == 400, (spelling, r.status_code, r.text)
    r = server.v1("GET", f"/v1/audit?key={mine['id']}")
    assert r.status_code == 200, r.text
