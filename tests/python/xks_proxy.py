"""A small AWS KMS External Key Store (XKS) proxy for kcm's test suite, backed by a PKCS#11
token (SoftHSM2), written from the public "External Key Store Proxy API Specification"
(aws/aws-kms-xksproxy-api-spec, xks_proxy_api_spec.md, v1.0.2). No code of AWS's sample
proxy is used.

Run it as a script (the helper class `XksProxy` below does this for tests):

    python tests/python/xks_proxy.py --module /usr/lib/softhsm/libsofthsm2.so \
        --token-label L --pin-file F --access-key-id AKID --secret-file F --region us-east-1 \
        [--uri-prefix /p] [--tls-cert C --tls-key K] [--port 0] [--service kms-xks-proxy] \
        [--no-ciphertext-metadata]

SOFTHSM2_CONF comes from the environment. It binds 127.0.0.1 only and prints exactly one line
`LISTENING <port>` to stdout once ready; its log (one line per request, never plaintext) goes
to stderr.

Implemented from the spec
-------------------------
* URIs `[/<prefix>]/kms/xks/v1/keys/{externalKeyId}/metadata|encrypt|decrypt` and
  `[/<prefix>]/kms/xks/v1/health`; POST only: GET (or any other method) on one of those URIs
  gets 405 Method Not Allowed (with `Allow: POST`); any other path gets 404
  InvalidUriPathException. externalKeyId: 1-128 of [A-Za-z0-9._-], else 400 ValidationException.
* JSON in and out (`Content-Type: application/json` required on requests, else 400
  ValidationException); HTTP/1.1; TLS 1.2+ when --tls-cert/--tls-key are given.
* Error body `{"errorName": ..., "errorMessage": ...}` (message printable ASCII, < 512 chars)
  with the spec's status codes: ValidationException 400, InvalidStateException 400,
  InvalidCiphertextException 400, InvalidKeyUsageException 400,
  AuthenticationFailedException 401, KeyNotFoundException 404, InvalidUriPathException 404,
  UnsupportedOperationException 501, InternalException 500. (AccessDeniedException 403,
  ThrottlingException 429 and DependencyTimeoutException 503 are never produced by the proxy
  itself: there is no secondary authorization, no quota and no timeout layer. A test makes
  the proxy answer them, or anything else, with a canned answer; see below.)
* SigV4 (Appendix A): `Authorization: AWS4-HMAC-SHA256 Credential=<akid>/<yyyymmdd>/<region>/
  <service>/aws4_request, SignedHeaders=..., Signature=...`. The service is `kms-xks-proxy`
  (the spec's name; --service changes it), the region is the configured one, SignedHeaders
  must include `host` and `x-amz-date`, every signed header must be present, the scope date
  must be the X-Amz-Date's day, and X-Amz-Date must be within 5 minutes of the proxy's clock.
  The canonical request is rebuilt from the request as received (method, URI-encoded path,
  sorted query, signed headers, SHA-256 of the body). Any failure: 401
  AuthenticationFailedException. Several credential pairs may be configured (repeat
  --access-key-id/--secret-file) for rotation.
* requestMetadata: must be an object; awsPrincipalArn, kmsOperation, kmsRequestId required
  strings for the key APIs, kmsKeyArn too for encrypt/decrypt (400 ValidationException);
  unknown kmsOperation values and extra fields are accepted. kmsRequestId and kmsOperation are
  logged. GetHealthStatus does not validate its body (ValidationException is not one of its
  errors).
* GetKeyMetadata: keySpec `AES_256` (`AES_<bits>` for another AES size), keyUsage from the
  key's CKA_ENCRYPT/CKA_DECRYPT (`["ENCRYPT", "DECRYPT"]` for a normal key), keyStatus
  ENABLED/DISABLED.
* Encrypt: AES-GCM inside the token (CKM_AES_GCM), a 12-byte IV from the token's RNG, 16-byte
  tag split off the PKCS#11 output. Response fields ciphertext, initializationVector,
  authenticationTag (Base64), ciphertextMetadata (Base64 of the 13 bytes `xksproxy-py/1`,
  omitted with --no-ciphertext-metadata). The AAD given to the token is, as the spec says,
  `len16be(additionalAuthenticatedData) || additionalAuthenticatedData ||
  len8(ciphertextMetadata) || ciphertextMetadata` (absent fields have length 0), so a
  modified or dropped ciphertextMetadata fails decryption. encryptionAlgorithm must be
  `AES_GCM`. When ciphertextDataIntegrityValueAlgorithm (`SHA_256` only) is given, the
  response has ciphertextDataIntegrityValue = Base64(SHA-256(aad || ciphertextMetadata || iv
  || ciphertext || tag)), computed before a verifying decrypt in the token (Appendix C).
* Decrypt: fields ciphertext, initializationVector (12 or 16 bytes), authenticationTag (16
  bytes), encryptionAlgorithm, optional additionalAuthenticatedData and ciphertextMetadata
  (<= 20 bytes). A wrong tag/AAD/IV/ciphertext/metadata: 400 InvalidCiphertextException.
  Response `{"plaintext": Base64}`.
* Plaintext (in or out) is never logged. Base64 is the standard alphabet with padding.
* Key lookup: externalKeyId = CKA_LABEL of a secret key in the token, looked up afresh on
  every request (a key deleted from the token by someone else is noticed at once): none ->
  404 KeyNotFoundException; a key that is not AES-256 or lacks CKA_ENCRYPT/CKA_DECRYPT ->
  400 InvalidKeyUsageException for encrypt/decrypt.
* Disabled keys (400 InvalidStateException on encrypt/decrypt, keyStatus DISABLED in
  metadata) are the customer's switch, outside the XKS API: `POST /admin/keys/{id}/disable`
  and `/enable`, no SigV4 (this proxy listens on 127.0.0.1 only). The state is in memory.
* Canned answers, for tests of a client's error handling (outside the XKS API, like the
  switch above): `POST /admin/keys/{id}/answer` with a JSON body `{"operation":
  "metadata"|"encrypt"|"decrypt", "status": 429, "body": "<text sent as is>", "headers":
  {...}, "length": true}` makes every later request of that operation on that key, once
  authenticated, get exactly that answer (Content-Type application/json unless "headers"
  says otherwise; with "length": false no Content-Length, and the connection closes after
  the body). The same without "status" goes back to real answers. Per key, so tests
  sharing one proxy do not see each other's answers — except "operation": "health",
  which names no key and so is the whole proxy's (use a proxy of your own for it).
* Mutual TLS: with --client-ca, the proxy requires a client certificate signed by that
  CA (test_certificates also issues one, xks-client-cert.pem / xks-client-key.pem).
* GetHealthStatus: a deep check in a fresh token session with a session-only test AES key
  (never a customer key): GCM round trip. Response xksProxyFleetSize 1, xksProxyVendor,
  xksProxyModel, ekmVendor (the token's manufacturer), ekmFleetDetails with one entry
  {id: token serial, model: token model + firmware, healthStatus ACTIVE | UNAVAILABLE}.
  When the token cannot be reached, health answers 200 with healthStatus `UNAVAILABLE`
  (the spec's field for "unable to serve traffic") and encrypt/decrypt/metadata answer
  500 InternalException (the spec's "failure of the backing key manager"). The proxy
  reconnects (C_Finalize/C_Initialize) once the token is back.

Left out
--------
secondary authorization (AccessDeniedException, except as a canned answer) and request
metadata policies; request quotas / ThrottlingException; DependencyTimeoutException; HTTP/2;
the load balancer GET health check; per-prefix isolation (one prefix per process);
persistence of the disabled state across restarts; the spec's "server MUST be an FQDN"
(this listens on 127.0.0.1); a limit on ARN lengths; chunked request bodies (Content-Length
is required); AAD over 65535 bytes (501 UnsupportedOperationException, the length prefix is
2 bytes); bodies over 1 MiB (501).
"""

from __future__ import annotations

import argparse
import base64
import binascii
import datetime
import hashlib
import hmac
import ipaddress
import json
import os
import re
import secrets
import ssl
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

API_PATH = "/kms/xks/v1"
DEFAULT_SERVICE = "kms-xks-proxy"
CIPHERTEXT_METADATA = b"xksproxy-py/1"
MAX_BODY = 1 << 20
KEY_ID_RE = re.compile(r"^[A-Za-z0-9._-]{1,128}$")
PREFIX_RE = re.compile(r"^(/[A-Za-z0-9_-]+)*$")
SIGV4_MAX_SKEW = datetime.timedelta(minutes=5)

STATUS = {
    "ValidationException": 400,
    "InvalidStateException": 400,
    "InvalidCiphertextException": 400,
    "InvalidKeyUsageException": 400,
    "AuthenticationFailedException": 401,
    "AccessDeniedException": 403,
    "KeyNotFoundException": 404,
    "InvalidUriPathException": 404,
    "ThrottlingException": 429,
    "InternalException": 500,
    "UnsupportedOperationException": 501,
    "DependencyTimeoutException": 503,
}


class XksError(Exception):
    def __init__(self, name: str, message: str = ""):
        super().__init__(name, message)
        self.name, self.message = name, message
        self.status = STATUS[name]

    def body(self) -> dict:
        msg = "".join(c for c in self.message if " " <= c <= "~")[:500]
        return {"errorName": self.name, **({"errorMessage": msg} if msg else {})}


class TokenUnavailable(Exception):
    pass


# ---------------------------------------------------------------------------------- the token

class Hsm:
    """The PKCS#11 token, behind one lock (one logged-in session, reopened when lost)."""

    def __init__(self, module: str, token_label: str, pin: str):
        import pkcs11  # python-pkcs11: only the proxy process needs it

        self.p11 = pkcs11
        self.label, self.pin = token_label, pin
        self.lib = pkcs11.lib(module)
        self.lock = threading.RLock()
        self.session = None
        self.needs_reinit = False
        self.info = {"serial": token_label, "model": "unknown", "manufacturer": "unknown"}
        with self.lock:
            tok = self._token()
            self.info = {
                "serial": (tok.serial.decode() if isinstance(tok.serial, bytes) else str(tok.serial)).strip()
                or token_label,
                "model": f"{tok.model.strip()} (firmware {self._version(tok)})",
                "manufacturer": tok.manufacturer_id.strip(),
            }
            self._open()

    @staticmethod
    def _version(tok) -> str:
        try:
            v = tok.slot.firmware_version
            return ".".join(map(str, v)) if isinstance(v, (tuple, list)) else str(v)
        except Exception:
            return "unknown"

    def _token(self, attempts: int = 3):
        """The token, after checking the library still sees it (C_GetSlotList/C_GetTokenInfo).

        SoftHSM answers with a transient CKR_GENERAL_ERROR while another process rewrites
        the token's files (the tests run several proxies on one machine at once), so the
        token counts as lost only when it stays out of reach over a few tries, each after
        reinitialising the library."""
        p11 = self.p11
        for attempt in range(attempts):
            try:
                if self.needs_reinit:
                    self.session = None
                    self.lib.reinitialize()
                    self.needs_reinit = False
                return self.lib.get_token(token_label=self.label)
            except (p11.PKCS11Error, RuntimeError) as e:
                self.needs_reinit = True
                self.session = None
                if attempt + 1 == attempts:
                    raise TokenUnavailable(f"token {self.label!r} cannot be reached: {type(e).__name__}") from None
                time.sleep(0.05)

    def _open(self):
        tok = self._token()
        if self.session is None:
            try:
                self.session = tok.open(user_pin=self.pin)
            except self.p11.UserAlreadyLoggedIn:
                self.session = tok.open()
            except self.p11.PKCS11Error as e:
                self.needs_reinit = True
                raise TokenUnavailable(f"cannot open a session: {type(e).__name__}") from None
        return self.session

    def reachable(self) -> bool:
        try:
            self._token()
            return True
        except TokenUnavailable:
            return False

    def find_key(self, label: str):
        """(session, key) for the secret key labelled `label`; XksError when there is none."""
        p11 = self.p11
        session = self._open()
        try:
            return session, session.get_key(object_class=p11.ObjectClass.SECRET_KEY, label=label)
        except p11.NoSuchKey:
            if not self.reachable():
                raise TokenUnavailable("token vanished during the key lookup") from None
            raise XksError("KeyNotFoundException", f"no key with externalKeyId {label}") from None
        except p11.MultipleObjectsReturned:
            raise XksError("InternalException", "more than one key has this externalKeyId") from None
        except p11.PKCS11Error as e:
            self.needs_reinit = True
            raise TokenUnavailable(f"key lookup failed: {type(e).__name__}") from None

    def describe(self, key) -> dict:
        A, K = self.p11.Attribute, self.p11.KeyType
        try:
            key_type, length = key[A.KEY_TYPE], key[A.VALUE_LEN]
            enc, dec = bool(key[A.ENCRYPT]), bool(key[A.DECRYPT])
        except self.p11.PKCS11Error as e:
            raise XksError("InternalException", f"cannot read key attributes: {type(e).__name__}") from None
        spec = f"AES_{length * 8}" if key_type == K.AES else f"UNSUPPORTED_{getattr(key_type, 'name', key_type)}"
        usage = [u for u, ok in (("ENCRYPT", enc), ("DECRYPT", dec)) if ok]
        return {"keySpec": spec, "keyUsage": usage}

    def gcm(self, iv: bytes, aad: bytes):
        params = self.p11.mechanisms.GCMParams.__new__(self.p11.mechanisms.GCMParams)
        # python-pkcs11's constructor refuses IVs over 12 bytes; the spec allows 16 on decrypt.
        params.nonce, params.aad, params.tag_bits = iv, aad or None, 128
        return params

    def random(self, session, n: int) -> bytes:
        return session.generate_random(n * 8)

    def deep_check(self) -> None:
        """A GCM round trip with a session-only test key (never a customer key)."""
        p11 = self.p11
        session = self._open()
        try:
            test_key = session.generate_key(p11.KeyType.AES, 256, store=False, label="xks-health-check")
            try:
                iv, probe = session.generate_random(96), session.generate_random(256)
                ct = test_key.encrypt(probe, mechanism=p11.Mechanism.AES_GCM, mechanism_param=self.gcm(iv, b"health"))
                pt = test_key.decrypt(ct, mechanism=p11.Mechanism.AES_GCM, mechanism_param=self.gcm(iv, b"health"))
            finally:
                test_key.destroy()
        except p11.PKCS11Error as e:
            self.needs_reinit = True
            raise TokenUnavailable(f"health check crypto failed: {type(e).__name__}") from None
        if pt != probe:
            raise TokenUnavailable("health check round trip gave other bytes")


# ---------------------------------------------------------------------------------- SigV4

def _sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def verify_sigv4(method: str, raw_path: str, headers, body: bytes, credentials: dict[str, str],
                 region: str, service: str, now: datetime.datetime | None = None) -> str:
    """Checks an AWS SigV4 `Authorization` header; returns the access key id or raises XksError."""

    def fail(why: str):
        raise XksError("AuthenticationFailedException", f"SigV4 authentication failed: {why}")

    auth = headers.get("Authorization")
    if not auth:
        fail("no Authorization header")
    if len(headers.get_all("Authorization") or []) != 1:
        fail("more than one Authorization header")
    algo, _, rest = auth.strip().partition(" ")
    if algo != "AWS4-HMAC-SHA256":
        fail("the algorithm is not AWS4-HMAC-SHA256")
    parts = {}
    for item in rest.split(","):
        k, sep, v = item.strip().partition("=")
        if not sep or k in parts:
            fail("malformed Authorization header")
        parts[k] = v
    if set(parts) != {"Credential", "SignedHeaders", "Signature"}:
        fail("Authorization needs exactly Credential, SignedHeaders and Signature")
    scope = parts["Credential"].split("/")
    if len(scope) != 5:
        fail("malformed Credential")
    akid, day, req_region, req_service, terminator = scope
    if akid not in credentials:
        fail("unknown access key id")
    if req_region != region:
        fail("wrong region in the credential scope")
    if req_service != service:
        fail("wrong service in the credential scope")
    if terminator != "aws4_request":
        fail("the credential scope does not end in aws4_request")
    signed = parts["SignedHeaders"].split(";")
    if signed != sorted(signed) or len(set(signed)) != len(signed) or any(h != h.lower() or not h for h in signed):
        fail("SignedHeaders is not a sorted list of lowercase names")
    if "host" not in signed or "x-amz-date" not in signed:
        fail("host and x-amz-date must be signed")
    amz_date = headers.get("X-Amz-Date", "")
    try:
        stamp = datetime.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=datetime.timezone.utc)
    except ValueError:
        fail("missing or malformed X-Amz-Date")
    if day != amz_date[:8]:
        fail("the credential scope date is not the X-Amz-Date day")
    now = now or datetime.datetime.now(datetime.timezone.utc)
    if abs(now - stamp) > SIGV4_MAX_SKEW:
        fail("X-Amz-Date is more than 5 minutes away from the proxy's clock")
    if not re.fullmatch(r"[0-9a-f]{64}", parts["Signature"]):
        fail("malformed Signature")

    canon_headers = []
    for name in signed:
        values = headers.get_all(name)
        if not values:
            fail(f"signed header {name} is missing")
        canon_headers.append(f"{name}:{','.join(' '.join(v.split()) for v in values)}\n")
    path, _, query = raw_path.partition("?")
    canon_uri = urllib.parse.quote(path, safe="/~")
    pairs = urllib.parse.parse_qsl(query, keep_blank_values=True)
    canon_query = "&".join(
        f"{k}={v}" for k, v in sorted((urllib.parse.quote(k, safe="-_.~"), urllib.parse.quote(v, safe="-_.~"))
                                      for k, v in pairs))
    payload_hash = _sha256_hex(body)
    content_sha = headers.get("X-Amz-Content-Sha256")
    if content_sha is not None and content_sha != payload_hash:
        fail("X-Amz-Content-Sha256 does not match the body")
    canonical = "\n".join([method, canon_uri, canon_query, "".join(canon_headers), ";".join(signed), payload_hash])
    scope_str = "/".join(scope[1:])
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope_str, _sha256_hex(canonical.encode())])
    k = _hmac(("AWS4" + credentials[akid]).encode(), day)
    for piece in (req_region, req_service, "aws4_request"):
        k = _hmac(k, piece)
    expected = hmac.new(k, to_sign.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, parts["Signature"]):
        fail("signature mismatch")
    return akid


# ---------------------------------------------------------------------------------- the API

def _b64(value, field: str, *, required: bool, sizes: tuple[int, ...] | None = None,
         max_len: int | None = None) -> bytes | None:
    if value is None:
        if required:
            raise XksError("ValidationException", f"{field} is required")
        return None
    if not isinstance(value, str):
        raise XksError("ValidationException", f"{field} must be a Base64 string")
    try:
        raw = base64.b64decode(value.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise XksError("ValidationException", f"{field} is not valid Base64") from None
    if sizes is not None and len(raw) not in sizes:
        raise XksError("ValidationException", f"{field} must be {' or '.join(map(str, sizes))} bytes")
    if max_len is not None and len(raw) > max_len:
        raise XksError("ValidationException", f"{field} must be at most {max_len} bytes")
    return raw


def hsm_aad(aad: bytes | None, metadata: bytes | None) -> bytes:
    aad, metadata = aad or b"", metadata or b""
    if len(aad) > 0xFFFF:
        raise XksError("UnsupportedOperationException", "additionalAuthenticatedData over 65535 bytes")
    return len(aad).to_bytes(2, "big") + aad + len(metadata).to_bytes(1, "big") + metadata


class Proxy:
    def __init__(self, hsm: Hsm, credentials: dict[str, str], region: str, service: str, prefix: str,
                 ciphertext_metadata: bool = True):
        self.hsm, self.credentials, self.region, self.service = hsm, credentials, region, service
        self.prefix = prefix
        self.ciphertext_metadata = ciphertext_metadata
        self.disabled: set[str] = set()
        self.answers: dict[tuple[str, str], dict] = {}
        self.state_lock = threading.Lock()

    # --- routing
    def route(self, path: str):
        """('health', None) | ('metadata'|'encrypt'|'decrypt', keyId) | ('admin-...', keyId) | None."""
        path = path.partition("?")[0]
        m = re.fullmatch(r"/admin/keys/([^/]+)/(disable|enable|answer)", path)
        if m:
            return "admin-" + m.group(2), m.group(1)
        base = self.prefix + API_PATH
        if path == base + "/health":
            return "health", None
        if path.startswith(base + "/keys/"):
            m = re.fullmatch(r"([^/]+)/(metadata|encrypt|decrypt)", path[len(base + "/keys/"):])
            if m:
                return m.group(2), m.group(1)
        return None

    # --- canned answers (see the module documentation)
    def set_answer(self, key_id: str, body: bytes) -> dict:
        try:
            spec = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise XksError("ValidationException", "the answer must be a JSON object") from None
        op = spec.get("operation") if isinstance(spec, dict) else None
        if op not in ("metadata", "encrypt", "decrypt", "health"):
            raise XksError("ValidationException", "operation must be metadata, encrypt, decrypt or health")
        if op == "health":
            key_id = None  # health names no key: its canned answer is the proxy's
        status, text, headers = spec.get("status"), spec.get("body", ""), spec.get("headers", {})
        if status is not None and not (isinstance(status, int) and 100 <= status <= 599):
            raise XksError("ValidationException", "status must be an HTTP status")
        if not isinstance(text, str) or not isinstance(headers, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in headers.items()):
            raise XksError("ValidationException", "body must be a string, headers an object of strings")
        with self.state_lock:
            if status is None:
                self.answers.pop((key_id, op), None)
            else:
                self.answers[(key_id, op)] = {"status": status, "body": text.encode(), "headers": headers,
                                              "length": spec.get("length", True) is not False}
        return {"externalKeyId": key_id, "operation": op, "status": status}

    def answer_for(self, op: str, key_id: str | None) -> dict | None:
        with self.state_lock:
            return self.answers.get((key_id, op))

    # --- operations (each returns a JSON-able dict or raises XksError/TokenUnavailable)
    @staticmethod
    def _metadata_fields(body: dict, need_key_arn: bool) -> dict:
        md = body.get("requestMetadata")
        if not isinstance(md, dict):
            raise XksError("ValidationException", "requestMetadata must be an object")
        required = ["awsPrincipalArn", "kmsOperation", "kmsRequestId"] + (["kmsKeyArn"] if need_key_arn else [])
        for f in required:
            if not isinstance(md.get(f), str):
                raise XksError("ValidationException", f"requestMetadata.{f} is required (a string)")
        for f in ("kmsKeyArn", "awsSourceVpc", "awsSourceVpce", "kmsViaService"):
            if f in md and not isinstance(md[f], str):
                raise XksError("ValidationException", f"requestMetadata.{f} must be a string")
        return md

    def _key(self, key_id: str, usage: str | None):
        session, key = self.hsm.find_key(key_id)
        desc = self.hsm.describe(key)
        with self.state_lock:
            disabled = key_id in self.disabled
        if usage is not None:
            if disabled:
                raise XksError("InvalidStateException", f"external key {key_id} is disabled")
            if desc["keySpec"] != "AES_256" or usage not in desc["keyUsage"]:
                raise XksError("InvalidKeyUsageException", f"external key {key_id} cannot {usage} with AES_256 GCM")
        return session, key, desc, disabled

    def op_metadata(self, key_id: str, body: dict) -> dict:
        self._metadata_fields(body, need_key_arn=False)
        with self.hsm.lock:
            _, _, desc, disabled = self._key(key_id, None)
        return {**desc, "keyStatus": "DISABLED" if disabled else "ENABLED"}

    @staticmethod
    def _algorithm(body: dict):
        if body.get("encryptionAlgorithm") != "AES_GCM":
            raise XksError("ValidationException", "encryptionAlgorithm must be AES_GCM")

    def op_encrypt(self, key_id: str, body: dict) -> dict:
        self._metadata_fields(body, need_key_arn=True)
        self._algorithm(body)
        plaintext = _b64(body.get("plaintext"), "plaintext", required=True)
        aad = _b64(body.get("additionalAuthenticatedData"), "additionalAuthenticatedData", required=False)
        cdiv_alg = body.get("ciphertextDataIntegrityValueAlgorithm")
        if cdiv_alg is not None and cdiv_alg != "SHA_256":
            raise XksError("ValidationException", "ciphertextDataIntegrityValueAlgorithm must be SHA_256")
        metadata = CIPHERTEXT_METADATA if self.ciphertext_metadata else None
        token_aad = hsm_aad(aad, metadata)
        p11 = self.hsm.p11
        with self.hsm.lock:
            session, key, _, _ = self._key(key_id, "ENCRYPT")
            try:
                iv = self.hsm.random(session, 12)
                out = key.encrypt(plaintext, mechanism=p11.Mechanism.AES_GCM,
                                  mechanism_param=self.hsm.gcm(iv, token_aad))
            except p11.PKCS11Error as e:
                if not self.hsm.reachable():
                    raise TokenUnavailable("token lost during encrypt") from None
                raise XksError("InternalException", f"token refused to encrypt: {type(e).__name__}") from None
            ciphertext, tag = out[:-16], out[-16:]
            if len(ciphertext) != len(plaintext) or len(tag) != 16:
                raise XksError("InternalException", "unexpected GCM output length from the token")
            resp = {
                "ciphertext": base64.b64encode(ciphertext).decode(),
                "initializationVector": base64.b64encode(iv).decode(),
                "authenticationTag": base64.b64encode(tag).decode(),
            }
            if metadata is not None:
                resp["ciphertextMetadata"] = base64.b64encode(metadata).decode()
            if cdiv_alg is not None:
                # Appendix C: compute the CDIV first, then prove the output decrypts.
                cdiv = hashlib.sha256((aad or b"") + (metadata or b"") + iv + ciphertext + tag).digest()
                try:
                    check = key.decrypt(ciphertext + tag, mechanism=p11.Mechanism.AES_GCM,
                                        mechanism_param=self.hsm.gcm(iv, token_aad))
                except p11.PKCS11Error:
                    check = None
                if check != plaintext:
                    raise XksError("InternalException", "the token's ciphertext did not decrypt back")
                resp["ciphertextDataIntegrityValue"] = base64.b64encode(cdiv).decode()
        return resp

    def op_decrypt(self, key_id: str, body: dict) -> dict:
        self._metadata_fields(body, need_key_arn=True)
        self._algorithm(body)
        ciphertext = _b64(body.get("ciphertext"), "ciphertext", required=True)
        iv = _b64(body.get("initializationVector"), "initializationVector", required=True, sizes=(12, 16))
        tag = _b64(body.get("authenticationTag"), "authenticationTag", required=True, sizes=(16,))
        aad = _b64(body.get("additionalAuthenticatedData"), "additionalAuthenticatedData", required=False)
        metadata = _b64(body.get("ciphertextMetadata"), "ciphertextMetadata", required=False, max_len=20)
        token_aad = hsm_aad(aad, metadata)
        p11 = self.hsm.p11
        with self.hsm.lock:
            _, key, _, _ = self._key(key_id, "DECRYPT")
            try:
                plaintext = key.decrypt(ciphertext + tag, mechanism=p11.Mechanism.AES_GCM,
                                        mechanism_param=self.hsm.gcm(iv, token_aad))
            except p11.PKCS11Error:
                # SoftHSM reports a bad tag as CKR_GENERAL_ERROR: tell it apart from a lost token.
                if not self.hsm.reachable():
                    raise TokenUnavailable("token lost during decrypt") from None
                raise XksError("InvalidCiphertextException",
                               "the ciphertext, IV, AAD, ciphertextMetadata or tag is corrupted or invalid") from None
        return {"plaintext": base64.b64encode(plaintext).decode()}

    def op_health(self, _key_id, _body) -> dict:
        with self.hsm.lock:
            try:
                self.hsm.deep_check()
                status = "ACTIVE"
            except TokenUnavailable:
                status = "UNAVAILABLE"
        info = self.hsm.info
        return {
            "xksProxyFleetSize": 1,
            "xksProxyVendor": "kcm test suite",
            "xksProxyModel": "kcm tests/python/xks_proxy.py 1.0 (PKCS#11)",
            "ekmVendor": info["manufacturer"] or "unknown",
            "ekmFleetDetails": [{"id": info["serial"], "model": info["model"], "healthStatus": status}],
        }


def make_handler(proxy: Proxy):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "xks-proxy-py/1.0"
        sys_version = ""
        timeout = 30

        def setup(self):
            super().setup()
            if isinstance(self.connection, ssl.SSLSocket):
                try:
                    self.connection.do_handshake()
                except (ssl.SSLError, OSError) as e:
                    log(f"tls handshake failed from {self.client_address[0]}: {e.__class__.__name__}")
                    self.close_connection = True
                    raise

        def log_message(self, fmt, *args):  # the default logger is replaced by log() below
            pass

        def _send(self, status: int, obj: dict | None, extra: dict | None = None):
            data = json.dumps(obj, separators=(",", ":")).encode() if obj is not None else b""
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for k, v in (extra or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

        def _send_canned(self, canned: dict):
            headers = {"Content-Type": "application/json", **canned["headers"]}
            self.send_response(canned["status"])
            for k, v in headers.items():
                self.send_header(k, v)
            if canned["length"]:
                self.send_header("Content-Length", str(len(canned["body"])))
            else:
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            self.wfile.write(canned["body"])

        def _read_body(self) -> bytes:
            if self.headers.get("Transfer-Encoding"):
                self.close_connection = True
                raise XksError("UnsupportedOperationException", "chunked bodies are not supported")
            try:
                n = int(self.headers.get("Content-Length", "0"))
            except ValueError:
                self.close_connection = True
                raise XksError("ValidationException", "bad Content-Length") from None
            if n < 0 or n > MAX_BODY:
                self.close_connection = True
                raise XksError("UnsupportedOperationException", f"request body over {MAX_BODY} bytes")
            return self.rfile.read(n) if n else b""

        def _not_post(self):
            route = proxy.route(self.path)
            started = time.monotonic()
            # Drain any body so the connection stays usable.
            try:
                self._read_body()
            except XksError:
                pass
            if route is None:
                err = XksError("InvalidUriPathException", "no such XKS API path")
                self._send(err.status, err.body())
                log_request(self.command, self.path, err.status, err.name, None, started)
            else:
                self._send(405, {"errorName": "MethodNotAllowed",
                                 "errorMessage": f"{self.command} is not allowed: XKS APIs take POST"},
                           {"Allow": "POST"})
                log_request(self.command, self.path, 405, "MethodNotAllowed", None, started)

        do_GET = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _not_post

        def do_POST(self):
            started = time.monotonic()
            md = None
            try:
                route = proxy.route(self.path)
                body = self._read_body()
                if route is None:
                    raise XksError("InvalidUriPathException", "no such XKS API path")
                op, key_id = route
                if op.startswith("admin-"):
                    if not KEY_ID_RE.fullmatch(key_id):
                        raise XksError("ValidationException", "externalKeyId has characters outside [A-Za-z0-9._-]")
                    if op == "admin-answer":
                        self._send(200, proxy.set_answer(key_id, body))
                        log_request("POST", self.path, 200, None, None, started)
                        return
                    with proxy.state_lock:
                        (proxy.disabled.add if op == "admin-disable" else proxy.disabled.discard)(key_id)
                    status = "DISABLED" if op == "admin-disable" else "ENABLED"
                    self._send(200, {"externalKeyId": key_id, "keyStatus": status})
                    log_request("POST", self.path, 200, None, None, started)
                    return
                verify_sigv4("POST", self.path, self.headers, body, proxy.credentials, proxy.region, proxy.service)
                ctype = self.headers.get("Content-Type", "")
                if ctype.split(";")[0].strip().lower() != "application/json":
                    raise XksError("ValidationException", "Content-Type must be application/json")
                if key_id is not None and not KEY_ID_RE.fullmatch(key_id):
                    raise XksError("ValidationException", "externalKeyId has characters outside [A-Za-z0-9._-]")
                try:
                    parsed = json.loads(body.decode("utf-8")) if body else {}
                except (UnicodeDecodeError, json.JSONDecodeError):
                    if op != "health":
                        raise XksError("ValidationException", "the body is not JSON") from None
                    parsed = {}
                if not isinstance(parsed, dict):
                    if op != "health":
                        raise XksError("ValidationException", "the body must be a JSON object")
                    parsed = {}
                md = parsed.get("requestMetadata") if isinstance(parsed.get("requestMetadata"), dict) else None
                canned = proxy.answer_for(op, key_id)
                if canned is not None:
                    self._send_canned(canned)
                    log_request("POST", self.path, canned["status"], "canned answer", md, started)
                    return
                try:
                    result = getattr(proxy, "op_" + op)(key_id, parsed)
                except TokenUnavailable as e:
                    raise XksError("InternalException", f"the external key manager cannot be reached: {e}") from None
                self._send(200, result)
                log_request("POST", self.path, 200, None, md, started)
            except XksError as e:
                self._send(e.status, e.body())
                log_request("POST", self.path, e.status, e.name, md, started, e.message)
            except Exception as e:  # never leak a traceback (it could hold request data)
                err = XksError("InternalException", "unexpected proxy failure")
                self._send(err.status, err.body())
                log_request("POST", self.path, err.status, f"{err.name} ({type(e).__name__})", md, started)

    return Handler


def log(msg: str) -> None:
    ts = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    sys.stderr.write(f"{ts} xks-proxy {msg}\n")
    sys.stderr.flush()


def log_request(method, path, status, error, md, started, detail=""):
    """One line per request: what and who, never a payload field."""
    md = md if isinstance(md, dict) else {}
    fields = [f"{method} {path.partition('?')[0]}", f"status={status}"]
    if error:
        fields.append(f"error={error}")
    for k in ("kmsRequestId", "kmsOperation", "awsPrincipalArn", "kmsKeyArn"):
        if isinstance(md.get(k), str):
            fields.append(f"{k}={md[k][:200]!r}")
    fields.append(f"ms={(time.monotonic() - started) * 1000:.1f}")
    if detail:
        fields.append(f"detail={detail!r}")
    log(" ".join(fields))


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    tls: ssl.SSLContext | None = None

    def get_request(self):
        sock, addr = self.socket.accept()
        if self.tls is not None:
            sock.settimeout(30)
            # The handshake runs in the handler's thread (setup), not in the accept loop.
            sock = self.tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, addr

    def handle_error(self, request, client_address):
        log(f"connection error from {client_address[0]}: {sys.exc_info()[0].__name__}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="A small XKS proxy for tests, backed by a PKCS#11 token")
    ap.add_argument("--module", required=True, help="the PKCS#11 module (.so)")
    ap.add_argument("--token-label", required=True)
    ap.add_argument("--pin-file", required=True)
    ap.add_argument("--access-key-id", action="append", required=True,
                    help="repeat together with --secret-file for several credentials")
    ap.add_argument("--secret-file", action="append", required=True)
    ap.add_argument("--region", required=True)
    ap.add_argument("--service", default=DEFAULT_SERVICE, help=f"SigV4 service name (default {DEFAULT_SERVICE})")
    ap.add_argument("--uri-prefix", default="")
    ap.add_argument("--tls-cert")
    ap.add_argument("--tls-key")
    ap.add_argument("--client-ca", help="require client certificates signed by this CA (mutual TLS)")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--no-ciphertext-metadata", action="store_true",
                    help="do not return ciphertextMetadata from encrypt")
    a = ap.parse_args(argv)

    prefix = a.uri_prefix.rstrip("/")
    if not PREFIX_RE.fullmatch(prefix) or len(prefix + API_PATH) > 128:
        ap.error("--uri-prefix: /segments of [A-Za-z0-9_-], at most 128 characters with /kms/xks/v1")
    if len(a.access_key_id) != len(a.secret_file):
        ap.error("give one --secret-file per --access-key-id")
    if bool(a.tls_cert) != bool(a.tls_key):
        ap.error("--tls-cert and --tls-key go together")
    credentials = {}
    for akid, secret_file in zip(a.access_key_id, a.secret_file):
        credentials[akid] = Path(secret_file).read_text().strip("\r\n")
    pin = Path(a.pin_file).read_text().strip("\r\n")

    try:
        hsm = Hsm(a.module, a.token_label, pin)
    except Exception as e:  # TokenUnavailable, a wrong PIN, a missing module, ...
        log(f"cannot use token {a.token_label!r}: {type(e).__name__}: {e}")
        return 2
    proxy = Proxy(hsm, credentials, a.region, a.service, prefix, not a.no_ciphertext_metadata)
    server = Server(("127.0.0.1", a.port), make_handler(proxy))
    if a.tls_cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.set_alpn_protocols(["http/1.1"])
        ctx.load_cert_chain(a.tls_cert, a.tls_key)
        if a.client_ca:
            ctx.verify_mode = ssl.CERT_REQUIRED
            ctx.load_verify_locations(a.client_ca)
        server.tls = ctx
    port = server.server_address[1]
    log(f"serving {'https' if a.tls_cert else 'http'}://127.0.0.1:{port}{prefix}{API_PATH} "
        f"token={a.token_label!r} region={a.region} service={a.service}")
    sys.stdout.write(f"LISTENING {port}\n")
    sys.stdout.flush()
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


# ---------------------------------------------------------------------------------- test helper

def test_certificates(directory: Path) -> tuple[Path, Path, Path]:
    """A throwaway CA and a server certificate it signs for 127.0.0.1 / localhost, as a
    customer's private PKI would give (strict TLS clients such as rustls refuse a CA
    certificate used as the server's own), and a client certificate of the same CA
    (xks-client-cert.pem, xks-client-key.pem) for mutual TLS. Returns (ca_file,
    cert_file, key_file)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)

    def builder(subject: str, issuer: str, public_key):
        return (x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
                .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
                .public_key(public_key)
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(minutes=5))
                .not_valid_after(now + datetime.timedelta(days=1)))

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (builder("xks test CA", "xks test CA", ca_key.public_key())
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                       data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                       crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (builder("localhost", "xks test CA", key.public_key())
            .add_extension(x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    client_key = ec.generate_private_key(ec.SECP256R1())
    client = (builder("kcm xks client", "xks test CA", client_key.public_key())
              .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
              .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
              .sign(ca_key, hashes.SHA256()))
    ca_path = directory / "xks-ca.pem"
    cert_path, key_path = directory / "xks-cert.pem", directory / "xks-key.pem"
    ca_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    for c, k, c_path, k_path in ((cert, key, cert_path, key_path),
                                 (client, client_key, directory / "xks-client-cert.pem",
                                  directory / "xks-client-key.pem")):
        c_path.write_bytes(c.public_bytes(serialization.Encoding.PEM))
        k_path.write_bytes(k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
        k_path.chmod(0o600)
    return ca_path, cert_path, key_path


def random_access_key_id() -> str:
    """20-30 characters of A-Z and 2-7, as the spec asks (here 26)."""
    return base64.b32encode(secrets.token_bytes(16)).decode().rstrip("=")[:26]


def decrypt_fields(enc: dict, aad: bytes | None = None, **override) -> dict:
    """The fields of a Decrypt request (no requestMetadata) for an Encrypt's answer `enc`,
    with `aad` if given; an override of None drops that field. Shared by the tests of
    this proxy and of kcm's XKS door."""
    body = {"encryptionAlgorithm": "AES_GCM"}
    for f in ("ciphertext", "initializationVector", "authenticationTag", "ciphertextMetadata"):
        if f in enc:
            body[f] = enc[f]
    if aad is not None:
        body["additionalAuthenticatedData"] = base64.b64encode(aad).decode()
    body.update(override)
    return {k: v for k, v in body.items() if v is not None}


def random_secret() -> str:
    return base64.b64encode(secrets.token_bytes(32)).decode()


class XksProxy:
    """This proxy as a subprocess, for tests. A context manager (start on enter, stop on exit).

    proxy = XksProxy(tmp_path, token)          # softhsm.Token
    with proxy:
        proxy.create_key("customer-key-1")     # an AES-256 key (CKA_LABEL) in the token
        proxy.endpoint   # "https://127.0.0.1:<port>"            (XksProxyUriEndpoint)
        proxy.uri_path   # "<prefix>/kms/xks/v1"                  (XksProxyUriPath)
        proxy.url        # endpoint + uri_path: the base the API paths are appended to
        proxy.ca_file    # the self-signed certificate to trust (None without TLS)
        proxy.access_key_id, proxy.secret, proxy.region, proxy.service   # the SigV4 settings
        proxy.disable("customer-key-1"); proxy.enable("customer-key-1")
        proxy.answer_error("customer-key-1", "decrypt", "ThrottlingException")  # a canned answer
        proxy.real_answers("customer-key-1", "decrypt")
        proxy.call("keys/customer-key-1/metadata", {...})  # botocore-signed POST -> (status, json)
        proxy.output()   # everything the proxy printed (stdout + stderr)
    """

    SCRIPT = Path(__file__).resolve()

    def __init__(self, root: Path, token, access_key_id: str | None = None, secret: str | None = None,
                 region: str = "us-east-1", uri_prefix: str = "", tls: bool = True,
                 ciphertext_metadata: bool = True, service: str = DEFAULT_SERVICE,
                 extra_credentials: dict[str, str] | None = None, startup_timeout: float = 20.0):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.token = token
        self.access_key_id = access_key_id or random_access_key_id()
        self.secret = secret or random_secret()
        self.extra_credentials = dict(extra_credentials or {})
        self.region, self.service = region, service
        self.uri_prefix = uri_prefix.rstrip("/")
        self.tls = tls
        self.ciphertext_metadata = ciphertext_metadata
        self.startup_timeout = startup_timeout
        self.proc: subprocess.Popen | None = None
        self.port: int | None = None
        self.ca_file: str | None = None
        self.log_path = self.root / "xks-proxy.log"
        self._stdout: list[str] = []

    # --- addresses
    @property
    def endpoint(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    @property
    def uri_path(self) -> str:
        return self.uri_prefix + API_PATH

    @property
    def url(self) -> str:
        return self.endpoint + self.uri_path

    # --- lifecycle
    def start(self) -> "XksProxy":
        pin_file = self.token.write_pin_file(self.root / "xks-pin")
        creds = [(self.access_key_id, self.secret)] + list(self.extra_credentials.items())
        cmd = [sys.executable, str(self.SCRIPT), "--module", self.token.module, "--token-label", self.token.label,
               "--pin-file", str(pin_file), "--region", self.region, "--service", self.service,
               "--port", "0"]
        for i, (akid, secret) in enumerate(creds):
            secret_file = self.root / f"xks-secret-{i}"
            secret_file.write_text(secret + "\n")
            secret_file.chmod(0o600)
            cmd += ["--access-key-id", akid, "--secret-file", str(secret_file)]
        if self.uri_prefix:
            cmd += ["--uri-prefix", self.uri_prefix]
        if self.tls:
            ca, cert, key = test_certificates(self.root)
            self.ca_file = str(ca)
            cmd += ["--tls-cert", str(cert), "--tls-key", str(key)]
        if not self.ciphertext_metadata:
            cmd.append("--no-ciphertext-metadata")
        env = dict(os.environ, **self.token.env)
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self._log, env=env, text=True)
        ready = threading.Event()

        def pump():
            for line in self.proc.stdout:
                self._stdout.append(line)
                if line.startswith("LISTENING ") and self.port is None:
                    self.port = int(line.split()[1])
                    ready.set()
            ready.set()

        threading.Thread(target=pump, daemon=True).start()
        if not ready.wait(self.startup_timeout) or self.port is None:
            self.stop()
            raise RuntimeError(f"the XKS proxy did not start within {self.startup_timeout}s:\n{self.output()}")
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        if getattr(self, "_log", None) is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> "XksProxy":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def output(self) -> str:
        """All the proxy printed so far: stdout, then its log (stderr)."""
        err = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "".join(self._stdout) + err

    # --- keys in the token, and the customer's switch
    def create_key(self, label: str, id_hex: str | None = None) -> str:
        """An AES-256 secret key (encrypt/decrypt, sensitive) labelled `label` in the token."""
        self.token.customer_key(label, id_hex or secrets.token_hex(8))
        return label

    def delete_key(self, label: str) -> None:
        self.token.delete_key(label)

    def _ssl_context(self):
        return ssl.create_default_context(cafile=self.ca_file) if self.tls else None

    def _admin(self, key_id: str, action: str, body: dict | None = None) -> dict:
        data = json.dumps(body).encode() if body is not None else b""
        req = urllib.request.Request(f"{self.endpoint}/admin/keys/{key_id}/{action}", data=data, method="POST")
        with urllib.request.urlopen(req, timeout=10, context=self._ssl_context()) as r:
            return json.loads(r.read())

    def disable(self, key_id: str) -> dict:
        return self._admin(key_id, "disable")

    def enable(self, key_id: str) -> dict:
        return self._admin(key_id, "enable")

    def answer(self, key_id: str, operation: str, status: int | None, body: str = "",
               headers: dict | None = None, length: bool = True) -> dict:
        """Every later `operation` (metadata, encrypt, decrypt) on `key_id` gets this answer
        as is; `status` None goes back to real answers."""
        return self._admin(key_id, "answer", {"operation": operation, "status": status, "body": body,
                                              "headers": headers or {}, "length": length})

    def answer_error(self, key_id: str, operation: str, error_name: str, message: str = "") -> dict:
        """Every later `operation` on `key_id` fails with the spec's `error_name`, at its status."""
        err = XksError(error_name, message)
        return self.answer(key_id, operation, err.status, json.dumps(err.body()))

    def real_answers(self, key_id: str, operation: str) -> dict:
        return self.answer(key_id, operation, None)

    # --- a signed client (botocore's SigV4Auth), independent of kcm
    def call(self, api_path: str, body: dict | bytes | None = None, *, method: str = "POST",
             access_key_id: str | None = None, secret: str | None = None, region: str | None = None,
             service: str | None = None, sign: bool = True, headers: dict | None = None,
             timeout: float = 10.0):
        """POST `<url>/<api_path>` (e.g. "health", "keys/k1/encrypt"); returns (status, parsed JSON or None)."""
        import requests
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials

        url = f"{self.url}/{api_path.lstrip('/')}"
        data = body if isinstance(body, bytes) else json.dumps(body if body is not None else {}).encode()
        hdrs = {"Content-Type": "application/json", **(headers or {})}
        if sign:
            req = AWSRequest(method=method, url=url, data=data, headers=hdrs)
            SigV4Auth(Credentials(access_key_id or self.access_key_id, secret or self.secret),
                      service or self.service, region or self.region).add_auth(req)
            hdrs = dict(req.headers.items())
        r = requests.request(method, url, data=data, headers=hdrs, timeout=timeout,
                             verify=self.ca_file if self.tls else True)
        try:
            parsed = r.json()
        except ValueError:
            parsed = None
        return r.status_code, parsed


if __name__ == "__main__":
    sys.exit(main())
