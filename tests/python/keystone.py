"""A private, real OpenStack Keystone (identity v3) for the tests of kcm's OpenStack doors.

`Keystone(root)` sets one up in the directory `root`, with nothing outside it and no
external service: keystone.conf (SQLite database, fernet token and credential key
repositories in `root`, no cache, no message bus), `keystone-manage` db_sync,
fernet_setup, credential_setup and bootstrap (user `admin` with project `admin` and role
`admin` in domain `Default`, region `RegionOne`, public and internal identity endpoints
`http://127.0.0.1:PORT/v3`), then serves Keystone's public WSGI application on 127.0.0.1 in
a child process (the standard library's wsgiref with one thread per request) and waits
until GET /v3 answers. It is a context manager; stop() ends the child (SIGTERM, then
SIGKILL).

    with Keystone(tmp_path / "keystone") as ks:
        domain = ks.create_domain("tenant-a")
        project = ks.create_project("p1", domain)
        alice = ks.create_user("alice", "pw", domain)
        ks.grant_role("reader", alice, project=project)
        token = ks.project_token("alice", "pw", "p1", user_domain="tenant-a")
        svc = ks.create_service_user()            # kcm's own identity
        body = ks.validate_token(token, svc.token())
        body["token"]["roles"]                    # [{"id": ..., "name": "reader"}]

Bootstrap creates the roles admin, manager, member, reader and service (admin implies
manager implies member implies reader). Token validation (GET /v3/auth/tokens) by another
user needs, under Keystone's default policy `identity:validate_token`
("rule:admin_required or (role:reader and system_scope:all) or rule:service_role or
rule:token_subject"), one of: role `admin` on any scope, `reader` on the system scope, or
role `service` on any scope. `create_service_user` gives kcm's user role `service` on
project `service` (as OpenStack deployments do for Nova, Cinder, Barbican...), nothing else.

Keystone is installed from PyPI (tests/python/requirements.txt) into the test venv;
`keystone-manage` is taken from the directory of the running interpreter. This module's
name shadows the `keystone` package inside the test process (tests/python is first on
sys.path there): the test process never imports the package, and the server process runs
with `python -P` (no script or working directory on sys.path) so that it gets the package.
Startup takes about 10-20 s on a 2-core machine, most of it five processes importing
Keystone; `startup_seconds` records it.
"""

from __future__ import annotations

import grp
import os
import pwd
import secrets
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

from kcmtest import _set_pdeathsig, kill_process, stop_process

# The child: Keystone's public application under wsgiref, one thread per request.
# Settings come from the environment, because Keystone's oslo.config parses sys.argv.
_SERVE = r"""
import os, socketserver
from wsgiref.simple_server import WSGIServer, make_server
from keystone.server.flask import core

class Server(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True

app = core.initialize_application("public", config_files=[os.environ["KCM_KEYSTONE_CONF"]])
httpd = make_server("127.0.0.1", 0, app, server_class=Server)
print("LISTENING", httpd.server_port, flush=True)
httpd.serve_forever()
"""

DEFAULT_DOMAIN_ID = "default"
REGION = "RegionOne"


@dataclass
class User:
    """A Keystone user, as made by `Keystone.create_user` (ids, and names for password auth)."""

    keystone: "Keystone" = field(repr=False)
    id: str
    name: str
    password: str
    domain_id: str
    domain_name: str

    def token(self, project: str | None = None, project_domain: str | None = None) -> str:
        """A token for this user: scoped to project name `project` (in `project_domain`,
        by default the user's own domain), or unscoped without `project`."""
        return self.keystone.project_token(self.name, self.password, project, user_domain=self.domain_name,
                                           project_domain=project_domain or self.domain_name)


class KeystoneError(RuntimeError):
    """Keystone failed to start, or answered a request with an unexpected status."""


class Keystone:
    """One real Keystone server for tests; see the module docstring."""

    def __init__(self, root: Path, admin_password: str | None = None, startup_timeout: float = 60.0):
        self.root = Path(root)
        self.admin_password = admin_password or secrets.token_urlsafe(16)
        self.startup_timeout = startup_timeout
        self.conf = self.root / "keystone.conf"
        self.log_path = self.root / "keystone.log"
        self.port: int | None = None
        self.proc: subprocess.Popen | None = None
        self.startup_seconds: float | None = None
        self._admin_token: tuple[str, float] | None = None
        self._role_ids: dict[str, str] = {}
        self._log = None
        self._setup: list[subprocess.Popen] = []

    # --- addresses
    @property
    def url(self) -> str:
        """http://127.0.0.1:PORT (the identity endpoint without the version)."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def auth_url(self) -> str:
        """http://127.0.0.1:PORT/v3, as OS_AUTH_URL."""
        return f"{self.url}/v3"

    # --- lifecycle
    def _write_conf(self) -> None:
        keys = self.root / "fernet-keys"
        self.conf.write_text(f"""\
[DEFAULT]
log_file = {self.log_path}
use_stderr = false

[database]
connection = sqlite:///{self.root / 'keystone.db'}

[fernet_tokens]
key_repository = {keys}

[fernet_receipts]
key_repository = {keys}

[credential]
key_repository = {self.root / 'credential-keys'}

[identity]
# bcrypt's cheapest cost: every password authentication pays it.
password_hash_rounds = 4

[cache]
enabled = false

[oslo_messaging_notifications]
driver = noop
""")

    def _manage(self, *args: str) -> subprocess.Popen:
        """`keystone-manage --config-file keystone.conf ARGS...`, started (see _finish)."""
        cmd = [str(Path(sys.executable).parent / "keystone-manage"), "--config-file", str(self.conf), *args]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=self.root)
        self._setup.append(proc)
        return proc

    def _finish(self, proc: subprocess.Popen, deadline: float) -> None:
        out, _ = proc.communicate(timeout=max(deadline - time.monotonic(), 1))
        if proc.returncode != 0:
            raise KeystoneError(f"keystone-manage {proc.args[3]} failed ({proc.returncode}):\n{out}\n"
                                f"{self.log_text()}")

    def start(self) -> "Keystone":
        """Set up and serve (see the module docstring). KeystoneError, with Keystone's log,
        when that fails or takes longer than `startup_timeout`; nothing is left running then."""
        started = time.monotonic()
        deadline = started + self.startup_timeout
        self.root.mkdir(parents=True, exist_ok=True)
        self._write_conf()
        owner = ["--keystone-user", pwd.getpwuid(os.getuid()).pw_name,
                 "--keystone-group", grp.getgrgid(os.getgid()).gr_name]
        try:
            # Each step is a process that spends seconds importing Keystone: the independent
            # ones run side by side. The server, which refuses to start without the key
            # repositories, loads its application while db_sync runs.
            db_sync = self._manage("db_sync")
            for proc in [self._manage("fernet_setup", *owner), self._manage("credential_setup", *owner)]:
                self._finish(proc, deadline)
            self._spawn(deadline)
            self._finish(db_sync, deadline)
            # The endpoints name the port, which the child chose: bootstrap once it listens.
            self._finish(self._manage(
                # `=` form: a random password may begin with "-", which argparse would read as a flag.
                "bootstrap", f"--bootstrap-password={self.admin_password}",
                "--bootstrap-username", "admin", "--bootstrap-project-name", "admin",
                "--bootstrap-role-name", "admin", "--bootstrap-service-name", "keystone",
                "--bootstrap-region-id", REGION, "--bootstrap-public-url", self.auth_url,
                "--bootstrap-internal-url", self.auth_url), deadline)
            self._wait_ready(deadline)
        except BaseException as e:
            for proc in self._setup:
                kill_process(proc)
            self.stop()
            if isinstance(e, subprocess.TimeoutExpired):
                raise KeystoneError(f"Keystone's setup took over {self.startup_timeout}s:\n{self.log_text()}") from e
            raise
        self.startup_seconds = time.monotonic() - started
        return self

    def _spawn(self, deadline: float) -> None:
        """Start the server process; return once it has printed the port it listens on."""
        env = dict(os.environ, KCM_KEYSTONE_CONF=str(self.conf))
        self._log = open(self.root / "keystone-server.out", "ab")
        self.proc = subprocess.Popen([sys.executable, "-P", "-c", _SERVE], stdout=subprocess.PIPE,
                                     stderr=self._log, env=env, cwd=self.root, text=True,
                                     preexec_fn=_set_pdeathsig)
        ready = threading.Event()

        def pump():
            for line in self.proc.stdout:
                if line.startswith("LISTENING ") and self.port is None:
                    self.port = int(line.split()[1])
                    ready.set()
            ready.set()

        threading.Thread(target=pump, daemon=True).start()
        if not ready.wait(max(deadline - time.monotonic(), 0)) or self.port is None:
            code = self.proc.poll()
            why = f"exited with {code}" if code is not None else f"did not listen within {self.startup_timeout}s"
            raise KeystoneError(f"Keystone {why}:\n{self.log_text()}")

    def _wait_ready(self, deadline: float) -> None:
        while True:
            try:
                if requests.get(self.auth_url, timeout=5).status_code == 200:
                    return
            except requests.RequestException:
                pass
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise KeystoneError(f"Keystone did not answer GET /v3 in time:\n{self.log_text()}")
            time.sleep(0.1)

    def stop(self) -> None:
        stop_process(self.proc)
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> "Keystone":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def log_text(self) -> str:
        """Keystone's log, then what the server process printed (request lines, tracebacks)."""
        parts = [p.read_text(errors="replace") for p in (self.log_path, self.root / "keystone-server.out")
                 if p.exists()]
        return "\n".join(parts)

    # --- the REST API
    def request(self, method: str, path: str, token: str | None = None, expect: tuple[int, ...] = (200, 201, 204),
                **kw) -> requests.Response:
        """`method` on `self.auth_url + path` with X-Auth-Token `token` (the admin's by default);
        KeystoneError unless the status is one of `expect`."""
        headers = {"X-Auth-Token": token or self.admin_token(), **kw.pop("headers", {})}
        r = requests.request(method, self.auth_url + path, headers=headers, timeout=30, **kw)
        if r.status_code not in expect:
            raise KeystoneError(f"{method} {path}: {r.status_code} {r.text}")
        return r

    def _auth(self, body: dict) -> str:
        r = requests.post(self.auth_url + "/auth/tokens", json={"auth": body}, timeout=30)
        if r.status_code != 201:
            raise KeystoneError(f"POST /auth/tokens: {r.status_code} {r.text}")
        return r.headers["X-Subject-Token"]

    def admin_token(self) -> str:
        """A project-scoped token of the bootstrap admin (renewed after 30 minutes; they last 1 hour)."""
        if self._admin_token is None or time.monotonic() - self._admin_token[1] > 1800:
            self._admin_token = (self.project_token("admin", self.admin_password, "admin"), time.monotonic())
        return self._admin_token[0]

    def project_token(self, username: str, password: str, project: str | None,
                      user_domain: str = "Default", project_domain: str = "Default") -> str:
        """X-Subject-Token of a password authentication by name: scoped to project name
        `project` in domain name `project_domain`, or unscoped when `project` is None."""
        body = {"identity": {"methods": ["password"], "password": {"user": {
            "name": username, "password": password, "domain": {"name": user_domain}}}}}
        if project is not None:
            body["scope"] = {"project": {"name": project, "domain": {"name": project_domain}}}
        return self._auth(body)

    def validate_token(self, subject_token: str, auth_token: str) -> dict:
        """GET /v3/auth/tokens as a service does: the token body of `subject_token`, or
        KeystoneError (404 for an invalid or expired token, 403 when `auth_token` may not)."""
        return self.request("GET", "/auth/tokens", token=auth_token, expect=(200,),
                            headers={"X-Subject-Token": subject_token}).json()

    # --- identity objects
    def create_domain(self, name: str) -> str:
        """A new enabled domain; returns its id."""
        return self.request("POST", "/domains", json={"domain": {"name": name}}).json()["domain"]["id"]

    def domain_name(self, domain_id: str) -> str:
        return self.request("GET", f"/domains/{domain_id}").json()["domain"]["name"]

    def create_project(self, name: str, domain_id: str = DEFAULT_DOMAIN_ID) -> str:
        """A new project in domain `domain_id`; returns its id."""
        body = {"project": {"name": name, "domain_id": domain_id}}
        return self.request("POST", "/projects", json=body).json()["project"]["id"]

    def project_id(self, name: str, domain_id: str = DEFAULT_DOMAIN_ID) -> str:
        found = self.request("GET", "/projects", params={"name": name, "domain_id": domain_id}).json()["projects"]
        if len(found) != 1:
            raise KeystoneError(f"project {name!r} in domain {domain_id}: {len(found)} found")
        return found[0]["id"]

    def create_user(self, name: str, password: str | None = None, domain_id: str = DEFAULT_DOMAIN_ID) -> User:
        """A new enabled user with a password (random when not given) in domain `domain_id`."""
        password = password or secrets.token_urlsafe(16)
        body = {"user": {"name": name, "password": password, "domain_id": domain_id}}
        uid = self.request("POST", "/users", json=body).json()["user"]["id"]
        return User(self, uid, name, password, domain_id, self.domain_name(domain_id))

    def role_id(self, name: str) -> str:
        """The id of the global role `name`."""
        if name not in self._role_ids:
            roles = self.request("GET", "/roles", params={"name": name}).json()["roles"]
            if not roles:
                raise KeystoneError(f"no role {name!r}")
            self._role_ids[name] = roles[0]["id"]
        return self._role_ids[name]

    def ensure_role(self, name: str) -> str:
        """The id of the global role `name`, created when missing (e.g. Barbican's legacy
        `creator`, `observer`, `audit`)."""
        try:
            return self.role_id(name)
        except KeystoneError:
            rid = self.request("POST", "/roles", json={"role": {"name": name}}).json()["role"]["id"]
            self._role_ids[name] = rid
            return rid

    def grant_role(self, role: str, user: User | str, *, project: str | None = None, domain: str | None = None,
                   system: bool = False) -> None:
        """Give `user` (a User or a user id) the role named `role` on exactly one of: project
        id `project`, domain id `domain`, or the whole system."""
        if [project is not None, domain is not None, system].count(True) != 1:
            raise ValueError("grant_role: give exactly one of project, domain, system")
        uid = user.id if isinstance(user, User) else user
        target = f"projects/{project}" if project else f"domains/{domain}" if domain else "system"
        self.request("PUT", f"/{target}/users/{uid}/roles/{self.role_id(role)}")

    def create_service_user(self, name: str = "kcm", password: str | None = None) -> "ServiceUser":
        """kcm's own user: in domain Default, role `service` on project `service` (created
        when missing), which Keystone's default policy lets validate other users' tokens."""
        try:
            project_id = self.project_id("service")
        except KeystoneError:
            project_id = self.create_project("service")
        user = self.create_user(name, password)
        self.grant_role("service", user, project=project_id)
        return ServiceUser(self, user.id, user.name, user.password, user.domain_id, user.domain_name,
                           project_id=project_id)

    # --- the service catalog
    def register_endpoint(self, service_type: str, name: str, url: str,
                          interfaces: tuple[str, ...] = ("public", "internal")) -> str:
        """A service of type `service_type` named `name` (created when missing) with one
        endpoint per interface at `url` in RegionOne, replacing the service's endpoints there.
        Returns the service id."""
        services = self.request("GET", "/services", params={"type": service_type}).json()["services"]
        if services:
            sid = services[0]["id"]
            for ep in self.request("GET", "/endpoints", params={"service_id": sid}).json()["endpoints"]:
                self.request("DELETE", f"/endpoints/{ep['id']}")
        else:
            body = {"service": {"type": service_type, "name": name, "enabled": True}}
            sid = self.request("POST", "/services", json=body).json()["service"]["id"]
        for interface in interfaces:
            body = {"endpoint": {"service_id": sid, "interface": interface, "url": url, "region_id": REGION}}
            self.request("POST", "/endpoints", json=body)
        return sid


@dataclass
class ServiceUser(User):
    """A user with role `service` on project `service` (see Keystone.create_service_user)."""

    project_id: str = ""

    def token(self, project: str | None = "service", project_domain: str | None = "Default") -> str:
        """A token scoped to project `service`, as keystonemiddleware's service user has."""
        return super().token(project, project_domain)
