"""``wastore import --from pyaileys``: a real MultiFileAuthState folder, written by pyaileys.

Alice and Bob are two pyaileys clients on pyaileys' own ``MultiFileAuthState``
folders; they converse (pre-key message, replies, a group) and Bob's client
stores what a paired client stores (app-state keys and versions, privacy
tokens, sender-key memory). Bob's folder is imported into a wastore store
(SQLite and PostgreSQL); Bob resumes on wastore — the same credentials, the
same keys — and the conversation with Alice, still on her folder, goes on.
"""

from __future__ import annotations

import base64
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from pyaileys.auth.store import MultiFileAuthState

import wastore
from _pyaileys import ALICE, BOB, GROUP, Peer, handshake
from wastore import ValidationError
from wastore.formats import import_from
from wastore.formats.pyaileys import read
from wastore.interop.pyaileys import WastoreAuthState
from wastore.interop.pyaileys._records import normalize_sender_key_record

from pg_server import pg_server, pg_url  # noqa: F401  # isort: skip


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'imported.db'}"
    url: str = request.getfixturevalue("pg_url")
    return url


def _sync_key_data(key: bytes, timestamp: int) -> bytes:
    from pyaileys.proto import WAProto_pb2 as proto

    data = proto.Message.AppStateSyncKeyData()
    data.keyData = key
    data.fingerprint.rawId = 3
    data.fingerprint.currentIndex = 1
    data.fingerprint.deviceIndexes.extend([0, 1])
    data.timestamp = timestamp
    out: bytes = data.SerializeToString()
    return out


class Folders:
    def __init__(self, root: Path) -> None:
        self.alice_dir = root / "alice"
        self.bob_dir = root / "bob"
        self.alice: Peer
        self.bob: Peer


@pytest_asyncio.fixture
async def folders(tmp_path: Path) -> AsyncIterator[Folders]:
    """Alice's and Bob's pyaileys folders after a conversation."""
    f = Folders(tmp_path)
    f.alice = Peer.of(ALICE, await MultiFileAuthState.load(f.alice_dir))
    f.bob = Peer.of(BOB, await MultiFileAuthState.load(f.bob_dir))
    await f.alice.claim()
    await f.bob.claim()
    await handshake(f.alice, f.bob)
    assert await f.bob.receive(f.alice, await f.alice.send(f.bob, "before")) == "before"
    await f.bob.upload_prekeys(4)
    index = base64.b64encode(b"\x01" * 32).decode()
    await f.bob.state.keys.set(
        {
            "app-state-sync-key": {"AAAAAQ==": _sync_key_data(b"\x07" * 32, 1_700_000_000_000)},
            "app-state-sync-version": {
                "regular_low": {
                    "version": 3,
                    "hash": b"\x09" * 128,
                    "indexValueMap": {index: b"\x0a" * 32},
                },
            },
            "tctoken": {"15550000001@s.whatsapp.net": {"token": b"tc", "timestamp": "1700000001"}},
            "sender-key-memory": {GROUP: {ALICE: True}},
        }
    )
    f.bob.creds.my_app_state_key_id = "AAAAAQ=="
    f.bob.creds.platform = "android"
    f.bob.creds.account_sync_counter = 2
    await f.bob.state.save_creds()
    yield f


async def test_a_pyaileys_folder_is_imported_and_the_client_resumes(
    folders: Folders, store_url: str
) -> None:
    files = sorted(p.name for p in folders.bob_dir.iterdir())
    async with await wastore.open_store(store_url) as container:
        (result,) = await import_from(container, folders.bob_dir, "pyaileys")
        assert result.device_id is not None
        assert result.counts["sessions"] == 1
        assert result.counts["prekeys"] == 4
    assert sorted(p.name for p in folders.bob_dir.iterdir()) == files  # the folder is untouched

    original = await MultiFileAuthState.load(folders.bob_dir)
    state = await WastoreAuthState.load(store_url, account=BOB)
    try:
        assert state.device_id == result.device_id
        assert state.creds == original.creds
        # every key file reads back the same through the wastore key store
        compared = 0
        for path in folders.bob_dir.glob("*.json"):
            if path.name == "creds.json":
                continue
            family = next(
                f
                for f in sorted(_families(), key=len, reverse=True)
                if path.stem.startswith(f + "-")
            )
            key = _key(family, path.stem[len(family) + 1 :])
            want = (await original.keys.get(family, [key]))[key]
            if family == "sender-key":
                want = normalize_sender_key_record(want, key)
            got = (await state.keys.get(family, [key]))[key]
            assert got == want, path.name
            compared += 1
        assert compared == len(files) - 1
        backend = state.manager.backend
        assert await backend.count_prekeys() == (4, 4)  # all below the watermark: uploaded

        bob = Peer.of(BOB, state)
        alice = folders.alice
        assert await bob.receive(alice, await alice.send(bob, "after import")) == "after import"
        assert await alice.receive(bob, await bob.send(alice, "resumed")) == "resumed"
        ct, _ = await alice.send_group("group after import")
        assert await bob.receive_group(alice, ct) == "group after import"
        ct, _ = await bob.send_group("Bob's group key, imported")
        assert await alice.receive_group(bob, ct) == "Bob's group key, imported"
    finally:
        await state.close()


def _families() -> list[str]:
    from wastore.interop.pyaileys import FAMILIES

    return list(FAMILIES)


def _key(family: str, stem: str) -> str:
    if family == "sender-key":
        return "::".join(stem.rsplit("--", 2))
    return stem.replace("__", "/") if family == "app-state-sync-key" else stem


async def test_unreadable_folders_are_refused_naming_the_file(
    folders: Folders, store_url: str, tmp_path: Path
) -> None:
    def broken(name: str, change: Any) -> Path:
        copy = tmp_path / f"broken-{name}"
        shutil.copytree(folders.bob_dir, copy)
        change(copy)
        return copy

    session = next(p.name for p in folders.bob_dir.glob("session-*.json"))
    cases = {
        "json": (lambda d: (d / session).write_text("{not json"), session),
        "family": (lambda d: (d / "lid-mapping-1.json").write_text('"2"'), "lid-mapping-1.json"),
        "value": (lambda d: (d / "pre-key-77.json").write_text('{"public": 1}'), "pre-key-77"),
        "creds": (lambda d: (d / "creds.json").unlink(), "creds.json"),
        "keys": (
            lambda d: (d / "creds.json").write_text('{"noise_key": {}}'),
            "creds.json",
        ),
    }
    async with await wastore.open_store(store_url) as container:
        before = await container.devices()
        for name, (change, named) in cases.items():
            folder = broken(name, change)
            with pytest.raises(ValidationError, match=named):
                read(folder)
            with pytest.raises(ValidationError, match=named):
                await import_from(container, folder, "pyaileys")
        with pytest.raises(ValidationError, match="not 15559999999"):
            read(folders.bob_dir, jid="15559999999@s.whatsapp.net")
        assert len(read(folders.bob_dir, jid=BOB)) == 1
        assert await container.devices() == before  # nothing was written


def test_the_folder_reader_needs_no_pyaileys(folders: Folders) -> None:
    """`wastore import --from pyaileys` works where pyaileys is not installed."""
    code = (
        "import sys\n"
        "sys.modules['pyaileys'] = None  # any import of pyaileys now fails\n"
        "from wastore.formats.pyaileys import read\n"
        f"(dump,) = read({str(folders.bob_dir)!r})\n"
        "print(dump.count()['sessions'], dump.device['pn'])\n"
        "try:\n"
        "    from wastore.interop.pyaileys import WastoreAuthState\n"
        "except ImportError as err:\n"
        "    print('ImportError:', err)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == f"1 {BOB}"
    assert lines[1].startswith("ImportError:") and "wastore[pyaileys]" in lines[1]
