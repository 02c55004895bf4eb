"""The test XKS proxy (xks_proxy.py) follows the public XKS proxy API spec, checked with a client
independent of kcm: requests signed by botocore's SigV4Auth (service `kms-xks-proxy`) and sent
with `requests`, and ciphertexts checked with `cryptography`'s AES-GCM for a key whose value
the test knows. kcm's XKS keystore is tested against this proxy elsewhere; this file makes
sure the proxy itself is right first.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import os
import secrets
import socket
import subprocess
import sys
from pathlib import Path
from unittest import mock

import pytest
import requests
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from softhsm import Token
from xks_proxy import XksProxy, decrypt_fields, random_access_key_id, random_secret

pytestmark = pytest.mark.timeout(90)

PREFIX = "/tenant-1/xks"
ROTATED_AKID, ROTATED_SECRET = random_access_key_id(), random_secret()


def b64(b: bytes) -> str:
    return base64.b64encode(b).decode()


def unb64(s: str) -> bytes:
    return base64.b64decode(s, validate=True)


def md(op: str = "Encrypt", key_arn: bool = True) -> dict:
    m = {
        "awsPrincipalArn": "arn:aws:iam::123456789012:user/Alice",
        "kmsOperation": op,
        "kmsRequestId": "req-" + secrets.token_hex(8),
        "kmsViaService": "ebs",
    }
    if key_arn:
        m["kmsKeyArn"] = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    return m


def enc_body(plaintext: bytes, aad: bytes | None = None, cdiv: bool = False) -> dict:
    body = {"requestMetadata": md("Encrypt"), "plaintext": b64(plaintext), "encryptionAlgorithm": "AES_GCM"}
    if aad is not None:
        body["additionalAuthenticatedData"] = b64(aad)
    if cdiv:
        body["ciphertextDataIntegrityValueAlgorithm"] = "SHA_256"
    return body


def dec_body(enc: dict, aad: bytes | None = None, **override) -> dict:
    return {"requestMetadata": md("Decrypt"), **decrypt_fields(enc, aad, **override)}


def flip(s: str, i: int = 0) -> str:
    raw = bytearray(unb64(s))
    raw[i] ^= 0x01
    return b64(bytes(raw))


def token_aad(aad: bytes | None, metadata: bytes | None) -> bytes:
    """The spec's AAD for the key manager: len16be(aad) || aad || len8(metadata) || metadata."""
    aad, metadata = aad or b"", metadata or b""
    return len(aad).to_bytes(2, "big") + aad + len(metadata).to_bytes(1, "big") + metadata


def assert_error(resp, status: int, name: str):
    code, body = resp
    assert (code, (body or {}).get("errorName")) == (status, name), f"want {status} {name}, got {code} {body}"
    if "errorMessage" in body:
        msg = body["errorMessage"]
        assert len(msg) < 512 and all(" " <= c <= "~" for c in msg), msg


def write_known_key(token: Token, label: str, value: bytes, tmp: Path) -> None:
    """An AES-256 key with a value the test knows, written into the token with pkcs11-tool."""
    f = tmp / f"{label}.bin"
    f.write_bytes(value)
    try:
        token._tool("--write-object", str(f), "--type", "secrkey", "--key-type", "AES:32", "--label", label,
                    "--id", secrets.token_hex(4), "--usage-decrypt", "--sensitive")
    finally:
        f.unlink()


@pytest.fixture(scope="module")
def token(tmp_path_factory):
    return Token(tmp_path_factory.mktemp("xks-token"))


@pytest.fixture(scope="module")
def proxy(token, tmp_path_factory):
    p = XksProxy(tmp_path_factory.mktemp("xks-proxy"), token, uri_prefix=PREFIX,
                 extra_credentials={ROTATED_AKID: ROTATED_SECRET})
    with p:
        yield p


@pytest.fixture
def key(proxy):
    return proxy.create_key("ck-" + secrets.token_hex(6))


# ------------------------------------------------------------------------------- basics

def test_helper_addresses(proxy):
    assert proxy.endpoint == f"https://127.0.0.1:{proxy.port}"
    assert proxy.uri_path == PREFIX + "/kms/xks/v1"
    assert proxy.url == proxy.endpoint + proxy.uri_path
    assert Path(proxy.ca_file).is_file()
    # Bound to 127.0.0.1 itself, not to every address: 127.0.0.2 (also loopback) is refused.
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=5):
        pass
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.2", proxy.port), timeout=5).close()
    assert proxy.output().startswith(f"LISTENING {proxy.port}\n")
    # The certificate is checked, not skipped: without the CA file TLS fails.
    with pytest.raises(requests.exceptions.SSLError):
        requests.post(proxy.url + "/health", data=b"{}", timeout=5)


def test_health(proxy):
    code, h = proxy.call("health", {"requestMetadata": {"kmsRequestId": "h-1", "kmsOperation": "KmsHealthCheck"}})
    assert code == 200, h
    assert isinstance(h["xksProxyFleetSize"], int) and h["xksProxyFleetSize"] > 0
    for f in ("xksProxyVendor", "xksProxyModel", "ekmVendor"):
        assert isinstance(h[f], str) and h[f], f
    assert h["ekmVendor"] == "SoftHSM project"
    assert 1 <= len(h["ekmFleetDetails"]) <= 10
    for ekm in h["ekmFleetDetails"]:
        assert set(ekm) == {"id", "model", "healthStatus"}
        assert ekm["healthStatus"] == "ACTIVE"
        assert "SoftHSM" in ekm["model"]


def test_metadata(proxy, key):
    code, m = proxy.call(f"keys/{key}/metadata", {"requestMetadata": md("DescribeKey")})
    assert code == 200, m
    assert m == {"keySpec": "AES_256", "keyUsage": ["ENCRYPT", "DECRYPT"], "keyStatus": "ENABLED"}
    # CreateKey sends no kmsKeyArn: still fine.
    code, m = proxy.call(f"keys/{key}/metadata", {"requestMetadata": md("CreateKey", key_arn=False)})
    assert code == 200 and m["keyStatus"] == "ENABLED", m
    # An unknown kmsOperation is not a reason to refuse.
    assert proxy.call(f"keys/{key}/metadata", {"requestMetadata": md("BulkDescribeKey")})[0] == 200


# ------------------------------------------------------------------------------- encrypt / decrypt

@pytest.mark.parametrize("aad", [None, b"project=nile,department=marketing"], ids=["no-aad", "aad"])
def test_round_trip(proxy, key, aad):
    plaintext = secrets.token_bytes(32)
    code, enc = proxy.call(f"keys/{key}/encrypt", enc_body(plaintext, aad))
    assert code == 200, enc
    assert set(enc) == {"ciphertext", "initializationVector", "authenticationTag", "ciphertextMetadata"}
    assert len(unb64(enc["ciphertext"])) == len(plaintext)
    assert unb64(enc["ciphertext"]) != plaintext
    assert len(unb64(enc["initializationVector"])) in (12, 16)
    assert len(unb64(enc["authenticationTag"])) == 16
    assert 0 < len(unb64(enc["ciphertextMetadata"])) <= 20
    code, dec = proxy.call(f"keys/{key}/decrypt", dec_body(enc, aad))
    assert code == 200, dec
    assert dec == {"plaintext": b64(plaintext)}
    # A fresh IV every time: the same plaintext encrypts differently.
    code, enc2 = proxy.call(f"keys/{key}/encrypt", enc_body(plaintext, aad))
    assert code == 200
    assert enc2["initializationVector"] != enc["initializationVector"]
    assert enc2["ciphertext"] != enc["ciphertext"]


def test_spec_sizes(proxy, key):
    """The spec's minimums: 4300 bytes of plaintext, 8192 bytes of AAD."""
    plaintext, aad = secrets.token_bytes(4300), secrets.token_bytes(8192)
    code, enc = proxy.call(f"keys/{key}/encrypt", enc_body(plaintext, aad))
    assert code == 200, enc
    code, dec = proxy.call(f"keys/{key}/decrypt", dec_body(enc, aad))
    assert code == 200 and unb64(dec["plaintext"]) == plaintext


def test_wire_format_against_independent_gcm(proxy, token, tmp_path):
    """With a key whose value the test knows, the proxy's output is plain AES-GCM over the
    spec's AAD (len16be(aad) || aad || len8(metadata) || metadata), IV and tag split off."""
    value = secrets.token_bytes(32)
    label = "known-" + secrets.token_hex(4)
    write_known_key(token, label, value, tmp_path)
    plaintext, aad = b"Hello World!", b"project=nile,department=marketing"
    code, enc = proxy.call(f"keys/{label}/encrypt", enc_body(plaintext, aad))
    assert code == 200, enc
    iv, ct, tag = (unb64(enc[f]) for f in ("initializationVector", "ciphertext", "authenticationTag"))
    metadata = unb64(enc["ciphertextMetadata"])
    assert AESGCM(value).decrypt(iv, ct + tag, token_aad(aad, metadata)) == plaintext
    # The other way: made outside the token (16-byte IV, no AAD, no metadata), opened by the proxy.
    iv16 = secrets.token_bytes(16)
    out = AESGCM(value).encrypt(iv16, b"from outside", token_aad(None, None))
    code, dec = proxy.call(f"keys/{label}/decrypt", {
        "requestMetadata": md("Decrypt"), "encryptionAlgorithm": "AES_GCM",
        "ciphertext": b64(out[:-16]), "authenticationTag": b64(out[-16:]), "initializationVector": b64(iv16)})
    assert code == 200, dec
    assert unb64(dec["plaintext"]) == b"from outside"


@pytest.mark.parametrize("aad", [None, b"some aad"], ids=["no-aad", "aad"])
def test_ciphertext_data_integrity_value(proxy, key, aad):
    plaintext = secrets.token_bytes(48)
    code, enc = proxy.call(f"keys/{key}/encrypt", enc_body(plaintext, aad, cdiv=True))
    assert code == 200, enc
    want = hashlib.sha256((aad or b"") + unb64(enc["ciphertextMetadata"]) + unb64(enc["initializationVector"])
                          + unb64(enc["ciphertext"]) + unb64(enc["authenticationTag"])).digest()
    assert unb64(enc["ciphertextDataIntegrityValue"]) == want
    # Not asked for: not returned.
    code, enc2 = proxy.call(f"keys/{key}/encrypt", enc_body(plaintext, aad))
    assert code == 200 and "ciphertextDataIntegrityValue" not in enc2
    # An algorithm other than SHA_256 is invalid input.
    body = enc_body(plaintext, aad)
    body["ciphertextDataIntegrityValueAlgorithm"] = "SHA_512"
    assert_error(proxy.call(f"keys/{key}/encrypt", body), 400, "ValidationException")


def test_tampering_is_invalid_ciphertext(proxy, key):
    aad = b"context"
    code, enc = proxy.call(f"keys/{key}/encrypt", enc_body(b"attack at dawn", aad))
    assert code == 200, enc
    path = f"keys/{key}/decrypt"
    assert proxy.call(path, dec_body(enc, aad))[0] == 200  # the untouched one decrypts
    bad = {
        "wrong aad": dec_body(enc, b"contexT"),
        "aad dropped": dec_body(enc, None),
        "aad added": dec_body(enc, aad, additionalAuthenticatedData=b64(aad + b"x")),
        "tag flipped": dec_body(enc, aad, authenticationTag=flip(enc["authenticationTag"], 15)),
        "ciphertext flipped": dec_body(enc, aad, ciphertext=flip(enc["ciphertext"], 3)),
        "iv flipped": dec_body(enc, aad, initializationVector=flip(enc["initializationVector"])),
        "metadata changed": dec_body(enc, aad, ciphertextMetadata=flip(enc["ciphertextMetadata"])),
        "metadata dropped": dec_body(enc, aad, ciphertextMetadata=None),
    }
    for why, body in bad.items():
        resp = proxy.call(path, body)
        assert resp[0] == 400 and resp[1]["errorName"] == "InvalidCiphertextException", (why, resp)
    # The spec's confused case: encrypted without AAD, then the ciphertextMetadata passed as
    # AAD and no ciphertextMetadata. The length prefixes in the key manager's AAD refuse it.
    code, enc_no_aad = proxy.call(f"keys/{key}/encrypt", enc_body(b"attack at dusk"))
    assert code == 200
    moved = dec_body(enc_no_aad, None, ciphertextMetadata=None,
                     additionalAuthenticatedData=enc_no_aad["ciphertextMetadata"])
    assert_error(proxy.call(path, moved), 400, "InvalidCiphertextException")
    # A key other than the one that encrypted cannot decrypt either.
    other = proxy.create_key("other-" + secrets.token_hex(4))
    assert_error(proxy.call(f"keys/{other}/decrypt", dec_body(enc, aad)), 400, "InvalidCiphertextException")


def test_invalid_input_is_validation_exception(proxy, key):
    path = f"keys/{key}/encrypt"
    good = enc_body(b"data")
    cases = {
        "algorithm": {**good, "encryptionAlgorithm": "AES_CBC"},
        "no algorithm": {k: v for k, v in good.items() if k != "encryptionAlgorithm"},
        "no plaintext": {k: v for k, v in good.items() if k != "plaintext"},
        "not base64": {**good, "plaintext": "***"},
        "no requestMetadata": {k: v for k, v in good.items() if k != "requestMetadata"},
        "no kmsRequestId": {**good, "requestMetadata": {k: v for k, v in md().items() if k != "kmsRequestId"}},
    }
    for why, body in cases.items():
        resp = proxy.call(path, body)
        assert resp[0] == 400 and resp[1]["errorName"] == "ValidationException", (why, resp)
    assert_error(proxy.call(path, b"not json"), 400, "ValidationException")
    assert_error(proxy.call(path, good, headers={"Content-Type": "text/plain"}), 400, "ValidationException")
    code, enc = proxy.call(path, good)
    assert code == 200
    for why, override in {"iv of 8 bytes": {"initializationVector": b64(bytes(8))},
                          "tag of 12 bytes": {"authenticationTag": b64(bytes(12))},
                          "metadata of 21 bytes": {"ciphertextMetadata": b64(bytes(21))}}.items():
        resp = proxy.call(f"keys/{key}/decrypt", dec_body(enc, None, **override))
        assert resp[0] == 400 and resp[1]["errorName"] == "ValidationException", (why, resp)


# ------------------------------------------------------------------------------- URIs and methods

def test_get_and_other_methods_are_405(proxy, key):
    for api in ("health", f"keys/{key}/metadata", f"keys/{key}/encrypt", f"keys/{key}/decrypt"):
        for method in ("GET", "PUT", "DELETE"):
            r = requests.request(method, f"{proxy.url}/{api}", verify=proxy.ca_file, timeout=10)
            assert r.status_code == 405, (method, api, r.status_code, r.text)
            assert r.headers.get("Allow") == "POST"
            assert r.headers["Content-Type"] == "application/json"
    # Even a correctly signed GET.
    assert proxy.call(f"keys/{key}/metadata", {"requestMetadata": md()}, method="GET")[0] == 405


def test_unknown_paths_are_invalid_uri_path(proxy, key):
    body = {"requestMetadata": md()}
    # Unknown operation, wrong version, and the right API without the configured prefix.
    for url in (f"{proxy.url}/keys/{key}/sign", f"{proxy.endpoint}{PREFIX}/kms/xks/v2/health",
                f"{proxy.endpoint}/kms/xks/v1/health", f"{proxy.endpoint}/other{PREFIX}/kms/xks/v1/health"):
        r = requests.post(url, json=body, verify=proxy.ca_file, timeout=10)
        assert (r.status_code, r.json()["errorName"]) == (404, "InvalidUriPathException"), url
    assert_error(proxy.call(f"keys/{key}/encrypt/extra", body), 404, "InvalidUriPathException")


def test_unknown_key_is_key_not_found(proxy):
    for op, body in (("metadata", {"requestMetadata": md()}), ("encrypt", enc_body(b"x")),
                     ("decrypt", dec_body({"ciphertext": b64(b"x"), "initializationVector": b64(bytes(12)),
                                           "authenticationTag": b64(bytes(16))}))):
        assert_error(proxy.call(f"keys/no-such-key/{op}", body), 404, "KeyNotFoundException")


# ------------------------------------------------------------------------------- SigV4

def test_sigv4_is_required_and_checked(proxy, key):
    body = {"requestMetadata": md()}
    path = f"keys/{key}/metadata"
    assert proxy.call(path, body)[0] == 200
    other_secret = random_secret()
    refused = {
        "no signature": dict(sign=False),
        "wrong secret": dict(secret=other_secret),
        "wrong access key id": dict(access_key_id=random_access_key_id()),
        "wrong region": dict(region="eu-west-1"),
        "wrong service": dict(service="kms"),
        "service kms-xks": dict(service="kms-xks"),
        "the rotated secret with the first key id": dict(secret=ROTATED_SECRET),
    }
    for why, kw in refused.items():
        resp = proxy.call(path, body, **kw)
        assert resp[0] == 401 and resp[1]["errorName"] == "AuthenticationFailedException", (why, resp)
    # Health and the crypto APIs are covered as well.
    assert_error(proxy.call("health", {}, sign=False), 401, "AuthenticationFailedException")
    assert_error(proxy.call(f"keys/{key}/encrypt", enc_body(b"x"), secret=other_secret), 401,
                 "AuthenticationFailedException")
    # A second configured credential (rotation) works.
    assert proxy.call(path, body, access_key_id=ROTATED_AKID, secret=ROTATED_SECRET)[0] == 200


def _signed(proxy, api: str, data: bytes, when: datetime.datetime | None = None) -> dict:
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    req = AWSRequest(method="POST", url=f"{proxy.url}/{api}", data=data,
                     headers={"Content-Type": "application/json"})
    auth = SigV4Auth(Credentials(proxy.access_key_id, proxy.secret), proxy.service, proxy.region)
    if when is None:
        auth.add_auth(req)
    else:
        with mock.patch("botocore.auth.get_current_datetime", return_value=when):
            auth.add_auth(req)
    return dict(req.headers.items())


def test_sigv4_covers_body_headers_and_time(proxy, key):
    api = f"keys/{key}/encrypt"
    url = f"{proxy.url}/{api}"
    data = json.dumps(enc_body(b"original")).encode()

    def post(d, h):
        r = requests.post(url, data=d, headers=h, verify=proxy.ca_file, timeout=10)
        return r.status_code, r.json()

    headers = _signed(proxy, api, data)
    assert set(h.lower() for h in headers) >= {"authorization", "x-amz-date"}
    assert "SignedHeaders=" in headers["Authorization"] and "x-amz-date" in headers["Authorization"]
    assert post(data, headers)[0] == 200
    # The body is signed: another body with the same signature is refused.
    assert_error(post(json.dumps(enc_body(b"replaced")).encode(), headers), 401, "AuthenticationFailedException")
    # A signed header changed in flight.
    stamp = datetime.datetime.strptime(headers["X-Amz-Date"], "%Y%m%dT%H%M%SZ") + datetime.timedelta(seconds=1)
    assert_error(post(data, {**headers, "X-Amz-Date": stamp.strftime("%Y%m%dT%H%M%SZ")}),
                 401, "AuthenticationFailedException")
    # Signed to another path (e.g. another key), replayed here.
    elsewhere = _signed(proxy, "keys/someone-else/encrypt", data)
    assert_error(post(data, elsewhere), 401, "AuthenticationFailedException")
    # Older or newer than 5 minutes.
    now = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
    for skew in (datetime.timedelta(minutes=-10), datetime.timedelta(minutes=10)):
        assert_error(post(data, _signed(proxy, api, data, now + skew)), 401, "AuthenticationFailedException")
    assert post(data, _signed(proxy, api, data, now - datetime.timedelta(minutes=2)))[0] == 200


# ------------------------------------------------------------------------------- the customer's switches

def test_disable_and_enable(proxy, key):
    code, enc = proxy.call(f"keys/{key}/encrypt", enc_body(b"before disable"))
    assert code == 200
    assert proxy.disable(key) == {"externalKeyId": key, "keyStatus": "DISABLED"}
    code, m = proxy.call(f"keys/{key}/metadata", {"requestMetadata": md("DescribeKey")})
    assert code == 200 and m["keyStatus"] == "DISABLED", m
    assert_error(proxy.call(f"keys/{key}/encrypt", enc_body(b"x")), 400, "InvalidStateException")
    assert_error(proxy.call(f"keys/{key}/decrypt", dec_body(enc)), 400, "InvalidStateException")
    # Another key is not affected.
    other = proxy.create_key("still-on-" + secrets.token_hex(4))
    assert proxy.call(f"keys/{other}/encrypt", enc_body(b"x"))[0] == 200
    assert proxy.enable(key) == {"externalKeyId": key, "keyStatus": "ENABLED"}
    code, m = proxy.call(f"keys/{key}/metadata", {"requestMetadata": md("DescribeKey")})
    assert code == 200 and m["keyStatus"] == "ENABLED"
    code, dec = proxy.call(f"keys/{key}/decrypt", dec_body(enc))
    assert code == 200 and unb64(dec["plaintext"]) == b"before disable"


def test_key_deleted_from_token_is_key_not_found(proxy, key):
    code, enc = proxy.call(f"keys/{key}/encrypt", enc_body(b"soon unreadable"))
    assert code == 200
    proxy.delete_key(key)
    assert_error(proxy.call(f"keys/{key}/metadata", {"requestMetadata": md()}), 404, "KeyNotFoundException")
    assert_error(proxy.call(f"keys/{key}/encrypt", enc_body(b"x")), 404, "KeyNotFoundException")
    assert_error(proxy.call(f"keys/{key}/decrypt", dec_body(enc)), 404, "KeyNotFoundException")
    # The proxy itself is still healthy.
    assert proxy.call("health", {})[1]["ekmFleetDetails"][0]["healthStatus"] == "ACTIVE"


def test_plaintext_never_in_output(proxy, key):
    plaintext = b"PLAINTEXT-CANARY-" + secrets.token_hex(16).encode()
    req_md = md("GenerateDataKey")
    body = enc_body(plaintext)
    body["requestMetadata"] = req_md
    code, enc = proxy.call(f"keys/{key}/encrypt", body)
    assert code == 200
    code, dec = proxy.call(f"keys/{key}/decrypt", dec_body(enc))
    assert code == 200 and unb64(dec["plaintext"]) == plaintext
    # A failing decrypt with the canary as AAD (error paths log too).
    proxy.call(f"keys/{key}/decrypt", dec_body(enc, plaintext))
    out = proxy.output()
    assert req_md["kmsRequestId"] in out  # the spec's SHOULD: requests are logged by kmsRequestId
    for form in (plaintext.decode(), b64(plaintext), plaintext.hex(), b64(plaintext[:30])[:36]):
        assert form not in out, form


# ------------------------------------------------------------------------------- other configurations

def test_token_unreachable_then_back(tmp_path):
    token = Token(tmp_path / "token")
    with XksProxy(tmp_path / "proxy", token) as proxy:  # no prefix this time
        key = proxy.create_key("ck-outage")
        assert proxy.uri_path == "/kms/xks/v1"
        code, enc = proxy.call(f"keys/{key}/encrypt", enc_body(b"survives the outage"))
        assert code == 200
        off = Path(str(token.tokendir) + ".unplugged")
        os.rename(token.tokendir, off)  # the key manager is gone (as if unplugged)
        try:
            code, h = proxy.call("health", {"requestMetadata": {"kmsRequestId": "h", "kmsOperation": "KmsHealthCheck"}})
            assert code == 200 and h["ekmFleetDetails"][0]["healthStatus"] == "UNAVAILABLE", h
            assert_error(proxy.call(f"keys/{key}/encrypt", enc_body(b"x")), 500, "InternalException")
            assert_error(proxy.call(f"keys/{key}/decrypt", dec_body(enc)), 500, "InternalException")
            assert_error(proxy.call(f"keys/{key}/metadata", {"requestMetadata": md()}), 500, "InternalException")
        finally:
            os.rename(off, token.tokendir)
        code, h = proxy.call("health", {})
        assert code == 200 and h["ekmFleetDetails"][0]["healthStatus"] == "ACTIVE", h
        code, dec = proxy.call(f"keys/{key}/decrypt", dec_body(enc))
        assert code == 200 and unb64(dec["plaintext"]) == b"survives the outage"


def test_plain_http_and_no_ciphertext_metadata(tmp_path):
    token = Token(tmp_path / "token")
    with XksProxy(tmp_path / "proxy", token, tls=False, ciphertext_metadata=False, region="eu-west-1") as proxy:
        assert proxy.endpoint.startswith("http://127.0.0.1:") and proxy.ca_file is None
        key = proxy.create_key("ck-plain")
        code, enc = proxy.call(f"keys/{key}/encrypt", enc_body(b"abc", b"aad"))
        assert code == 200 and "ciphertextMetadata" not in enc, enc
        code, dec = proxy.call(f"keys/{key}/decrypt", dec_body(enc, b"aad"))
        assert code == 200 and unb64(dec["plaintext"]) == b"abc"
        assert_error(proxy.call(f"keys/{key}/metadata", {"requestMetadata": md()}, region="us-east-1"),
                     401, "AuthenticationFailedException")


def test_script_refuses_a_wrong_pin(tmp_path):
    token = Token(tmp_path / "token")
    pin_file = tmp_path / "pin"
    pin_file.write_text("0000-wrong\n")
    secret_file = tmp_path / "secret"
    secret_file.write_text(random_secret())
    r = subprocess.run(
        [sys.executable, str(XksProxy.SCRIPT), "--module", token.module, "--token-label", token.label,
         "--pin-file", str(pin_file), "--access-key-id", random_access_key_id(), "--secret-file", str(secret_file),
         "--region", "us-east-1"],
        env=dict(os.environ, **token.env), capture_output=True, text=True, timeout=30)
    assert r.returncode != 0
    assert "LISTENING" not in r.stdout
    assert "cannot" in r.stderr


def test_canned_answers(proxy, key):
    """A test's canned answer replaces one operation's answer on one key, after SigV4, until
    cleared; the spec errors come at their status in the spec's body."""
    code, enc = proxy.call(f"keys/{key}/encrypt", enc_body(b"x"))
    assert code == 200
    proxy.answer_error(key, "decrypt", "ThrottlingException", "slow down")
    assert proxy.call(f"keys/{key}/decrypt", dec_body(enc)) == (
        429, {"errorName": "ThrottlingException", "errorMessage": "slow down"})
    # Only that operation of that key; and never before authentication.
    assert proxy.call(f"keys/{key}/encrypt", enc_body(b"x"))[0] == 200
    other = proxy.create_key("not-canned-" + secrets.token_hex(4))
    assert proxy.call(f"keys/{other}/decrypt", dec_body(proxy.call(f"keys/{other}/encrypt", enc_body(b"y"))[1]))[0] == 200
    assert_error(proxy.call(f"keys/{key}/decrypt", dec_body(enc), secret="wrong-" + proxy.secret), 401,
                 "AuthenticationFailedException")

    proxy.answer(key, "metadata", 502, "<html>bad gateway</html>", headers={"Content-Type": "text/html"})
    assert proxy.call(f"keys/{key}/metadata", {"requestMetadata": md("DescribeKey")}) == (502, None)
    proxy.real_answers(key, "metadata")
    proxy.real_answers(key, "decrypt")
    assert proxy.call(f"keys/{key}/metadata", {"requestMetadata": md("DescribeKey")})[0] == 200
    code, dec = proxy.call(f"keys/{key}/decrypt", dec_body(enc))
    assert code == 200 and unb64(dec["plaintext"]) == b"x"
