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
                      other_tenant_systems: tuple[str, ...] = (),
                      by_subject: tuple[str, ...] = (), env: dict | None = None) -> tuple[Server, int, dict]:
    """A kcm server with TLS and `[kmip_server]`, and for each of `systems` (in the default
    tenant) and of `other_tenant_systems` (in a second tenant) a system, a key-user access
    key scoped to it and a client certificate mapped to that key — by its SHA-256
    fingerprint, or for the systems in `by_subject` by its subject `CN=<system>`: (server,
    KMIP port, {system: {cert, key, fingerprint, access_key_id, secret, system}}). The
    server is started once to mint the keys, then again with the table naming them."""
    env = {"KCM_TLS_CERT": pki.server_cert, "KCM_TLS_KEY": pki.server_key,
           "KCM_REVOCATION_BOUND_MS": str(bound_ms), **(env or {})}
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
        mapped = f'subject = "CN={name}"' if name in by_subject else f'fingerprint = "{c["fingerprint"]}"'
        table += (f'[[kmip_server.clients]]\nname = "{name}"\n{mapped}\n'
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


# ----------------------------------------------------------------------------- raw TTLV
# For what PyKMIP's client cannot send or read (RNG Retrieve, AES-GCM's tag, MAC Verify,
# Add Attribute, KMIP 2.1): items encoded and read from the specification.

STRUCTURE, INTEGER, ENUMERATION, BOOLEAN, TEXT, BYTES = 0x01, 0x02, 0x05, 0x06, 0x07, 0x08


def item(tag: int, kind: int, value: bytes) -> bytes:
    """One TTLV item (value padded to 8 bytes)."""
    return tag.to_bytes(3, "big") + bytes([kind]) + len(value).to_bytes(4, "big") + value + b"\0" * (-len(value) % 8)


def structure(tag: int, *children: bytes) -> bytes:
    return item(tag, STRUCTURE, b"".join(children))


def integer(tag: int, v: int) -> bytes:
    return item(tag, INTEGER, v.to_bytes(4, "big"))


def enum(tag: int, v: int) -> bytes:
    return item(tag, ENUMERATION, v.to_bytes(4, "big"))


def text(tag: int, v: str) -> bytes:
    return item(tag, TEXT, v.encode())


def byte_string(tag: int, v: bytes) -> bytes:
    return item(tag, BYTES, v)


def items(data: bytes):
    """(tag, type, value) of each TTLV item in `data`, one level."""
    at = 0
    while at < len(data):
        tag, kind, length = int.from_bytes(data[at:at + 3], "big"), data[at + 3], int.from_bytes(data[at + 4:at + 8], "big")
        yield tag, kind, data[at + 8:at + 8 + length]
        at += 8 + length + (-length % 8)


def request(operation: int, payload: bytes, version: tuple[int, int] = (1, 4)) -> bytes:
    """A request message of one batch item."""
    header = structure(0x420077, structure(0x420069, integer(0x42006A, version[0]), integer(0x42006B, version[1])),
                       integer(0x42000D, 1))
    batch = structure(0x42000F, enum(0x42005C, operation), item(0x420079, STRUCTURE, payload))
    return structure(0x420078, header, batch)


def send(pki: Pki, port: int, cert: str, key: str, message: bytes) -> bytes:
    """One raw request message over mutual TLS; the whole response message."""
    import ssl
    ctx = ssl.create_default_context(cafile=pki.ca_file)
    ctx.check_hostname = False
    ctx.load_cert_chain(cert, key)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw, ctx.wrap_socket(raw) as tls:
        tls.sendall(message)
        data = b""
        while len(data) < 8 or len(data) < 8 + int.from_bytes(data[4:8], "big"):
            chunk = tls.recv(65536)
            assert chunk, "the server closed the connection before answering"
            data += chunk
    return data


class Answer:
    """A response of one batch item: its header's version, status, reason, message, and
    the payload's items by tag (each a list, in order)."""

    def __init__(self, data: bytes):
        ((tag, _, message),) = list(items(data))
        assert tag == 0x42007B, hex(tag)
        fields = list(items(message))
        header = next(v for t, _, v in fields if t == 0x42007A)
        version = {t: v for t, _, v in items(header)}[0x420069]
        version = {t: int.from_bytes(v, "big") for t, _, v in items(version)}
        self.version = (version[0x42006A], version[0x42006B])
        batch = {t: v for t, _, v in items(next(v for t, _, v in fields if t == 0x42000F))}
        self.status = int.from_bytes(batch[0x42007F], "big")
        self.reason = int.from_bytes(batch[0x42007E], "big") if 0x42007E in batch else None
        self.message = batch.get(0x42007D, b"").decode()
        self.payload: dict[int, list[bytes]] = {}
        for t, _, v in items(batch.get(0x42007C, b"")):
            self.payload.setdefault(t, []).append(v)

    def ok(self) -> "Answer":
        assert self.status == 0, (self.reason, self.message)
        return self

    def one(self, tag: int) -> bytes:
        (value,) = self.payload[tag]
        return value


def call(pki: Pki, port: int, who: dict, operation: int, payload: bytes, version=(1, 4)) -> Answer:
    """One operation as `who` (a client of `start_kmip_server`), raw."""
    return Answer(send(pki, port, who["cert"], who["key"], request(operation, payload, version)))
