"""A private one-node Ceph cluster with the RADOS Gateway (S3), for the tests of RGW's
server-side encryption (SSE-KMS) against kcm.

`CephCluster` builds everything in one temporary directory: the configuration file, one
keyring, the monitor's store, the OSD (BlueStore on a sparse file, no block device), the
logs and the run directory with the admin sockets. Nothing goes to /etc/ceph or
/var/lib/ceph. It runs, as child processes of the test and in the foreground (`-f`):

* one monitor (`ceph-mon -i a`) on 127.0.0.1:<free port> (messenger v2 only),
* one manager (`ceph-mgr -i x`), which reports placement-group states,
* one OSD (`ceph-osd -i 0`), BlueStore on a 2 GiB sparse file,
* one RADOS Gateway (`radosgw -n client.rgw.x`), beast on 127.0.0.1:<free port>, with the
  caller's extra options in its `[client.rgw.x]` section (the Barbican and Keystone options
  of SSE-KMS go there).

Every pool has one replica (size 1), so one OSD on one host is a healthy cluster. Each wait
is bounded, and a timeout says what it waited for with the tail of the daemon's log. On exit
every daemon is stopped (SIGTERM, then SIGKILL after a bound) and the directory removed
(kept with KCM_TEST_KEEP=1). Daemons also get SIGKILL if the test process dies.

scripts/test installs the Debian packages ceph-mon, ceph-osd, ceph-mgr, radosgw and
ceph-common when they are missing. Ceph 16.2 (Debian 12) is what this was built against.

    with CephCluster(rgw_config={"rgw_crypt_s3_kms_backend": "testing", ...}) as c:
        access, secret = c.create_user("alice")
        s3 = c.s3_client(access, secret)
        ...
        assert c.find_in_data(b"plaintext") == []
"""

from __future__ import annotations

import base64
import ctypes
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Iterable, Optional

import requests

REGION = "us-east-1"
# The RGW zone's data pool: every S3 object's bytes (head objects and `__shadow_` tails).
DATA_POOL = "default.rgw.buckets.data"
# RGW makes these with the first bucket; the harness makes them at startup.
RGW_BUCKET_POOLS = ("default.rgw.buckets.index", DATA_POOL, "default.rgw.buckets.non-ec")
RGW_NAME = "client.rgw.x"
# The manager's Python modules to load (of Debian's /usr/share/ceph/mgr): only those that
# Ceph 16 keeps always on (one missing is a HEALTH_ERR); the other 17 cost seconds at startup.
MGR_MODULES = ("balancer", "crash", "devicehealth", "orchestrator", "pg_autoscaler", "progress",
               "rbd_support", "status", "telemetry", "volumes")
_MGR_MODULE_PATH = "/usr/share/ceph/mgr"
OSD_SIZE = 2 * 1024**3


def _free_port() -> int:
    """A currently free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _set_pdeathsig() -> None:  # pragma: no cover - runs in the child
    """Make the daemon die with the test process, so none is left behind."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:
        pass


def _need(tool: str) -> str:
    path = shutil.which(tool)
    if not path:
        raise CephError(f"{tool} was not found: install the Debian packages ceph-mon ceph-osd "
                        "ceph-mgr radosgw ceph-common (scripts/test does it as root)")
    return path


def _tail(path: Optional[Path], n: int = 40) -> str:
    if path is None or not path.exists():
        return f"--- {path}: no such file ---"
    lines = path.read_text(errors="replace").splitlines()[-n:]
    return f"--- tail of {path} ---\n" + "\n".join(lines)


class CephError(RuntimeError):
    """The cluster could not be built, started or asked something in time."""


class Daemon:
    """One Ceph daemon running in the foreground as a child of the test."""

    def __init__(self, name: str, cmd: list[str], log_dir: Path, log_file: Path):
        self.name = name
        self.cmd = cmd
        self.log_file = log_file  # the daemon's own log (`log_file` in ceph.conf)
        self.out_file = log_dir / f"{name}.out"  # its stdout and stderr
        self.proc: Optional[subprocess.Popen] = None

    def start(self) -> None:
        with open(self.out_file, "ab") as out:
            self.proc = subprocess.Popen(self.cmd, stdin=subprocess.DEVNULL, stdout=out,
                                         stderr=subprocess.STDOUT, preexec_fn=_set_pdeathsig)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self) -> Optional[int]:
        return self.proc.pid if self.proc else None

    def check_running(self) -> None:
        """Raise CephError (with its logs) if the daemon has exited."""
        if self.proc is not None and self.proc.poll() is not None:
            raise CephError(f"{self.name} exited with code {self.proc.returncode}\n{self.logs()}")

    def logs(self, n: int = 40) -> str:
        return _tail(self.out_file, n) + "\n" + _tail(self.log_file, n)

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, wait up to `timeout`, then SIGKILL; always reaps the process."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def rss_bytes(self) -> int:
        """Resident memory of the running process (0 when it is not running)."""
        if not self.running:
            return 0
        try:
            for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        except OSError:
            pass
        return 0


class CephCluster:
    """A one-node Ceph cluster with RGW in a temporary directory; a context manager.

    `rgw_config` is merged into the `[client.rgw.x]` section of ceph.conf (keys are Ceph
    option names, values are written as they are: strings, numbers, or bools as
    true/false). `restart_rgw(rgw_config)` restarts the gateway alone with other options.
    """

    def __init__(self, rgw_config: Optional[dict[str, Any]] = None, root: Optional[Path] = None,
                 keep: Optional[bool] = None, timeout: float = 90.0):
        for tool in ("ceph-authtool", "monmaptool", "ceph-mon", "ceph-mgr", "ceph-osd", "radosgw",
                     "radosgw-admin", "ceph", "rados"):
            _need(tool)
        self.rgw_config: dict[str, Any] = dict(rgw_config or {})
        self.timeout = timeout
        self.keep = os.environ.get("KCM_TEST_KEEP") == "1" if keep is None else keep
        self._own_root = root is None
        self.root = Path(tempfile.mkdtemp(prefix="kcm-ceph-")) if root is None else Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.conf = self.root / "ceph.conf"
        self.keyring = self.root / "keyring"
        self.log_dir = self.root / "log"
        self.run_dir = self.root / "run"
        self.fsid = str(uuid.uuid4())
        self.mon_port = _free_port()
        self.rgw_port = _free_port()
        self.daemons: dict[str, Daemon] = {}
        self.timings: dict[str, float] = {}

    # -- context manager ---------------------------------------------------
    def __enter__(self) -> "CephCluster":
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def endpoint(self) -> str:
        """The S3 endpoint URL of the gateway."""
        return f"http://127.0.0.1:{self.rgw_port}"

    # -- building and starting ---------------------------------------------
    def start(self) -> None:
        """Build the cluster and start every daemon; returns once S3 answers and every
        placement group is active+clean."""
        t0 = time.monotonic()
        for d in (self.log_dir, self.run_dir, self.root / "mon", self.root / "mgr" / "ceph-x",
                  self.root / "osd" / "ceph-0", self.root / "crash"):
            d.mkdir(parents=True, exist_ok=True)
        self._write_keyring()
        self._link_mgr_modules()
        self._write_conf()
        self._mkfs_mon()
        self._start_daemon("mon.a", ["ceph-mon", "-f", "-i", "a"])
        self._wait("the monitor to answer", lambda: self._ceph_ok("mon", "stat"), "mon.a")
        self.timings["mon"] = time.monotonic() - t0
        self._start_daemon("mgr.x", ["ceph-mgr", "-f", "-i", "x"])
        self._create_osd()
        self._start_daemon("osd.0", ["ceph-osd", "-f", "-i", "0"])
        self._wait("the OSD to be up and in", self._osd_up, "osd.0")
        self._wait("the manager to be available", self._mgr_available, "mgr.x")
        self.timings["osd"] = time.monotonic() - t0
        self._create_rgw_pools()
        self._start_rgw()
        self.timings["rgw"] = time.monotonic() - t0
        self.wait_clean()
        self.timings["total"] = time.monotonic() - t0

    def _write_keyring(self) -> None:
        """One keyring with every entity's key; the monitor imports them all at mkfs."""
        entities = {
            "mon.": {"mon": "allow *"},
            "client.admin": {"mon": "allow *", "osd": "allow *", "mgr": "allow *", "mds": "allow *"},
            "mgr.x": {"mon": "allow profile mgr", "osd": "allow *", "mds": "allow *"},
            "osd.0": {"mon": "allow profile osd", "mgr": "allow profile osd", "osd": "allow *"},
            RGW_NAME: {"mon": "allow rw", "osd": "allow rwx", "mgr": "allow rw"},
        }
        first = True
        for name, caps in entities.items():
            cmd = ["ceph-authtool", str(self.keyring), "--gen-key", "-n", name]
            if first:
                cmd.insert(2, "--create-keyring")
                first = False
            for service, cap in caps.items():
                cmd += ["--cap", service, cap]
            self._run(cmd)
        self.keyring.chmod(0o600)

    def _link_mgr_modules(self) -> None:
        """The manager's module path: its helper files and only the modules in MGR_MODULES."""
        src = Path(_MGR_MODULE_PATH)
        dst = self.root / "mgr-modules"
        dst.mkdir(exist_ok=True)
        for entry in src.iterdir():
            if not entry.is_dir() or entry.name in MGR_MODULES:
                (dst / entry.name).symlink_to(entry)

    def _global_options(self) -> dict[str, Any]:
        r = self.root
        return {
            "fsid": self.fsid,
            "mon_host": f"[v2:127.0.0.1:{self.mon_port}]",
            "mon_initial_members": "a",
            # Loopback only, and only the v2 messenger (one port for the monitor).
            "public_addr": "127.0.0.1",
            "cluster_addr": "127.0.0.1",
            "ms_bind_msgr1": "false",
            # Every file in the temporary directory.
            "keyring": str(self.keyring),
            "run_dir": str(self.run_dir),
            "admin_socket": f"{self.run_dir}/$cluster-$name.asok",
            "pid_file": f"{self.run_dir}/$cluster-$name.pid",
            "log_file": f"{self.log_dir}/$cluster-$name.log",
            "log_to_stderr": "false",
            "err_to_stderr": "true",
            "crash_dir": str(r / "crash"),
            "mon_data": f"{r}/mon/$cluster-$id",
            "mgr_data": f"{r}/mgr/$cluster-$id",
            "osd_data": f"{r}/osd/$cluster-$id",
            "rgw_data": f"{r}/rgw/$cluster-$id",
            # One OSD: pools of one replica, chosen among OSDs rather than hosts.
            "osd_pool_default_size": 1,
            "osd_pool_default_min_size": 1,
            "mon_allow_pool_size_one": "true",
            "mon_warn_on_pool_no_redundancy": "false",
            "osd_crush_chooseleaf_type": 0,
            # Few placement groups and no autoscaler, so pools are active+clean at once and
            # stay so (eight pools: seven of RGW's, one of the manager's).
            "osd_pool_default_pg_num": 8,
            "osd_pool_default_pgp_num": 8,
            "osd_pool_default_pg_autoscale_mode": "off",
            "mon_max_pg_per_osd": 1000,
            "mon_allow_pool_delete": "true",
            # The test machine's disk may be fuller than a monitor likes (it warns under 30 %
            # free and stops under 5 %): neither. (A CI run once saw 1 % free and a warning
            # with the threshold at 1: the cluster's health is not the host disk's.)
            "mon_data_avail_warn": 0,
            "mon_data_avail_crit": 0,
            # Every client here is current: no legacy global_id reclaim (and no warning about it).
            "auth_allow_insecure_global_id_reclaim": "false",
            "osd_objectstore": "bluestore",
            # Less to wait for: the monitor commits a change every second by default, and RGW
            # makes its pools one change at a time (about 8 s at startup); daemons report
            # placement-group states to the manager every 5 s by default.
            "paxos_propose_interval": 0.05,
            "mgr_stats_period": 1,
            "mgr_tick_period": 1,
        }

    def _mgr_options(self) -> dict[str, Any]:
        return {
            # The manager loads every Python module in its module path at startup (about 6 s
            # on two cores for all 27): it gets a path with only MGR_MODULES.
            "mgr_module_path": str(self.root / "mgr-modules"),
            # Its default (restful iostat nfs) would fail to load from that path.
            "mgr_initial_modules": "",
        }

    def _osd_options(self) -> dict[str, Any]:
        return {
            # BlueStore on a sparse file that the OSD creates at mkfs (no block device).
            "bluestore_block_create": "true",
            "bluestore_block_size": OSD_SIZE,
            "bluestore_fsck_on_mkfs": "false",
            "bluestore_fsck_on_mount": "false",
            # Less memory: BlueStore's caches would grow toward osd_memory_target (4 GiB by
            # default); fixed small caches instead, and fewer worker threads.
            "osd_memory_target": 1024**3,
            "bluestore_cache_autotune": "false",
            "bluestore_cache_size": 64 * 1024**2,
            "osd_op_num_shards": 2,
            "osd_op_num_threads_per_shard": 1,
        }

    def _rgw_options(self) -> dict[str, Any]:
        opts: dict[str, Any] = {
            "rgw_frontends": f"beast endpoint=127.0.0.1:{self.rgw_port}",
            # The harness speaks plain HTTP; RGW refuses SSE requests over HTTP without this.
            "rgw_crypt_require_ssl": "false",
            # Fewer threads than the default 512.
            "rgw_thread_pool_size": 32,
        }
        opts.update(self.rgw_config)
        return opts

    def _write_conf(self) -> None:
        def section(name: str, opts: dict[str, Any]) -> str:
            lines = [f"[{name}]"]
            for k, v in opts.items():
                if isinstance(v, bool):
                    v = "true" if v else "false"
                v = str(v)
                if "\n" in v:
                    raise CephError(f"ceph.conf option {k} has a newline in its value")
                lines.append(f"{k} = {v}")
            return "\n".join(lines) + "\n"

        text = (section("global", self._global_options()) + "\n"
                + section("mgr", self._mgr_options()) + "\n"
                + section("osd", self._osd_options()) + "\n"
                + section(RGW_NAME, self._rgw_options()))
        self.conf.write_text(text)

    def _mkfs_mon(self) -> None:
        monmap = self.root / "monmap"
        self._run(["monmaptool", "--create", "--fsid", self.fsid,
                   "--addv", "a", f"[v2:127.0.0.1:{self.mon_port}]", str(monmap)])
        self._run(["ceph-mon", "-c", str(self.conf), "--mkfs", "-i", "a",
                   "--monmap", str(monmap), "--keyring", str(self.keyring)])

    def _create_osd(self) -> None:
        osd_uuid = str(uuid.uuid4())
        osd_id = self.ceph("osd", "new", osd_uuid).strip()
        if osd_id != "0":
            raise CephError(f"ceph osd new gave id {osd_id!r}, expected 0")
        self._run(["ceph-osd", "-c", str(self.conf), "-i", "0", "--mkfs", "--osd-uuid", osd_uuid],
                  timeout=120)

    def _create_rgw_pools(self) -> None:
        """Make RGW's bucket pools now, rather than with the first bucket, so that the
        cluster is active+clean from the start and a test's first bucket does not wait for
        new placement groups. One `ceph` CLI reads all the commands (it is slow to start)."""
        commands = []
        for pool in RGW_BUCKET_POOLS:
            commands += [f"osd pool create {pool}", f"osd pool application enable {pool} rgw"]
        self._run(["ceph", "-c", str(self.conf), "--connect-timeout", "60"],
                  input="\n".join(commands).encode() + b"\n", timeout=90)
        have = {p["pool_name"]: p for p in self.ceph_json("osd", "pool", "ls", "detail")}
        for pool in RGW_BUCKET_POOLS:
            if "rgw" not in have.get(pool, {}).get("application_metadata", {}):
                raise CephError(f"pool {pool} was not created for rgw: {sorted(have)}")

    def _start_daemon(self, name: str, cmd: list[str]) -> Daemon:
        d = Daemon(name, [_need(cmd[0]), "-c", str(self.conf), *cmd[1:]], self.log_dir,
                   self.log_dir / f"ceph-{name}.log")
        d.start()
        self.daemons[name] = d
        return d

    def _start_rgw(self) -> None:
        self._start_daemon(RGW_NAME, ["radosgw", "-f", "-n", RGW_NAME])
        self._wait("S3 to answer at " + self.endpoint, self._s3_answers, RGW_NAME)

    def restart_rgw(self, rgw_config: Optional[dict[str, Any]] = None) -> None:
        """Stop the gateway, rewrite its section of ceph.conf with `rgw_config` (which replaces
        the options given before) and start it again on the same port."""
        t0 = time.monotonic()
        self.rgw_config = dict(rgw_config or {})
        d = self.daemons.pop(RGW_NAME, None)
        if d is not None:
            d.stop()
        self._write_conf()
        self._start_rgw()
        self.timings["rgw_restart"] = time.monotonic() - t0

    # -- waiting ------------------------------------------------------------
    def _wait(self, what: str, ready: Callable[[], bool], daemon: str,
              timeout: Optional[float] = None, interval: float = 0.25) -> None:
        """Poll `ready` until it is true, at most `timeout` seconds (and a bounded count)."""
        timeout = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        last = ""
        for _ in range(int(timeout / interval) + 10):
            for d in self.daemons.values():
                d.check_running()
            try:
                if ready():
                    return
            except (CephError, requests.RequestException, subprocess.TimeoutExpired) as e:
                last = str(e)[-2000:]
            if time.monotonic() > deadline:
                break
            time.sleep(interval)
        d = self.daemons.get(daemon)
        raise CephError(f"timed out after {timeout:.0f}s waiting for {what}"
                        + (f"\nlast error: {last}" if last else "")
                        + ("\n" + d.logs() if d else ""))

    def _ceph_ok(self, *args: str) -> bool:
        self.ceph(*args, timeout=15)
        return True

    def _osd_up(self) -> bool:
        st = self.ceph_json("osd", "stat")
        st = st.get("osdmap", st)  # older releases nest it
        return st.get("num_up_osds") == 1 and st.get("num_in_osds") == 1

    def _mgr_available(self) -> bool:
        return bool(self.ceph_json("mgr", "stat").get("available"))

    def _s3_answers(self) -> bool:
        with requests.Session() as http:
            http.trust_env = False  # loopback: never through a proxy
            r = http.get(self.endpoint + "/", timeout=5)
        return r.status_code == 200 and b"ListAllMyBucketsResult" in r.content

    def pg_states(self) -> dict[str, int]:
        """Placement-group states and their counts, e.g. {"active+clean": 56}."""
        st = self.ceph_json("pg", "stat")
        summary = st.get("pg_summary", st)
        return {s["name"]: s["num"] for s in summary.get("num_pg_by_state", [])}

    def wait_clean(self, timeout: Optional[float] = None) -> None:
        """Wait until every placement group is active+clean."""
        def clean() -> bool:
            states = self.pg_states()
            return bool(states) and set(states) == {"active+clean"}

        try:
            self._wait("every placement group to be active+clean", clean, "osd.0", timeout)
        except CephError as e:
            detail = ""
            try:
                detail = f"\npg states: {self.pg_states()}\n{self.health()}"
            except CephError:
                pass
            raise CephError(f"{e}{detail}") from None

    def health(self) -> str:
        """`ceph health detail` as text."""
        return self.ceph("health", "detail", timeout=30)

    # -- command-line clients -----------------------------------------------
    def _run(self, cmd: list[str], timeout: float = 60, input: Optional[bytes] = None) -> bytes:
        try:
            r = subprocess.run(cmd, capture_output=True, timeout=timeout, input=input,
                               stdin=None if input is not None else subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise CephError(f"{' '.join(cmd)} did not finish within {timeout}s") from None
        if r.returncode != 0:
            raise CephError(f"{' '.join(cmd)} failed ({r.returncode}):\n"
                            f"{r.stdout.decode(errors='replace')}{r.stderr.decode(errors='replace')}")
        return r.stdout

    def ceph(self, *args: str, timeout: float = 60) -> str:
        """Run the `ceph` CLI as client.admin against this cluster; its stdout."""
        return self._run(["ceph", "-c", str(self.conf), "--connect-timeout", str(int(timeout)),
                          *args], timeout=timeout + 5).decode()

    def ceph_json(self, *args: str, timeout: float = 30) -> Any:
        return json.loads(self.ceph(*args, "-f", "json", timeout=timeout))

    def rados(self, *args: str, timeout: float = 60) -> bytes:
        """Run the `rados` CLI against this cluster; its stdout as bytes."""
        return self._run(["rados", "-c", str(self.conf), *args], timeout=timeout)

    def radosgw_admin(self, *args: str, timeout: float = 60) -> Any:
        """Run `radosgw-admin` (as client.admin) and parse its JSON answer (None if empty)."""
        out = self._run(["radosgw-admin", "-c", str(self.conf), "-n", "client.admin", *args],
                        timeout=timeout)
        return json.loads(out) if out.strip() else None

    # -- S3 ----------------------------------------------------------------
    def create_user(self, uid: Optional[str] = None, display_name: Optional[str] = None
                    ) -> tuple[str, str]:
        """Create an RGW user; returns its S3 (access key, secret key)."""
        uid = uid or f"user-{uuid.uuid4().hex[:8]}"
        info = self.radosgw_admin("user", "create", f"--uid={uid}",
                                  f"--display-name={display_name or uid}")
        key = info["keys"][0]
        return key["access_key"], key["secret_key"]

    def s3_client(self, access_key: str, secret_key: str):
        """A boto3 S3 client for the gateway: path-style addressing, region us-east-1, no
        retries, checksums only when an operation requires them."""
        import boto3
        from botocore.config import Config

        kw = dict(signature_version="s3v4", s3={"addressing_style": "path"},
                  retries={"total_max_attempts": 1, "mode": "standard"}, connect_timeout=5,
                  read_timeout=60)
        try:
            cfg = Config(request_checksum_calculation="when_required",
                         response_checksum_validation="when_required", **kw)
        except TypeError:  # botocore older than 1.36 knows neither option (nor needs them)
            cfg = Config(**kw)
        return boto3.session.Session().client(
            "s3", endpoint_url=self.endpoint, region_name=REGION, aws_access_key_id=access_key,
            aws_secret_access_key=secret_key, config=cfg)

    # -- raw RADOS objects ---------------------------------------------------
    def data_objects(self, pool: str = DATA_POOL) -> list[str]:
        """Names of the RADOS objects in `pool` (RGW's data pool by default); [] when the
        pool does not exist yet (RGW makes it with the first object)."""
        pools = self.rados("lspools").decode().split()
        if pool not in pools:
            return []
        return sorted(self.rados("-p", pool, "ls").decode().split("\n")[:-1])

    def read_object(self, name: str, pool: str = DATA_POOL) -> bytes:
        """The raw bytes of one RADOS object, as stored."""
        return self.rados("-p", pool, "get", name, "-")

    def raw_data(self, pool: str = DATA_POOL, names: Optional[Iterable[str]] = None
                 ) -> dict[str, bytes]:
        """Every object of `pool` (or just `names`): name -> raw bytes."""
        return {n: self.read_object(n, pool) for n in (names if names is not None
                                                       else self.data_objects(pool))}

    def object_xattrs(self, name: str, pool: str = DATA_POOL) -> dict[str, bytes]:
        """The extended attributes of one RADOS object: RGW keeps an object's metadata there,
        e.g. `user.rgw.crypt.mode` (b"SSE-KMS") and `user.rgw.crypt.keyid`."""
        attrs = self.rados("-p", pool, "listxattr", name).decode().split("\n")[:-1]
        return {a: self.rados("-p", pool, "getxattr", name, a) for a in attrs}

    def find_in_data(self, needle: bytes, pool: str = DATA_POOL) -> list[str]:
        """Names of the objects of `pool` whose raw bytes contain `needle`."""
        return [n for n, data in self.raw_data(pool).items() if needle in data]

    # -- status and teardown -------------------------------------------------
    def memory(self) -> dict[str, int]:
        """Resident memory (bytes) of each running daemon."""
        return {name: d.rss_bytes() for name, d in self.daemons.items()}

    def pids(self) -> dict[str, Optional[int]]:
        return {name: d.pid for name, d in self.daemons.items()}

    def stop(self) -> None:
        """Stop every daemon: the gateway first, the monitor last."""
        for name in list(reversed(list(self.daemons))):
            self.daemons[name].stop()

    def close(self) -> None:
        """Stop every daemon and remove the directory (unless kept)."""
        try:
            self.stop()
        finally:
            if self._own_root and not self.keep:
                shutil.rmtree(self.root, ignore_errors=True)


def new_testing_kms_key() -> str:
    """A fresh base64 key of 32 bytes, for `rgw_crypt_s3_kms_encryption_keys` (RGW's built-in
    `testing` SSE-KMS backend: `rgw_crypt_s3_kms_encryption_keys = <id>=<base64 key> ...`)."""
    return base64.b64encode(os.urandom(32)).decode()


# ----------------------------------------------------------------------------- S3 with SSE-KMS

def put(s3, bucket: str, key: str, body: bytes, key_id: str):
    """PUTs `body` encrypted by RGW with the key manager's key `key_id` (SSE-KMS)."""
    return s3.put_object(Bucket=bucket, Key=key, Body=body, ServerSideEncryption="aws:kms", SSEKMSKeyId=key_id)


def get(s3, bucket: str, key: str) -> bytes:
    """The body of an object, read back through RGW."""
    return s3.get_object(Bucket=bucket, Key=key)["Body"].read()


def s3_error(e) -> tuple:
    """(HTTP status, S3 error code) of an RGW answer (a botocore ClientError)."""
    return e.response["ResponseMetadata"]["HTTPStatusCode"], e.response["Error"]["Code"]


def kill_switch_round(s3, bucket: str, key_id: str, throw: Callable[[], Any], restore: Callable[[], Any],
                      cut_off: tuple, bound_s: float, not_written: Optional[tuple] = None) -> float:
    """The kill switch seen through RGW: an object written and read with `key_id`, the
    switch thrown (`throw()`), then every GET refused as `cut_off` (S3's status and code)
    within `bound_s` and a loaded machine's slack, a PUT refused the same way (and, with
    `not_written`, the object it tried answered so by HEAD); then `restore()`, the object
    readable again within the same time and a new one written. Returns the seconds from
    the switch to the first refusal."""
    from kcmtest import LOADED_SLACK_S, poll, unique

    from botocore.exceptions import ClientError

    body = b"cut off by the kill switch " + unique("k").encode()
    put(s3, bucket, "switched", body, key_id)
    assert get(s3, bucket, "switched") == body
    throw()
    try:
        start = time.monotonic()

        def refused() -> bool:
            try:
                get(s3, bucket, "switched")
                return False
            except ClientError as e:
                assert s3_error(e) == cut_off, e.response
                return True

        # Within the revocation bound, and a loaded machine's slack: poll fails otherwise.
        poll(refused, bound_s + LOADED_SLACK_S, interval=0.05, what="an RGW GET refused after the kill switch")
        took = time.monotonic() - start
        print(f"RGW refused the object {took:.2f} s after the kill switch (bound {bound_s} s)")
        try:
            put(s3, bucket, "after-switch", b"new data", key_id)
            raise AssertionError("RGW wrote an object after the kill switch")
        except ClientError as e:
            assert s3_error(e) == cut_off, e.response
        if not_written is not None:
            try:
                s3.head_object(Bucket=bucket, Key="after-switch")
                raise AssertionError("the object refused after the kill switch exists")
            except ClientError as e:
                assert s3_error(e) == not_written, e.response
    finally:
        restore()

    def readable() -> bool:
        try:
            return get(s3, bucket, "switched") == body
        except ClientError:
            return False

    poll(readable, bound_s + LOADED_SLACK_S, interval=0.1, what="the object readable again after enable")
    put(s3, bucket, "after-enable", b"written again", key_id)
    assert get(s3, bucket, "after-enable") == b"written again"
    return took
