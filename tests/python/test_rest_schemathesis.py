"""Schema-driven fuzzing of the REST API (/v1) against its own OpenAPI document.

A fresh `kcm serve` per credential; schemathesis (the `st` command of the pinned PyPI
package) loads `/v1/openapi.json` from it and runs every phase (examples, coverage,
fuzzing, stateful) over every operation with every check it has (`--checks all`:
no 5xx, every status, content type, header and body as documented, schema-invalid
data refused and schema-valid data taken, undocumented methods answered 405 with
`Allow`, authentication not ignored, …), authenticated with a real bearer access key.
Runs are deterministic (`--generation-deterministic`) and bounded in examples.

Two passes, each on its own server, so that what one credential changes (a root key
disabled, an access key deleted) cannot change what the other sees:

* the tenant's first tenant-admin key (`default`): every tenant operation;
* the operator (`system-admin`): tenants and backups, which a tenant-admin is refused.

What a request schema cannot say, and so where a body the document admits may
still be refused with 400 (`positive_data_acceptance` takes 400 there too, on those
operations only, for these reasons):

* `POST /v1/root-keys`, `…/import-parameters`, `…/reference`: `keystore` names one of
  the server's configured keystores, and whether it can generate, import or refer is
  its configuration; a keystore a caller names that is not configured is the caller's
  mistake, answered 400 with the configured names (kcm-core `configured_keystore`);
* `POST /v1/root-keys/import`: the token must be one the server issued (single-use,
  24 hours) and the material must be wrapped to that token's public key;
* `POST /v1/root-keys/reference`: `reference` must name a key that the keystore holds;
* `POST /v1/access-keys/{id}/disable`, `DELETE /v1/access-keys/{id}`: the key making
  the request cannot disable or delete itself (the stateful phase finds its id in
  `GET /v1/access-keys`);
* `POST /v1/tenants`, `POST /v1/systems`: a name that is a UUID is refused (an id and
  a name must not be confused in `{id_or_name}`), which a pattern cannot exclude
  without a look-ahead that the generators do not take.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

# The operations, by operationId, on which a schema-valid body may be refused with
# 400 for a reason the schema cannot state (see the module docstring).
SERVER_DECIDES_VALIDITY = (
    "CreateRootKey",
    "GetRootKeyImportParameters",
    "ReferenceRootKey",
    "ImportRootKey",
    "DisableAccessKey",
    "DeleteAccessKey",
    "CreateTenant",
    "CreateSystem",
)

# schemathesis' default for positive_data_acceptance, and 400.
ACCEPTED_OR_SERVER_DECIDED = ["2xx", "3xx", "400", "401", "403", "404", "409", "429", "5xx"]

MAX_EXAMPLES = 25


def st_command() -> str:
    """The `st` of the interpreter running the tests (the project's venv)."""
    beside = Path(sys.executable).parent / "st"
    found = str(beside) if beside.exists() else shutil.which("st")
    if not found:
        pytest.fail("schemathesis is not installed: pip install -r tests/python/requirements.txt",
                    pytrace=False)
    return found


def write_config(path: Path) -> Path:
    lines = []
    for operation_id in SERVER_DECIDES_VALIDITY:
        statuses = ", ".join(f'"{s}"' for s in ACCEPTED_OR_SERVER_DECIDED)
        lines += [
            "[[operations]]",
            f'include-operation-id = "{operation_id}"',
            f"checks.positive_data_acceptance.expected-statuses = [{statuses}]",
            "",
        ]
    path.write_text("\n".join(lines))
    return path


@pytest.mark.timeout(240)
@pytest.mark.parametrize("profile", ["default", "system-admin"])
def test_rest_api_conforms_to_its_openapi_document(spawn_server, tmp_path, profile):
    srv = spawn_server()
    kid, secret = srv.creds(profile)
    config = write_config(tmp_path / "schemathesis.toml")
    report = tmp_path / "report"
    cmd = [
        st_command(), "--config-file", str(config), "run", f"{srv.url}/v1/openapi.json",
        "--checks", "all",
        "--mode", "all",
        "--phases", "examples,coverage,fuzzing,stateful",
        "--max-examples", str(MAX_EXAMPLES),
        "--generation-deterministic",
        "--workers", "1",
        "--request-timeout", "30",
        "--header", f"Authorization: Bearer {kid}:{secret}",
        "--report", "junit", "--report-dir", str(report),
        "--no-color",
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCHEMATHESIS_")}
    started = time.monotonic()
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=220, env=env, cwd=tmp_path)
    took = time.monotonic() - started
    output = run.stdout + run.stderr
    # Shown with -s, and in the failure message: what ran and for how long.
    summary = [line for line in output.splitlines() if "generated" in line or "passed" in line]
    print(f"\nschemathesis as {profile}: {took:.1f} s; " + "; ".join(s.strip() for s in summary))
    assert run.returncode == 0, (
        f"schemathesis found failures as {profile} (exit {run.returncode}, {took:.1f} s):\n"
        f"{output[-20000:]}\n{srv.log_tail(20)}"
    )
    assert "35 selected / 35 total" in output, output[:2000]
    assert srv.running, srv.log_tail()
