"""A small OpenStack cloud around kcm: a Keystone domain with two projects and their users,
and a real `kcm serve` whose Barbican door trusts that Keystone.

    cloud = OpenStackCloud.start(keystone, root)     # keystone: keystone.Keystone, running
    cloud.auth("member1")                            # OpenStackAuth of a user in its project
    cloud.barbican_url                               # the door's service root
    cloud.srv                                        # kcmtest.Server (AWS/REST listener, CLI)
    cloud.stop()

Users (domain `cloud.domain_name`): member1 (member of p1), reader1 (reader of p1), admin1
(admin of p1), other1 (member of p2). The domain maps to the kcm tenant `default` of the
server (it exists after the first start); projects become systems `keystone-<project id>`.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from pathlib import Path

import requests

from kcmtest import Server, free_port, poll, start_or_fail, unique
from openstack_clients import OpenStackAuth

#: (user, project, Keystone role) of every user a cloud has.
USERS = (
    ("member1", "p1", "member"),
    ("reader1", "p1", "reader"),
    ("admin1", "p1", "admin"),
    ("other1", "p2", "member"),
)


@dataclass
class OpenStackCloud:
    keystone: object
    srv: Server
    barbican_port: int
    domain_id: str
    domain_name: str
    projects: dict[str, str] = field(default_factory=dict)   # name -> id
    users: dict[str, object] = field(default_factory=dict)   # name -> keystone.User
    user_projects: dict[str, str] = field(default_factory=dict)

    @property
    def barbican_url(self) -> str:
        return f"http://127.0.0.1:{self.barbican_port}"

    def auth(self, user: str, project: str | None = None) -> OpenStackAuth:
        """Password credentials of `user` scoped to its project (or `project`)."""
        return OpenStackAuth.of(self.users[user], project or self.user_projects[user])

    def token(self, user: str) -> str:
        return self.users[user].token(self.user_projects[user])

    def system_name(self, project: str) -> str:
        """The kcm system a project becomes."""
        return f"keystone-{self.projects[project]}"

    def default_root(self) -> dict:
        return next(r for r in self.srv.v1_ok("GET", "/v1/root-keys")["root_keys"] if r["default"])

    def kill_switch(self, verb: str) -> dict:
        """`verb` (disable, enable, suspend) on the tenant's default root key, as its tenant-admin."""
        return self.srv.v1_ok("POST", f"/v1/root-keys/{self.default_root()['id']}/{verb}")

    def stop(self) -> None:
        self.srv.stop()

    @classmethod
    def start(cls, keystone, root: Path, revocation_bound_ms: int = 500) -> "OpenStackCloud":
        """Creates the domain, projects and users in `keystone`, writes kcm's configuration
        (`[barbican]` with kcm's own Keystone service user) and starts `kcm serve` in `root`."""
        root = Path(root)
        domain_name = unique("cobalt")
        domain_id = keystone.create_domain(domain_name)
        projects = {name: keystone.create_project(name, domain_id) for name in ("p1", "p2")}
        users, user_projects = {}, {}
        for name, project, role in USERS:
            user = keystone.create_user(name, domain_id=domain_id)
            keystone.grant_role(role, user, project=projects[project])
            users[name], user_projects[name] = user, project
        service = keystone.create_service_user(unique("kcm"))
        port = free_port()
        config = root / "kcm.toml"
        root.mkdir(parents=True, exist_ok=True)
        config.write_text(
            "[barbican]\n"
            f'listen = "127.0.0.1:{port}"\n'
            "\n[barbican.keystone]\n"
            f'url = "{keystone.auth_url}"\n'
            f'user = "{service.name}"\n'
            'password_env = "KCM_KEYSTONE_PASSWORD"\n'
            'project = "service"\n'
            f"\n[barbican.domains.{domain_name}]\n"
            'tenant = "default"\n')
        srv = Server(root / "data", root / "logs", name="openstack", env={
            "KCM_CONFIG": str(config),
            "KCM_KEYSTONE_PASSWORD": service.password,
            "KCM_REVOCATION_BOUND_MS": str(revocation_bound_ms),
        })
        start_or_fail(srv)
        cloud = cls(keystone, srv, port, domain_id, domain_name, projects, users, user_projects)
        poll(lambda: _answers(cloud.barbican_url), 15, what=f"the Barbican door on {cloud.barbican_url}")
        return cloud


def _answers(url: str) -> bool:
    try:
        return requests.get(url + "/", timeout=2).status_code == 300
    except requests.RequestException:
        return False


def random_passphrase() -> str:
    """A passphrase as Nova or a LUKS script would make one."""
    return secrets.token_hex(32)
