"""examples/pyaileys_example.py runs as documented, and docs/pyaileys.md shows it verbatim."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from pathlib import Path

import wastore

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "pyaileys_example.py"
DOC = ROOT / "docs" / "pyaileys.md"

EXPECTED = [
    "Bob decrypted a pkmsg: 'Hello Bob!'",
    "Alice decrypted a msg: 'Hi Alice!'",
    "Bob decrypted a group message: 'Hello group!'",
    "-- store closed and reopened: what follows comes from the database --",
    "Bob decrypted a msg: 'Still there after a restart?'",
    "Bob decrypted a group message: 'And the group?'",
    "Bob's session with Alice is stored under '15550000001:1@s.whatsapp.net': True",
    "Bob's one-time pre-keys left: 0 (the one Alice used is gone)",
]


def run_example(*args: str) -> list[str]:
    proc = subprocess.run(
        [sys.executable, str(EXAMPLE), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == "", proc.stderr
    return proc.stdout.splitlines()


async def accounts(db: Path) -> list[tuple[str | None, bool]]:
    async with await wastore.open_store(db) as container:
        out = []
        for device_id in await container.devices():
            backend = container.backend(device_id)
            device = await backend.load()
            assert device is not None
            out.append((str(device.pn), "pyaileys" in device.client_data))
        return out


def test_the_pyaileys_example_prints_what_the_database_holds(tmp_path: Path) -> None:
    db = tmp_path / "example.db"
    assert run_example(str(db)) == EXPECTED
    assert asyncio.run(accounts(db)) == [
        ("15550000001:1@s.whatsapp.net", True),
        ("15550000002:1@s.whatsapp.net", True),
    ]


def test_the_docs_show_the_pyaileys_example_verbatim() -> None:
    doc = DOC.read_text()
    match = re.search(
        r"<!-- begin examples/pyaileys_example.py -->\n```python\n(.*?)```\n", doc, re.DOTALL
    )
    assert match, "docs/pyaileys.md lost the example block"
    assert match.group(1) == EXAMPLE.read_text()
