"""Runs scripts/tour-aws-cli.sh (the real aws CLI) against the session server."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from kcmtest import REPO


def find_aws() -> str | None:
    venv_aws = Path(sys.executable).parent / "aws"
    if venv_aws.exists():
        return str(venv_aws)
    return shutil.which("aws")


@pytest.mark.timeout(300)
def test_aws_cli_tour(server):
    aws = find_aws()
    assert aws, "the aws CLI is not installed (pip install -r tests/python/requirements.txt)"
    env = dict(os.environ)
    env.update({
        "KCM_ENDPOINT": server.url,
        "AWS_SHARED_CREDENTIALS_FILE": str(server.credentials_path),
        "AWS_PROFILE": "default",
        "AWS": aws,
    })
    cp = subprocess.run(["bash", str(REPO / "scripts" / "tour-aws-cli.sh")], env=env, stdin=subprocess.DEVNULL,
                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=280)
    out = cp.stdout.decode(errors="replace")
    assert cp.returncode == 0, out[-4000:]
    assert "tour complete" in out
