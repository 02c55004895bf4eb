"""Connections and pre-authentication work are bounded (issue 14, section 1).

One real `kcm serve` with a small connection cap, and on loopback at once: cap + 500
idle TCP connections, 200 clients that never finish their request head, and 300
bodies of 1 MiB announced and never finished, signed with a real access key id.
While they are all held, a signed Encrypt on a new connection must succeed in under
a second (the issue's bar), the server must hold no more descriptors than the cap
allows and grow by less than 64 MiB; once they leave, descriptors return to their
baseline and the heap in use (the allocator's count, from /metrics) to within what
the round's audit records cost, twice over. Every wait is bounded; nothing leaves loopback.

The figures are printed (run with -s) and recorded in RELIABILITY.md.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import resource
import socket
import threading
import time

import pytest
import requests

from kcmtest import read_http_answer, sigv4_headers, unique

CAP = 200
IDLE = CAP + 500
SLOW_HEADERS = 200
STALLED_BODIES = 300
BODY_BYTES = 1 << 20
# What the server may hold beyond the cap: its own listening sockets, store, log,
# the eviction in progress.
FD_SLACK = 32
MAX_GROWTH_MIB = 64
# Heap in use (allocated, not freed) a round may leave behind; see the leak check.
HEAP_KEPT_MIB = 1


def fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def heap_mib(srv) -> float:
    """The server's heap in use (allocated, not yet freed), from its /metrics gauge:
    unlike RSS it falls back when what a burst allocated is freed, so a leak is what
    stays up."""
    text = requests.get(srv.url + "/metrics", timeout=10).text
    for line in text.splitlines():
        if line.startswith("kcm_process_heap_bytes "):
            return int(line.split()[1]) / (1 << 20)
    raise AssertionError("no kcm_process_heap_bytes in /metrics")


def kept_heap_mib(srv, settle_s: float = 5.0) -> float:
    """The heap the server keeps: the lowest `heap_mib` over `settle_s` seconds. Right
    after a round, on a loaded machine, tasks of the connections just closed may still be
    ending; what they free within seconds is not kept, and a leak stays up throughout."""
    lowest = heap_mib(srv)
    deadline = time.monotonic() + settle_s
    while time.monotonic() < deadline:
        time.sleep(0.5)
        lowest = min(lowest, heap_mib(srv))
    return lowest


def connect(port: int) -> socket.socket | None:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(2)
    try:
        s.connect(("127.0.0.1", port))
    except OSError:
        s.close()
        return None
    s.setblocking(False)
    return s


def send_some(s: socket.socket, data: bytes) -> int:
    """Sends what the socket takes now; 0 once the server closed it."""
    try:
        return s.send(data)
    except BlockingIOError:
        return 0
    except OSError:
        return 0


def stalled_body_head(srv, creds: tuple[str, str], chunked: bool) -> bytes:
    """The head of an Encrypt announcing a 1 MiB body, signed with a real access key id,
    the right scope and the current date: everything the head can show is right."""
    url = srv.url + "/"
    headers = {
        "Content-Type": "application/x-amz-json-1.1",
        "X-Amz-Target": "TrentService.Encrypt",
    }
    signed = sigv4_headers("POST", url, b"x" * BODY_BYTES, headers, *creds)
    lines = [f"{k}: {v}" for k, v in signed.items()]
    lines.append("Transfer-Encoding: chunked" if chunked else f"Content-Length: {BODY_BYTES}")
    return ("POST / HTTP/1.1\r\n" + "\r\n".join(lines) + "\r\n\r\n").encode()


class Attack:
    """The hostile clients, held until `release`."""

    def __init__(self, srv):
        self.srv = srv
        self.port = srv.port
        self.idle: list[socket.socket] = []
        self.slow: list[socket.socket] = []
        self.bodies: list[socket.socket] = []
        self.stop = threading.Event()
        self.trickler: threading.Thread | None = None

    def open_idle(self) -> None:
        for _ in range(IDLE):
            s = connect(self.port)
            if s is not None:
                self.idle.append(s)

    def open_slow_headers(self) -> None:
        for i in range(SLOW_HEADERS):
            s = connect(self.port)
            if s is not None:
                send_some(s, f"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow-{i}: ".encode())
                self.slow.append(s)

        def trickle() -> None:
            # One more byte of head per client every half second, never the end.
            while not self.stop.wait(0.5):
                for s in self.slow:
                    send_some(s, b"a")

        self.trickler = threading.Thread(target=trickle, daemon=True)
        self.trickler.start()

    def open_stalled_bodies(self, creds: tuple[str, str]) -> None:
        heads = {c: stalled_body_head(self.srv, creds, c) for c in (False, True)}
        pending = []
        for i in range(STALLED_BODIES):
            chunked = i % 2 == 1
            s = connect(self.port)
            if s is None:
                continue
            # All but the last byte of the body: the request never completes.
            if chunked:
                body = b"%x\r\n" % BODY_BYTES + b"x" * (BODY_BYTES - 1)
            else:
                body = b"x" * (BODY_BYTES - 1)
            self.bodies.append(s)
            pending.append([s, memoryview(heads[chunked] + body)])
        # Push what the server takes, for at most 10 s; then the bodies stall.
        deadline = time.monotonic() + 10
        while pending and time.monotonic() < deadline:
            progressed = False
            for item in pending:
                n = send_some(item[0], item[1][:65536])
                if n:
                    item[1] = item[1][n:]
                    progressed = True
            pending = [p for p in pending if len(p[1]) and not _closed(p[0])]
            if not progressed:
                time.sleep(0.01)

    def release(self) -> None:
        self.stop.set()
        if self.trickler is not None:
            self.trickler.join(timeout=5)
        for s in self.idle + self.slow + self.bodies:
            with contextlib.suppress(OSError):
                s.close()


def _closed(s: socket.socket) -> bool:
    """Whether the server closed (or reset) the connection; a pending answer is read."""
    try:
        data = s.recv(4096)
    except BlockingIOError:
        return False
    except OSError:
        return True
    return data == b"" or data.startswith(b"HTTP/1.1 413")


class Sampler:
    """The server's RSS and descriptors, sampled every 50 ms: the peak is what counts."""

    def __init__(self, pid: int):
        self.pid = pid
        self.peak_rss = 0.0
        self.peak_fds = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        while not self.stop.is_set():
            with contextlib.suppress(OSError):
                self.peak_rss = max(self.peak_rss, rss_mib(self.pid))
                self.peak_fds = max(self.peak_fds, fds(self.pid))
            self.stop.wait(0.05)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(timeout=5)


def signed_encrypt(srv, key_id: str) -> float:
    """One signed Encrypt on a new connection; its latency in seconds."""
    started = time.perf_counter()
    r = srv.aws_raw("Encrypt", {"KeyId": key_id, "Plaintext": base64.b64encode(b"under attack").decode()})
    elapsed = time.perf_counter() - started
    assert r.status_code == 200, f"{r.status_code}: {r.text[:300]}"
    assert r.json()["CiphertextBlob"]
    return elapsed


def wait_until(check, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return check()


@pytest.fixture
def many_descriptors():
    """The test process holds about 1,200 sockets: raise its soft limit to the hard one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = IDLE + SLOW_HEADERS + STALLED_BODIES + 200
    if hard != resource.RLIM_INFINITY and hard < need:
        pytest.skip(f"the open-file hard limit ({hard}) is below the {need} sockets this test holds")
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard if hard != resource.RLIM_INFINITY else need, hard))
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def attack_round(srv, key_id: str, creds: tuple[str, str]) -> dict:
    """One attack, held while five signed Encrypts are timed, then released; what was
    seen. The stalled bodies come first and the idle connections last, so that when
    the Encrypts arrive the cap is full of clients that never finish a request."""
    pid = srv.proc.pid
    attack = Attack(srv)
    try:
        with Sampler(pid) as sampler:
            attack.open_stalled_bodies(creds)
            attack.open_slow_headers()
            attack.open_idle()
            during_fds = fds(pid)
            latencies = [signed_encrypt(srv, key_id) for _ in range(5)]
            during_rss = rss_mib(pid)
        held = len(attack.idle) + len(attack.slow) + len(attack.bodies)
    finally:
        attack.release()
    return {
        "held": held,
        "idle": len(attack.idle),
        "slow": len(attack.slow),
        "bodies": len(attack.bodies),
        "latencies": latencies,
        "during_fds": during_fds,
        "peak_fds": sampler.peak_fds,
        "during_rss": during_rss,
        "peak_rss": sampler.peak_rss,
    }


def test_idle_slow_and_stalled_clients_cannot_lock_out_or_bloat_the_server(spawn_server, many_descriptors):
    srv = spawn_server(env={"KCM_MAX_CONNECTIONS": str(CAP), "KCM_METRICS": "public"})
    pid = srv.proc.pid
    creds = srv.creds("default")
    key_id = srv.client().create_key(Description=unique("hostile"))["KeyMetadata"]["KeyId"]
    for _ in range(3):  # warm: caches, the audit writer, allocator arenas
        signed_encrypt(srv, key_id)
    time.sleep(0.5)
    base_fds, base_rss, base_heap = fds(pid), rss_mib(pid), kept_heap_mib(srv)

    rounds = []
    for _ in range(2):  # twice: what is kept after one attack must not grow with the next
        seen = attack_round(srv, key_id, creds)
        seen["fds_back"] = wait_until(lambda: fds(pid) <= base_fds + 2, timeout=15)
        time.sleep(1)
        seen["after_fds"], seen["after_rss"], seen["after_heap"] = fds(pid), rss_mib(pid), kept_heap_mib(srv)
        rounds.append(seen)
        print(
            f"\nhostile connections: {seen['held']} held ({seen['idle']} idle, {seen['slow']} slow-header, "
            f"{seen['bodies']} stalled 1 MiB bodies); cap {CAP}\n"
            f"signed Encrypt under attack: {', '.join(f'{t * 1000:.0f} ms' for t in seen['latencies'])}\n"
            f"descriptors: baseline {base_fds}, during {seen['during_fds']} (peak {seen['peak_fds']}), "
            f"after {seen['after_fds']}\n"
            f"RSS MiB: baseline {base_rss:.1f}, during {seen['during_rss']:.1f} (peak {seen['peak_rss']:.1f}), "
            f"after {seen['after_rss']:.1f}\n"
            f"heap MiB: baseline {base_heap:.2f}, after {seen['after_heap']:.2f}"
        )

    for seen in rounds:
        assert seen["held"] >= IDLE + SLOW_HEADERS + STALLED_BODIES - 10, "the test could not open its connections"
        assert max(seen["latencies"]) < 1.0, seen["latencies"]
        assert seen["peak_fds"] <= base_fds + CAP + FD_SLACK, (seen["peak_fds"], base_fds)
        assert seen["peak_rss"] - base_rss < MAX_GROWTH_MIB, (seen["peak_rss"], base_rss)
        assert seen["fds_back"], f"descriptors did not return to the baseline: {seen['after_fds']} vs {base_fds}"
        # The allocator keeps freed pages for reuse (10-16 MiB of RSS measured after
        # a round on debug and release builds, creeping up by a few MiB a round as
        # more of its arenas are touched), so RSS "back" is within half the growth
        # allowed — main stayed 166-397 MiB up. The leak check is the heap in use.
        assert seen["after_rss"] - base_rss < MAX_GROWTH_MIB / 2, (seen["after_rss"], base_rss)
        assert seen["after_heap"] - base_heap < HEAP_KEPT_MIB, (seen["after_heap"], base_heap)
    # What one round keeps is the store's page cache over that round's audit records
    # (0.10-0.15 MiB measured; SQLite bounds it), so a second round adds about as much
    # again; 400 bytes kept per hostile connection would add more than the bound.
    assert rounds[1]["after_heap"] - rounds[0]["after_heap"] < HEAP_KEPT_MIB / 2, [r["after_heap"] for r in rounds]
    # And the server is whole.
    signed_encrypt(srv, key_id)


def head_only(srv, head: bytes) -> tuple[int, dict, dict]:
    """Sends a request head alone (its body never follows) and reads the answer:
    (status, headers, JSON body). What the server says before reading any body."""
    with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as s:
        s.sendall(head)
        status, headers, body = read_http_answer(s)
    return status, headers, json.loads(body or b"{}")


def test_an_oversized_body_is_refused_from_its_length_before_it_is_sent(server):
    # AWS API: a head signed with a real key, announcing 1 MiB: 413 in AWS's shape.
    status, headers, body = head_only(server, stalled_body_head(server, server.creds("default"), chunked=False))
    assert status == 413, body
    assert body["__type"] == "RequestEntityTooLargeException", body
    assert "131072" in body["message"], body
    assert headers.get("x-amzn-requestid"), headers
    # Unsigned, it is refused before the body is even considered.
    status, _, body = head_only(
        server,
        b"POST / HTTP/1.1\r\nHost: x\r\nX-Amz-Target: TrentService.Encrypt\r\n"
        b"Content-Type: application/x-amz-json-1.1\r\nContent-Length: 1048576\r\n\r\n",
    )
    assert (status, body["__type"]) == (400, "MissingAuthenticationTokenException"), body
    # /v1 with a valid bearer token: 413 in its own shape.
    kid, secret = server.creds("default")
    status, _, body = head_only(
        server,
        f"POST /v1/systems HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {kid}:{secret}\r\n"
        "Content-Type: application/json\r\nContent-Length: 1048576\r\n\r\n".encode(),
    )
    assert (status, body["error"]["code"]) == (413, "PayloadTooLarge"), body
