"""Block storage end to end: scripts/luks-demo formats a LUKS2 volume (a file) with a volume
key ordered from kcm's Barbican door through python-barbicanclient, as Cinder does, proves
the key unlocks it, throws the kill switch (the key can no longer be fetched, the volume no
longer unlocks) and enables the root key again (it unlocks again). Real Keystone, real
cryptsetup (`open --test-passphrase`: no device-mapper on these machines)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from kcmtest import KCM_BIN
from openstack_cloud import OpenStackCloud

ROOT = Path(__file__).resolve().parents[2]
BOUND_MS = 500


@pytest.fixture
def cloud(keystone, tmp_path):
    c = OpenStackCloud.start(keystone, tmp_path / "cloud", revocation_bound_ms=BOUND_MS)
    yield c
    c.stop()


@pytest.mark.skipif(shutil.which("cryptsetup") is None, reason="cryptsetup not installed (scripts/test installs it)")
def test_a_luks_volume_unlocks_only_while_kcm_serves_its_key(cloud, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OS_", "KCM_"))}
    env.update(cloud.auth("member1").env())
    env.update({
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), str(KCM_BIN.parent), env.get("PATH", "")]),
        "KCM_BARBICAN_URL": cloud.barbican_url,
        "KCM_ENDPOINT": cloud.srv.url,
        "KCM_CREDENTIALS_FILE": str(cloud.srv.credentials_path),
        "KCM_REVOCATION_BOUND_S": "1",
        "KCM_LUKS_FAST": "1",
    })
    work = tmp_path / "work"
    r = subprocess.run([str(ROOT / "scripts" / "luks-demo"), str(work)], env=env, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, f"luks-demo failed:\n{r.stdout}\n{r.stderr}\n{cloud.srv.log_tail(20)}"
    steps = [line for line in r.stdout.splitlines() if line.startswith("==> ")]
    assert steps.index("==> unlocked") < steps.index("==> locked: kcm refuses the key, the volume cannot be unlocked") \
        < steps.index("==> unlocked again"), r.stdout
    volume = work / "volume.img"
    assert volume.read_bytes()[:6] == b"LUKS\xba\xbe", "not a LUKS volume"
    assert not (work / "volume.key").exists(), "the key file was left behind"
