"""Wrapping key material as a customer does for BYOK: with the `openssl` command line,
following the recipes the README gives (the same as AWS KMS's for its two schemes)."""

from __future__ import annotations

import subprocess
from pathlib import Path

OAEP = ["-pkeyopt", "rsa_padding_mode:oaep", "-pkeyopt", "rsa_oaep_md:sha256", "-pkeyopt", "rsa_mgf1_md:sha256"]


def openssl(*args: str) -> None:
    try:
        r = subprocess.run(["openssl", *args], capture_output=True, text=True, timeout=60)
    except FileNotFoundError:
        raise AssertionError("openssl not found: install the openssl package (scripts/test does it as root)")
    assert r.returncode == 0, f"openssl {args[0]} failed: {r.stderr}"


def wrap(algorithm: str, public_key_pem: Path, material: Path, out: Path) -> bytes:
    """Wraps the raw key material in `material` to `public_key_pem`; returns the bytes."""
    if algorithm == "RSAES_OAEP_SHA_256":
        openssl("pkeyutl", "-encrypt", "-pubin", "-inkey", str(public_key_pem), "-in", str(material),
                "-out", str(out), *OAEP)
    elif algorithm == "RSA_AES_KEY_WRAP_SHA_256":
        kek = out.with_suffix(".kek")
        openssl("rand", "-out", str(kek), "32")
        wrapped_kek = out.with_suffix(".kek.wrapped")
        openssl("pkeyutl", "-encrypt", "-pubin", "-inkey", str(public_key_pem), "-in", str(kek),
                "-out", str(wrapped_kek), *OAEP)
        wrapped_material = out.with_suffix(".material.wrapped")
        openssl("enc", "-id-aes256-wrap-pad", "-K", kek.read_bytes().hex(), "-iv", "A65959A6",
                "-in", str(material), "-out", str(wrapped_material))
        out.write_bytes(wrapped_kek.read_bytes() + wrapped_material.read_bytes())
        for f in (kek, wrapped_kek, wrapped_material):
            f.unlink()
    else:
        raise ValueError(algorithm)
    return out.read_bytes()


def new_material(path: Path, size: int = 32) -> Path:
    openssl("rand", "-out", str(path), str(size))
    return path


def der_to_pem(der: bytes, path: Path) -> Path:
    """Writes a DER public key (as the AWS API returns it) as PEM for openssl."""
    import base64
    body = base64.b64encode(der).decode()
    lines = [body[i:i + 64] for i in range(0, len(body), 64)]
    path.write_text("-----BEGIN PUBLIC KEY-----\n" + "\n".join(lines) + "\n-----END PUBLIC KEY-----\n")
    return path
