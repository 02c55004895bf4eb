"""What the Vault tests share: a kcm server with `[vault_server]` over HTTPS (a private CA's
certificate for 127.0.0.1), systems, and Vault tokens minted with the kcm CLI."""

from __future__ import annotations

import json
from pathlib import Path

import hvac

from kcmtest import Server, cli_ok, free_port, kcm_cli, poll, start_or_fail
from kmip_harness import Pki


def start_vault_server(root: Path, bound_ms: int, env: dict | None = None) -> tuple[Server, str, Pki]:
    """A kcm server with TLS and `[vault_server]`: (server, the Vault API's address, the PKI
    whose CA the clients trust)."""
    (root / "pki").mkdir(exist_ok=True)
    pki = Pki(root / "pki")
    port = free_port()
    config = root / "kcm.toml"
    config.write_text(f'[vault_server]\nlisten = "127.0.0.1:{port}"\n')
    srv = Server(root / "data", root / "logs", name="vault", env={
        "KCM_CONFIG": str(config), "KCM_TLS_CERT": pki.server_cert, "KCM_TLS_KEY": pki.server_key,
        "KCM_REVOCATION_BOUND_MS": str(bound_ms), **(env or {})})
    srv.trusted_ca = pki.ca_file
    start_or_fail(srv)
    address = f"https://127.0.0.1:{port}"
    poll(lambda: _answers(address, pki.ca_file), 15, what=f"the Vault API on {address}")
    return srv, address, pki


def _answers(address: str, ca: str) -> bool:
    try:
        return hvac.Client(url=address, verify=ca).sys.read_health_status(method="GET")["initialized"]
    except Exception:  # not listening yet
        return False


def vault_token(srv: Server, system: str, role: str = "key-user", *extra: str) -> dict:
    """A new Vault token for `system`, by the kcm CLI: its JSON output (access_key_id,
    vault_token, …)."""
    out = cli_ok(kcm_cli(srv, "access-key", "create", "--kind", "vault", "--system", system,
                         "--role", role, *extra)).stdout
    made = json.loads(out)
    assert made["kind"] == "vault" and made["vault_token"].startswith("kcm."), made
    return made


def vault_client(address: str, pki: Pki, token: str | None) -> hvac.Client:
    return hvac.Client(url=address, token=token, verify=pki.ca_file)
