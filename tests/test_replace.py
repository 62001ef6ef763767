"""Replacing an account: it keeps its device id, and only the account itself is replaced.

An account is "the same" when it has the same identity key. ``--replace`` (and
``import_account(replace=True)``, ``put_account``, ``copy --replace``) swaps the
rows of that account in one transaction under its device id. An account of the
store that has the file's phone number or LID but another identity key is a
different account (the phone was linked again): it is never deleted, with
``--replace`` or without. Identical content is ``unchanged``, exit 0, for
``import`` as for ``copy``, in the table as in JSON.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import wastore
from _accounts import fill
from wastore import JID, ValidationError, admin, portable
from wastore.values import AccountDump

PN = "15550000:7@s.whatsapp.net"  # the phone number of fill()'s first account


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    pg: str = request.getfixturevalue("pg_url")
    return pg


def cli(*args: object, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("WASTORE_DEBUG", "COLUMNS")}
    return subprocess.run(
        [sys.executable, "-m", "wastore.cli", *map(str, args)],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def done(proc: subprocess.CompletedProcess[str], code: int = 0) -> Any:
    assert proc.returncode == code, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return json.loads(proc.stdout) if proc.stdout.lstrip().startswith("{") else proc.stdout


def error_line(proc: subprocess.CompletedProcess[str], code: int) -> str:
    assert proc.returncode == code, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("wastore: error: "), proc.stderr
    return lines[0]


async def documents(url: str) -> dict[int, bytes]:
    """Every account's export document, by device id."""
    async with await wastore.open_store(url) as c:
        assert isinstance(c, wastore.contract.PortableContainer)
        return {i: portable.encode(await c.export_account(i)) for i in await c.devices()}


def renamed(dump: AccountDump, name: str) -> AccountDump:
    tables = {t: [dict(r) for r in rows] for t, rows in dump.tables.items()}
    tables["device"][0]["push_name"] = name
    return AccountDump(tables)


async def relinked(tmp_path: Path, pn: str = PN) -> Path:
    """The file of another account (fresh keys) that has the phone number ``pn``:
    what a phone linked again exports."""
    async with await wastore.open_store(tmp_path / "elsewhere.db") as c:
        device_id = await c.create_device()
        backend = c.backend(device_id)
        device = await backend.load()
        assert device is not None
        await backend.save(dataclasses.replace(device, pn=JID.parse(pn), push_name="new"))
        data = portable.encode(await c.export_account(device_id))
    path = tmp_path / "relinked.json"
    path.write_bytes(data)
    return path


# -- point 5 of issue 16: the id stays ---------------------------------------------------


async def test_replace_keeps_the_device_id(url: str, tmp_path: Path) -> None:
    async with await wastore.open_store(url) as c:
        ids = await fill(c, 2, 1)
        original = await c.export_account(ids[0])
    before = await documents(url)
    for n in range(3):  # 1 -> 1 -> 1, not 1 -> 4 -> 5 -> 6
        changed = tmp_path / f"changed{n}.json"
        changed.write_bytes(portable.encode(renamed(original, f"renamed {n}")))
        result = done(cli("import", url, changed, "--replace", "--json", cwd=tmp_path))
        assert (result["action"], result["device_id"], result["replaced"]) == (
            "replaced",
            ids[0],
            [ids[0]],
        )
    after = await documents(url)
    assert sorted(after) == ids  # no new id, none lost
    assert after[ids[0]] == portable.encode(renamed(original, "renamed 2"))
    assert {i: after[i] for i in ids[1:]} == {i: before[i] for i in ids[1:]}
    human = done(cli("import", url, tmp_path / "changed0.json", "--replace", cwd=tmp_path))
    assert human.startswith(f"replaced: account ({PN}") and f"device id {ids[0]}" in human


async def test_import_account_replaces_in_place_in_one_transaction(url: str) -> None:
    async with await wastore.open_store(url) as c:
        assert isinstance(c, wastore.contract.PortableContainer)
        ids = await fill(c, 1, 1)
        dump = await c.export_account(ids[1])  # an unpaired account: known by its key
        new_id = await c.import_account(renamed(dump, "x"), replace=True)
        assert new_id == ids[1]
        assert await c.devices() == ids
        assert (await c.export_account(ids[1])).device["push_name"] == "x"
        with pytest.raises(ValidationError, match="already in the database as device id"):
            await c.import_account(dump)
        # a failing insert leaves the old rows: one transaction
        broken = AccountDump(
            {**dump.tables, "sessions": [{"address": "a@s.whatsapp.net", "record": b"r"}] * 2}
        )
        with pytest.raises(wastore.StoreError):
            await c.import_account(broken, replace=True)
        assert (await c.export_account(ids[1])).device["push_name"] == "x"


async def test_copy_replace_keeps_the_target_id(url: str, tmp_path: Path) -> None:
    src = f"sqlite:///{tmp_path / 'src.db'}"
    async with await wastore.open_store(src) as c:
        ids = await fill(c, 2, 0)
    first = done(cli("copy", src, url, "--json", cwd=tmp_path))
    targets = {a["source_id"]: a["target_id"] for a in first["accounts"]}
    async with await wastore.open_store(src) as c:
        b = c.backend(ids[1])
        device = await b.load()
        assert device is not None
        await b.save(dataclasses.replace(device, push_name="changed"))
    again = done(cli("copy", src, url, "--replace", "--verify", "--json", cwd=tmp_path))
    assert [(a["action"], a["target_id"], a["verified"]) for a in again["accounts"]] == [
        ("unchanged", targets[ids[0]], True),
        ("replaced", targets[ids[1]], True),
    ]
    assert sorted(await documents(url)) == sorted(targets.values())


async def test_duplicates_of_one_account_become_one_on_replace(tmp_path: Path) -> None:
    """Rows with the same identity key (left by an older wastore after a crash) are one
    account: a replace keeps the lowest id and removes the others."""
    db = tmp_path / "wa.db"
    async with await wastore.open_store(db) as c:
        ids = await fill(c, 1, 1)
        dump = await c.export_account(ids[0])
    raw = sqlite3.connect(db)
    cols = [r[1] for r in raw.execute("PRAGMA table_info(wastore_device)") if r[1] != "id"]
    listed = ", ".join(cols)
    raw.execute(
        f"INSERT INTO wastore_device ({listed}) SELECT {listed} FROM wastore_device WHERE id = ?",
        (ids[0],),
    )
    raw.commit()
    dup = raw.execute("SELECT max(id) FROM wastore_device").fetchone()[0]
    raw.close()
    async with await wastore.open_store(db) as c:
        assert isinstance(c, wastore.contract.PortableContainer)
        assert await c.import_account(renamed(dump, "one"), replace=True) == ids[0]
        assert dup not in await c.devices() and ids[0] in await c.devices()


# -- identical content: the same exit code and words for import and copy -----------------


async def test_identical_import_and_copy_say_unchanged_and_exit_0(url: str, tmp_path: Path) -> None:
    src = f"sqlite:///{tmp_path / 'src.db'}"
    async with await wastore.open_store(src) as c:
        ids = await fill(c, 1, 0)
    exported = tmp_path / "a.json"
    done(cli("export", src, ids[0], "-o", exported, cwd=tmp_path))
    created = done(cli("import", url, exported, "--json", cwd=tmp_path))
    assert created["action"] == "created"
    before = await documents(url)
    for replace in ([], ["--replace"]):
        imported = done(cli("import", url, exported, *replace, "--json", cwd=tmp_path))
        copied = done(cli("copy", src, url, *replace, "--json", cwd=tmp_path))
        assert imported["action"] == copied["accounts"][0]["action"] == "unchanged"
        assert imported["device_id"] == copied["accounts"][0]["target_id"] == created["device_id"]
        assert imported["replaced"] == []
        people = cli("import", url, exported, *replace, cwd=tmp_path)
        table = cli("copy", src, url, *replace, cwd=tmp_path)
        assert people.returncode == table.returncode == 0
        assert people.stdout.startswith("unchanged: ") and "identical" in people.stdout
        assert table.stdout.strip().splitlines()[-1] == "1 unchanged"
    assert await documents(url) == before


# -- issue 14 point 1: --replace never replaces an account the file is not ----------------


async def test_import_never_replaces_a_different_account_with_the_same_number(
    url: str, tmp_path: Path
) -> None:
    async with await wastore.open_store(url) as c:
        ids = await fill(c, 2, 0)
    before = await documents(url)
    other = await relinked(tmp_path)
    for replace in ([], ["--replace"]):
        line = error_line(cli("import", url, other, *replace, cwd=tmp_path), 4)
        assert f"device id {ids[0]} ({PN}" in line, line
        assert "another identity key" in line and "different account" in line
        assert "--replace never overwrites" in line and "nothing was imported" in line
    assert await documents(url) == before  # the account the file is not is still there
    async with await wastore.open_store(url) as c:
        assert isinstance(c, wastore.contract.PortableContainer)
        dump = portable.decode(other.read_bytes())
        with pytest.raises(ValidationError, match="different account"):
            await c.import_account(dump, replace=True)
        taken = await admin.put_account(c, dump, replace=True)
        assert (taken.action, taken.existing) == ("taken", (ids[0],))
    assert await documents(url) == before


async def test_copy_reports_a_different_account_as_taken(url: str, tmp_path: Path) -> None:
    async with await wastore.open_store(url) as c:
        ids = await fill(c, 1, 0)
    before = await documents(url)
    await relinked(tmp_path)
    src = f"sqlite:///{tmp_path / 'elsewhere.db'}"
    result = done(cli("copy", src, url, "--replace", "--json", cwd=tmp_path), code=1)
    (account,) = result["accounts"]
    assert account["action"] == "taken" and not result["ok"]
    assert f"device id {ids[0]}" in account["detail"] and "different account" in account["detail"]
    table = cli("copy", src, url, "--replace", cwd=tmp_path)
    assert table.returncode == 1 and "taken" in table.stdout
    assert await documents(url) == before


async def test_the_same_key_under_a_new_number_is_the_same_account(
    url: str, tmp_path: Path
) -> None:
    """The identity key decides: an account whose phone number changed is replaced in
    place (and the account now at its old number is left alone)."""
    async with await wastore.open_store(url) as c:
        assert isinstance(c, wastore.contract.PortableContainer)
        ids = await fill(c, 1, 0)
        moved = await c.export_account(ids[0])
    src = tmp_path / "moved.db"
    async with await wastore.open_store(src) as c:
        assert isinstance(c, wastore.contract.PortableContainer)
        new_id = await c.import_account(moved)
        nb = c.backend(new_id)
        d = await nb.load()
        assert d is not None
        await nb.save(dataclasses.replace(d, pn=JID.parse("15559999:7@s.whatsapp.net")))
        changed = await c.export_account(new_id)
    file = tmp_path / "moved.json"
    file.write_bytes(portable.encode(changed))
    result = done(cli("import", url, file, "--replace", "--json", cwd=tmp_path))
    assert (result["action"], result["device_id"]) == ("replaced", ids[0])
    async with await wastore.open_store(url) as c:
        assert await c.find_device("15559999@s.whatsapp.net") == ids[0]
        assert await c.find_device(PN) is None
