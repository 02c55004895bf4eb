"""Helpers for the kcm integration tests: starting real `kcm serve` processes,
talking to them with boto3 / requests, and hand-made SigV4 signing.

Everything here binds and connects to 127.0.0.1 only, and every wait loop is
bounded in both count and time.
"""

from __future__ import annotations

import base64
import configparser
import contextlib
import ctypes
import datetime as _dt
import hashlib
import hmac
import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Optional
from urllib.parse import urlsplit

import boto3
import pytest
import requests
from botocore.config import Config
from botocore.exceptions import ClientError

REPO = Path(__file__).resolve().parents[2]
KCM_BIN = Path(os.environ.get("KCM_BIN", str(REPO / "target" / "release" / "kcm")))
REGION = "us-east-1"
# What a loaded machine adds to a bound the product promises (a revocation bound, an
# external check interval, a restart) when a test checks it: CI runs a debug build on 2
# cores shared with other jobs, where a server or the test itself can go unscheduled for
# seconds. BENCHMARKS.md: timings are never asserted; a promised bound is, plus this.
LOADED_SLACK_S = 10.0
# Length of a "day" on the `fast_server` (deletion windows, rotation periods).
FAST_DAY_SECONDS = 0.05

UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
KEY_ARN_RE = re.compile(
    r"^arn:aws:kms:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):key/(?P<id>"
    + UUID_RE.pattern
    + r")$"
)
ALIAS_ARN_RE = re.compile(r"^arn:aws:kms:[a-z0-9-]+:\d{12}:alias/.+$")

# Environment given to every server unless a test overrides it.
BASE_SERVER_ENV = {
    "KCM_SCHEDULER_INTERVAL_MS": "100",
    "KCM_REGION": REGION,
    "KCM_LOG": os.environ.get("KCM_TEST_LOG", "info"),
}

_BOTO_SESSION = boto3.session.Session()
_BOTO_LOCK = threading.Lock()


def unique(prefix: str = "t") -> str:
    """A short unique name, safe for aliases, tenant and system names."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def free_port() -> int:
    """A currently free TCP port on 127.0.0.1 (bind to port 0 and read it back)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _set_pdeathsig() -> None:  # pragma: no cover - runs in the child
    """Make the server die with the test process, so no server is orphaned."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        PR_SET_PDEATHSIG = 1
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except Exception:
        pass


def read_credentials(path: Path) -> dict[str, tuple[str, str]]:
    """Profiles of an AWS shared-credentials file: name -> (access key id, secret)."""
    cp = configparser.ConfigParser()
    cp.read(path)
    out = {}
    for section in cp.sections():
        name = section
        if name.startswith("profile "):
            name = name[len("profile ") :]
        kid = cp.get(section, "aws_access_key_id", fallback=None)
        sec = cp.get(section, "aws_secret_access_key", fallback=None)
        if kid and sec:
            out[name.strip()] = (kid.strip(), sec.strip())
    return out


# ---------------------------------------------------------------------------
# SigV4, by hand (so tests can sign with a wrong time / service / region).
# test_auth.py checks this against botocore's signer.
# ---------------------------------------------------------------------------


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode("utf-8"), hashlib.sha256).digest()


def sigv4_headers(
    method: str,
    url: str,
    body: bytes,
    headers: dict[str, str],
    access_key: str,
    secret: str,
    region: str = REGION,
    service: str = "kms",
    when: Optional[_dt.datetime] = None,
) -> dict[str, str]:
    """Return `headers` plus Host, X-Amz-Date and a SigV4 Authorization header.

    Signs the same way botocore does for the KMS JSON protocol: signed headers
    are every given header plus host and x-amz-date, lower-cased and sorted.
    """
    when = when or _dt.datetime.now(_dt.timezone.utc)
    amz_date = when.strftime("%Y%m%dT%H%M%SZ")
    datestamp = when.strftime("%Y%m%d")
    parts = urlsplit(url)
    host = parts.netloc
    path = parts.path or "/"
    query = parts.query
    hdrs = dict(headers)
    hdrs["Host"] = host
    hdrs["X-Amz-Date"] = amz_date
    canon = {k.lower(): " ".join(str(v).strip().split()) for k, v in hdrs.items()}
    signed = sorted(canon)
    canonical_headers = "".join(f"{k}:{canon[k]}\n" for k in signed)
    signed_headers = ";".join(signed)
    if query:
        pairs = sorted(tuple(p.split("=", 1) + [""])[:2] for p in query.split("&"))
        canonical_query = "&".join(f"{k}={v}" for k, v in pairs)
    else:
        canonical_query = ""
    payload_hash = hashlib.sha256(body).hexdigest()
    canonical_request = "\n".join(
        [method, path, canonical_query, canonical_headers, signed_headers, payload_hash]
    )
    scope = f"{datestamp}/{region}/{service}/aws4_request"
    string_to_sign = "\n".join(
        [
            "AWS4-HMAC-SHA256",
            amz_date,
            scope,
            hashlib.sha256(canonical_request.encode()).hexdigest(),
        ]
    )
    k = _hmac(("AWS4" + secret).encode(), datestamp)
    k = _hmac(k, region)
    k = _hmac(k, service)
    k = _hmac(k, "aws4_request")
    sig = hmac.new(k, string_to_sign.encode(), hashlib.sha256).hexdigest()
    hdrs["Authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={access_key}/{scope}, "
        f"SignedHeaders={signed_headers}, Signature={sig}"
    )
    return hdrs


# ---------------------------------------------------------------------------
# The server under test
# ---------------------------------------------------------------------------


def stop_process(proc: Optional[subprocess.Popen], timeout: float = 10.0) -> Optional[int]:
    """SIGTERM, wait up to `timeout`, then SIGKILL. Returns the exit code (None: never started)."""
    if proc is None:
        return None
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
    return proc.returncode


def kill_process(proc: Optional[subprocess.Popen]) -> None:
    """SIGKILL (kill -9) and reap, as a crash would end it."""
    if proc is not None and proc.poll() is None:
        proc.kill()
        proc.wait(timeout=10)


class ServerStartError(RuntimeError):
    pass


# Every server log written in this session, and how far each has been read for panics.
_LOGS_READ: dict[Path, int] = {}


def new_panics() -> list[str]:
    """Lines of every `kcm serve` log written since the last call that say a thread
    panicked (Rust's default panic message: `thread '…' panicked at …`). A panic in a
    background task does not fail the request that caused it, so the tests look for
    it here: conftest fails the test during which one appears."""
    found = []
    for path, offset in list(_LOGS_READ.items()):
        try:
            with open(path, "rb") as f:
                f.seek(offset)
                text = f.read()
        except FileNotFoundError:
            continue
        _LOGS_READ[path] = offset + len(text)
        for line in text.decode(errors="replace").splitlines():
            if "panicked at" in line:
                found.append(f"{path.name}: {line.strip()}")
    return found


class Server:
    """One real `kcm serve` process on 127.0.0.1."""

    def __init__(self, data_dir: Path, log_dir: Path, env: Optional[dict] = None, name: str = "kcm"):
        self.data_dir = Path(data_dir)
        self.log_dir = Path(log_dir)
        self.extra_env = dict(env or {})
        self.name = name
        self.trusted_ca: Optional[str] = None
        self.proc: Optional[subprocess.Popen] = None
        self.port: Optional[int] = None
        self.starts = 0
        self._clients: dict[tuple, Any] = {}
        self.stderr_path: Optional[Path] = None
        self.stdout_path: Optional[Path] = None

    # -- paths and urls ----------------------------------------------------
    @property
    def tls_ca(self) -> Optional[str]:
        """The certificate to trust when the server was started with TLS: `trusted_ca` when
        set (a private CA that issued KCM_TLS_CERT), else KCM_TLS_CERT itself (self-signed)."""
        return self.trusted_ca or self.extra_env.get("KCM_TLS_CERT")

    @property
    def url(self) -> str:
        scheme = "https" if self.tls_ca else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    @property
    def credentials_path(self) -> Path:
        return self.data_dir / "credentials"

    def credentials(self) -> dict[str, tuple[str, str]]:
        return read_credentials(self.credentials_path)

    def default_root_id(self) -> str:
        """The id of the default tenant's default root key."""
        return next(r["id"] for r in self.v1_ok("GET", "/v1/root-keys")["root_keys"] if r["default"])

    def creds(self, profile: str = "default") -> tuple[str, str]:
        profiles = self.credentials()
        assert profile in profiles, f"profile {profile!r} missing from {self.credentials_path}: {sorted(profiles)}"
        return profiles[profile]

    # -- lifecycle ---------------------------------------------------------
    def start(self, timeout: float = 30.0, port: Optional[int] = None) -> "Server":
        """Start on a fresh free port (or `port`), wait for /health, /ready and the credentials file."""
        if not KCM_BIN.exists():
            raise ServerStartError(
                f"kcm binary not found at {KCM_BIN}; build it with `cargo build --release -p kcm` "
                "or set KCM_BIN"
            )
        # Private, as kcm requires of a data directory that exists (it makes a new one so).
        self.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        last_err = None
        for attempt in range(3):  # a picked port can be taken before the server binds it
            self.port = port or free_port()
            try:
                self._spawn_and_wait(timeout)
                self._clients.clear()
                return self
            except ServerStartError as e:
                last_err = e
                if port is not None or "in use" not in str(e).lower():
                    raise
        raise last_err  # type: ignore[misc]

    def _spawn_and_wait(self, timeout: float) -> None:
        self.starts += 1
        tag = f"{self.name}-{self.starts}"
        self.stdout_path = self.log_dir / f"{tag}.stdout.log"
        self.stderr_path = self.log_dir / f"{tag}.stderr.log"
        for path in (self.stdout_path, self.stderr_path):
            _LOGS_READ.setdefault(path, 0)
        # Only the settings chosen here reach the server (a developer's KCM_* must not).
        env = {k: v for k, v in os.environ.items() if not k.startswith("KCM_")}
        env.update(BASE_SERVER_ENV)
        env.update(self.extra_env)
        cmd = [str(KCM_BIN), "serve", "--data-dir", str(self.data_dir), "--listen", f"127.0.0.1:{self.port}"]
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                env=env,
                cwd=str(self.log_dir),
                preexec_fn=_set_pdeathsig,
            )
        deadline = time.monotonic() + timeout
        stage = "/health"
        for _ in range(int(timeout / 0.05) + 10):
            if time.monotonic() > deadline:
                break
            rc = self.proc.poll()
            if rc is not None:
                raise ServerStartError(
                    f"kcm serve exited with code {rc} before becoming ready\n{self.log_tail()}"
                )
            try:
                r = requests.get(self.url + stage, timeout=2, verify=self.tls_ca or True)
                if r.status_code == 200:
                    if stage == "/health":
                        stage = "/ready"
                        continue
                    if self.credentials_path.exists() and self.credentials():
                        return
            except requests.RequestException:
                pass
            time.sleep(0.05)
        self.kill()
        raise ServerStartError(f"kcm serve not ready ({stage}) within {timeout}s\n{self.log_tail()}")

    def log_tail(self, n: int = 60) -> str:
        out = []
        for p in (self.stderr_path, self.stdout_path):
            if p and p.exists():
                lines = p.read_text(errors="replace").splitlines()[-n:]
                out.append(f"--- tail of {p} ---\n" + "\n".join(lines))
        return "\n".join(out)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 10.0) -> Optional[int]:
        """SIGTERM, wait up to `timeout`, then SIGKILL. Returns the exit code."""
        return stop_process(self.proc, timeout)

    def kill(self) -> None:
        """SIGKILL (kill -9) and reap."""
        kill_process(self.proc)

    def restart(self, timeout: float = 30.0) -> "Server":
        self.stop()
        return self.start(timeout=timeout)

    # -- clients -----------------------------------------------------------
    def client(
        self,
        profile: Optional[str] = "default",
        access_key: Optional[str] = None,
        secret: Optional[str] = None,
        region: str = REGION,
        service: str = "kms",
    ):
        """A boto3 client for this server, for a profile of its credentials file or explicit keys.

        Client-side parameter validation is off (so the server's validation is what
        is tested) and retries are off (so every request is sent exactly once).
        """
        if access_key is None:
            access_key, secret = self.creds(profile or "default")
        key = (self.port, access_key, secret, region, service)
        with _BOTO_LOCK:
            c = self._clients.get(key)
            if c is None:
                c = _BOTO_SESSION.client(
                    service,
                    endpoint_url=self.url,
                    verify=self.tls_ca,
                    region_name=region,
                    aws_access_key_id=access_key,
                    aws_secret_access_key=secret,
                    config=Config(
                        parameter_validation=False,
                        retries={"total_max_attempts": 1, "mode": "standard"},
                        connect_timeout=5,
                        read_timeout=30,
                    ),
                )
                self._clients[key] = c
        return c

    def new_client(self, access_key: str, secret: str, **kw):
        return self.client(profile=None, access_key=access_key, secret=secret, **kw)

    # -- native REST API ---------------------------------------------------
    def v1(
        self,
        method: str,
        path: str,
        profile: Optional[str] = "default",
        creds: Optional[tuple[str, str]] = None,
        json_body: Any = None,
        data: Optional[bytes] = None,
        headers: Optional[dict] = None,
        auth: bool = True,
        timeout: float = 30,
    ) -> requests.Response:
        """Call the native API with `Authorization: Bearer <id>:<secret>`."""
        h = dict(headers or {})
        if auth:
            kid, sec = creds if creds is not None else self.creds(profile or "default")
            h["Authorization"] = f"Bearer {kid}:{sec}"
        if not path.startswith("/"):
            path = "/" + path
        if not path.startswith("/v1"):
            path = "/v1" + path
        return requests.request(
            method, self.url + path, json=json_body, data=data, headers=h, timeout=timeout,
            verify=self.tls_ca or True,
        )

    def v1_ok(self, method: str, path: str, expect: Iterable[int] = (200, 201, 204), **kw) -> Any:
        r = self.v1(method, path, **kw)
        assert r.status_code in tuple(expect), f"{method} {path} -> {r.status_code}: {r.text[:500]}"
        if r.status_code == 204 or not r.content:
            return None
        return r.json()

    # -- raw AWS JSON protocol ---------------------------------------------
    def aws_raw(
        self,
        operation: str,
        body: bytes | dict | None,
        creds: Optional[tuple[str, str]] = None,
        sign: bool = True,
        region: str = REGION,
        service: str = "kms",
        when: Optional[_dt.datetime] = None,
        extra_headers: Optional[dict] = None,
    ) -> requests.Response:
        """Send one TrentService request by hand (optionally signed with a chosen time/scope)."""
        if isinstance(body, dict) or body is None:
            body = json.dumps(body or {}).encode()
        headers = {
            "Content-Type": "application/x-amz-json-1.1",
            "X-Amz-Target": f"TrentService.{operation}",
        }
        headers.update(extra_headers or {})
        url = self.url + "/"
        if sign:
            kid, sec = creds if creds is not None else self.creds("default")
            headers = sigv4_headers("POST", url, body, headers, kid, sec, region=region, service=service, when=when)
        return requests.post(url, data=body, headers=headers, timeout=30)

    # -- tenants and access keys (native API) ------------------------------
    def create_tenant(self, name: Optional[str] = None) -> dict:
        """Create a tenant as system-admin. Returns the response body ({tenant, access_key})."""
        body = self.v1_ok("POST", "/v1/tenants", expect=(201,), profile="system-admin",
                          json_body={"name": name or unique("tenant")})
        assert body["access_key"]["secret_access_key"], body
        return body

    def create_access_key(
        self,
        role: str,
        system: Optional[str] = None,
        profile: str = "default",
        creds: Optional[tuple[str, str]] = None,
        description: Optional[str] = None,
    ) -> dict:
        payload: dict[str, Any] = {"role": role}
        if system is not None:
            payload["system"] = system
        if description is not None:
            payload["description"] = description
        body = self.v1_ok("POST", "/v1/access-keys", expect=(201,), profile=profile, creds=creds,
                          json_body=payload)
        ak = body.get("access_key", body)
        assert ak["access_key_id"] and ak["secret_access_key"], body
        return ak

    def client_for(self, access_key_obj: dict, **kw):
        return self.new_client(access_key_obj["access_key_id"], access_key_obj["secret_access_key"], **kw)


def system_with_key(srv: Server, root_id: str, name: str) -> tuple[dict, Any, str]:
    """A new system (named `name` and a unique suffix) below root key `root_id`, a
    tenant-admin client scoped to that system, and a new key in it: (system, client, key
    id). What a test then checks of them (status, round trip) stays in the test."""
    system = srv.v1_ok("POST", "/v1/systems", expect=(201,),
                       json_body={"name": unique(name), "root_key_id": root_id})
    client = srv.client_for(srv.create_access_key("tenant-admin", system=system["id"]))
    key_id = client.create_key(Description=unique(name))["KeyMetadata"]["KeyId"]
    return system, client, key_id


def start_or_fail(srv: Server) -> None:
    """Start `srv`, or fail the test with the server's own words (its start error and log
    tail) rather than a traceback through this module."""
    err = None
    try:
        srv.start()
    except ServerStartError as e:
        err = str(e)
    # Failed outside the `except`, so pytest does not print the ServerStartError again as
    # the cause of the failure.
    if err is not None:
        pytest.fail(err, pytrace=False)


# ---------------------------------------------------------------------------
# Assertion helpers
# ---------------------------------------------------------------------------


def assert_days_after(when, before, after, days):
    """`when` is `days` days after the instant the server handled a request sent at
    `before` and answered by `after` (the client's clock, which is the server's here).
    The second of slack covers the server's millisecond dates, not a loose day."""
    lo = before + _dt.timedelta(days=days) - _dt.timedelta(seconds=1)
    hi = after + _dt.timedelta(days=days) + _dt.timedelta(seconds=1)
    assert lo <= when <= hi, f"{when} is not {days} days after [{before}, {after}]"


def error_code(e: ClientError) -> str:
    return e.response.get("Error", {}).get("Code", "")


@contextlib.contextmanager
def kms_error(code: str, status: int = 400):
    """Expect the block to fail with a botocore ClientError of exactly type `code`, with
    exactly HTTP `status` and a non-empty message. AWS KMS answers every client error
    with 400 (its API reference gives "HTTP Status Code: 400" for each of them), and
    kcm's AWS door does the same (crates/kcm-aws-api/src/error.rs); only a dependency
    (503) or an internal failure (500) differ, and a test expecting one says so."""
    assert isinstance(code, str) and code, "name the one error type expected"
    with pytest.raises(ClientError) as ei:
        yield ei
    got = error_code(ei.value)
    err = ei.value.response.get("Error", {})
    got_status = ei.value.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    assert (got, got_status) == (code, status), \
        f"expected {code} ({status}), got {got!r} ({got_status}): {err.get('Message')!r}"
    assert (err.get("Message") or "").strip(), f"{code} came without a message"


def raw_error_type(r: requests.Response) -> str:
    """The AWS error type of a raw response (body `__type`, or the x-amzn-ErrorType header)."""
    t = ""
    try:
        t = r.json().get("__type", "")
    except ValueError:
        pass
    if not t:
        t = r.headers.get("x-amzn-ErrorType", "")
    # AWS sometimes sends "com.amazon...#Type" or "Type:http://..."
    t = t.split("#")[-1].split(":")[0]
    return t


def v1_error_code(r: requests.Response) -> str:
    try:
        return r.json()["error"]["code"]
    except (ValueError, KeyError, TypeError):
        return ""


def read_http_answer(sock) -> tuple[int, dict, bytes]:
    """Reads one HTTP/1.1 answer off `sock` (a socket, or a TLS-wrapped one): its head and
    as much body as its Content-Length says, or up to the close. (status, headers with
    lower-case names, body)."""
    def announced(data: bytes) -> int:
        for line in data.split(b"\r\n\r\n", 1)[0].split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                return int(value)
        return 0

    data = b""
    while b"\r\n\r\n" not in data or len(data.split(b"\r\n\r\n", 1)[1]) < announced(data):
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head_text, _, body = data.partition(b"\r\n\r\n")
    lines = head_text.decode().split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
    return int(lines[0].split()[1]), headers, body


def poll(fn: Callable[[], Any], timeout: float, interval: float = 0.1, what: str = "condition") -> Any:
    """Call fn until it returns a truthy value; bounded in time and count."""
    deadline = time.monotonic() + timeout
    last = None
    for _ in range(int(timeout / interval) + 2):
        last = fn()
        if last:
            return last
        if time.monotonic() > deadline:
            break
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last value: {last!r})")


def kms_pages(list_call: Callable[..., dict], max_pages: int = 10_000, **kw) -> Iterator[dict]:
    """Every page of a paged AWS KMS listing (`kms.list_keys`, `kms.list_aliases`, ...)
    called with `kw`, following NextMarker until a page is not Truncated; fails if the
    listing has not ended after `max_pages` pages, so a server that never stops saying
    Truncated cannot hang a test."""
    marker = None
    for _ in range(max_pages):
        page = list_call(**kw, **({"Marker": marker} if marker else {}))
        yield page
        if not page.get("Truncated"):
            return
        assert page.get("NextMarker"), f"{list_call.__name__}: Truncated without NextMarker"
        marker = page["NextMarker"]
    raise AssertionError(f"{list_call.__name__} paging did not end")


def first_refusal_within(call: Callable[[], Any], seconds: float, error: type = ClientError,
                         interval: float = 0.05, what: str = "") -> tuple[Exception, float]:
    """Call `call` until it raises `error`; that error and the time it took. For a change
    that reaches a client later (a revocation, a disable on another node): fails if
    `call` still works `seconds` later."""
    start = time.monotonic()
    for _ in range(int(seconds / interval) + 2):
        try:
            call()
        except error as e:
            return e, time.monotonic() - start
        elapsed = time.monotonic() - start
        assert elapsed < seconds, f"{what} still allowed {elapsed:.2f} s after the change"
        time.sleep(interval)
    raise AssertionError(f"{what} still allowed after {seconds} s")


def refused_within(call: Callable[[], Any], seconds: float, code: str, status: int = 400,
                   interval: float = 0.05) -> float:
    """Call `call` until it fails with an AWS error; the time that took
    (`first_refusal_within`). Fails if the refusal is not exactly `code` with HTTP
    `status` (see `kms_error`)."""
    assert isinstance(code, str) and code, "name the one error type expected"
    e, took = first_refusal_within(call, seconds, ClientError, interval)
    got = (error_code(e), e.response.get("ResponseMetadata", {}).get("HTTPStatusCode"))
    assert got == (code, status), f"expected {code} ({status}), got {got}: {e}"
    return took


def works_again_within(call: Callable[[], Any], seconds: float, what: str, interval: float = 0.05,
                       error: type = ClientError) -> Any:
    """Call `call` until it no longer raises `error` (an AWS error unless told); what it
    returned. For a change undone (a key re-enabled, a dependency back) that reaches a
    client later: fails with `what` if `call` still fails `seconds` later. An assertion
    inside `call` fails at once: only a refusal is waited out."""
    deadline = time.monotonic() + seconds
    for _ in range(int(seconds / interval) + 2):
        try:
            return call()
        except error:
            assert time.monotonic() < deadline, what
            time.sleep(interval)
    raise AssertionError(what)


def kcm_cli(srv: "Server", *args, output_json: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
    """The real `kcm` CLI against `srv` (its default profile), trusting its CA over HTTPS;
    `--output json` unless `output_json` is false."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KCM_")}
    if srv.tls_ca:
        env["SSL_CERT_FILE"] = srv.tls_ca
    cmd = [str(KCM_BIN), "--endpoint", srv.url, "--credentials-file", str(srv.credentials_path)]
    if output_json:
        cmd += ["--output", "json"]
    return subprocess.run(cmd + [str(a) for a in args], capture_output=True, stdin=subprocess.DEVNULL,
                          timeout=timeout, env=env)


def kcm_cli_json(srv: "Server", *args) -> Any:
    """What `kcm --output json <args>` printed, parsed; the command must succeed."""
    return json.loads(cli_ok(kcm_cli(srv, *args)).stdout)


def cli_ok(cp: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    """`cp`, checked to have exited 0; otherwise the failure shows the command and the
    tails of what it wrote."""
    assert cp.returncode == 0, (
        f"{' '.join(map(str, cp.args))} exited {cp.returncode}\n"
        f"stderr: {cp.stderr.decode(errors='replace')[-3000:]}\nstdout: {cp.stdout[:2000]!r}"
    )
    return cp


def b64(b: bytes) -> str:
    return base64.b64encode(b).decode()


class RoundTrips:
    """`threads` clients that Encrypt and Decrypt under `key_id` without pause, on one
    shared boto3 client, while a test injects a fault (`with RoundTrips(...) as load:`).

    Every call is kept in `calls` as (thread, start, seconds, outcome), the outcome
    "ok", (status, error code, message) for an error answer, or "transport: …" for a
    timeout or a dropped connection; a round trip that returned something other than
    what was encrypted is kept in `wrong`. Leaving the block stops the clients."""

    def __init__(self, kms, key_id: str, threads: int = 4, join_timeout: float = 15.0):
        self.kms, self.key_id, self.join_timeout = kms, key_id, join_timeout
        self.calls: list[tuple[int, float, float, object]] = []
        self.wrong: list[str] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._client, args=(t,), daemon=True)
                         for t in range(threads)]

    @property
    def clients(self) -> int:
        """How many clients run."""
        return len(self._threads)

    def __enter__(self) -> "RoundTrips":
        for th in self._threads:
            th.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        for th in self._threads:
            th.join(timeout=self.join_timeout)

    def _client(self, t: int) -> None:
        n = 0
        while not self._stop.is_set():
            n += 1
            plaintext = f"thread {t} call {n}".encode()
            started = time.monotonic()
            try:
                blob = self.kms.encrypt(KeyId=self.key_id, Plaintext=plaintext)["CiphertextBlob"]
                back = self.kms.decrypt(CiphertextBlob=blob)
                if back["Plaintext"] != plaintext or not back["KeyId"].endswith(self.key_id):
                    self.wrong.append(f"thread {t} call {n}: {back['Plaintext']!r} under {back['KeyId']}")
                outcome: object = "ok"
            except ClientError as e:
                r = e.response
                outcome = (r["ResponseMetadata"]["HTTPStatusCode"], r["Error"]["Code"], r["Error"]["Message"])
            except Exception as e:  # a timeout or a dropped connection: what must not happen
                outcome = f"transport: {e!r}"
            with self._lock:
                self.calls.append((t, started, time.monotonic() - started, outcome))

    def wait_until_every_client_succeeds_after(self, moment: float, bound: float, what: str) -> None:
        """Returns once every client has had a call that started after `moment` succeed;
        fails the test if that takes more than `bound` seconds from `moment`."""
        while True:
            with self._lock:
                recovered = {t for t, s, _, o in self.calls if o == "ok" and s > moment}
            if len(recovered) == len(self._threads):
                return
            assert time.monotonic() - moment < bound, what
            time.sleep(0.05)

    def retryable_failures(self, call_bound: float, none_failed: str) -> tuple[list, set, float]:
        """Checks what an outage of a dependency must look like to the clients: nothing
        wrong returned, no transport failure, some call failed (`none_failed` says what
        it means if none did), every error a retryable `503 DependencyTimeoutException`
        saying to retry, no call longer than `call_bound`. Returns the failed calls,
        their distinct outcomes and the longest call."""
        assert not self.wrong, self.wrong
        failed = [c for c in self.calls if c[3] != "ok"]
        outcomes = {o for *_, o in failed}
        transport = [o for o in outcomes if isinstance(o, str)]
        assert not transport, transport
        assert failed, none_failed
        assert {(status, code) for status, code, _ in outcomes} == {(503, "DependencyTimeoutException")}, outcomes
        assert all("retry" in message for _, _, message in outcomes), outcomes
        longest = max(d for _, _, d, _ in self.calls)
        assert longest < call_bound, f"a call took {longest:.2f} s"
        return failed, outcomes, longest
