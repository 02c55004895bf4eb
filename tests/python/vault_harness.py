"""What the Vault tests share: a kcm server with `[vault_server]` over HTTPS (a private CA's
certificate for 127.0.0.1), systems, and Vault tokens minted with the kcm CLI."""

from __future__ import annotations

import json
from pathlib import Path

import hvac

from kcmtest import (LOADED_SLACK_S, Server, cli_ok, first_refusal_within, free_port, kcm_cli, poll,
                     start_or_fail, works_again_within)
from kmip_harness import Pki


def start_vault_server(root: Path, bound_ms: int, env: dict | None = None) -> tuple[Server, str, Pki]:
    """A kcm server with TLS and `[vault_server]`: (server, the Vault API's address, the PKI
    whose CA the clients trust). The config file is `root / "kcm.toml"`: a test may add
    tables to it and restart the server."""
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


def until_refused(call, error: type, bound_s: float, what: str) -> Exception:
    """Calls `call` until it raises `error` — within the revocation bound `bound_s` and a
    loaded machine's slack, or the test fails — and returns that error."""
    return first_refusal_within(call, bound_s + LOADED_SLACK_S, error, what=what)[0]


def until_served(call, error: type, bound_s: float, what: str):
    """Calls `call` until it stops raising `error`, within the same time; returns its answer."""
    return works_again_within(call, bound_s + LOADED_SLACK_S, what, error=error)


class TokenReviewStandIn:
    """A small stand-in for a Kubernetes API server's TokenReview API (kube-apiserver is
    not installable here), over HTTPS with the PKI's server certificate: `POST
    /apis/authentication.k8s.io/v1/tokenreviews` answers `authenticated` with the service
    account `tokens` maps the token to, `authenticated: false` for any other token, and 401
    unless the request carries `Bearer <reviewer>`. It keeps the reviews it was asked, and
    with `down` set answers 500."""

    def __init__(self, pki: Pki, reviewer: str, tokens: dict[str, tuple[str, str]]):
        import http.server
        import ssl
        import threading

        self.reviewer, self.tokens, self.reviews, self.down = reviewer, tokens, [], False
        stand_in = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if self.path != "/apis/authentication.k8s.io/v1/tokenreviews":
                    return self._answer(404, {"kind": "Status", "code": 404})
                if self.headers.get("Authorization") != f"Bearer {stand_in.reviewer}":
                    return self._answer(401, {"kind": "Status", "code": 401})
                if stand_in.down:
                    return self._answer(500, {"kind": "Status", "code": 500})
                review = json.loads(body)
                stand_in.reviews.append(review)
                account = stand_in.tokens.get(review["spec"]["token"])
                status = {"authenticated": False}
                if account is not None:
                    namespace, name = account
                    status = {"authenticated": True, "user": {
                        "username": f"system:serviceaccount:{namespace}:{name}", "uid": f"uid-{name}",
                        "groups": ["system:serviceaccounts"]}}
                self._answer(201, {**review, "status": status})

            def _answer(self, code: int, body: dict):
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(pki.server_cert, pki.server_key)
        self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
