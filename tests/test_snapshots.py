"""Debug snapshots hold one account, on every backend and through every way in.

A store with two paired accounts and one unpaired one; a snapshot of one account
(``backend.snapshot_db``, ``pm.create_snapshot``, ``wastore snapshot``) must
hold that account's rows exactly and not one byte of the others' private keys.
On SQLite the snapshot is a database file that opens as a store; on PostgreSQL
it is the account's portable export file.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

import wastore
from _accounts import fill
from wastore import PersistenceManager, portable
from wastore.values import AccountDump

SECRET_COLUMNS = (
    "noise_key_private",
    "identity_key_private",
    "signed_pre_key_private",
    "adv_secret_key",
)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    pg: str = request.getfixturevalue("pg_url")
    return pg


def secrets_of(dump: AccountDump) -> list[bytes]:
    """The account's private keys and secrets (each long enough to be unmistakable)."""
    found = [dump.device.get(c) for c in SECRET_COLUMNS]
    found += [r.get("key_data") for r in dump.tables.get("sync_keys", [])]
    out = [bytes(x) for x in found if isinstance(x, bytes | bytearray) and len(x) >= 16]
    assert len(out) >= 3
    return out


async def the_snapshot(path: Path, sqlite: bool) -> tuple[list[int], AccountDump]:
    """The account ids in a snapshot and the dump of its (only) account."""
    if sqlite:
        async with await wastore.open_store(path) as c:
            ids = await c.devices()
            return ids, await c.export_account(ids[0])
    dump = portable.decode(path.read_bytes())
    return [0], dump


def assert_one_account(path: Path, url: str, kept: AccountDump, others: list[AccountDump]) -> None:
    """``path`` holds ``kept`` and no private key of ``others`` (raw bytes, any encoding
    the file could hold them in: raw, hex, base64)."""
    import base64

    data = path.read_bytes()
    for other in others:
        for secret in secrets_of(other):
            for form in (secret, secret.hex().encode(), base64.b64encode(secret)):
                assert form not in data, f"another account's secret is in {path.name}"
    assert any(s in data or base64.b64encode(s) in data for s in secrets_of(kept))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


async def test_a_snapshot_holds_the_account_and_no_other(url: str, tmp_path: Path) -> None:
    sqlite = url.startswith("sqlite:")
    folder = tmp_path / "snaps"
    async with await wastore.open_store(url, snapshot_dir=str(folder)) as c:
        ids = await fill(c, 2, 1)
        dumps = {i: await c.export_account(i) for i in ids}
        wanted = ids[1]
        path = Path(await c.backend(wanted).snapshot_db("bug-42", b"the raw message"))
    assert path.parent == folder
    assert Path(f"{path}.extra").read_bytes() == b"the raw message"
    others = [d for i, d in dumps.items() if i != wanted]
    assert_one_account(path, url, dumps[wanted], others)
    found_ids, found = await the_snapshot(path, sqlite)
    if sqlite:
        assert found_ids == [wanted]  # the same device id, and only that one
        assert path.name.startswith("store.db.snapshot-") and path.name.endswith("-bug-42")
    assert portable.encode(found) == portable.encode(dumps[wanted])


async def test_a_sqlite_snapshot_keeps_the_rows_as_stored(tmp_path: Path) -> None:
    """Byte for byte, damaged records included: a snapshot is for debugging them."""
    import sqlite3

    db = tmp_path / "wa.db"
    async with await wastore.open_store(db) as c:
        ids = await fill(c, 2, 0)
    raw = sqlite3.connect(db)
    raw.execute(
        "UPDATE wastore_sessions SET record = x'00ff' WHERE device_id = ? "
        "AND rowid = (SELECT min(rowid) FROM wastore_sessions WHERE device_id = ?)",
        (ids[0], ids[0]),
    )
    raw.commit()
    before = raw.execute(
        "SELECT address, record FROM wastore_sessions WHERE device_id = ? ORDER BY address",
        (ids[0],),
    ).fetchall()
    raw.close()
    async with await wastore.open_store(db) as c:
        path = await c.backend(ids[0]).snapshot_db("damaged")
    snap = sqlite3.connect(path)
    try:
        after = snap.execute(
            "SELECT address, record FROM wastore_sessions WHERE device_id = ? ORDER BY address",
            (ids[0],),
        ).fetchall()
        other = snap.execute(
            "SELECT count(*) FROM wastore_sessions WHERE device_id != ?", (ids[0],)
        )
        assert other.fetchone()[0] == 0
        assert snap.execute("SELECT count(*) FROM wastore_leases").fetchone()[0] == 0
        assert snap.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        snap.close()
    assert after == before and (before[0][1] == b"\x00\xff")


async def test_a_snapshot_of_a_missing_account_writes_nothing(tmp_path: Path) -> None:
    folder = tmp_path / "db"
    async with await wastore.open_store(folder / "a.db") as c:
        await fill(c, 1, 0)
        with pytest.raises(wastore.DeviceNotFoundError):
            await c.backend(7).snapshot_db("none")
    assert sorted(p.name for p in folder.iterdir() if "snapshot" in p.name) == []


async def test_the_manager_snapshot_is_one_account_too(url: str, tmp_path: Path) -> None:
    folder = tmp_path / "snaps"
    async with await wastore.open_store(url, snapshot_dir=str(folder)) as c:
        ids = await fill(c, 2, 0)
        dumps = {i: await c.export_account(i) for i in ids}
        async with await PersistenceManager.open(c.backend(ids[0]), debug_snapshots=True) as pm:
            where = await pm.create_snapshot("from-the-manager")
    assert where is not None
    assert_one_account(Path(where), url, dumps[ids[0]], [dumps[ids[1]]])


async def test_wastore_snapshot_says_one_account_and_writes_one(url: str, tmp_path: Path) -> None:
    folder = tmp_path / "snaps"
    async with await wastore.open_store(url) as c:
        ids = await fill(c, 2, 0)
        dumps = {i: await c.export_account(i) for i in ids}
    env = {k: v for k, v in os.environ.items() if k not in ("WASTORE_DEBUG", "COLUMNS")}
    proc = subprocess.run(
        [sys.executable, "-m", "wastore.cli", "snapshot", url, str(ids[1]), "x", "--dir",
         str(folder), "--json"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["device_id"] == ids[1] and result["path"]
    assert "private keys" in proc.stderr
    human = subprocess.run(
        [sys.executable, "-m", "wastore.cli", "snapshot", url, str(ids[1]), "y", "--dir",
         str(folder)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert human.returncode == 0, human.stderr
    assert f"account {ids[1]} only" in human.stdout, human.stdout
    assert_one_account(Path(result["path"]), url, dumps[ids[1]], [dumps[ids[0]]])
