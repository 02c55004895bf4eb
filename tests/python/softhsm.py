"""A throwaway SoftHSM2 token for the pkcs11 keystore tests, and a look inside it
with OpenSC's `pkcs11-tool` (a client independent of kcm).

scripts/test installs the Debian packages softhsm2 and opensc. A missing module or
tool fails the test with the fix rather than skipping it.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

MODULE_CANDIDATES = (
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/local/lib/softhsm/libsofthsm2.so",
)


def module_path() -> str:
    override = os.environ.get("KCM_TEST_PKCS11_MODULE")
    for path in ([override] if override else []) + list(MODULE_CANDIDATES):
        if Path(path).is_file():
            return path
    raise AssertionError(
        "SoftHSM2's PKCS#11 module was not found (looked in "
        f"{', '.join(MODULE_CANDIDATES)}): install the softhsm2 package "
        "(scripts/test does it as root) or set KCM_TEST_PKCS11_MODULE"
    )


class Token:
    """One SoftHSM2 token in its own directory (nothing shared with other tests)."""

    def __init__(self, root: Path, label: str = "kcm-test", pin: str = "4711-user", so_pin: str = "0815-so"):
        self.root = Path(root)
        self.label, self.pin, self.so_pin = label, pin, so_pin
        self.module = module_path()
        self.tokendir = self.root / "tokens"
        self.tokendir.mkdir(parents=True, exist_ok=True)
        self.conf = self.root / "softhsm2.conf"
        self.conf.write_text(
            f"directories.tokendir = {self.tokendir}\nobjectstore.backend = file\nlog.level = ERROR\n"
        )
        self._run(["softhsm2-util", "--init-token", "--free", "--label", label,
                   "--pin", pin, "--so-pin", so_pin])

    @property
    def env(self) -> dict:
        """What a process needs in its environment to see this token."""
        return {"SOFTHSM2_CONF": str(self.conf)}

    def _run(self, cmd: list[str]) -> str:
        env = dict(os.environ, **self.env)
        try:
            r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
        except FileNotFoundError:
            raise AssertionError(f"{cmd[0]} not found: install softhsm2 and opensc (scripts/test does it as root)")
        assert r.returncode == 0, f"{' '.join(cmd[:2])} failed ({r.returncode}): {r.stdout}{r.stderr}"
        return r.stdout

    def secret_keys(self) -> dict[str, str]:
        """Every secret key in the token, as label -> the text pkcs11-tool prints for it."""
        out = self._run(["pkcs11-tool", "--module", self.module, "--token-label", self.label,
                         "--login", "--pin", self.pin, "--list-objects", "--type", "secrkey"])
        keys: dict[str, str] = {}
        for block in out.split("Secret Key Object")[1:]:
            label = next((line.split(":", 1)[1].strip() for line in block.splitlines()
                          if line.strip().startswith("label:")), "")
            keys[label] = block
        return keys

    def write_pin_file(self, path: Path, mode: int = 0o600) -> Path:
        path.write_text(self.pin + "\n")
        path.chmod(mode)
        return path

    def kcm_config(self, path: Path, pin_file: Path | None = None, pin_env: str | None = None,
                   name: str = "hsm", label: str | None = None, default: str | None = None) -> Path:
        """A kcm config file with this token as keystore `name`, which is also the default
        keystore unless `default` names another (e.g. "software")."""
        pin = f'pin_file = "{pin_file}"' if pin_file else f'pin_env = "{pin_env}"'
        path.write_text(
            f'default_keystore = "{default or name}"\n\n'
            f"[keystores.{name}]\n"
            'kind = "pkcs11"\n'
            f'module = "{self.module}"\n'
            f'token_label = "{label or self.label}"\n'
            f"{pin}\n"
        )
        return path

    def _tool(self, *args: str) -> str:
        return self._run(["pkcs11-tool", "--module", self.module, "--token-label", self.label,
                          "--login", "--pin", self.pin, *args])

    def customer_key(self, label: str, id_hex: str) -> None:
        """An AES-256 key the customer makes in the token themselves (HYOK)."""
        self._tool("--keygen", "--key-type", "AES:32", "--label", label, "--id", id_hex,
                   "--usage-decrypt", "--sensitive")

    def delete_key(self, label: str) -> None:
        """The customer revokes their key: it is gone from the token."""
        self._tool("--delete-object", "--type", "secrkey", "--label", label)
