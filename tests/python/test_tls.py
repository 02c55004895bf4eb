"""With a certificate configured, kcm serves HTTPS only, and boto3 works over it."""

from __future__ import annotations

import datetime
import ipaddress
from pathlib import Path

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def self_signed(tmp_path):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)
    return str(cert_path), str(key_path)


def test_https_round_trip_and_no_plain_http(spawn_server, tmp_path):
    cert, key = self_signed(tmp_path)
    srv = spawn_server(env={"KCM_TLS_CERT": cert, "KCM_TLS_KEY": key})
    assert srv.url.startswith("https://")
    kms = srv.client("default")
    kid = kms.create_key()["KeyMetadata"]["KeyId"]
    ct = kms.encrypt(KeyId=kid, Plaintext=b"over tls")["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=ct)["Plaintext"] == b"over tls"
    # Plain HTTP on the same port is not served.
    with pytest.raises(requests.RequestException):
        requests.get(f"http://127.0.0.1:{srv.port}/health", timeout=3)
    # An untrusted client refuses the self-signed certificate.
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(f"https://127.0.0.1:{srv.port}/health", timeout=3)


def test_half_tls_configuration_is_refused(spawn_server, tmp_path):
    cert, _ = self_signed(tmp_path)
    srv = spawn_server(env={"KCM_TLS_CERT": cert}, start=False)
    from kcmtest import ServerStartError

    with pytest.raises(ServerStartError) as e:
        srv.start(timeout=10)
    assert "TLS needs both" in str(e.value)


def test_a_private_key_others_can_read_is_refused(spawn_server, tmp_path):
    cert, key = self_signed(tmp_path)
    Path(key).chmod(0o644)
    srv = spawn_server(env={"KCM_TLS_CERT": cert, "KCM_TLS_KEY": key}, start=False)
    from kcmtest import ServerStartError

    with pytest.raises(ServerStartError) as e:
        srv.start(timeout=10)
    assert f"the TLS private key file {key} is accessible by group or others" in str(e.value)
    assert f"chmod 600 {key}" in str(e.value)


def test_a_policy_requiring_tls_admits_requests_over_tls(spawn_server, tmp_path):
    """`aws:SecureTransport` is what the listener says of the connection: over TLS, a
    policy denying everything not over TLS denies nothing (test_key_policies_aws.py has
    the same policy refusing a plain-HTTP request)."""
    import json

    cert, key = self_signed(tmp_path)
    srv = spawn_server(env={"KCM_TLS_CERT": cert, "KCM_TLS_KEY": key})
    kms = srv.client("default")
    account = kms.create_key()["KeyMetadata"]["AWSAccountId"]
    policy = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{account}:root"}, "Action": "kms:*",
         "Resource": "*"},
        {"Sid": "TlsOnly", "Effect": "Deny", "Principal": "*", "Action": "kms:*", "Resource": "*",
         "Condition": {"Bool": {"aws:SecureTransport": "false"}}},
    ]})
    kid = kms.create_key(Policy=policy)["KeyMetadata"]["KeyId"]
    ct = kms.encrypt(KeyId=kid, Plaintext=b"tls only")["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=ct)["Plaintext"] == b"tls only"
