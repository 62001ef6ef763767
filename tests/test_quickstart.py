"""The README quickstart is examples/quickstart.py verbatim, and running it twice leaves one
account that the second run continued."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from pathlib import Path

import wastore

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "quickstart.py"


def test_the_readme_shows_the_quickstart_verbatim() -> None:
    readme = (ROOT / "README.md").read_text()
    block = re.search(
        r"<!-- begin examples/quickstart\.py -->\n```python\n(.*?)```\n<!-- end", readme, re.S
    )
    assert block is not None, "the README lost its quickstart block"
    assert block.group(1) == EXAMPLE.read_text()
    # it comes before anything else a newcomer reads, after the install line
    assert readme.index("pip install wastore") < block.start() < readme.index("## Architecture")


def run(cwd: Path) -> str:
    proc = subprocess.run(
        [sys.executable, str(EXAMPLE)], capture_output=True, text=True, timeout=60, cwd=cwd
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


async def accounts(db: Path) -> list[tuple[int, str, int]]:
    async with await wastore.open_store(db) as container:
        out = []
        for device_id in await container.devices():
            device = await container.backend(device_id).load()
            assert device is not None
            out.append((device_id, device.push_name, device.login_counter))
        return out


def test_the_quickstart_run_twice_continues_one_account(tmp_path: Path) -> None:
    assert run(tmp_path) == "account 1 (my bot), start #1\n"
    assert run(tmp_path) == "account 1 (my bot), start #2\n"
    assert asyncio.run(accounts(tmp_path / "wa.db")) == [(1, "my bot", 2)]
