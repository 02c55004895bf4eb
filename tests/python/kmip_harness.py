"""What the KMIP tests share: a private PKI (a CA, the server's certificate, client
certificates mapped by fingerprint) and a kcm server with `[kmip_server]` whose clients are
key-users of systems of their own; PyKMIP's client over mutual TLS.

(Not named `kmip`: that is PyKMIP's package.)
"""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import socket
import time
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from kmip.core import enums
from kmip.pie.client import ProxyKmipClient

from kcmtest import Server, free_port, start_or_fail

# ----------------------------------------------------------------------------- the PKI

def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _cert(subject: str, issuer: str, public_key, signer, *, ca: bool = False, server: bool = False):
    now = datetime.datetime.now(datetime.timezone.utc)
    b = (x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(_name(issuer))
         .public_key(public_key).serial_number(x509.random_serial_number())
         .not_valid_before(now - datetime.timedelta(minutes=5))
         .not_valid_after(now + datetime.timedelta(days=1))
         .add_extension(x509.BasicConstraints(ca=ca, path_length=0 if ca else None), critical=True))
    if ca:
        b = b.add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                          data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                          crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
    elif server:
        b = (b.add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                          x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                             critical=False)
             .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False))
    else:
        b = b.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
    return b.sign(signer, hashes.SHA256())


class Pki:
    """A CA, the server's certificate, and client certificates: (cert path, key path,
    SHA-256 fingerprint) by name."""

    def __init__(self, directory: Path):
        self.dir = directory
        self.ca_key = ec.generate_private_key(ec.SECP256R1())
        self.ca = _cert("kmip test CA", "kmip test CA", self.ca_key.public_key(), self.ca_key, ca=True)
        self.ca_file = self._write("ca.pem", self.ca.public_bytes(serialization.Encoding.PEM))
        self.server_cert, self.server_key, _ = self.issue("localhost", server=True)

    def _write(self, name: str, data: bytes, private: bool = False) -> str:
        path = self.dir / name
        path.write_bytes(data)
        if private:
            path.chmod(0o600)
        return str(path)

    def issue(self, cn: str, *, server: bool = False, ca_key=None, ca_name: str = "kmip test CA"):
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _cert(cn, ca_name, key.public_key(), ca_key or self.ca_key, server=server)
        cert_path = self._write(f"{cn}.pem", cert.public_bytes(serialization.Encoding.PEM))
        key_path = self._write(f"{cn}.key", key.private_bytes(serialization.Encoding.PEM,
                                                               serialization.PrivateFormat.PKCS8,
                                                               serialization.NoEncryption()), private=True)
        fingerprint = hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()
        return cert_path, key_path, fingerprint

    def foreign(self, cn: str):
        """A client certificate of another CA, which the server does not trust."""
        other = ec.generate_private_key(ec.SECP256R1())
        return self.issue(cn, ca_key=other, ca_name="another CA")


# ----------------------------------------------------------------------------- the server

def start_kmip_server(root: Path, pki: Pki, systems: tuple[str, ...], bound_ms: int,
                      other_tenant_systems: tuple[str, ...] = ()) -> tuple[Server, int, dict]:
    """A kcm server with TLS and `[kmip_server]`, and for each of `systems` (in the default
    tenant) and of `other_tenant_systems` (in a second tenant) a system, a key-user access
    key scoped to it and a client certificate mapped to that key: (server, KMIP port,
    {system: {cert, key, fingerprint, access_key_id, secret, system}}). The server is
    started once to mint the keys, then again with the table naming them."""
    env = {"KCM_TLS_CERT": pki.server_cert, "KCM_TLS_KEY": pki.server_key,
           "KCM_REVOCATION_BOUND_MS": str(bound_ms)}
    srv = Server(root / "data", root / "logs", name="kmip", env=env)
    srv.trusted_ca = pki.ca_file
    start_or_fail(srv)
    admins = [(name, None) for name in systems]
    if other_tenant_systems:
        made = srv.v1_ok("POST", "/v1/tenants", profile="system-admin", expect=(201,),
                         json_body={"name": "kmip-other-tenant"})
        other_admin = (made["access_key"]["access_key_id"], made["access_key"]["secret_access_key"])
        admins += [(name, other_admin) for name in other_tenant_systems]
    clients = {}
    for name, admin in admins:
        srv.v1_ok("POST", "/v1/systems", creds=admin, expect=(201,), json_body={"name": name})
        key = srv.v1_ok("POST", "/v1/access-keys", creds=admin, expect=(201,),
                        json_body={"role": "key-user", "system": name})
        cert, key_file, fingerprint = pki.issue(name)
        clients[name] = {"cert": cert, "key": key_file, "fingerprint": fingerprint,
                         "access_key_id": key["access_key_id"], "secret": key["secret_access_key"],
                         "system": name}
    srv.stop()
    port = free_port()
    table = f'[kmip_server]\nlisten = "127.0.0.1:{port}"\nclient_ca_file = "{pki.ca_file}"\n'
    for name, c in clients.items():
        table += (f'[[kmip_server.clients]]\nname = "{name}"\nfingerprint = "{c["fingerprint"]}"\n'
                  f'access_key_id = "{c["access_key_id"]}"\n')
    config = root / "kcm.toml"
    config.write_text(table)
    srv.extra_env["KCM_CONFIG"] = str(config)
    start_or_fail(srv)
    wait_for_port(port)
    return srv, port, clients


def wait_for_port(port: int, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"KMIP port {port} never opened")


def client(pki: Pki, port: int, cert: str, key: str, version=enums.KMIPVersion.KMIP_1_2,
           username: str | None = None, password: str | None = None) -> ProxyKmipClient:
    """PyKMIP's client over mutual TLS, opened; with `username`, it sends a Username and
    Password credential in every request's header."""
    c = ProxyKmipClient(hostname="127.0.0.1", port=port, cert=cert, key=key, ca=pki.ca_file,
                        kmip_version=version, config_file=None, username=username, password=password)
    c.open()
    return c


def name_attribute(c: ProxyKmipClient, name: str):
    return c.attribute_factory.create_attribute(enums.AttributeType.NAME, name)
