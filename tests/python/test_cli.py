"""The `kcm` command-line client (subprocess), against the session server.

ADAPT HERE: the exact argument shapes and JSON output of the CLI are the CLI author's call.
Every command line is built by one of the small functions in the "command shapes" section
below, and assertions are on key facts only (exit code, that an id appears, round-trip
equality), so adapting to the real CLI means editing that section, not the tests.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from kcmtest import KCM_BIN, UUID_RE, cli_ok, unique

pytestmark = pytest.mark.cli

# --------------------------------------------------------------------- command shapes (adapt here)


def base(server, profile: str | None = None, json_output: bool = True) -> list[str]:
    cmd = [str(KCM_BIN), "--endpoint", server.url, "--credentials-file", str(server.credentials_path)]
    if profile:
        cmd += ["--profile", profile]
    if json_output:
        cmd += ["--output", "json"]
    return cmd


def key_create(description: str) -> list[str]:
    return ["key", "create", "--description", description]


def key_list() -> list[str]:
    return ["key", "list"]


def key_describe(key_id: str) -> list[str]:
    return ["key", "describe", key_id]


def key_disable(key_id: str) -> list[str]:
    return ["key", "disable", key_id]


def key_enable(key_id: str) -> list[str]:
    return ["key", "enable", key_id]


def encrypt(key_id: str, inp: Path | None = None, out: Path | None = None) -> list[str]:
    cmd = ["encrypt", "--key-id", key_id]
    if inp is not None:
        cmd += ["-i", str(inp)]
    if out is not None:
        cmd += ["-o", str(out)]
    return cmd


def decrypt(inp: Path | None = None, out: Path | None = None) -> list[str]:
    cmd = ["decrypt"]
    if inp is not None:
        cmd += ["-i", str(inp)]
    if out is not None:
        cmd += ["-o", str(out)]
    return cmd


def tenant_create(name: str) -> list[str]:
    return ["tenant", "create", name]


def tenant_list() -> list[str]:
    return ["tenant", "list"]


def keychain_show() -> list[str]:
    return ["keychain", "show"]


# --------------------------------------------------------------------- helpers


def run(cmd: list[str], input: bytes | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    for var in list(env):
        if var.startswith("KCM_") and var not in ("KCM_LOG",):
            env.pop(var)
    return subprocess.run(cmd, input=input, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          timeout=timeout, env=env, stdin=None if input is not None else subprocess.DEVNULL)


def json_out(cp: subprocess.CompletedProcess):
    text = cp.stdout.decode()
    try:
        return json.loads(text)
    except ValueError as e:
        raise AssertionError(f"--output json printed something that is not JSON: {text[:500]!r}") from e


@pytest.fixture(scope="module")
def cli_key(server):
    cp = cli_ok(run(base(server) + key_create(unique("cli"))))
    out = json_out(cp)
    ids = UUID_RE.findall(json.dumps(out))
    assert ids, f"no key id in {out}"
    kms = server.client("default")
    # The first uuid-shaped id that is a real key.
    for kid in ids:
        try:
            kms.describe_key(KeyId=kid)
            return kid
        except Exception:  # noqa: BLE001
            continue
    raise AssertionError(f"none of {ids} is a key the server knows")


# --------------------------------------------------------------------- keys


def test_key_create_list_describe(server, cli_key):
    kms = server.client("default")
    md = kms.describe_key(KeyId=cli_key)["KeyMetadata"]
    assert md["KeyState"] == "Enabled"
    listed = json_out(cli_ok(run(base(server) + key_list())))
    assert cli_key in json.dumps(listed)
    described = json_out(cli_ok(run(base(server) + key_describe(cli_key))))
    assert cli_key in json.dumps(described)
    assert md["Arn"] in json.dumps(described) or cli_key in json.dumps(described)


def test_key_disable_enable(server, new_key):
    kid = new_key()
    kms = server.client("default")
    cli_ok(run(base(server) + key_disable(kid)))
    assert kms.describe_key(KeyId=kid)["KeyMetadata"]["KeyState"] == "Disabled"
    cli_ok(run(base(server) + key_enable(kid)))
    assert kms.describe_key(KeyId=kid)["KeyMetadata"]["KeyState"] == "Enabled"


def test_keys_are_managed_by_alias_too(server, new_key):
    """The AWS API's key-managing operations take a key id or ARN only (as AWS's);
    the CLI looks an alias up first, so its commands take one."""
    kid = new_key()
    kms = server.client("default")
    alias = "alias/" + unique("cli")
    kms.create_alias(AliasName=alias, TargetKeyId=kid)
    arn = kms.describe_key(KeyId=kid)["KeyMetadata"]["Arn"]
    alias_arn = arn[: arn.rindex(":") + 1] + alias
    cli_ok(run(base(server) + key_disable(alias)))
    assert kms.describe_key(KeyId=kid)["KeyMetadata"]["KeyState"] == "Disabled"
    cli_ok(run(base(server) + key_enable(alias_arn)))
    assert kms.describe_key(KeyId=kid)["KeyMetadata"]["KeyState"] == "Enabled"
    cli_ok(run(base(server) + ["key", "rotate", alias]))
    rotations = json_out(cli_ok(run(base(server) + ["key", "rotations", alias])))["Rotations"]
    assert len(rotations) == 1 and rotations[0]["KeyId"].endswith(kid)
    cp = run(base(server) + key_disable("alias/" + unique("missing")))
    assert cp.returncode != 0 and b"is not found" in cp.stderr


def test_describe_unknown_key_fails(server):
    cp = run(base(server) + key_describe("00000000-0000-4000-8000-000000000000"))
    assert cp.returncode != 0
    assert cp.stderr.strip(), "a failing command must say why on stderr"


def test_human_output_default(server, cli_key):
    cp = cli_ok(run(base(server, json_output=False) + key_list()))
    assert cli_key in cp.stdout.decode()


# --------------------------------------------------------------------- envelope encryption


def test_file_round_trip_5mib(server, cli_key, tmp_path):
    data = os.urandom(5 * 1024 * 1024)
    src, enc, back = tmp_path / "plain.bin", tmp_path / "plain.bin.kcm", tmp_path / "back.bin"
    src.write_bytes(data)
    cli_ok(run(base(server, json_output=False) + encrypt(cli_key, src, enc)))
    ct = enc.read_bytes()
    assert len(ct) >= len(data)
    assert data[:4096] not in ct and data[-4096:] not in ct, "ciphertext contains plaintext"
    cli_ok(run(base(server, json_output=False) + decrypt(enc, back)))
    assert back.read_bytes() == data


def test_stdin_stdout_round_trip(server, cli_key):
    data = os.urandom(100_000) + b"end"
    cp = cli_ok(run(base(server, json_output=False) + encrypt(cli_key), input=data))
    ct = cp.stdout
    assert ct and data not in ct
    cp = cli_ok(run(base(server, json_output=False) + decrypt(), input=ct))
    assert cp.stdout == data


def test_empty_input_round_trip(server, cli_key):
    cp = cli_ok(run(base(server, json_output=False) + encrypt(cli_key), input=b""))
    cp = cli_ok(run(base(server, json_output=False) + decrypt(), input=cp.stdout))
    assert cp.stdout == b""


@pytest.mark.parametrize("where", ["start", "middle", "end", "truncate"])
def test_tampered_file_fails(server, cli_key, tmp_path, where):
    data = os.urandom(256 * 1024)
    src, enc, out = tmp_path / "p", tmp_path / "p.kcm", tmp_path / "out"
    src.write_bytes(data)
    cli_ok(run(base(server, json_output=False) + encrypt(cli_key, src, enc)))
    ct = bytearray(enc.read_bytes())
    if where == "truncate":
        ct = ct[: len(ct) - 100]
    else:
        pos = {"start": 20, "middle": len(ct) // 2, "end": len(ct) - 5}[where]
        ct[pos] ^= 0x40
    enc.write_bytes(bytes(ct))
    cp = run(base(server, json_output=False) + decrypt(enc, out))
    assert cp.returncode != 0, "decrypt of a tampered file succeeded"
    assert not out.exists(), "decrypt of a tampered file left a plaintext file behind"
    assert cp.stderr.strip()


def test_tampered_stdin_fails(server, cli_key):
    data = os.urandom(64 * 1024)
    ct = bytearray(cli_ok(run(base(server, json_output=False) + encrypt(cli_key), input=data)).stdout)
    ct[len(ct) // 2] ^= 0x01
    cp = run(base(server, json_output=False) + decrypt(), input=bytes(ct))
    assert cp.returncode != 0
    assert data not in cp.stdout


def test_decrypt_needs_access(server, cli_key, other_tenant, tmp_path):
    """A file encrypted under one tenant's key does not decrypt with another tenant's credentials."""
    data = os.urandom(1000)
    src, enc, out = tmp_path / "p", tmp_path / "p.kcm", tmp_path / "out"
    src.write_bytes(data)
    cli_ok(run(base(server, json_output=False) + encrypt(cli_key, src, enc)))
    ak = other_tenant["access_key"]
    creds = tmp_path / "other-credentials"
    creds.write_text(f"[default]\naws_access_key_id = {ak['access_key_id']}\n"
                     f"aws_secret_access_key = {ak['secret_access_key']}\n")
    creds.chmod(0o600)
    cmd = [str(KCM_BIN), "--endpoint", server.url, "--credentials-file", str(creds)] + decrypt(enc, out)
    cp = run(cmd)
    assert cp.returncode != 0
    assert not out.exists()


# --------------------------------------------------------------------- tenants and keychain


def test_tenant_create_and_list(server):
    name = unique("clitenant")
    cli_ok(run(base(server, profile="system-admin") + tenant_create(name)))
    names = [t["name"] for t in server.v1_ok("GET", "/v1/tenants", profile="system-admin")["tenants"]]
    assert name in names
    listed = cli_ok(run(base(server, profile="system-admin") + tenant_list()))
    assert name in listed.stdout.decode()
    # A tenant admin may not.
    cp = run(base(server) + tenant_create(unique("denied")))
    assert cp.returncode != 0


def test_keychain_show(server, cli_key):
    out = cli_ok(run(base(server) + keychain_show()))
    text = out.stdout.decode()
    json.loads(text)
    assert cli_key in text
    assert "default" in text


def test_key_create_with_spec_and_public_key_of_every_version(server):
    """`kcm key create --key-spec` makes an asymmetric key; `kcm key public-key` prints
    its public key as PEM, and `--version N` keeps giving an old version's public key
    after a rotation (`--key-version N`, the versions `kcm key rotations` numbers in
    KcmKeyVersion)."""
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    meta = json_out(cli_ok(run(base(server) + ["key", "create", "--key-spec", "ECC_NIST_P256",
                                               "--key-usage", "SIGN_VERIFY"])))
    key_id = meta["KeyId"]
    assert meta["KeySpec"] == "ECC_NIST_P256" and meta["SigningAlgorithms"] == ["ECDSA_SHA_256"]
    kms = server.client("default")
    old_sig = kms.sign(KeyId=key_id, Message=b"v1", SigningAlgorithm="ECDSA_SHA_256")["Signature"]
    v1_pem = cli_ok(run(base(server, json_output=False) + ["key", "public-key", key_id])).stdout
    assert v1_pem.startswith(b"-----BEGIN PUBLIC KEY-----"), v1_pem[:80]
    load_pem_public_key(v1_pem).verify(old_sig, b"v1", ec.ECDSA(hashes.SHA256()))

    cli_ok(run(base(server) + ["key", "rotate", key_id]))
    rotations = json_out(cli_ok(run(base(server) + ["key", "rotations", key_id])))["Rotations"]
    assert [r["KcmKeyVersion"] for r in rotations] == [2]
    current = cli_ok(run(base(server, json_output=False) + ["key", "public-key", key_id])).stdout
    assert current != v1_pem, "rotation must make a new key pair"
    again_v1 = cli_ok(run(base(server, json_output=False) + ["key", "public-key", key_id, "--key-version", "1"])).stdout
    assert again_v1 == v1_pem
    missing = run(base(server) + ["key", "public-key", key_id, "--key-version", "7"])
    assert missing.returncode != 0 and b"no version 7" in missing.stderr, missing.stderr

    symmetric = json_out(cli_ok(run(base(server) + key_create(unique("sym")))))["KeyId"]
    refused = run(base(server) + ["key", "public-key", symmetric])
    assert refused.returncode != 0 and b"has no public key" in refused.stderr, refused.stderr
