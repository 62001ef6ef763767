"""examples/signal_example.py runs as documented, and the README shows it verbatim."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from pathlib import Path

import wastore

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "signal_example.py"
DOC = ROOT / "README.md"

EXPECTED = [
    "Bob decrypted a pre-key message: 'Hello Bob!'",
    "Alice decrypted a message: 'Hi Alice!'",
    "-- store closed and reopened: what follows comes from the database --",
    "Bob decrypted a message: 'Still there after a restart?'",
    "Bob's one-time pre-keys: 4 left; #1, the one Alice used, is gone",
    "Bob's session with Alice is stored under '15550000001@s.whatsapp.net': True",
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


async def what_is_stored(db: Path) -> tuple[list[int], tuple[int, int], bytes | None]:
    async with await wastore.open_store(db) as container:
        ids = await container.devices()
        bob = container.backend(ids[1])
        return ids, await bob.count_prekeys(), await bob.get_session("15550000001@s.whatsapp.net")


def test_the_signal_example_prints_what_the_database_holds(tmp_path: Path) -> None:
    db = tmp_path / "example.db"
    assert run_example(str(db)) == EXPECTED
    ids, prekeys, session = asyncio.run(what_is_stored(db))
    assert len(ids) == 2
    assert prekeys == (4, 4)
    assert session is not None


def test_the_signal_example_runs_without_arguments() -> None:
    assert run_example() == EXPECTED


def test_the_docs_show_the_example_verbatim() -> None:
    doc = DOC.read_text()
    match = re.search(
        r"<!-- begin examples/signal_example.py -->\n```python\n(.*?)```\n", doc, re.DOTALL
    )
    assert match, "the README lost the example block"
    assert match.group(1) == EXAMPLE.read_text()
