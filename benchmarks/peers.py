"""The peers in other processes: yowsup (Python) and Baileys (Node).

The harness installs them itself, into its cache folder (``.bench-cache/`` at
the root of the checkout by default), never into wastore's environment:

- yowsup: a virtualenv ``<cache>/yowsup-venv`` with the pinned
  :data:`YOWSUP_REQUIREMENTS`; the W1d/W3 code is ``_yowsup_child.py``, run by
  that virtualenv's Python.
- Baileys: ``benchmarks/baileys`` (``package.json``, the committed
  ``package-lock.json`` and ``bench.mjs``) is copied to ``<cache>/baileys`` and
  installed there with ``npm ci`` (install scripts off: the key store needs
  none of them).

Both read the harness's data file and print one JSON object.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from .measure import Result

YOWSUP_REQUIREMENTS = ("yowsup==3.3.0", "python-axolotl==0.2.2", "protobuf==3.20.3")
"""protobuf 3.20: python-axolotl's generated code does not load with protobuf >= 3.21."""
BAILEYS_FILES = ("package.json", "package-lock.json", "bench.mjs")
_TIMEOUT = 900


class PeerUnavailable(Exception):
    """The peer cannot be installed or run here (the message says why)."""


ROOT = Path(__file__).resolve().parents[1]
"""The repository checkout the harness lives in."""
BAILEYS_SOURCE = Path(__file__).resolve().parent / "baileys"


def default_cache_dir() -> Path:
    return ROOT / ".bench-cache"


def _run(cmd: list[str], *, cwd: Path | None = None, timeout: float = _TIMEOUT) -> str:
    try:
        proc = subprocess.run(
            cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
        )
    except FileNotFoundError as err:
        raise PeerUnavailable(f"{cmd[0]} not found") from err
    except subprocess.TimeoutExpired as err:
        raise PeerUnavailable(f"{' '.join(cmd[:3])} timed out after {timeout:g}s") from err
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip()[-1500:]
        raise PeerUnavailable(f"{' '.join(cmd[:3])} failed ({proc.returncode}): {tail}")
    return proc.stdout


def _last_json(out: str) -> dict[str, Any]:
    for line in reversed(out.strip().splitlines()):
        if line.startswith("{"):
            data: dict[str, Any] = json.loads(line)
            return data
    raise PeerUnavailable(f"no JSON in the peer's output: {out[-500:]!r}")


class Yowsup:
    def __init__(self, cache: Path, log: Any) -> None:
        self.venv = cache / "yowsup-venv"
        self.log = log

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    def install(self) -> None:
        marker = self.venv / "wastore-bench-installed"
        wanted = "\n".join(YOWSUP_REQUIREMENTS)
        if marker.exists() and marker.read_text() == wanted and self.python.exists():
            return
        self.log(f"installing yowsup into {self.venv} (once)")
        if not self.python.exists():
            _run([sys.executable, "-m", "venv", str(self.venv)])
        _run(
            [
                str(self.python),
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                *YOWSUP_REQUIREMENTS,
            ]
        )
        marker.write_text(wanted)

    def run(self, workload: str, data_file: Path, workdir: Path, **opts: int) -> dict[str, Any]:
        script = Path(__file__).with_name("_yowsup_child.py")
        cmd = [
            str(self.python),
            str(script),
            workload,
            "--data",
            str(data_file),
            "--dir",
            str(workdir),
        ]
        for k, v in opts.items():
            cmd += [f"--{k}", str(v)]
        return _last_json(_run(cmd))


class Baileys:
    def __init__(self, cache: Path, log: Any) -> None:
        self.dir = cache / "baileys"
        self.log = log

    def install(self) -> None:
        src = BAILEYS_SOURCE
        if shutil.which("node") is None or shutil.which("npm") is None:
            raise PeerUnavailable("node and npm are needed for the Baileys peer")
        self.dir.mkdir(parents=True, exist_ok=True)
        lock = (src / "package-lock.json").read_bytes()
        digest = hashlib.sha256(lock + (src / "package.json").read_bytes()).hexdigest()
        marker = self.dir / ".wastore-bench-installed"
        for name in BAILEYS_FILES:
            shutil.copyfile(src / name, self.dir / name)
        if (
            marker.exists()
            and marker.read_text() == digest
            and (self.dir / "node_modules").is_dir()
        ):
            return
        self.log(f"installing Baileys into {self.dir} with npm ci (once)")
        _run(
            ["npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=self.dir,
        )
        marker.write_text(digest)

    def run(self, workload: str, data_file: Path, workdir: Path, **opts: int) -> dict[str, Any]:
        cmd = [
            "node",
            "--expose-gc",
            str(self.dir / "bench.mjs"),
            workload,
            "--data",
            str(data_file),
            "--dir",
            str(workdir),
        ]
        for k, v in opts.items():
            cmd += [f"--{k}", str(v)]
        return _last_json(_run(cmd, cwd=self.dir))


def to_result(workload: str, impl: str, out: dict[str, Any], note: str = "") -> Result:
    runs = [float(r) for r in out.pop("runs")]
    ops = int(out.pop("ops"))
    return Result(workload, impl, runs=runs, ops=ops, extra=out, note=note)


def node_version() -> str | None:
    if shutil.which("node") is None:
        return None
    try:
        return _run(["node", "--version"], timeout=30).strip()
    except PeerUnavailable:
        return None
