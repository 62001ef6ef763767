"""``wastore demo``: run as a user runs it (a process), twice, and read what it printed."""

from __future__ import annotations

import asyncio
import base64
import os
import re
import subprocess
import sys
from pathlib import Path

import wastore
from wastore.interop.axolotl.demo import fingerprint


def run_demo(db: Path) -> str:
    proc = subprocess.run(
        [sys.executable, "-c", "from wastore.cli import main; main()", "demo", "--path", str(db)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "COLUMNS": "200"},  # table cells on one line each
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == "", proc.stderr
    return proc.stdout


async def stored_devices(db: Path) -> list[wastore.Device]:
    async with await wastore.open_store(db) as container:
        devices = []
        for device_id in await container.devices():
            device = await container.backend(device_id).load()
            assert device is not None
            devices.append(device)
        return devices


def secrets_of(device: wastore.Device) -> list[bytes]:
    return [
        device.identity_key.private,
        device.signed_pre_key.private,
        device.noise_key.private,
        device.adv_secret_key,
    ]


def assert_no_secret(output: str, devices: list[wastore.Device]) -> None:
    flat = re.sub(r"\s+", "", output).lower()
    for device in devices:
        for secret in secrets_of(device):
            for text in (secret.hex(), base64.b64encode(secret).decode().lower()):
                assert text[:16] not in flat


def prose(output: str) -> str:
    """The output with line breaks undone (rich wraps paragraphs at the console width)."""
    return " ".join(output.split())


def test_the_demo_runs_and_a_second_run_continues_the_conversation(tmp_path: Path) -> None:
    db = tmp_path / "demo" / "wastore-demo.db"
    first = run_demo(db)

    # Sections, each with its explanation line
    for heading in (
        "1. Accounts",
        "2. Direct conversation",
        "3. Group conversation (sender keys)",
        "4. What wastore stores for each account",
        "5. The device rows",
        "6. Database",
    ):
        assert heading in first
    assert "A new session starts with a pre-key message" in prose(first)
    assert "private keys and secrets are never printed" in prose(first)

    # Run 1: accounts created, one pre-key message, a restart, sender keys distributed
    assert "Created Alice (device 1" in prose(first) and "Created Bob (device 2" in prose(first)
    assert "she fetched Bob's pre-key bundle" in prose(first)
    assert first.count("pre-key message (starts the session)") == 1
    assert "⟳ restart" in first
    for n in range(1, 5):
        assert f"#{n} " in first
    assert first.count("sender-key distribution") == 2
    assert re.search(r"#2\s+Alice → group\s+group message, iteration 1", first)
    assert re.search(r"#1\s+Alice → group\s+group message, iteration 0", first)
    assert re.search(r"#3\s+Bob → group\s+group message, iteration 0", first)
    assert "9 left (9 of them uploaded), 1 used" in first  # Bob: one pre-key used
    assert "10 left (10 of them uploaded), 0 used" in first  # Alice: none used

    # Run 2: the same accounts and sessions; numbers and iterations go on
    second = run_demo(db)
    assert "this is run #2, continuing from the stored state" in prose(second)
    assert "Created" not in second
    assert "Alice already has a session with Bob, stored by an earlier run" in prose(second)
    sent_as = re.findall(r"^#\d+\s+\w+ → \w+\s+(.+?)\s{2,}", second, re.MULTILINE)
    assert len(sent_as) == 7  # 4 direct and 3 group messages
    assert not [kind for kind in sent_as if "pre-key" in kind]
    assert "pre-key message (starts the session)" not in second
    for n in range(5, 9):
        assert f"#{n} " in second
    assert "sender-key distribution" not in second
    assert prose(second).count("no distribution message this time") == 2
    assert re.search(r"#5\s+Alice → group\s+group message, iteration 3", second)
    assert re.search(r"#4\s+Alice → group\s+group message, iteration 2", second)
    assert re.search(r"#6\s+Bob → group\s+group message, iteration 1", second)
    assert "9 left (9 of them uploaded), 1 used" in second  # still only one used
    assert re.search(r"logins \(= demo runs\)\s+2\s+2", second)

    # Public keys as fingerprints only; nothing secret anywhere
    devices = asyncio.run(stored_devices(db))
    assert len(devices) == 2
    for device in devices:
        assert fingerprint(device.identity_key.public) in second
        assert device.key_problems() == []
    assert_no_secret(first, devices)
    assert_no_secret(second, devices)
    assert f"{db}: " in prose(second) and "KiB" in second


def test_without_the_extra_the_demo_says_what_to_install(tmp_path: Path) -> None:
    for hidden, named in (("axolotl", "python-axolotl"), ("rich", "rich")):
        proc = subprocess.run(
            [
                sys.executable,
                "-c",
                f"import sys; sys.modules[{hidden!r}] = None; "
                "from wastore.cli import main; sys.argv[0] = 'wastore'; main()",
                "demo",
                "--path",
                str(tmp_path / "demo.db"),
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert proc.returncode == 2, proc.stderr
        assert proc.stdout == ""
        assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr, proc.stderr
        assert proc.stderr.startswith(f"wastore: error: the demo needs {named}, which is not")
        assert proc.stderr.rstrip().endswith("pip install 'wastore[demo]'")
        assert not (tmp_path / "demo.db").exists()
