"""Kubernetes service-account login on kcm's Vault API (`auth/kubernetes/login`), as ceph-csi
and Kubernetes workloads log in, with hvac.

kube-apiserver is not installable here, so the cluster's TokenReview API is a small
stand-in over HTTPS (vault_harness.TokenReviewStandIn) that knows two service-account
tokens; kcm is configured with its address, its CA and a reviewer token, and one role that
binds the service account ceph-csi/rbd-csi-provisioner to a key-user Vault token of the
system "csi". A login's session acts as that token: it reads and writes KV secrets and
uses Transit keys of "csi", and is cut off with it.
"""

from __future__ import annotations

import os

import hvac
import hvac.exceptions
import pytest

from kcmtest import cli_ok, kcm_cli, poll, unique
from vault_harness import TokenReviewStandIn, start_vault_server, until_refused, vault_client, vault_token

pytestmark = pytest.mark.timeout(120)

BOUND_MS = 500
REVIEWER = "reviewer-service-account-jwt"
CSI_JWT = "eyJ.csi-provisioner.jwt"
OTHER_JWT = "eyJ.web-frontend.jwt"


@pytest.fixture(scope="module")
def login_server(tmp_path_factory):
    root = tmp_path_factory.mktemp("vault-k8s")
    srv, address, pki = start_vault_server(root, BOUND_MS)
    stand_in = TokenReviewStandIn(pki, REVIEWER, {
        CSI_JWT: ("ceph-csi", "rbd-csi-provisioner"),
        OTHER_JWT: ("default", "web"),
    })
    try:
        srv.v1_ok("POST", "/v1/systems", expect=(201,), json_body={"name": "csi"})
        csi = vault_token(srv, "csi", "key-user")
        reviewer_file = root / "reviewer-token"
        reviewer_file.write_text(REVIEWER + "\n")
        os.chmod(reviewer_file, 0o600)
        with open(root / "kcm.toml", "a") as config:
            config.write(f'''
[vault_server.kubernetes]
api_server = "{stand_in.url}"
ca_file = "{pki.ca_file}"
reviewer_token_file = "{reviewer_file}"
token_ttl_seconds = 600

[[vault_server.kubernetes.roles]]
name = "ceph-csi"
service_account_names = ["rbd-csi-provisioner"]
service_account_namespaces = ["ceph-csi"]
access_key = "{csi['access_key_id']}"
''')
        srv.restart()
        poll(lambda: _answers(address, pki.ca_file), 15, what="the Vault API after the restart")
        yield srv, address, pki, stand_in, csi
    finally:
        srv.stop()
        stand_in.close()


def _answers(address: str, ca: str) -> bool:
    try:
        return hvac.Client(url=address, verify=ca).sys.read_health_status(method="GET")["initialized"]
    except Exception:  # not listening yet
        return False


def login(address: str, pki, jwt: str, role: str = "ceph-csi") -> hvac.Client:
    client = vault_client(address, pki, None)
    client.auth.kubernetes.login(role=role, jwt=jwt)
    return client


def test_a_service_account_logs_in_and_acts_as_its_roles_token(login_server):
    srv, address, pki, stand_in, csi = login_server
    client = vault_client(address, pki, None)
    answer = client.auth.kubernetes.login(role="ceph-csi", jwt=CSI_JWT)["auth"]
    assert answer["client_token"].startswith("kcms.") and answer["accessor"] == csi["access_key_id"]
    assert answer["metadata"] == {"role": "ceph-csi", "service_account_name": "rbd-csi-provisioner",
                                  "service_account_namespace": "ceph-csi",
                                  "service_account_uid": "uid-rbd-csi-provisioner"}
    assert 590 <= answer["lease_duration"] <= 600
    assert client.token == answer["client_token"], "hvac uses the session token from here on"
    # The session is the role's token: its system's KV and Transit, its role.
    me = client.auth.token.lookup_self()["data"]
    assert me["accessor"] == csi["access_key_id"] and me["meta"]["kcm_role"] == "key-user"
    assert 590 <= me["ttl"] <= 600 and me["expire_time"].endswith("Z"), me
    path = unique("csi-volume")
    client.secrets.kv.v2.create_or_update_secret(path=path, secret={"passphrase": "p"})
    owner = vault_client(address, pki, csi["vault_token"])
    assert owner.secrets.kv.v2.read_secret(path=path)["data"]["data"] == {"passphrase": "p"}
    # TokenReview was asked with the login's token, as kcm's reviewer.
    assert stand_in.reviews[-1]["spec"]["token"] == CSI_JWT
    assert stand_in.reviews[-1]["kind"] == "TokenReview"


def test_logins_that_are_refused(login_server):
    srv, address, pki, stand_in, csi = login_server
    with pytest.raises(hvac.exceptions.Forbidden, match="not bound"):
        login(address, pki, OTHER_JWT)
    with pytest.raises(hvac.exceptions.Forbidden, match="not valid"):
        login(address, pki, "eyJ.forged.jwt")
    with pytest.raises(hvac.exceptions.InvalidRequest, match="invalid role"):
        login(address, pki, CSI_JWT, role="admin")
    with pytest.raises(hvac.exceptions.InvalidRequest, match="jwt"):
        login(address, pki, "")
    stand_in.down = True
    try:
        with pytest.raises(hvac.exceptions.VaultDown, match="Kubernetes API server"):
            login(address, pki, CSI_JWT)
    finally:
        stand_in.down = False
    # A forged or altered session token is refused.
    good = login(address, pki, CSI_JWT).token
    prefix, key_id, expiry, tag = good.split(".")
    for forged in (f"{prefix}.{key_id}.{int(expiry) + 86_400_000}.{tag}", f"{prefix}.{key_id}.{expiry}.AAAA"):
        with pytest.raises(hvac.exceptions.Forbidden):
            vault_client(address, pki, forged).auth.token.lookup_self()
    # Logins are audited: a success in the tenant's chain as the role's token, a refusal
    # (no principal yet) in the operator's.
    query = "/v1/audit?operation=VaultKubernetesLogin&limit=1000"
    succeeded = srv.v1_ok("GET", query)["records"]
    assert succeeded and {(r["principal"], r["outcome"], r["front_door"]) for r in succeeded} == {
        (csi["access_key_id"], "success", "vault")}, succeeded
    refused = srv.v1_ok("GET", query, profile="system-admin")["records"]
    assert {r["outcome"] for r in refused} >= {"denied"}, refused


def test_disabling_the_roles_token_cuts_its_sessions_off(login_server):
    srv, address, pki, stand_in, csi = login_server
    client = login(address, pki, CSI_JWT)
    client.secrets.transit.generate_random_bytes(n_bytes=8)
    cli_ok(kcm_cli(srv, "access-key", "disable", csi["access_key_id"]))
    try:
        until_refused(lambda: client.secrets.transit.generate_random_bytes(n_bytes=8),
                      hvac.exceptions.Forbidden, BOUND_MS / 1000,
                      "a session refused after its token was disabled")
        with pytest.raises(hvac.exceptions.Forbidden, match="not an enabled Vault token"):
            login(address, pki, CSI_JWT)
    finally:
        cli_ok(kcm_cli(srv, "access-key", "enable", csi["access_key_id"]))
