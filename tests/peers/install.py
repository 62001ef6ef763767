"""Install the tests' third-party peers into a git-ignored cache, once.

- Baileys (Node), three releases: Baileys 7 from ``tests/peers/baileys``,
  Baileys 6 from ``tests/peers/baileys6`` and an older Baileys 6 from
  ``tests/peers/baileys6-legacy`` (each a ``package.json`` and its committed
  ``package-lock.json``), each copied to the cache folder of the same name with
  the one ``tests/peers/baileys/peer.mjs`` (its calls are the same in all of
  them) and installed there with ``npm ci`` (install scripts off).
- Python peers (yowsup, neonize): a virtualenv per peer, ``<cache>/<name>-venv``,
  with pinned requirements from PyPI — never wastore's own environment, whose
  protobuf and python-axolotl versions differ.

The cache is ``.test-peers/`` in the repository (``WASTORE_TEST_PEERS`` moves it).
A peer that cannot be installed raises :class:`PeerUnavailable`; the tests skip
on it, except under ``CI=true``, where they fail.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Final

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
BAILEYS_PEERS: Final = {
    "baileys6-legacy": "baileys6-legacy",
    "baileys6": "baileys6",
    "baileys7": "baileys",
}
"""The Baileys peers: test id -> folder under ``tests/peers`` (and under the cache)."""
_PEER_SCRIPT: Final = HERE / "baileys" / "peer.mjs"
_TIMEOUT = 900


class PeerUnavailable(Exception):
    """The peer cannot be installed or run here (the message says why)."""


def cache_dir() -> Path:
    path = Path(os.environ.get("WASTORE_TEST_PEERS", ROOT / ".test-peers"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def _run(cmd: list[str], cwd: Path | None = None) -> None:
    try:
        proc = subprocess.run(
            cmd, cwd=cwd, capture_output=True, text=True, timeout=_TIMEOUT, check=False
        )
    except FileNotFoundError as err:
        raise PeerUnavailable(f"{cmd[0]} not found") from err
    except subprocess.TimeoutExpired as err:
        raise PeerUnavailable(f"{' '.join(cmd[:3])} timed out") from err
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip()[-1500:]
        raise PeerUnavailable(f"{' '.join(cmd[:3])} failed ({proc.returncode}): {tail}")


def baileys(peer: str = "baileys7") -> Path:
    """The installed Baileys peer's folder (``node <folder>/peer.mjs`` runs it).

    Args:
        peer: a key of :data:`BAILEYS_PEERS` (``"baileys7"``, ``"baileys6"`` or
            ``"baileys6-legacy"``).

    Raises:
        PeerUnavailable: node or npm is missing, or ``npm ci`` failed.
    """
    if shutil.which("node") is None or shutil.which("npm") is None:
        raise PeerUnavailable("node and npm are needed for the Baileys peer")
    src = HERE / BAILEYS_PEERS[peer]
    dest = cache_dir() / BAILEYS_PEERS[peer]
    dest.mkdir(exist_ok=True)
    digest = hashlib.sha256(
        (src / "package-lock.json").read_bytes() + (src / "package.json").read_bytes()
    ).hexdigest()
    for name in ("package.json", "package-lock.json"):
        shutil.copyfile(src / name, dest / name)
    shutil.copyfile(_PEER_SCRIPT, dest / "peer.mjs")
    marker = dest / ".installed"
    if marker.exists() and marker.read_text() == digest and (dest / "node_modules").is_dir():
        return dest
    _run(["npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"], dest)
    marker.write_text(digest)
    return dest


def python_venv(name: str, requirements: tuple[str, ...]) -> Path:
    """The Python of a cached virtualenv ``<cache>/<name>-venv`` holding ``requirements``."""
    venv = cache_dir() / f"{name}-venv"
    python = venv / "bin" / "python"
    marker = venv / ".installed"
    wanted = "\n".join(requirements)
    if marker.exists() and marker.read_text() == wanted and python.exists():
        return python
    if not python.exists():
        _run([sys.executable, "-m", "venv", str(venv)])
    _run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
        + list(requirements)
    )
    marker.write_text(wanted)
    return python


def unavailable(err: PeerUnavailable) -> None:
    """Skip the test (fail it in CI, where every peer must run)."""
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"test peer unavailable in CI: {err}")
    pytest.skip(f"test peer unavailable: {err}")
