"""The Kubernetes KMS v2 plugin end to end: a gRPC client that behaves as the API server
does talks to the real `kcm kms-plugin` over a real Unix socket, and the plugin to a real
`kcm serve` with an access key scoped to the cluster's system.

Each test gets its own server (the kill switch and restarts change it): a second root key,
a system `cluster` under it, a key in that system, and a key-user access key scoped to the
system and to Encrypt, Decrypt and DescribeKey — what an operator gives a cluster's plugin.
"""

from __future__ import annotations

import concurrent.futures
import os
import stat
import subprocess

import grpc
import pytest
from k8s_kms import ApiServer, Plugin, grpc_code, load_stubs
from kcmtest import KCM_BIN, LOADED_SLACK_S, poll, unique

# The server's revocation bound in these tests, and the slack a slow machine needs.
BOUND_S = 0.5
# The revocation bound is promised; a loaded machine may add to it.
SLACK_S = LOADED_SLACK_S
PLUGIN_OPERATIONS = ["Encrypt", "Decrypt", "DescribeKey"]


@pytest.fixture(scope="module")
def stubs(tmp_path_factory):
    return load_stubs(tmp_path_factory.mktemp("kms-v2-stubs"))


@pytest.fixture
def cluster(spawn_server, tmp_path, stubs):
    """A server, a cluster's system and key, and a started plugin with its API-server client."""
    srv = spawn_server(env={"KCM_REVOCATION_BOUND_MS": str(int(BOUND_S * 1000))})
    root = srv.v1_ok("POST", "/v1/root-keys", expect=(201,), json_body={"description": "cluster root"})
    system = srv.v1_ok("POST", "/v1/systems", expect=(201,),
                       json_body={"name": unique("cluster"), "kind": "kubernetes",
                                  "root_key_id": root["id"]})
    admin_ak = srv.create_access_key("tenant-admin", system=system["id"])
    admin = srv.client_for(admin_ak)
    key = admin.create_key(Description="kubernetes secrets")["KeyMetadata"]
    plugin_ak = srv.v1_ok("POST", "/v1/access-keys", expect=(201,), json_body={
        "role": "key-user", "system": system["id"], "operations": PLUGIN_OPERATIONS,
        "description": "kms plugin of cluster a"})
    plugin_ak = plugin_ak.get("access_key", plugin_ak)
    creds = (plugin_ak["access_key_id"], plugin_ak["secret_access_key"])
    plugin = Plugin(srv, tmp_path / "plugin-a", key["Arn"], "cluster-a", creds).start()
    api = ApiServer(stubs, plugin.socket)
    poll(lambda: api.status().healthz == "ok", 10, what="the plugin to become healthy")
    yield {"srv": srv, "root": root, "system": system, "admin": admin, "key": key, "creds": creds,
           "plugin": plugin, "api": api, "tmp": tmp_path}
    api.close()
    plugin.stop()


def raw_describe(srv, creds, key_id: str) -> dict:
    """DescribeKey's raw answer: boto3 may drop members its model lacks."""
    r = srv.aws_raw("DescribeKey", {"KeyId": key_id}, creds=creds)
    assert r.status_code == 200, r.text
    return r.json()["KeyMetadata"]


def test_round_trip_and_every_check_the_api_server_makes(cluster):
    api, key, srv = cluster["api"], cluster["key"], cluster["srv"]
    status = api.status()
    meta = raw_describe(srv, cluster["creds"], key["KeyId"])
    assert status.key_id == f"{key['Arn']}:{meta['CurrentKeyMaterialId']}"
    assert len(meta["CurrentKeyMaterialId"]) == 64

    seed = os.urandom(32)
    sealed = api.seal(seed)
    assert seed not in sealed.ciphertext
    assert api.decrypt(sealed) == seed
    # The socket is the plugin's owner's alone.
    mode = stat.S_IMODE(os.stat(cluster["plugin"].socket).st_mode)
    assert mode == 0o600, oct(mode)

    # What the API server would never send, and what was altered, is refused as such.
    pb = api.pb
    assert grpc_code(lambda: api.stub.Encrypt(pb.EncryptRequest(plaintext=b"", uid="u"))) == \
        grpc.StatusCode.INVALID_ARGUMENT
    too_long = pb.DecryptRequest(ciphertext=b"x" * 1025, key_id=sealed.key_id, uid="u")
    assert grpc_code(lambda: api.stub.Decrypt(too_long)) == grpc.StatusCode.INVALID_ARGUMENT
    tampered = bytearray(sealed.ciphertext)
    tampered[-1] ^= 1
    altered = pb.DecryptRequest(ciphertext=bytes(tampered), key_id=sealed.key_id, uid="u")
    assert grpc_code(lambda: api.stub.Decrypt(altered)) == grpc.StatusCode.INVALID_ARGUMENT
    assert api.status().healthz == "ok", "a bad ciphertext says nothing about health"
    # A uid kcm would not record (here with a newline) is only left out of the audit.
    odd = api.encrypt(seed, uid="odd\nuid")
    assert api.decrypt(odd, uid="x" * 300) == seed

    # Every call reached kcm under the plugin's access key, and is in the audit log
    # with the API server's request uid.
    records = srv.v1_ok("GET", "/v1/audit?limit=1000")["records"]
    mine = [r for r in records if r["principal"] == cluster["creds"][0]]
    assert {"Encrypt", "Decrypt", "DescribeKey"} <= {r["operation"] for r in mine}, mine[-5:]
    uids = {(r["operation"], r.get("client_request_id")) for r in mine if r["outcome"] == "success"}
    assert ("Encrypt", "uid-encrypt") in uids and ("Decrypt", "uid-decrypt") in uids, uids
    assert all(r["front_door"] == "aws" for r in mine)


def test_rotation_changes_the_key_id_and_old_seeds_still_decrypt(cluster):
    api, admin, key = cluster["api"], cluster["admin"], cluster["key"]
    before = api.healthy_key_id()
    old = api.seal(b"s" * 32)
    admin.rotate_key_on_demand(KeyId=key["KeyId"])
    after = poll(lambda: (k := api.healthy_key_id()) != before and k, 5, what="a new key id")
    assert after.startswith(key["Arn"] + ":")
    new = api.seal(b"t" * 32)
    assert new.key_id == after
    assert api.decrypt(old) == b"s" * 32
    assert api.decrypt(new) == b"t" * 32


def test_kill_switch_cuts_the_cluster_off_within_the_bound_and_enable_restores_it(cluster):
    api, srv, root = cluster["api"], cluster["srv"], cluster["root"]
    sealed = api.seal(b"k" * 32)
    # The preview names the cluster as what it is.
    preview = srv.v1_ok("POST", f"/v1/root-keys/{root['id']}/disable?dry_run=true")
    assert [(s["name"], s["kind"]) for s in preview["systems"]] == \
        [(cluster["system"]["name"], "kubernetes")], preview["systems"]
    assert [k["id"] for k in preview["systems"][0]["service_keys"]] == [cluster["key"]["KeyId"]]
    impact = srv.v1_ok("POST", f"/v1/root-keys/{root['id']}/disable")
    assert impact["applied"] is True

    def refused():
        s = api.status()
        return s.healthz != "ok" and s
    # Within the bound (and a loaded machine's slack): poll fails the test otherwise.
    status = poll(refused, BOUND_S + SLACK_S, interval=0.05, what="Status to report the cut-off")
    assert "disabled" in status.healthz.lower() or "state" in status.healthz.lower(), status.healthz
    assert status.key_id, "the last known key id is still reported"
    assert grpc_code(lambda: api.encrypt(b"k" * 32)) == grpc.StatusCode.FAILED_PRECONDITION
    assert grpc_code(lambda: api.decrypt(sealed)) == grpc.StatusCode.FAILED_PRECONDITION

    srv.v1_ok("POST", f"/v1/root-keys/{root['id']}/enable")
    poll(lambda: api.status().healthz == "ok", BOUND_S + SLACK_S, interval=0.05, what="recovery")
    assert api.decrypt(sealed) == b"k" * 32
    assert api.decrypt(api.seal(b"n" * 32)) == b"n" * 32


def test_another_clusters_ciphertext_is_refused_even_with_the_same_key(cluster, stubs):
    api = cluster["api"]
    sealed = api.seal(b"a" * 32)
    other = Plugin(cluster["srv"], cluster["tmp"] / "plugin-b", cluster["key"]["Arn"], "cluster-b",
                   cluster["creds"]).start()
    try:
        api_b = ApiServer(stubs, other.socket)
        poll(lambda: api_b.status().healthz == "ok", 10, what="plugin b to become healthy")
        assert grpc_code(lambda: api_b.decrypt(sealed)) == grpc.StatusCode.INVALID_ARGUMENT
        own = api_b.seal(b"b" * 32)
        assert api_b.decrypt(own) == b"b" * 32
        assert grpc_code(lambda: api.decrypt(own)) == grpc.StatusCode.INVALID_ARGUMENT
        api_b.close()
    finally:
        other.stop()


def test_a_key_outside_the_plugins_system_is_denied_and_reported(cluster, stubs):
    srv = cluster["srv"]
    elsewhere = srv.client("default").create_key(Description="not the cluster's")["KeyMetadata"]
    wrong = Plugin(srv, cluster["tmp"] / "plugin-wrong", elsewhere["Arn"], "cluster-a",
                   cluster["creds"]).start()
    try:
        api = ApiServer(stubs, wrong.socket)
        status = api.status()
        assert status.healthz != "ok" and "AccessDenied" in status.healthz, status.healthz
        # The plugin never learned the key's current version (Status was denied), so
        # Encrypt has no key id to report and is refused as UNAVAILABLE before kcm is asked.
        assert grpc_code(lambda: api.encrypt(b"x" * 32)) == grpc.StatusCode.UNAVAILABLE
        api.close()
    finally:
        wrong.stop()


def test_64_concurrent_callers(cluster):
    api = cluster["api"]
    seeds = [os.urandom(32) for _ in range(64)]

    def round_trip(seed: bytes) -> bool:
        return api.decrypt(api.encrypt(seed)) == seed

    with concurrent.futures.ThreadPoolExecutor(max_workers=64) as pool:
        results = list(pool.map(round_trip, seeds, timeout=60))
    assert results == [True] * 64
    assert api.status().healthz == "ok"


def test_kcm_unreachable_is_unavailable_and_health_returns_with_it(cluster):
    api, srv = cluster["api"], cluster["srv"]
    sealed = api.seal(b"u" * 32)
    port = srv.port
    srv.stop()
    status = poll(lambda: (s := api.status()).healthz != "ok" and s, 5, what="unhealthy")
    assert "unavailable" in status.healthz.lower(), status.healthz
    assert grpc_code(lambda: api.decrypt(sealed)) == grpc.StatusCode.UNAVAILABLE
    srv.start(port=port)
    poll(lambda: api.status().healthz == "ok", 10, what="health to return")
    assert api.decrypt(sealed) == b"u" * 32


def test_restart_over_a_stale_socket_and_never_over_a_live_one(cluster, stubs):
    plugin, api = cluster["plugin"], cluster["api"]
    sealed = api.seal(b"r" * 32)
    # A second plugin on the live socket refuses to start and leaves it working.
    twin = subprocess.run(plugin.command(), capture_output=True, text=True, timeout=30,
                          env={k: v for k, v in os.environ.items() if not k.startswith(("KCM_", "AWS_"))})
    assert twin.returncode != 0 and "in use" in twin.stderr, twin.stderr
    assert api.decrypt(sealed) == b"r" * 32
    # Killed (no clean-up), the plugin leaves its socket; the next start replaces it.
    plugin.kill()
    assert plugin.socket.exists()
    plugin.start()
    fresh = ApiServer(stubs, plugin.socket)
    poll(lambda: fresh.status().healthz == "ok", 10, what="the restarted plugin")
    assert fresh.decrypt(sealed) == b"r" * 32
    fresh.close()


def test_the_credentials_file_must_be_private(cluster):
    plugin = cluster["plugin"]
    plugin.credentials_file.chmod(0o644)
    other = plugin.command()
    other[other.index("--socket") + 1] = str(cluster["tmp"] / "other.sock")
    run = subprocess.run(other, capture_output=True, text=True, timeout=30,
                         env={k: v for k, v in os.environ.items() if not k.startswith(("KCM_", "AWS_"))})
    assert run.returncode != 0 and "chmod 600" in run.stderr, run.stderr
    assert not (cluster["tmp"] / "other.sock").exists()


def test_help_explains_the_plugin():
    out = subprocess.run([str(KCM_BIN), "kms-plugin", "--help"], capture_output=True, text=True,
                         timeout=30)
    assert out.returncode == 0
    for needle in ("--socket", "--key-id", "--cluster", "--status-max-age-ms", "0600"):
        assert needle in out.stdout, needle


def test_embedded_plugin_in_kcm_serve_is_its_own_audited_door(cluster, stubs):
    """`[kubernetes_kms]` in the server's configuration: the same API on a socket of the
    server itself, acting as the plugin's access key, audited as the door `k8s-kms`."""
    srv, key, tmp = cluster["srv"], cluster["key"], cluster["tmp"]
    from_standalone = cluster["api"].seal(b"s" * 32)
    cluster["plugin"].stop()
    socket = tmp / "embedded.sock"
    config = tmp / "kcm.toml"
    config.write_text(
        "[kubernetes_kms]\n"
        f'socket = "{socket}"\n'
        f'key_id = "{key["KeyId"]}"\n'
        'cluster = "cluster-a"\n'
        f'access_key_id = "{cluster["creds"][0]}"\n'
        "status_max_age_ms = 200\n")
    srv.extra_env["KCM_CONFIG"] = str(config)
    srv.restart()
    api = ApiServer(stubs, socket)
    try:
        status = poll(lambda: (s := api.status()).healthz == "ok" and s, 10, what="embedded plugin")
        meta = raw_describe(srv, cluster["creds"], key["KeyId"])
        assert status.key_id == f"{key['KeyId']}:{meta['CurrentKeyMaterialId']}"
        assert stat.S_IMODE(os.stat(socket).st_mode) == 0o600
        sealed = api.seal(b"e" * 32)
        assert api.decrypt(sealed) == b"e" * 32
        # The same cluster binding as the standalone plugin: what one wrote, the other reads.
        assert api.decrypt(from_standalone) == b"s" * 32
        flipped = sealed.ciphertext[:-1] + bytes([sealed.ciphertext[-1] ^ 1])
        altered = type(sealed)(ciphertext=flipped, key_id=sealed.key_id)
        assert grpc_code(lambda: api.decrypt(altered)) == grpc.StatusCode.INVALID_ARGUMENT

        records = srv.v1_ok("GET", "/v1/audit?limit=1000")["records"]
        door = [r for r in records if r["front_door"] == "k8s-kms"]
        assert {(r["operation"], r.get("client_request_id"), r["principal"]) for r in door} >= {
            ("Encrypt", "uid-encrypt", cluster["creds"][0]),
            ("Decrypt", "uid-decrypt", cluster["creds"][0]),
        }, door[-6:]
        assert all(key["KeyId"] in [k["id"] for k in r["keys"]] for r in door if r["outcome"] == "success")

        # The kill switch reaches it within the bound, and enable brings it back.
        root = cluster["root"]
        srv.v1_ok("POST", f"/v1/root-keys/{root['id']}/disable")
        poll(lambda: api.status().healthz != "ok", BOUND_S + SLACK_S, interval=0.05, what="cut-off")
        assert grpc_code(lambda: api.decrypt(sealed)) == grpc.StatusCode.FAILED_PRECONDITION
        srv.v1_ok("POST", f"/v1/root-keys/{root['id']}/enable")
        poll(lambda: api.status().healthz == "ok", BOUND_S + SLACK_S, interval=0.05, what="recovery")

        # Disabling the plugin's access key stops it: the core refuses it as any caller.
        srv.v1_ok("POST", f"/v1/access-keys/{cluster['creds'][0]}/disable")
        poll(lambda: api.status().healthz != "ok", BOUND_S + SLACK_S, interval=0.05, what="refusal")
        assert grpc_code(lambda: api.decrypt(sealed)) == grpc.StatusCode.PERMISSION_DENIED
    finally:
        api.close()
    assert srv.stop() == 0
    assert not socket.exists(), "a clean stop removes the socket"


def test_the_plugin_reaches_kcm_over_https_with_a_private_ca(spawn_server, tmp_path, stubs):
    """kcm over HTTPS with its own CA: the plugin trusts the system's CA store, or the
    file SSL_CERT_FILE names; without it, Status says kcm is unavailable."""
    ca, cert, key = private_ca_and_server_cert(tmp_path)
    srv = spawn_server(env={"KCM_TLS_CERT": cert, "KCM_TLS_KEY": key}, start=False)
    srv.trusted_ca = ca
    srv.start()
    assert srv.url.startswith("https://")
    arn = srv.client("default").create_key(Description="over tls")["KeyMetadata"]["Arn"]
    untrusting = Plugin(srv, tmp_path / "untrusting", arn, "cluster-t", srv.creds("default")).start()
    trusting = Plugin(srv, tmp_path / "trusting", arn, "cluster-t", srv.creds("default"),
                      env={"SSL_CERT_FILE": ca}).start()
    try:
        api = ApiServer(stubs, untrusting.socket)
        status = api.status()
        assert status.healthz != "ok" and "unavailable" in status.healthz, status.healthz
        api.close()
        api = ApiServer(stubs, trusting.socket)
        poll(lambda: api.status().healthz == "ok", 10, what="the plugin over HTTPS")
        assert api.decrypt(api.seal(b"t" * 32)) == b"t" * 32
        api.close()
    finally:
        untrusting.stop()
        trusting.stop()


def private_ca_and_server_cert(tmp_path):
    """A private CA and a certificate it issued for 127.0.0.1: paths (ca, cert, key)."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)

    def issue(subject, public_key, issuer, signer, ca: bool):
        builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer)
                   .public_key(public_key).serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(minutes=5))
                   .not_valid_after(now + datetime.timedelta(days=1))
                   .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        if not ca:
            builder = builder.add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        return builder.sign(signer, hashes.SHA256())

    ca_key, server_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kcm test CA")])
    server_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    ca_cert = issue(ca_name, ca_key.public_key(), ca_name, ca_key, ca=True)
    server_cert = issue(server_name, server_key.public_key(), ca_name, ca_key, ca=False)
    pem = serialization.Encoding.PEM
    paths = tmp_path / "ca.pem", tmp_path / "server.pem", tmp_path / "server.key"
    paths[0].write_bytes(ca_cert.public_bytes(pem))
    paths[1].write_bytes(server_cert.public_bytes(pem))
    paths[2].write_bytes(server_key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                                  serialization.NoEncryption()))
    paths[2].chmod(0o600)  # kcm reads a private key only when it is private
    return tuple(str(p) for p in paths)
