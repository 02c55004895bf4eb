"""Fixtures for the kcm integration tests.

* `server`      - one `kcm serve` for the whole session (real "days": nothing expires by itself).
* `fast_server` - one `kcm serve` for the whole session with KCM_DAY_SECONDS=0.05, for
                  deletion windows that end and automatic rotation that comes due.
* `spawn_server`- a factory for extra servers owned by one test (restart, kill -9, disk scans);
                  every server it made is stopped when the test ends.
* `kms`         - boto3 KMS client of the session server's `[default]` profile (tenant-admin).
* `new_key`     - creates a key on the session server (keys are left behind: the session
                  server's data dir is discarded at the end).
* `other_tenant`- a second tenant on the session server, with its tenant-admin KMS client.
* `ceph`        - a factory for the session's one-node Ceph cluster with RGW (tests/python/ceph.py):
                  `ceph(rgw_config)` starts it on first use and restarts RGW alone when a test
                  asks for other RGW options.
* `keystone`    - one real OpenStack Keystone for the whole session (tests/python/keystone.py),
                  started only when a test asks for it (about 15 s).
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ceph import CephCluster, CephError  # noqa: E402
import kcmtest  # noqa: E402
from kcmtest import FAST_DAY_SECONDS, Server, start_or_fail, unique  # noqa: E402


def pytest_configure(config):
    # The Kubernetes plugin tests talk gRPC (grpcio) while they start processes:
    # grpcio's fork handlers can abort a child between fork and exec. The tests never
    # use gRPC in a forked child, so they are not needed.
    os.environ["GRPC_ENABLE_FORK_SUPPORT"] = "false"
    # Never let a developer's own AWS configuration leak into the tests.
    os.environ["AWS_CONFIG_FILE"] = os.devnull
    os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
    os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
    # Servers under test are on loopback: never send that traffic through a proxy.
    no_proxy = ",".join(x for x in (os.environ.get("NO_PROXY", ""), "127.0.0.1,localhost") if x)
    os.environ["NO_PROXY"] = os.environ["no_proxy"] = no_proxy
    for var in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_KMS"):
        os.environ.pop(var, None)


@pytest.fixture(scope="session")
def tmp_root():
    d = Path(tempfile.mkdtemp(prefix="kcm-pytest-"))
    yield d
    if os.environ.get("KCM_TEST_KEEP") != "1":
        shutil.rmtree(d, ignore_errors=True)


def _start(root: Path, name: str, env: dict | None = None) -> Server:
    srv = Server(root / name / "data", root / name / "logs", env=env, name=name)
    start_or_fail(srv)
    return srv


@pytest.fixture(autouse=True)
def no_server_panics():
    """Fails the test during which any `kcm serve` of the session panicked — in a request or
    in a background task, which a client never sees. Torn down after the test's own
    fixtures, so what servers write while they stop counts too."""
    kcmtest.new_panics()  # what earlier tests left (they were failed for it already)
    yield
    panics = kcmtest.new_panics()
    if panics:
        pytest.fail("a kcm server panicked during this test:\n" + "\n".join(panics[:20]), pytrace=False)


@pytest.fixture(scope="session")
def server(tmp_root):
    srv = _start(tmp_root, "session")
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def fast_server(tmp_root):
    srv = _start(tmp_root, "fast", env={"KCM_DAY_SECONDS": str(FAST_DAY_SECONDS)})
    yield srv
    srv.stop()


@pytest.fixture
def spawn_server(tmp_path):
    """Factory: spawn_server(data_dir=None, env=None, start=True) -> Server.

    Servers are stopped (SIGTERM, then SIGKILL after 10 s) when the test ends."""
    made: list[Server] = []

    def make(data_dir: Path | None = None, env: dict | None = None, start: bool = True) -> Server:
        name = f"extra{len(made)}"
        srv = Server(Path(data_dir) if data_dir else tmp_path / name / "data", tmp_path / name / "logs",
                     env=env, name=name)
        made.append(srv)
        if start:
            start_or_fail(srv)
        return srv

    yield make
    for srv in made:
        srv.stop()


@pytest.fixture(scope="session")
def kms(server):
    return server.client("default")


@pytest.fixture
def new_key(kms):
    """new_key(**create_key_kwargs) -> KeyId of a fresh key on the session server."""

    def make(**kw):
        kw.setdefault("Description", unique("key"))
        return kms.create_key(**kw)["KeyMetadata"]["KeyId"]

    return make


@pytest.fixture(scope="session")
def other_tenant(server):
    """A second tenant (created via /v1/tenants as system-admin) and a KMS client for it."""
    body = server.create_tenant(unique("other"))
    ak = body["access_key"]
    return {"tenant": body["tenant"], "access_key": ak, "kms": server.client_for(ak)}


@pytest.fixture(scope="session")
def ceph():
    """Factory: ceph(rgw_config=None) -> CephCluster, one cluster for the whole session.

    The first call starts the cluster (about 10 s) with `rgw_config` merged into RGW's
    `[client.rgw.x]` section; a later call with other options restarts RGW alone (about 1 s)
    with them, so tests that want the same options should pass equal dicts. The cluster
    stops, and its directory is removed, when the session ends."""
    state: dict = {}

    def get(rgw_config: dict | None = None) -> CephCluster:
        cfg = dict(rgw_config or {})
        if "error" in state:
            raise CephError(f"the session's Ceph cluster failed to start earlier: {state['error']}")
        cluster = state.get("cluster")
        if cluster is None:
            try:
                cluster = CephCluster(rgw_config=cfg).__enter__()
            except Exception as e:
                state["error"] = e
                raise
            state["cluster"] = cluster
        elif cluster.rgw_config != cfg:
            cluster.restart_rgw(cfg)
        return cluster

    yield get
    if "cluster" in state:
        state["cluster"].close()


@pytest.fixture(scope="session")
def keystone(tmp_root):
    """A real Keystone on 127.0.0.1 (see keystone.py): admin, roles admin/manager/member/reader/service."""
    from keystone import Keystone, KeystoneError

    ks = Keystone(tmp_root / "keystone")
    try:
        ks.start()
    except KeystoneError as e:
        pytest.fail(f"Keystone did not start: {e}", pytrace=False)
    yield ks
    ks.stop()
