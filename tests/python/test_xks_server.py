"""kcm as an AWS KMS External Key Store: the XKS proxy API door (`[xks_server]`), end to end.

AWS KMS keeps the keys of an external key store in kcm: it calls kcm's XKS door, the public
"External Key Store Proxy API" v1 (aws/aws-kms-xksproxy-api-spec, xks_proxy_api_spec.md), at
`<uri_path_prefix>/kms/xks/v1/keys/<externalKeyId>/metadata|encrypt|decrypt` and `.../health`,
HTTPS only on a listener of its own, SigV4-signed (service `kms-xks-proxy`, kcm's region) with an
access key of kind `xks` scoped to one kcm system. externalKeyId is a kcm key id or an alias
name without `alias/`.

The client here is independent of kcm: requests signed with botocore's SigV4Auth and sent with
`requests` (so tests can also send broken ones), answers checked against the spec, the
ciphertextDataIntegrityValue recomputed. The last test puts kcm on both sides: kcm's own `xks`
keystore (server B) holds a root key in kcm server A through A's XKS door, and A's kill switch
cuts B off within B's external check interval.

One server A for the module (with a private CA's certificate, as AWS KMS requires a trusted
one); tests that change state (disable a key, a root key, a credential) use their own.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import os
import re
import secrets
import socket
import ssl
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional
from unittest import mock

import pytest
import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

import xks_proxy
from kcmtest import kcm_cli as kcm
from kcmtest import kcm_cli_json as kcm_json
from kcmtest import (KCM_BIN, LOADED_SLACK_S, REGION, Server, ServerStartError, cli_ok, free_port, kms_error,
                     poll, read_http_answer, refused_within, start_or_fail, system_with_key, unique,
                     works_again_within)

pytestmark = pytest.mark.timeout(120)

PREFIX = "/tenant-a"
API = "/kms/xks/v1"
SERVICE = "kms-xks-proxy"
# Server A's revocation bound: how long a change (a disabled key, root key or credential)
# may take to reach a request. Server B's external check interval: how long B trusts a
# system key it unwrapped through A.
BOUND_MS = 500
# Server A's header read timeout, short so that a test can watch the XKS listener use it.
HEADER_TIMEOUT_MS = 2000
CHECK_MS = 500
PRINCIPAL_ARN = "arn:aws:iam::123456789012:user/Alice"
KEY_ARN = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
ACCESS_KEY_ID_RE = re.compile(r"^[A-Z2-7]{20,30}$")
SECRET_RE = re.compile(r"^[A-Za-z0-9+/=]{43,64}$")
ENABLED_AES = {"keySpec": "AES_256", "keyUsage": ["ENCRYPT", "DECRYPT"], "keyStatus": "ENABLED"}


# ----------------------------------------------------------------------------- small helpers

def b64(b: bytes) -> str:
    return base64.b64encode(b).decode()


def unb64(s: str) -> bytes:
    return base64.b64decode(s, validate=True)


def flip(s: str, i: int = 0) -> str:
    """Base64 `s` with one bit of its byte `i` flipped."""
    raw = bytearray(unb64(s))
    raw[i] ^= 0x01
    return b64(bytes(raw))


def md(op: str = "Encrypt", key_arn: bool = True, request_id: Optional[str] = None) -> dict:
    """requestMetadata as AWS KMS sends it."""
    m = {"awsPrincipalArn": PRINCIPAL_ARN, "kmsOperation": op,
         "kmsRequestId": request_id or f"req-{secrets.token_hex(8)}", "kmsViaService": "ebs"}
    if key_arn:
        m["kmsKeyArn"] = KEY_ARN
    return m


def meta_body(op: str = "DescribeKey", request_id: Optional[str] = None) -> dict:
    return {"requestMetadata": md(op, key_arn=False, request_id=request_id)}


def health_body(request_id: Optional[str] = None) -> dict:
    return {"requestMetadata": {"kmsRequestId": request_id or f"h-{secrets.token_hex(6)}",
                                "kmsOperation": "KmsHealthCheck"}}


def enc_body(plaintext: bytes, aad: Optional[bytes] = None, cdiv: bool = False,
             request_id: Optional[str] = None) -> dict:
    body = {"requestMetadata": md("Encrypt", request_id=request_id), "plaintext": b64(plaintext),
            "encryptionAlgorithm": "AES_GCM"}
    if aad is not None:
        body["additionalAuthenticatedData"] = b64(aad)
    if cdiv:
        body["ciphertextDataIntegrityValueAlgorithm"] = "SHA_256"
    return body


def dec_body(enc: dict, aad: Optional[bytes] = None, request_id: Optional[str] = None, **override) -> dict:
    """A decrypt request for encrypt's answer `enc`; an override of None drops that field."""
    return {"requestMetadata": md("Decrypt", request_id=request_id),
            **xks_proxy.decrypt_fields(enc, aad, **override)}


def without(d: dict, *fields: str) -> dict:
    return {k: v for k, v in d.items() if k not in fields}


def cdiv_of(aad: Optional[bytes], enc: dict) -> bytes:
    """The spec's Appendix C: SHA-256(aad || ciphertextMetadata || iv || ciphertext || tag)."""
    parts = [aad or b""] + [unb64(enc[f]) for f in ("ciphertextMetadata", "initializationVector",
                                                       "ciphertext", "authenticationTag")]
    return hashlib.sha256(b"".join(parts)).digest()




# ----------------------------------------------------------------------------- the XKS client

@dataclass
class Cred:
    access_key_id: str
    secret: str


@dataclass
class Answer:
    status: int
    body: Any  # parsed JSON, or None
    headers: Any

    def __repr__(self) -> str:
        return f"Answer({self.status}, {self.body!r})"


def xks_error_problem(ans: Answer, status: int, name: str) -> Optional[str]:
    """What keeps `ans` from being the spec's error `name` at exactly `status`, with a body
    {"errorName": name, "errorMessage": printable ASCII under 512 characters}; None if nothing."""
    if not isinstance(ans.body, dict) or (ans.status, ans.body.get("errorName")) != (status, name):
        return f"want {status} {name}, got {ans}"
    msg = ans.body.get("errorMessage")
    if not (isinstance(msg, str) and len(msg) < 512 and all(" " <= c <= "~" for c in msg)):
        return f"errorMessage is not printable ASCII under 512 characters: {ans}"
    return None


def assert_xks_error(ans: Answer, status: int, name: str, why: str = "") -> None:
    problem = xks_error_problem(ans, status, name)
    assert problem is None, f"{why}: {problem}"


def assert_each_refused(answers: dict[str, Answer], status: int, name: str) -> None:
    """Every answer (named by its case) is error `name` at `status`; a failure lists every
    case that was not, not only the first."""
    problems = [f"{why}: {p}" for why, ans in answers.items() if (p := xks_error_problem(ans, status, name))]
    assert not problems, f"{len(problems)} of {len(answers)} cases:\n" + "\n".join(problems)


def assert_ok(ans: Answer, why: str = "") -> Any:
    assert ans.status == 200, f"{why}: {ans}"
    return ans.body


def sigv4(method: str, url: str, data: bytes, cred: Cred, region: str = REGION, service: str = SERVICE,
          when: Optional[dt.datetime] = None, headers: Optional[dict] = None) -> dict:
    """Headers of a request signed by botocore's SigV4Auth (`when`: the signing time, UTC)."""
    req = AWSRequest(method=method, url=url, data=data,
                     headers={"Content-Type": "application/json", **(headers or {})})
    auth = SigV4Auth(Credentials(cred.access_key_id, cred.secret), service, region)
    if when is None:
        auth.add_auth(req)
    else:
        naive = when.astimezone(dt.timezone.utc).replace(tzinfo=None)
        with mock.patch("botocore.auth.get_current_datetime", return_value=naive):
            auth.add_auth(req)
    return dict(req.headers.items())


class XksDoor:
    """Server A's XKS door: https://127.0.0.1:<port><prefix>/kms/xks/v1, trusting A's CA."""

    def __init__(self, port: int, ca_file: str, prefix: str = PREFIX):
        self.port, self.ca_file, self.prefix = port, ca_file, prefix
        self.origin = f"https://127.0.0.1:{port}"
        self.api = self.origin + prefix + API

    def send(self, url: str, data: bytes, headers: dict, method: str = "POST") -> Answer:
        """One raw request (already signed, or deliberately not), on a fresh connection."""
        r = requests.request(method, url, data=data, headers=headers, verify=self.ca_file, timeout=15)
        try:
            body = r.json()
        except ValueError:
            body = None
        return Answer(r.status_code, body, r.headers)

    def call(self, api_path: str, body: Any, cred: Optional[Cred], *, method: str = "POST",
             url: Optional[str] = None, **sign_kw) -> Answer:
        """`api_path` ("health", "keys/<id>/encrypt") below the API root (or the whole `url`),
        signed with `cred` (None: unsigned). A bytes body is sent as it is."""
        url = url or f"{self.api}/{api_path}"
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        if cred is None:
            headers = {"Content-Type": "application/json"}
        else:
            headers = sigv4(method, url, data, cred, **sign_kw)
        return self.send(url, data, headers, method)

    def head_only(self, api_path: str, cred: Cred, length: int) -> Answer:
        """A signed request head announcing a `length`-byte body, none of which is sent:
        a server that refuses a body from its Content-Length answers before reading it
        (sending the body anyway would race the server's close of the connection)."""
        url = f"{self.api}/{api_path}"
        headers = sigv4("POST", url, b"{}", cred)
        headers["Content-Length"] = str(length)
        path = url[len(self.origin):]
        head = f"POST {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        ctx = ssl.create_default_context(cafile=self.ca_file)
        ctx.check_hostname = False
        with socket.create_connection(("127.0.0.1", self.port), timeout=15) as raw:
            with ctx.wrap_socket(raw) as tls:
                tls.sendall((head + "\r\n").encode())
                status, answer_headers, body = read_http_answer(tls)
        return Answer(status, json.loads(body) if body else None, answer_headers)

    # The spec's four APIs.
    def metadata(self, key: str, cred: Cred, body: Optional[dict] = None) -> Answer:
        return self.call(f"keys/{key}/metadata", meta_body() if body is None else body, cred)

    def encrypt(self, key: str, cred: Cred, body: dict) -> Answer:
        return self.call(f"keys/{key}/encrypt", body, cred)

    def decrypt(self, key: str, cred: Cred, body: dict) -> Answer:
        return self.call(f"keys/{key}/decrypt", body, cred)

    def health(self, cred: Cred, body: Optional[dict] = None) -> Answer:
        return self.call("health", health_body() if body is None else body, cred)

    def round_trip(self, key: str, cred: Cred, plaintext: bytes, aad: Optional[bytes] = None) -> dict:
        enc = assert_ok(self.encrypt(key, cred, enc_body(plaintext, aad)), "encrypt")
        dec = assert_ok(self.decrypt(key, cred, dec_body(enc, aad)), "decrypt")
        assert unb64(dec["plaintext"]) == plaintext
        return enc


def xks_refused_within(call: Callable[[], Answer], seconds: float, status: int, name: str,
                       interval: float = 0.05) -> float:
    """Call until the door refuses; fails unless that happens within `seconds`, with exactly
    `status` and `name`. Returns how long it took."""
    start = time.monotonic()
    for _ in range(int(seconds / interval) + 2):
        ans = call()
        if ans.status != 200:
            assert_xks_error(ans, status, name, "the refusal")
            return time.monotonic() - start
        assert time.monotonic() - start < seconds, f"still served {seconds} s after the change"
        time.sleep(interval)
    raise AssertionError(f"still served after {seconds} s")


def xks_served_within(call: Callable[[], Answer], seconds: float, what: str, interval: float = 0.05) -> Any:
    """Call until the door answers 200; fails with `what` if it still refuses `seconds` later."""
    deadline = time.monotonic() + seconds
    for _ in range(int(seconds / interval) + 2):
        ans = call()
        if ans.status == 200:
            return ans.body
        assert time.monotonic() < deadline, f"{what}: {ans}"
        time.sleep(interval)
    raise AssertionError(what)


# ----------------------------------------------------------------------------- server A

def xks_server_config(path: Path, port: int, prefix: Optional[str] = PREFIX) -> str:
    text = f'[xks_server]\nlisten = "127.0.0.1:{port}"\n'
    if prefix is not None:
        text += f'uri_path_prefix = "{prefix}"\n'
    path.write_text(text)
    return str(path)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """A private CA and a server certificate it issued for localhost and 127.0.0.1: (ca, cert, key)."""
    ca, cert, key = xks_proxy.test_certificates(tmp_path_factory.mktemp("xks-pki"))
    return str(ca), str(cert), str(key)


@pytest.fixture(scope="module")
def a(tmp_path_factory, pki):
    """Server A: HTTPS with the private CA's certificate, the XKS door on a listener of its
    own below PREFIX, debug logging (for the log checks)."""
    ca, cert, key = pki
    root = tmp_path_factory.mktemp("xks-a")
    port = free_port()
    srv = Server(root / "data", root / "logs", name="xks-a", env={
        "KCM_CONFIG": xks_server_config(root / "kcm.toml", port),
        "KCM_TLS_CERT": cert, "KCM_TLS_KEY": key,
        "KCM_REVOCATION_BOUND_MS": str(BOUND_MS),
        "KCM_HEADER_READ_TIMEOUT_MS": str(HEADER_TIMEOUT_MS),
        "KCM_LOG": "debug",
        "KCM_METRICS": "public",
    })
    srv.trusted_ca = ca
    start_or_fail(srv)
    srv.xks_port = port
    door = XksDoor(port, ca)
    # The door answers once its listener is up (what it answers is for the tests).
    poll(lambda: _answers(door), 15, what=f"the XKS door on {door.api}")
    yield srv
    srv.stop()


def _answers(door: XksDoor) -> bool:
    try:
        return door.call("health", health_body(), None).status > 0
    except requests.RequestException:
        return False


@pytest.fixture(scope="module")
def door(a, pki):
    return XksDoor(a.xks_port, pki[0])


def xks_credential(srv: Server, system: str) -> Cred:
    """A new access key of kind xks for `system`, by the REST API."""
    body = srv.v1_ok("POST", "/v1/access-keys", expect=(201,),
                     json_body={"kind": "xks", "role": "key-user", "system": system})
    ak = body.get("access_key", body)
    assert (ak["kind"], ak["system"], ak["role"]) == ("xks", system, "key-user"), ak
    return Cred(ak["access_key_id"], ak["secret_access_key"])


@dataclass
class Estate:
    system: dict          # the XKS credential's system (below the tenant's default root key)
    kms: Any              # a tenant-admin boto3 client scoped to it
    cred: Cred            # the xks credential of that system
    key: str              # an AES-256 (SYMMETRIC_DEFAULT) key in it
    alias: str            # an alias of `key`, without "alias/": its other externalKeyId
    other_key: str        # another symmetric key of the same system


@pytest.fixture(scope="module")
def estate(a) -> Estate:
    system, kms, key = system_with_key(a, a.default_root_id(), "xks")
    alias = unique("xks")
    kms.create_alias(AliasName=f"alias/{alias}", TargetKeyId=key)
    other = kms.create_key(Description="another key")["KeyMetadata"]["KeyId"]
    return Estate(system, kms, xks_credential(a, system["name"]), key, alias, other)


# ----------------------------------------------------------------------------- configuration

def test_the_door_needs_tls_and_a_listener_of_its_own(spawn_server, pki, tmp_path):
    # Without the server's [tls] cert and key: kcm does not start, and says why.
    conf = xks_server_config(tmp_path / "plain.toml", free_port())
    plain = spawn_server(env={"KCM_CONFIG": conf}, start=False)
    with pytest.raises(ServerStartError) as e:
        plain.start(timeout=15)
    said = str(e.value) + plain.log_tail()
    assert "xks_server" in said and "tls" in said.lower(), said[-3000:]
    assert not plain.running

    # The door on the main listener's own address: refused too.
    _, cert, key = pki
    port = free_port()
    same = spawn_server(env={"KCM_CONFIG": xks_server_config(tmp_path / "same.toml", port),
                             "KCM_TLS_CERT": cert, "KCM_TLS_KEY": key}, start=False)
    same.trusted_ca = pki[0]
    with pytest.raises(ServerStartError):
        same.start(timeout=15, port=port)
    assert not same.running


def test_without_a_prefix_the_api_is_at_kms_xks_v1(spawn_server, pki, tmp_path):
    ca, cert, key = pki
    port = free_port()
    srv = spawn_server(env={"KCM_CONFIG": xks_server_config(tmp_path / "noprefix.toml", port, prefix=None),
                            "KCM_TLS_CERT": cert, "KCM_TLS_KEY": key}, start=False)
    srv.trusted_ca = ca
    start_or_fail(srv)
    bare = XksDoor(port, ca, prefix="")
    assert bare.api == f"https://127.0.0.1:{port}{API}"
    poll(lambda: _answers(bare), 15, what=f"the XKS door on {bare.api}")
    system, _, key_id = system_with_key(srv, srv.default_root_id(), "bare")
    cred = xks_credential(srv, system["name"])
    assert_ok(bare.health(cred))
    assert bare.metadata(key_id, cred).body == ENABLED_AES
    assert_xks_error(bare.call("", meta_body(), cred, url=f"{bare.origin}{PREFIX}{API}/keys/{key_id}/metadata"),
                     404, "InvalidUriPathException", "a prefix that is not configured")


def test_xks_access_keys_by_cli_and_rest(a, door, estate):
    name = estate.system["name"]
    made = kcm_json(a, "access-key", "create", "--kind", "xks", "--system", name)
    assert ACCESS_KEY_ID_RE.fullmatch(made["access_key_id"]), made["access_key_id"]
    assert SECRET_RE.fullmatch(made["secret_access_key"]), "the secret is not 43-64 Base64 characters"
    assert (made["kind"], made["system"], made["role"]) == ("xks", name, "key-user"), made
    assert made["access_key_id"] != estate.cred.access_key_id
    # It signs the door at once.
    cred = Cred(made["access_key_id"], made["secret_access_key"])
    assert door.metadata(estate.key, cred).body == ENABLED_AES

    # An xks key may call the XKS operations only: --operations is refused.
    refused = kcm(a, "access-key", "create", "--kind", "xks", "--system", name, "--operations", "Encrypt")
    assert refused.returncode != 0, refused.stdout

    # The REST form (the estate's credential was made so too).
    assert ACCESS_KEY_ID_RE.fullmatch(estate.cred.access_key_id)
    assert SECRET_RE.fullmatch(estate.cred.secret)


def test_the_cli_writes_the_aws_console_configuration_file(a, door, estate, tmp_path):
    """`--xks-config F` writes the specification's proxy configuration file (the JSON the
    AWS KMS console takes), 0600, and never replaces a file."""
    path = tmp_path / "xks-proxy-config.json"
    made = kcm_json(a, "access-key", "create", "--kind", "xks", "--system", estate.system["name"],
                    "--xks-config", path, "--xks-uri-path", PREFIX + API)
    assert path.stat().st_mode & 0o777 == 0o600
    config = json.loads(path.read_text())
    assert config == {"XksProxyUriPath": PREFIX + API,
                      "XksProxyAuthenticationCredential": {"AccessKeyId": made["access_key_id"],
                                                           "RawSecretAccessKey": made["secret_access_key"]}}
    cred = Cred(config["XksProxyAuthenticationCredential"]["AccessKeyId"],
                config["XksProxyAuthenticationCredential"]["RawSecretAccessKey"])
    assert door.metadata(estate.key, cred).body == ENABLED_AES, "the file's credential signs the door"
    before = {k["access_key_id"] for k in a.v1_ok("GET", "/v1/access-keys")["access_keys"]}
    again = kcm(a, "access-key", "create", "--kind", "xks", "--system", estate.system["name"],
                "--xks-config", path)
    assert again.returncode != 0 and b"never replaced" in again.stderr, again
    assert json.loads(path.read_text()) == config
    after = {k["access_key_id"] for k in a.v1_ok("GET", "/v1/access-keys")["access_keys"]}
    assert after == before, "a refused --xks-config still made a key whose secret nobody has"


# ----------------------------------------------------------------------------- the four APIs

def test_health(door, estate):
    h = assert_ok(door.health(estate.cred))
    version = cli_ok(subprocess.run([str(KCM_BIN), "--version"], capture_output=True, text=True,
                                    timeout=30)).stdout.strip()
    assert version.startswith("kcm "), version
    assert (h["xksProxyFleetSize"], h["xksProxyVendor"], h["xksProxyModel"], h["ekmVendor"]) == \
        (1, "kcm", version, "kcm"), h
    fleet = h["ekmFleetDetails"]
    assert isinstance(fleet, list) and 1 <= len(fleet) <= 10, h
    for ekm in fleet:
        assert set(ekm) == {"id", "model", "healthStatus"}, ekm
        assert isinstance(ekm["id"], str) and ekm["id"] and isinstance(ekm["model"], str) and ekm["model"]
        assert ekm["healthStatus"] == "ACTIVE", ekm


def test_calls_are_counted_in_metrics_by_the_door(a, door, estate):
    door.round_trip(estate.key, estate.cred, b"counted")
    assert_xks_error(door.decrypt(estate.key, estate.cred, dec_body(door.round_trip(estate.key, estate.cred, b"x"),
                                                                     aad=b"wrong")),
                     400, "InvalidCiphertextException")
    metrics = requests.get(a.url + "/metrics", verify=a.trusted_ca, timeout=10).text
    for line in ('kcm_requests_total{door="xks",operation="XksEncrypt",status="200"}',
                 'kcm_requests_total{door="xks",operation="XksDecrypt",status="400"}'):
        assert line in metrics, line


def test_metadata_by_key_id_and_alias(door, estate):
    for ext_id in (estate.key, estate.alias):
        assert door.metadata(ext_id, estate.cred).body == ENABLED_AES, ext_id
    # Without kmsKeyArn (as CreateKey sends it), and with a kmsOperation kcm does not know
    # (the spec: the proxy MUST NOT reject it).
    assert door.metadata(estate.key, estate.cred, meta_body("CreateKey")).body == ENABLED_AES
    assert door.metadata(estate.key, estate.cred, meta_body("SomeFutureOperation")).body == ENABLED_AES


@pytest.mark.parametrize("aad", [None, b"project=nile,department=marketing"], ids=["no-aad", "aad"])
def test_encrypt_and_decrypt_as_the_spec_says(door, estate, aad):
    plaintext = secrets.token_bytes(40)
    enc = assert_ok(door.encrypt(estate.key, estate.cred, enc_body(plaintext, aad)))
    assert set(enc) == {"ciphertext", "initializationVector", "authenticationTag", "ciphertextMetadata"}, enc
    ct, iv, tag, meta = (unb64(enc[f]) for f in ("ciphertext", "initializationVector", "authenticationTag",
                                                  "ciphertextMetadata"))
    assert len(ct) == len(plaintext) and ct != plaintext
    assert (len(iv), len(tag)) == (12, 16)
    assert 1 <= len(meta) <= 20, meta
    dec = assert_ok(door.decrypt(estate.key, estate.cred, dec_body(enc, aad)))
    assert dec == {"plaintext": b64(plaintext)}

    # A fresh IV each time.
    again = assert_ok(door.encrypt(estate.key, estate.cred, enc_body(plaintext, aad)))
    assert again["initializationVector"] != enc["initializationVector"] and again["ciphertext"] != enc["ciphertext"]

    # The integrity value, asked for: checked here from the answer's own fields.
    with_cdiv = assert_ok(door.encrypt(estate.key, estate.cred, enc_body(plaintext, aad, cdiv=True)))
    assert set(with_cdiv) == set(enc) | {"ciphertextDataIntegrityValue"}, with_cdiv
    assert unb64(with_cdiv["ciphertextDataIntegrityValue"]) == cdiv_of(aad, with_cdiv)
    assert unb64(assert_ok(door.decrypt(estate.key, estate.cred, dec_body(with_cdiv, aad)))["plaintext"]) == plaintext

    # The alias names the same key: encrypted through one name, decrypted through the other.
    by_alias = assert_ok(door.encrypt(estate.alias, estate.cred, enc_body(plaintext, aad)))
    assert unb64(assert_ok(door.decrypt(estate.key, estate.cred, dec_body(by_alias, aad)))["plaintext"]) == plaintext
    assert unb64(assert_ok(door.decrypt(estate.alias, estate.cred, dec_body(enc, aad)))["plaintext"]) == plaintext

    # An unknown kmsOperation is accepted on the crypto APIs too.
    body = enc_body(plaintext, aad)
    body["requestMetadata"]["kmsOperation"] = "SomeFutureOperation"
    assert_ok(door.encrypt(estate.key, estate.cred, body))


def test_the_specs_sizes_and_kcms_limits(door, estate):
    """The spec's minimums (4300 bytes of plaintext, 8192 of AAD) are served; beyond kcm's
    limits, and for a body over 64 KiB, 501 UnsupportedOperationException."""
    key, cred = estate.key, estate.cred
    plaintext, aad = secrets.token_bytes(4300), secrets.token_bytes(8192)
    enc = door.round_trip(key, cred, plaintext, aad)

    too_big = "UnsupportedOperationException"
    assert_xks_error(door.encrypt(key, cred, enc_body(plaintext + b"x", aad)), 501, too_big, "4301-byte plaintext")
    assert_xks_error(door.encrypt(key, cred, enc_body(b"x", aad + b"x")), 501, too_big, "8193-byte AAD")
    long_ct = dec_body(enc, aad, ciphertext=b64(unb64(enc["ciphertext"]) + b"x"))
    assert_xks_error(door.decrypt(key, cred, long_ct), 501, too_big, "4301-byte ciphertext")
    assert_xks_error(door.decrypt(key, cred, dec_body(enc, aad + b"x")), 501, too_big, "8193-byte AAD on decrypt")
    # A body over 64 KiB is refused from its Content-Length, before it is read.
    assert_xks_error(door.head_only(f"keys/{key}/encrypt", cred, 64 * 1024 + 1), 501, too_big,
                     "a body over 64 KiB")


def test_tampering_is_invalid_ciphertext(door, estate):
    key, cred, aad = estate.key, estate.cred, b"context"
    enc = door.round_trip(key, cred, b"attack at dawn", aad)
    bad = {
        "wrong aad": dec_body(enc, b"contexT"),
        "aad dropped": dec_body(enc, None),
        "aad added to": dec_body(enc, aad + b"x"),
        "ciphertext flipped": dec_body(enc, aad, ciphertext=flip(enc["ciphertext"], 3)),
        "tag flipped": dec_body(enc, aad, authenticationTag=flip(enc["authenticationTag"], 15)),
        "iv flipped": dec_body(enc, aad, initializationVector=flip(enc["initializationVector"])),
        "metadata changed": dec_body(enc, aad, ciphertextMetadata=flip(enc["ciphertextMetadata"])),
        "metadata dropped": dec_body(enc, aad, ciphertextMetadata=None),
        "16-byte iv": dec_body(enc, aad, initializationVector=b64(unb64(enc["initializationVector"]) + bytes(4))),
    }
    answers = {why: door.decrypt(key, cred, body) for why, body in bad.items()}
    # Another key of the same system cannot open it.
    answers["another key's ciphertext"] = door.decrypt(estate.other_key, cred, dec_body(enc, aad))
    assert_each_refused(answers, 400, "InvalidCiphertextException")
    # None of that hurt: the untouched request still decrypts.
    assert unb64(assert_ok(door.decrypt(key, cred, dec_body(enc, aad)))["plaintext"]) == b"attack at dawn"


def test_invalid_input_is_validation_exception(door, estate):
    key, cred = estate.key, estate.cred
    good = enc_body(b"data")
    enc = assert_ok(door.encrypt(key, cred, good))
    good_dec = dec_body(enc)

    def md_without(f):
        return without(md(), f)

    encrypt_cases = {
        "no requestMetadata": without(good, "requestMetadata"),
        "no plaintext": without(good, "plaintext"),
        "empty plaintext": {**good, "plaintext": ""},
        "plaintext not Base64": {**good, "plaintext": "***"},
        "aad not Base64": {**good, "additionalAuthenticatedData": "not base64!"},
        "algorithm AES_CBC": {**good, "encryptionAlgorithm": "AES_CBC"},
        "no algorithm": without(good, "encryptionAlgorithm"),
        "integrity algorithm SHA_512": {**good, "ciphertextDataIntegrityValueAlgorithm": "SHA_512"},
        **{f"no {f}": {**good, "requestMetadata": md_without(f)}
           for f in ("awsPrincipalArn", "kmsOperation", "kmsRequestId", "kmsKeyArn")},
    }
    answers = {f"encrypt, {why}": door.encrypt(key, cred, body) for why, body in encrypt_cases.items()}
    answers["encrypt, not JSON"] = door.encrypt(key, cred, b"not json")

    decrypt_cases = {
        "no requestMetadata": without(good_dec, "requestMetadata"),
        "no ciphertext": without(good_dec, "ciphertext"),
        "no iv": without(good_dec, "initializationVector"),
        "no tag": without(good_dec, "authenticationTag"),
        "ciphertext not Base64": {**good_dec, "ciphertext": "%%%"},
        "iv of 8 bytes": {**good_dec, "initializationVector": b64(bytes(8))},
        "tag of 12 bytes": {**good_dec, "authenticationTag": b64(bytes(12))},
        "metadata of 21 bytes": {**good_dec, "ciphertextMetadata": b64(bytes(21))},
        "algorithm AES_CBC": {**good_dec, "encryptionAlgorithm": "AES_CBC"},
        **{f"no {f}": {**good_dec, "requestMetadata": md_without(f)}
           for f in ("awsPrincipalArn", "kmsOperation", "kmsRequestId", "kmsKeyArn")},
    }
    answers.update({f"decrypt, {why}": door.decrypt(key, cred, body) for why, body in decrypt_cases.items()})
    answers["decrypt, not JSON"] = door.decrypt(key, cred, b"{")

    metadata_cases = {
        "no requestMetadata": {},
        **{f"no {f}": {"requestMetadata": without(md(key_arn=False), f)}
           for f in ("awsPrincipalArn", "kmsOperation", "kmsRequestId")},
    }
    answers.update({f"metadata, {why}": door.metadata(key, cred, body) for why, body in metadata_cases.items()})
    # externalKeyId: only [A-Za-z0-9._-], at most 128 characters.
    for bad_id in ("bad~id", "k" * 129):
        for op, body in (("metadata", meta_body()), ("encrypt", good)):
            answers[f"{op} of externalKeyId {bad_id[:20]}"] = door.call(f"keys/{bad_id}/{op}", body, cred)
    assert_each_refused(answers, 400, "ValidationException")
    # Nothing of the above changed the key.
    assert door.metadata(key, cred).body == ENABLED_AES


def test_the_listener_closes_a_head_that_never_ends(door):
    """The XKS listener is bounded like every listener of kcm: a client that opens a TLS
    connection and sends half a request head is cut off at the header read timeout, and
    so is one that never finishes the TLS handshake."""
    ctx = ssl.create_default_context(cafile=door.ca_file)
    ctx.check_hostname = False
    limit = HEADER_TIMEOUT_MS / 1000 + 2 + LOADED_SLACK_S
    with socket.create_connection(("127.0.0.1", door.port), timeout=limit + 5) as raw:
        with ctx.wrap_socket(raw) as tls:
            tls.sendall(b"POST " + PREFIX.encode() + b"/kms/xks/v1/health HTTP/1.1\r\nHost: x\r\n")
            start = time.monotonic()
            try:
                rest = tls.recv(4096)
            except (ConnectionResetError, ssl.SSLError):
                rest = b""
            took = time.monotonic() - start
    assert not rest or rest.startswith(b"HTTP/1.1 408"), rest
    assert took <= limit, f"half a head held the connection for {took:.1f} s"
    with socket.create_connection(("127.0.0.1", door.port), timeout=limit + 5) as raw:
        raw.sendall(b"\x16\x03\x01")  # the start of a TLS record, and nothing more
        start = time.monotonic()
        try:
            closed = raw.recv(4096) == b""
        except ConnectionResetError:
            closed = True
        took = time.monotonic() - start
    assert closed and took <= limit, f"a handshake never finished held the connection {took:.1f} s"


def test_uris_and_methods(door, estate):
    key, cred = estate.key, estate.cred
    body = meta_body()
    wrong = [
        f"{door.api}/keys/{key}/sign",                                  # no such operation
        f"{door.api}/keys/{key}",                                       # no operation
        f"{door.api}/keys/{key}/encrypt/extra",                         # more after it
        f"{door.api}/keys",                                             # no key
        f"{door.origin}{PREFIX}/kms/xks/v2/health",                     # another version
        f"{door.origin}{API}/health",                                   # without the prefix
        f"{door.origin}/other{PREFIX}{API}/health",                     # below another path
        f"{door.origin}/",
    ]
    assert_each_refused({url: door.call("", body, cred, url=url) for url in wrong}, 404, "InvalidUriPathException")
    # GET (signed, so that only the method is wrong) on each API URI: 405, Allow: POST.
    for api in ("health", f"keys/{key}/metadata", f"keys/{key}/encrypt", f"keys/{key}/decrypt"):
        ans = door.call(api, b"", cred, method="GET")
        assert ans.status == 405, (api, ans)
        assert ans.headers.get("Allow") == "POST", (api, dict(ans.headers))


def date_moved(headers: dict) -> dict:
    """Signed `headers` with X-Amz-Date one second later than signed."""
    stamp = dt.datetime.strptime(headers["X-Amz-Date"], "%Y%m%dT%H%M%SZ") + dt.timedelta(seconds=1)
    return {**headers, "X-Amz-Date": stamp.strftime("%Y%m%dT%H%M%SZ")}


def test_sigv4_is_required_and_checked(a, door, estate):
    key, cred = estate.key, estate.cred
    path = f"keys/{key}/metadata"
    url = f"{door.api}/{path}"
    body = meta_body()
    data = json.dumps(body).encode()
    assert door.call(path, body, cred).body == ENABLED_AES

    now = dt.datetime.now(dt.timezone.utc)
    kcm_key = Cred(*a.creds("default"))  # an ordinary kcm access key (tenant-admin)
    refused: dict[str, Callable[[], Answer]] = {
        "unsigned": lambda: door.call(path, body, None),
        "wrong secret": lambda: door.call(path, body, Cred(cred.access_key_id, xks_proxy.random_secret())),
        "unknown access key": lambda: door.call(path, body, Cred(xks_proxy.random_access_key_id(), cred.secret)),
        "wrong region": lambda: door.call(path, body, cred, region="eu-west-1"),
        "service kms": lambda: door.call(path, body, cred, service="kms"),
        "service kcm": lambda: door.call(path, body, cred, service="kcm"),
        "signed 10 minutes ago": lambda: door.call(path, body, cred, when=now - dt.timedelta(minutes=10)),
        "signed 10 minutes ahead": lambda: door.call(path, body, cred, when=now + dt.timedelta(minutes=10)),
        "an ordinary kcm access key": lambda: door.call(path, body, kcm_key),
        "malformed Authorization": lambda: door.send(url, data, {
            "Content-Type": "application/json", "X-Amz-Date": now.strftime("%Y%m%dT%H%M%SZ"),
            "Authorization": "AWS4-HMAC-SHA256 garbage"}),
        "another body than signed": lambda: door.send(
            url, json.dumps(meta_body("Other")).encode(), sigv4("POST", url, data, cred)),
        "signed for another key's path": lambda: door.send(
            url, data, sigv4("POST", f"{door.api}/keys/{estate.other_key}/metadata", data, cred)),
        "X-Amz-Date changed after signing": lambda: door.send(url, data, date_moved(sigv4("POST", url, data, cred))),
    }
    answers = {why: call() for why, call in refused.items()}
    # The crypto APIs and health are guarded alike.
    answers["health, kcm key"] = door.health(kcm_key)
    answers["encrypt, unsigned"] = door.call(f"keys/{key}/encrypt", enc_body(b"x"), None)
    answers["decrypt, wrong secret"] = door.call(f"keys/{key}/decrypt", dec_body(door.round_trip(key, cred, b"x")),
                                                 Cred(cred.access_key_id, xks_proxy.random_secret()))
    assert_each_refused(answers, 401, "AuthenticationFailedException")
    # Two minutes of clock skew are within the spec's five.
    assert door.call(path, body, cred, when=now - dt.timedelta(minutes=2)).body == ENABLED_AES


# ----------------------------------------------------------------------------- which keys

def test_only_keys_of_the_credentials_system_are_found(a, door, estate):
    cred = estate.cred
    # A key of another system of the same tenant, and a key of another tenant.
    _, _, other_system_key = system_with_key(a, a.default_root_id(), "xks-other")
    tenant = a.create_tenant(unique("xks-tenant"))
    other_tenant_key = a.client_for(tenant["access_key"]).create_key()["KeyMetadata"]["KeyId"]
    assert door.metadata(estate.key, cred).body == ENABLED_AES

    enc = door.round_trip(estate.key, cred, b"x")
    answers = {}
    for what, ext_id in (("an unknown key id", str(uuid.uuid4())), ("an unknown alias", "no-such-alias"),
                         ("a key of another system", other_system_key),
                         ("a key of another tenant", other_tenant_key)):
        for op, body in (("metadata", meta_body()), ("encrypt", enc_body(b"x")), ("decrypt", dec_body(enc))):
            answers[f"{op} of {what}"] = door.call(f"keys/{ext_id}/{op}", body, cred)
    assert_each_refused(answers, 404, "KeyNotFoundException")


def test_a_disabled_key_is_invalid_state_until_enabled(door, estate):
    kms, cred = estate.kms, estate.cred
    key = kms.create_key(Description="to disable")["KeyMetadata"]["KeyId"]
    enc = door.round_trip(key, cred, b"before")
    kms.disable_key(KeyId=key)
    bound = BOUND_MS / 1000 + LOADED_SLACK_S
    xks_refused_within(lambda: door.encrypt(key, cred, enc_body(b"x")), bound, 400, "InvalidStateException")
    assert_xks_error(door.decrypt(key, cred, dec_body(enc)), 400, "InvalidStateException", "decrypt, disabled")
    assert door.metadata(key, cred).body == {**ENABLED_AES, "keyStatus": "DISABLED"}
    kms.enable_key(KeyId=key)
    dec = xks_served_within(lambda: door.decrypt(key, cred, dec_body(enc)), bound, "still refused after EnableKey")
    assert unb64(dec["plaintext"]) == b"before"
    assert door.metadata(key, cred).body == ENABLED_AES
    door.round_trip(key, cred, b"after")


def test_keys_that_are_not_aes_are_invalid_key_usage(door, estate):
    kms, cred = estate.kms, estate.cred
    rsa = kms.create_key(KeySpec="RSA_2048", KeyUsage="ENCRYPT_DECRYPT")["KeyMetadata"]["KeyId"]
    hmac_key = kms.create_key(KeySpec="HMAC_256", KeyUsage="GENERATE_VERIFY_MAC")["KeyMetadata"]["KeyId"]
    for key, what in ((rsa, "RSA_2048"), (hmac_key, "HMAC_256")):
        assert_xks_error(door.encrypt(key, cred, enc_body(b"x")), 400, "InvalidKeyUsageException", what)


def test_rotation_keeps_old_ciphertexts_readable(a, door, estate):
    kms, cred = estate.kms, estate.cred
    key = kms.create_key(Description="to rotate")["KeyMetadata"]["KeyId"]
    made = [(b"v1", door.round_trip(key, cred, b"v1", b"aad-1"), b"aad-1")]
    kms.rotate_key_on_demand(KeyId=key)                     # the AWS API
    made.append((b"v2", door.round_trip(key, cred, b"v2", b"aad-2"), b"aad-2"))
    cli_ok(kcm(a, "key", "rotate", key))                    # the CLI
    made.append((b"v3", door.round_trip(key, cred, b"v3", None), None))
    for plaintext, enc, aad in made:
        dec = assert_ok(door.decrypt(key, cred, dec_body(enc, aad)), f"decrypt {plaintext!r}")
        assert unb64(dec["plaintext"]) == plaintext


# ----------------------------------------------------------------------------- credentials, kill switch

def test_credential_rotation_disable_and_what_each_kind_signs(a, door, estate):
    key, name = estate.key, estate.system["name"]
    old = xks_credential(a, name)
    new_obj = kcm_json(a, "access-key", "create", "--kind", "xks", "--system", name)
    new = Cred(new_obj["access_key_id"], new_obj["secret_access_key"])
    # Rotation: both work while AWS KMS moves to the new one.
    for cred in (old, new):
        assert door.metadata(key, cred).body == ENABLED_AES
        door.round_trip(key, cred, b"either")
    cli_ok(kcm(a, "access-key", "delete", old.access_key_id))
    bound = BOUND_MS / 1000 + LOADED_SLACK_S
    xks_refused_within(lambda: door.metadata(key, old), bound, 401, "AuthenticationFailedException")
    door.round_trip(key, new, b"still")

    # A disabled credential is refused until enabled again.
    cli_ok(kcm(a, "access-key", "disable", new.access_key_id))
    xks_refused_within(lambda: door.metadata(key, new), bound, 401, "AuthenticationFailedException")
    cli_ok(kcm(a, "access-key", "enable", new.access_key_id))
    assert xks_served_within(lambda: door.metadata(key, new), bound, "refused after enable") == ENABLED_AES

    # An xks credential signs nothing on kcm's own doors: the AWS API and /v1 refuse it.
    with kms_error("UnrecognizedClientException"):
        a.new_client(new.access_key_id, new.secret).list_keys()
    with kms_error("UnrecognizedClientException"):
        a.new_client(new.access_key_id, new.secret).encrypt(KeyId=key, Plaintext=b"x")
    r = a.v1("GET", "/v1/systems", creds=(new.access_key_id, new.secret))
    assert r.status_code == 401 and r.json()["error"]["code"] == "Unauthenticated", r.text


def test_the_kill_switch_cuts_the_door_off_within_the_bound(a, door):
    root = a.v1_ok("POST", "/v1/root-keys", expect=(201,), json_body={"description": "xks kill switch"})
    system, _, key = system_with_key(a, root["id"], "xks-kill")
    cred = xks_credential(a, system["name"])
    enc = door.round_trip(key, cred, b"before the switch")
    assert_ok(door.health(cred))

    # The preview names the way in from AWS: the system's XKS access key.
    preview = kcm_json(a, "root-key", "disable", "--dry-run", root["id"])
    assert preview["applied"] is False, preview
    (reached,) = [sys for sys in preview["systems"] if sys["name"] == system["name"]]
    assert reached["xks_access_keys"] == [cred.access_key_id], reached
    text = cli_ok(kcm(a, "root-key", "disable", "--dry-run", root["id"], output_json=False)).stdout.decode()
    assert f"AWS KMS external key store (XKS access key {cred.access_key_id})" in text, text
    assert_ok(door.health(cred))  # a dry run changes nothing

    out = kcm_json(a, "root-key", "disable", root["id"])
    assert out["applied"] is True and out["new_state"] == "disabled", out
    try:
        bound = BOUND_MS / 1000 + LOADED_SLACK_S
        took = xks_refused_within(lambda: door.decrypt(key, cred, dec_body(enc)), bound, 400,
                                  "InvalidStateException")
        print(f"decrypt refused {took:.2f} s after the kill switch (bound {BOUND_MS} ms)")
        assert_xks_error(door.encrypt(key, cred, enc_body(b"x")), 400, "InvalidStateException", "encrypt")
        assert_xks_error(door.health(cred), 400, "InvalidStateException", "health")
    finally:
        cli_ok(kcm(a, "root-key", "enable", root["id"]))
    dec = xks_served_within(lambda: door.decrypt(key, cred, dec_body(enc)), BOUND_MS / 1000 + LOADED_SLACK_S,
                            "still refused after the root key was enabled")
    assert unb64(dec["plaintext"]) == b"before the switch"
    door.round_trip(key, cred, b"after the switch")
    assert_ok(door.health(cred))


# ----------------------------------------------------------------------------- audit and logs

def test_every_call_is_audited_with_the_kms_request_id(a, door, estate):
    key = estate.key
    cred = xks_credential(a, estate.system["name"])  # its own, so its records are exactly these
    rid = {op: f"audit-{op}-{secrets.token_hex(6)}" for op in ("meta", "enc", "dec", "health", "bad")}
    odd_but_valid = f"a.b_c:d/e-{secrets.token_hex(4)}"
    assert_ok(door.metadata(key, cred, meta_body(request_id=rid["meta"])))
    enc = assert_ok(door.encrypt(key, cred, enc_body(b"audited", b"ctx", request_id=rid["enc"])))
    assert_ok(door.decrypt(key, cred, dec_body(enc, b"ctx", request_id=rid["dec"])))
    assert_ok(door.health(cred, health_body(rid["health"])))
    assert_xks_error(door.decrypt(key, cred, dec_body(enc, b"other", request_id=rid["bad"])), 400,
                     "InvalidCiphertextException")
    assert_ok(door.metadata(key, cred, meta_body(request_id="has a space")))   # not a valid request id
    assert_ok(door.metadata(key, cred, meta_body(request_id="r" * 129)))       # too long to be one
    assert_ok(door.metadata(key, cred, meta_body(request_id=odd_but_valid)))

    lines = cli_ok(kcm(a, "audit", "export", "--principal", cred.access_key_id, output_json=False)).stdout
    records = [json.loads(x) for x in lines.decode().splitlines() if x.strip()]
    records = [r for r in records if r.pop("type", "record") == "record"]
    got = [(r["operation"], r.get("client_request_id"), r["outcome"] == "success") for r in records]
    assert got == [
        ("XksGetKeyMetadata", rid["meta"], True),
        ("XksEncrypt", rid["enc"], True),
        ("XksDecrypt", rid["dec"], True),
        ("XksGetHealthStatus", rid["health"], True),
        ("XksDecrypt", rid["bad"], False),
        ("XksGetKeyMetadata", None, True),
        ("XksGetKeyMetadata", None, True),
        ("XksGetKeyMetadata", odd_but_valid, True),
    ], records
    assert all(r["front_door"] == "xks" and r["principal"] == cred.access_key_id for r in records), records
    for r in records[1:3]:
        assert key in [k["id"] for k in r["keys"]], r
    # The whole request metadata is in each record's detail: who behind AWS KMS asked.
    encrypt = records[1]
    assert encrypt["detail"] == {"awsPrincipalArn": PRINCIPAL_ARN, "kmsKeyArn": KEY_ARN,
                                 "kmsOperation": "Encrypt", "kmsRequestId": rid["enc"],
                                 "kmsViaService": "ebs"}, encrypt
    assert records[3]["detail"]["kmsOperation"] == "KmsHealthCheck", records[3]
    assert records[5]["detail"]["kmsRequestId"] == "has a space", records[5]
    # The chain, detail hashed in, still verifies.
    verified = kcm(a, "audit", "verify", output_json=False)
    assert verified.returncode == 0, verified


def test_no_plaintext_or_secret_in_the_log(a, door, estate):
    canary = b"XKS-PLAINTEXT-CANARY-" + secrets.token_hex(12).encode()
    door.round_trip(estate.key, estate.cred, canary, b"aad")
    # Error paths log too: an encrypt refused with the plaintext in its body.
    refused = {**enc_body(canary), "encryptionAlgorithm": "AES_CBC"}
    assert_xks_error(door.encrypt(estate.key, estate.cred, refused), 400, "ValidationException")
    log = "".join(p.read_text(errors="replace") for p in sorted(a.log_dir.glob("*.log")))
    assert log, "no server log to check"
    for form in (canary.decode(), b64(canary), canary.hex(), b64(canary)[:28]):
        assert form not in log, f"the plaintext ({form[:12]}...) is in the server log"
    assert estate.cred.secret not in log, "an xks secret is in the server log"


# ----------------------------------------------------------------------------- kcm on both sides

def test_kcm_holds_its_root_key_in_another_kcm_through_the_xks_door(a, door, spawn_server, tmp_path):
    """Server B's `xks` keystore points at A's XKS door; B's root key is a key in A. A's
    kill switch on that key's root cuts B off within B's external check interval."""
    # A: the key B's root will be, in a system of its own below a root of its own.
    root_a = a.v1_ok("POST", "/v1/root-keys", expect=(201,), json_body={"description": "for kcm B"})
    system_a, kms_a, key_a = system_with_key(a, root_a["id"], "xks-for-b")
    ext_id = unique("b-root")
    kms_a.create_alias(AliasName=f"alias/{ext_id}", TargetKeyId=key_a)
    made = kcm_json(a, "access-key", "create", "--kind", "xks", "--system", system_a["name"])
    cred = Cred(made["access_key_id"], made["secret_access_key"])

    # B: kcm's XKS client, configured as for any XKS proxy.
    secret_file = tmp_path / "xks.secret"
    secret_file.write_text(cred.secret + "\n")
    secret_file.chmod(0o600)
    conf = tmp_path / "b.toml"
    conf.write_text(
        "[keystores.ext]\n"
        'kind = "xks"\n'
        f'endpoint = "https://localhost:{door.port}"\n'
        f'uri_path = "{PREFIX}{API}"\n'
        f'access_key_id = "{cred.access_key_id}"\n'
        f'secret_file = "{secret_file}"\n'
        f'region = "{REGION}"\n'
        f'ca_file = "{door.ca_file}"\n')
    b = spawn_server(env={"KCM_CONFIG": str(conf), "KCM_EXTERNAL_CHECK_INTERVAL_MS": str(CHECK_MS),
                          "KCM_REVOCATION_BOUND_MS": "60000"})
    root_b = kcm_json(b, "root-key", "reference", "--keystore", "ext", ext_id, "--description", "held in kcm A")
    assert (root_b["origin"], root_b["keystore_kind"]) == ("external", "xks"), root_b
    system_b, kms_b, key_b = system_with_key(b, root_b["id"], "held-in-a")
    assert system_b["status"] == "connected", system_b
    blob = kms_b.encrypt(KeyId=key_b, Plaintext=b"held by kcm A")["CiphertextBlob"]
    assert kms_b.decrypt(CiphertextBlob=blob)["Plaintext"] == b"held by kcm A"
    dk = kms_b.generate_data_key(KeyId=key_b, KeySpec="AES_256")
    assert kms_b.decrypt(CiphertextBlob=dk["CiphertextBlob"])["Plaintext"] == dk["Plaintext"]

    # A's audit shows B's calls, under B's xks credential, with B's request ids.
    records = a.v1_ok("GET", f"/v1/audit?principal={cred.access_key_id}&limit=1000")["records"]
    ops = {r["operation"] for r in records if r["outcome"] == "success"}
    assert {"XksGetKeyMetadata", "XksEncrypt", "XksDecrypt"} <= ops, records[-5:]
    assert all(r["front_door"] == "xks" and r.get("client_request_id") for r in records), records[-5:]

    # A's kill switch on the root above the key: B's Decrypt is refused within B's interval.
    cli_ok(kcm(a, "root-key", "disable", root_a["id"]))
    try:
        took = refused_within(lambda: kms_b.decrypt(CiphertextBlob=blob), CHECK_MS / 1000 + LOADED_SLACK_S,
                              "KMSInvalidStateException")
        print(f"kcm B refused {took:.2f} s after kcm A's kill switch (interval {CHECK_MS} ms)")
    finally:
        cli_ok(kcm(a, "root-key", "enable", root_a["id"]))
    plain = works_again_within(lambda: kms_b.decrypt(CiphertextBlob=blob), CHECK_MS / 1000 + LOADED_SLACK_S,
                               "kcm B still refused after kcm A enabled the root key", interval=0.1)["Plaintext"]
    assert plain == b"held by kcm A"
    assert kms_b.decrypt(CiphertextBlob=dk["CiphertextBlob"])["Plaintext"] == dk["Plaintext"]


def test_mutual_tls_toward_aws_kms(spawn_server, pki, tmp_path):
    """With `client_ca_file` and `client_subjects` (the specification's recommended mutual
    TLS): AWS KMS's certificate — chained to the named CA and of the named subject — is
    served; no certificate, another subject of the same CA, or another CA's certificate is
    refused in the handshake, before any request is read."""
    from kmip_harness import Pki

    ca, cert, key = pki
    (tmp_path / "clients").mkdir()
    (tmp_path / "another-ca").mkdir()
    clients = Pki(tmp_path / "clients")
    aws_cert, aws_key, _ = clients.issue("cks.kms.eu-west-1.amazonaws.com")
    other_cert, other_key, _ = clients.issue("someone.example")
    # The same subject from a CA the door does not trust.
    foreign_cert, foreign_key, _ = Pki(tmp_path / "another-ca").issue("cks.kms.eu-west-1.amazonaws.com")
    port = free_port()
    conf = tmp_path / "mtls.toml"
    conf.write_text(f'[xks_server]\nlisten = "127.0.0.1:{port}"\nuri_path_prefix = "{PREFIX}"\n'
                    f'client_ca_file = "{clients.ca_file}"\n'
                    f'client_subjects = ["CN=cks.kms.eu-west-1.amazonaws.com"]\n')
    srv = spawn_server(env={"KCM_CONFIG": str(conf), "KCM_TLS_CERT": cert, "KCM_TLS_KEY": key}, start=False)
    srv.trusted_ca = ca
    start_or_fail(srv)
    system, _, key_id = system_with_key(srv, srv.default_root_id(), "mtls")
    cred = xks_credential(srv, system["name"])
    url = f"https://127.0.0.1:{port}{PREFIX}{API}/health"
    data = json.dumps(health_body()).encode()

    def health(client_cert):
        return requests.post(url, data=data, headers=sigv4("POST", url, data, cred), verify=ca,
                             cert=client_cert, timeout=15)

    served = poll(lambda: _try(lambda: health((aws_cert, aws_key))), 15, what="the XKS door with mutual TLS")
    assert served.status_code == 200, served.text
    for refused in (None, (other_cert, other_key), (foreign_cert, foreign_key)):
        with pytest.raises(requests.exceptions.ConnectionError):
            health(refused)
    assert "its subject is not one the listener accepts" in srv.log_tail(400)
    # client_subjects without client_ca_file is a configuration error, said at start.
    bad = tmp_path / "bad.toml"
    bad.write_text(f'[xks_server]\nlisten = "127.0.0.1:{free_port()}"\n'
                   f'client_subjects = ["CN=cks.kms.eu-west-1.amazonaws.com"]\n')
    broken = spawn_server(env={"KCM_CONFIG": str(bad), "KCM_TLS_CERT": cert, "KCM_TLS_KEY": key}, start=False)
    with pytest.raises(ServerStartError) as e:
        broken.start(timeout=15)
    assert "client_subjects needs client_ca_file" in str(e.value) + broken.log_tail()


def _try(call):
    try:
        return call()
    except requests.RequestException:
        return None
