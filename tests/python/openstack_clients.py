"""Real OpenStack clients of the Key Manager API (Barbican v1), for kcm's Barbican door.

* `OpenStackAuth`      - Keystone password credentials of one user scoped to one project,
                         as the OS_* environment variables of an openrc file.
* `barbican_cli`       - runs python-barbicanclient's `barbican` command (a subprocess, as an
                         operator would) and parses its `-f json` output.
* `Castellan`          - castellan's Barbican key manager (the library Nova and Cinder use),
                         with the calls those services make: volume keys, passphrases,
                         key pairs, get, delete.
* `register_barbican_endpoint` - a `key-manager` service and endpoints in Keystone's catalog.

Finding the Barbican endpoint: both clients take it directly (`barbican --endpoint URL`,
castellan's `[barbican] barbican_endpoint`), so no catalog entry is needed. Without it
they look up service type `key-manager`, interface `public`, in the token's catalog:
call `register_barbican_endpoint` first. Either way the endpoint is the service root
(e.g. `http://127.0.0.1:PORT`, without `/v1`): the client GETs it for version discovery
(header `OpenStack-API-Version: key-manager 1.1`, answer 300 with a `versions` list giving
`min_version`/`max_version`) and appends `/v1` itself.

The standalone `barbican` command (python-barbicanclient's console script, which prints a
deprecation warning on stderr) is used rather than `openstack secret ...`, which would
need python-openstackclient and its many dependencies for the same code: both run
barbicanclient's cliff commands.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

BARBICAN = str(Path(sys.executable).parent / "barbican")


@dataclass(frozen=True)
class OpenStackAuth:
    """Keystone v3 password authentication of user `username` (in domain
    `user_domain_name`) scoped to project `project_name` (in `project_domain_name`)."""

    auth_url: str
    username: str
    password: str
    project_name: str
    user_domain_name: str = "Default"
    project_domain_name: str = "Default"

    @classmethod
    def of(cls, user, project_name: str, project_domain_name: str | None = None) -> "OpenStackAuth":
        """The credentials of a keystone.User scoped to `project_name` (in the user's own
        domain unless `project_domain_name` is given)."""
        return cls(user.keystone.auth_url, user.name, user.password, project_name, user.domain_name,
                   project_domain_name or user.domain_name)

    def env(self) -> dict[str, str]:
        """The OS_* variables of an openrc file for these credentials."""
        return {
            "OS_AUTH_URL": self.auth_url,
            "OS_USERNAME": self.username,
            "OS_PASSWORD": self.password,
            "OS_PROJECT_NAME": self.project_name,
            "OS_USER_DOMAIN_NAME": self.user_domain_name,
            "OS_PROJECT_DOMAIN_NAME": self.project_domain_name,
            "OS_IDENTITY_API_VERSION": "3",
        }


def register_barbican_endpoint(keystone, url: str) -> str:
    """Service type `key-manager` named `barbican` in `keystone`'s catalog, with public and
    internal endpoints at `url` (the service root, without /v1) in RegionOne, replacing
    earlier ones. Returns the service id. Clients that are not given an endpoint (castellan
    without `barbican_endpoint`, `barbican` without `--endpoint`, Ceph RGW) find it there."""
    return keystone.register_endpoint("key-manager", "barbican", url)


class CliError(AssertionError):
    """The `barbican` command failed; `.result` is its CompletedProcess."""

    def __init__(self, result: subprocess.CompletedProcess):
        super().__init__(f"{' '.join(result.args[1:])} exited with {result.returncode}:\n"
                         f"{result.stdout}{result.stderr}")
        self.result = result


def barbican_cli(auth: OpenStackAuth, endpoint: str | None, *args: str, output_json: bool = True,
                 check: bool = True, timeout: float = 120.0):
    """Run `barbican [--endpoint ENDPOINT] ARGS... [-f json]` with `auth` in the environment
    (no endpoint: the catalog's `key-manager` endpoint). Returns the parsed JSON (None when the
    command printed nothing, as delete does); with output_json=False, the stdout text.
    Raises CliError on a non-zero exit unless check=False, in which case the
    CompletedProcess is returned instead of failing.

        barbican_cli(auth, url, "secret", "store", "-n", "db-password", "-p", "s3cret")
        barbican_cli(auth, url, "secret", "get", "--payload", href)   # {"Payload": "s3cret"}
        barbican_cli(auth, url, "secret", "list", "--limit", "5")
        barbican_cli(auth, url, "secret", "delete", href, output_json=False)
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OS_", "BARBICAN_"))}
    env.update(auth.env())
    cmd = [BARBICAN, *(["--endpoint", endpoint] if endpoint else []), *args, *(["-f", "json"] if output_json else [])]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    if r.returncode != 0:
        if check:
            raise CliError(r)
        return r
    if not output_json:
        return r.stdout
    return json.loads(r.stdout) if r.stdout.strip() else None


class Castellan:
    """castellan's Barbican key manager as Nova and Cinder configure it:

        [key_manager]
        backend = barbican
        [barbican]
        barbican_endpoint = <endpoint>      # unset: the catalog's key-manager endpoint
        barbican_api_version = v1
        auth_endpoint = <keystone /v3>

    acting for `auth`'s user through a castellan KeystonePassword credential (Nova and Cinder
    pass the user's request context instead; the token that ends up on the wire is the same
    kind of project-scoped token). Orders are polled every `retry_delay` seconds."""

    def __init__(self, auth: OpenStackAuth, endpoint: str | None, retry_delay: int = 1, number_of_retries: int = 30):
        from castellan import key_manager, options
        from castellan.common.credentials import keystone_password
        from oslo_config import cfg

        self.conf = cfg.ConfigOpts()
        self.conf([], default_config_files=[])
        options.set_defaults(self.conf, backend="barbican", barbican_endpoint=endpoint, barbican_api_version="v1",
                             auth_endpoint=auth.auth_url, retry_delay=retry_delay,
                             number_of_retries=number_of_retries)
        self.manager = key_manager.API(self.conf)
        self.context = keystone_password.KeystonePassword(
            auth.password, auth_url=auth.auth_url, username=auth.username, user_domain_name=auth.user_domain_name,
            project_name=auth.project_name, project_domain_name=auth.project_domain_name)

    def create_volume_key(self, name: str | None = None) -> str:
        """What Cinder does for an encrypted volume: an AES-256 key made by Barbican (an order
        of type key, polled until ACTIVE, then deleted). Returns the key's id (secret UUID)."""
        return self.manager.create_key(self.context, algorithm="AES", length=256, name=name)

    def create_key_pair(self, name: str | None = None) -> tuple[str, str]:
        """An RSA-2048 key pair made by Barbican (an asymmetric order, whose container is read
        and then deleted). Returns (private key id, public key id)."""
        return self.manager.create_key_pair(self.context, algorithm="RSA", length=2048, name=name)

    def store_passphrase(self, passphrase: str, name: str | None = None) -> str:
        """What Nova does for a vTPM: stores a Passphrase (secret type passphrase). Returns its id."""
        from castellan.common.objects import passphrase as castellan_passphrase

        return self.manager.store(self.context, castellan_passphrase.Passphrase(passphrase, name=name))

    def store_key(self, key: bytes, algorithm: str = "AES", name: str | None = None) -> str:
        """Stores caller-made key material as a symmetric key. Returns its id."""
        from castellan.common.objects import symmetric_key

        return self.manager.store(self.context, symmetric_key.SymmetricKey(algorithm, len(key) * 8, key, name=name))

    def get(self, managed_object_id: str):
        """The castellan object (SymmetricKey, Passphrase, PrivateKey, PublicKey, ...) with its
        payload: `.get_encoded()` is the key material (bytes)."""
        return self.manager.get(self.context, managed_object_id)

    def delete(self, managed_object_id: str) -> None:
        self.manager.delete(self.context, managed_object_id)

    def list(self, object_type=None, metadata_only: bool = False) -> list:
        """The project's objects (of castellan class `object_type` when given)."""
        return self.manager.list(self.context, object_type=object_type, metadata_only=metadata_only)
