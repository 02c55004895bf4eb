"""Test tools for the Kubernetes KMS v2 plugin: the `kcm kms-plugin` process, and a
gRPC client (grpcio, stubs generated from proto/k8s/kms/v2/api.proto at test time)
that checks each answer the way the Kubernetes API server does before it uses it."""

from __future__ import annotations

import importlib
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Optional

import grpc
from kcmtest import KCM_BIN, REPO, _set_pdeathsig, kill_process, stop_process

# What kube-apiserver accepts from a KMS v2 plugin (k8s.io/apiserver, kmsv2 envelope).
MAX_KEY_ID = 1024
MAX_CIPHERTEXT = 1024
MAX_ANNOTATIONS = 32 * 1024
# A DNS-1123 subdomain, which an annotation name must be.
FQDN_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)+$")


def load_stubs(out_dir: Path):
    """Generates the Python stubs of the KMS v2 API into `out_dir`; returns (pb2, pb2_grpc)."""
    from grpc_tools import protoc

    proto_root = REPO / "proto"
    rc = protoc.main([
        "protoc", f"-I{proto_root}", f"--python_out={out_dir}", f"--grpc_python_out={out_dir}",
        str(proto_root / "k8s/kms/v2/api.proto"),
    ])
    assert rc == 0, "protoc failed on proto/k8s/kms/v2/api.proto"
    sys.path.insert(0, str(out_dir))
    return (importlib.import_module("k8s.kms.v2.api_pb2"),
            importlib.import_module("k8s.kms.v2.api_pb2_grpc"))


class ApiServer:
    """The calls kube-apiserver makes, with the checks it makes on each answer."""

    def __init__(self, stubs, socket_path: Path, timeout: float = 3.0):
        self.pb, pb_grpc = stubs
        # kube-apiserver (grpc-go) sends `:authority: localhost` over a Unix socket;
        # grpcio's default would be the socket path, which is no valid authority.
        self.channel = grpc.insecure_channel(f"unix://{socket_path}",
                                             options=[("grpc.default_authority", "localhost")])
        self.stub = pb_grpc.KeyManagementServiceStub(self.channel)
        self.timeout = timeout

    def close(self) -> None:
        self.channel.close()

    def status(self):
        s = self.stub.Status(self.pb.StatusRequest(), timeout=self.timeout)
        assert s.version == "v2", s
        if s.healthz == "ok":
            assert 0 < len(s.key_id.encode()) <= MAX_KEY_ID, s
        return s

    def healthy_key_id(self) -> str:
        s = self.status()
        assert s.healthz == "ok", s.healthz
        return s.key_id

    def encrypt(self, plaintext: bytes, uid: str = "uid-encrypt"):
        r = self.stub.Encrypt(self.pb.EncryptRequest(plaintext=plaintext, uid=uid), timeout=self.timeout)
        assert 0 < len(r.ciphertext) <= MAX_CIPHERTEXT, len(r.ciphertext)
        assert 0 < len(r.key_id.encode()) <= MAX_KEY_ID, r.key_id
        size = 0
        for name, value in r.annotations.items():
            assert FQDN_RE.match(name), f"annotation name {name!r} is not a fully qualified domain name"
            size += len(name) + len(value)
        assert size <= MAX_ANNOTATIONS
        return r

    def seal(self, plaintext: bytes):
        """Encrypt as the API server does for a new seed: the key id must be Status's."""
        key_id = self.healthy_key_id()
        r = self.encrypt(plaintext)
        assert r.key_id == key_id, (r.key_id, key_id)
        return r

    def decrypt(self, sealed, uid: str = "uid-decrypt") -> bytes:
        request = self.pb.DecryptRequest(ciphertext=sealed.ciphertext, key_id=sealed.key_id, uid=uid,
                                         annotations=dict(sealed.annotations))
        return self.stub.Decrypt(request, timeout=self.timeout).plaintext


def grpc_code(call) -> grpc.StatusCode:
    """The status code `call()` fails with (it must fail)."""
    try:
        call()
    except grpc.RpcError as e:
        return e.code()
    raise AssertionError("the call succeeded")


class Plugin:
    """One `kcm kms-plugin` process."""

    def __init__(self, server, work: Path, key_id: str, cluster: str, creds: tuple[str, str],
                 max_age_ms: int = 200, name: str = "plugin", env: Optional[dict] = None):
        self.server = server
        self.work = work
        self.work.mkdir(parents=True, exist_ok=True)
        self.socket = work / "kms.sock"
        self.key_id = key_id
        self.cluster = cluster
        self.max_age_ms = max_age_ms
        self.name = name
        self.credentials_file = work / "credentials"
        self.credentials_file.write_text(
            f"[plugin]\naws_access_key_id = {creds[0]}\naws_secret_access_key = {creds[1]}\n")
        self.credentials_file.chmod(0o600)
        self.extra_env = dict(env or {})
        self.proc: Optional[subprocess.Popen] = None
        self.starts = 0

    def command(self) -> list[str]:
        return [str(KCM_BIN), "kms-plugin", "--socket", str(self.socket), "--key-id", self.key_id,
                "--cluster", self.cluster, "--endpoint", self.server.url,
                "--credentials-file", str(self.credentials_file), "--profile", "plugin",
                "--status-max-age-ms", str(self.max_age_ms)]

    def spawn(self) -> subprocess.Popen:
        self.starts += 1
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("KCM_", "AWS_", "SSL_CERT_"))}
        env.update(self.extra_env)
        log = open(self.work / f"{self.name}-{self.starts}.log", "wb")
        self.proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL, stdout=log,
                                     stderr=subprocess.STDOUT, env=env, preexec_fn=_set_pdeathsig)
        return self.proc

    def start(self, timeout: float = 15.0) -> "Plugin":
        proc = self.spawn()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise AssertionError(f"kcm kms-plugin exited with {proc.returncode}\n{self.log()}")
            if self.listening():
                return self
            time.sleep(0.05)
        raise AssertionError(f"kcm kms-plugin did not listen within {timeout}s\n{self.log()}")

    def listening(self) -> bool:
        """Whether something accepts connections on the socket (a stale one refuses)."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            try:
                s.connect(str(self.socket))
                return True
            except OSError:
                return False

    def log(self) -> str:
        return "\n".join(p.read_text(errors="replace")[-4000:] for p in sorted(self.work.glob("*.log")))

    def stop(self) -> Optional[int]:
        return stop_process(self.proc)

    def kill(self) -> None:
        kill_process(self.proc)
