"""The private virtual environment the `as4` peer runs in.

as4 0.2.0 pins cryptography<47 while the gateway runs on a newer one, so the peer never shares our
interpreter: its scripts run as subprocesses of a venv created here on first use (from PyPI, like CI).
A stamp file holding the hash of requirements.txt marks a finished install, so an interrupted or
outdated venv is rebuilt instead of being half-used.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REQUIREMENTS = HERE / "requirements.txt"
REPO_ROOT = HERE.parents[2]
DEFAULT_LOCATION = REPO_ROOT / ".venv-as4peer"
STAMP = ".requirements-sha256"
# Overrides where the venv lives (for a shared cache on CI machines).
LOCATION_ENV = "AS4PEER_VENV"


class PeerVenvError(RuntimeError):
    """The as4 peer environment could not be created; the message carries pip's complaint."""


def _requirements_hash() -> str:
    return hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()


def venv_location() -> Path:
    return Path(os.environ.get(LOCATION_ENV, DEFAULT_LOCATION)).resolve()


def _python_of(location: Path) -> Path:
    return location / "bin" / "python"


def _run(args: list[str], what: str) -> None:
    done = subprocess.run(args, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise PeerVenvError(f"{what} failed (exit {done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")


def ensure_as4_python(location: Path | None = None) -> Path:
    """Return the python of the as4 peer venv, creating or refreshing the venv when needed."""
    location = location or venv_location()
    python = _python_of(location)
    stamp = location / STAMP
    wanted = _requirements_hash()
    if python.exists() and stamp.exists() and stamp.read_text().strip() == wanted:
        return python
    if location.exists():
        shutil.rmtree(location)
    _run([sys.executable, "-m", "venv", str(location)], f"creating the as4 peer venv at {location}")
    _run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-r", str(REQUIREMENTS)],
        f"installing {REQUIREMENTS.name} into {location}",
    )
    stamp.write_text(wanted + "\n")
    return python


if __name__ == "__main__":
    print(ensure_as4_python())
