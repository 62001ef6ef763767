"""``wastore bench``: run the benchmark harness of a wastore checkout.

The harness is not part of the installed package: it lives in the repository's
``benchmarks/`` folder, beside the Node peer it drives, and is run from a
checkout (``make bench``). ``wastore bench ARGS`` runs it as ``python -m
benchmarks ARGS`` with this Python, in the current folder, when it finds a
checkout: the current folder when it is one, else the checkout this wastore is
installed from (an editable install). Elsewhere it says, on one line, where the
harness is.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

HARNESS_HOME = "the benchmarks/ folder of the wastore repository"
NOT_HERE = (
    f"the benchmark harness is not installed with wastore: it is in {HARNESS_HOME}; "
    "run `make bench` (or `wastore bench`) in a checkout of it (see docs/benchmarks.md there)"
)


def is_checkout(root: Path) -> bool:
    """Whether ``root`` is a wastore source checkout with its benchmark harness."""
    project = root / "pyproject.toml"
    if not (root / "benchmarks" / "__main__.py").is_file() or not project.is_file():
        return False
    try:
        text = project.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return False
    return 'name = "wastore"' in text


def find_checkout() -> Path | None:
    """The checkout whose harness ``wastore bench`` runs, or None (see the module doc)."""
    here = Path(__file__).resolve()
    installed_from = here.parents[3] if len(here.parents) > 3 else None
    for root in (Path.cwd(), installed_from):
        if root is not None and is_checkout(root):
            return root
    return None


def run_harness(root: Path, args: list[str]) -> int:
    """Run ``python -m benchmarks ARGS`` from ``root`` in the current folder; its exit code."""
    path = os.pathsep.join(p for p in (str(root), os.environ.get("PYTHONPATH", "")) if p)
    env = {**os.environ, "PYTHONPATH": path}
    try:
        return subprocess.call([sys.executable, "-m", "benchmarks", *args], env=env)  # noqa: S603
    except KeyboardInterrupt:  # the harness got the signal too, and stops
        return 130
