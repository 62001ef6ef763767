"""What ships: the package without benchmark or demo code in its core, and a wheel whose
``wastore`` command works with no extra installed."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import wastore
from _accounts import fill

ROOT = Path(__file__).resolve().parents[1]


def run(*args: object, cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "WASTORE_DEBUG")}
    return subprocess.run(
        [str(a) for a in args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def ok(proc: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert proc.returncode == 0, (
        f"{proc.args}: exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    )
    return proc


def test_import_wastore_loads_no_benchmark_demo_or_command_line_code() -> None:
    # Run from the checkout's root, where the benchmark harness could be imported.
    code = "import json, sys, wastore; print(json.dumps(sorted(sys.modules)))"
    modules = set(json.loads(ok(run(sys.executable, "-c", code, cwd=ROOT)).stdout))
    assert "wastore" in modules
    unwanted = {
        m
        for m in modules
        if m.split(".")[0] in ("benchmarks", "click", "rich", "typer", "pydantic", "axolotl")
        or m.startswith(("wastore.bench", "wastore.cli", "wastore.interop", "wastore.demo"))
    }
    assert not unwanted
    package = Path(wastore.__file__).parent
    assert not (package / "bench").exists() and not (package / "demo.py").exists()
    assert (package / "interop" / "axolotl" / "demo.py").is_file()


def test_git_ignores_no_file_of_the_repository() -> None:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    tracked_but_ignored = ok(
        run("git", "ls-files", "--cached", "--ignored", "--exclude-standard", cwd=ROOT)
    ).stdout.split()
    assert tracked_but_ignored == []


def _wheel(tmp_path: Path) -> Path:
    """``pip wheel --no-deps`` of a copy of the sources (the build leaves files behind)."""
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(
        ROOT / "src",
        source / "src",
        ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "*.pyc"),
    )
    dist = tmp_path / "dist"
    ok(
        run(
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "-w",
            dist,
            source,
            cwd=tmp_path,
        )
    )
    (wheel,) = dist.glob("wastore-*.whl")
    return wheel


@pytest.mark.slow
def test_the_wheel_alone_gives_a_working_command(tmp_path: Path) -> None:
    """``pip install wastore`` (no extras) in a fresh virtualenv: ``wastore`` works, with
    plain-text tables, no benchmark harness and no demo, and without typer, pydantic or rich."""
    wheel = _wheel(tmp_path)
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        (entry_points,) = (n for n in names if n.endswith(".dist-info/entry_points.txt"))
        declared = archive.read(entry_points).decode()
    assert "wastore/interop/axolotl/demo.py" in names
    assert not [n for n in names if n.startswith(("wastore/bench/", "benchmarks/"))]
    assert "wastore/demo.py" not in names
    # one group, one script: no empty entry-point groups
    assert declared.split() == ["[console_scripts]", "wastore", "=", "wastore.cli:main"]

    venv = tmp_path / "venv"
    ok(run(sys.executable, "-m", "venv", venv, cwd=tmp_path))
    python, script = venv / "bin" / "python", venv / "bin" / "wastore"
    ok(run(python, "-m", "pip", "install", "--quiet", wheel, cwd=tmp_path))
    installed = {
        p["name"].lower()
        for p in json.loads(
            ok(run(python, "-m", "pip", "list", "--format=json", cwd=tmp_path)).stdout
        )
    }
    assert {"wastore", "click", "cryptography", "xeddsa"} <= installed
    assert not installed & {"typer", "pydantic", "pydantic-core", "rich", "pygments"}

    top = ok(run(script, "--help", cwd=tmp_path))
    assert "Exit codes" in top.stdout and "devices" in top.stdout and top.stderr == ""

    db = tmp_path / "wa.db"

    async def make() -> list[int]:
        async with await wastore.open_store(f"sqlite:///{db}") as container:
            return await fill(container, 2, 1)

    ids = asyncio.run(make())
    listing = ok(run(script, "devices", f"sqlite:///{db}", cwd=tmp_path)).stdout
    assert listing.splitlines()[0] == f"sqlite:///{db}"
    assert "15550001:7@s.whatsapp.net" in listing and "push v1" in listing and "─" not in listing
    rows = json.loads(ok(run(script, "devices", db, "--json", cwd=tmp_path)).stdout)
    assert [r["device_id"] for r in rows] == ids

    missing = run(script, "show", db, cwd=tmp_path)
    assert missing.returncode == 2 and len(missing.stderr.splitlines()) == 1

    bench = run(script, "bench", "--quick", cwd=tmp_path)
    assert bench.returncode == 2 and bench.stdout == ""
    assert bench.stderr.startswith("wastore: error: the benchmark harness is not installed")
    assert "benchmarks/" in bench.stderr and len(bench.stderr.splitlines()) == 1

    demo = run(script, "demo", "--path", tmp_path / "demo.db", cwd=tmp_path)
    assert demo.returncode == 2 and len(demo.stderr.splitlines()) == 1
    assert "python-axolotl and rich" in demo.stderr and "pip install 'wastore[demo]'" in demo.stderr
