"""The ``wastore`` command line, end to end through its entry point, on SQLite and PostgreSQL.

Every command runs in a subprocess (``python -m wastore.cli``), as a user runs it.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import os
import re
import socket
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from click.testing import CliRunner

import wastore
from _accounts import fill as fill_container
from pg_server import pg_server, pg_url  # noqa: F401
from wastore import portable
from wastore.backends.sql import schema
from wastore.cli import app

PREFIX = "wastore_"


# -- helpers ---------------------------------------------------------------------------


def cli(*args: object, cwd: Path, umask: int | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``wastore ARGS`` in a subprocess."""
    env = {k: v for k, v in os.environ.items() if k not in ("WASTORE_DEBUG", "COLUMNS")}
    return subprocess.run(
        [sys.executable, "-m", "wastore.cli", *map(str, args)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        preexec_fn=None if umask is None else (lambda: os.umask(umask)),
    )


def ok(proc: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc


def out_json(proc: subprocess.CompletedProcess[str], code: int = 0) -> Any:
    assert proc.returncode == code, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return json.loads(proc.stdout)


def one_error(proc: subprocess.CompletedProcess[str], code: int) -> str:
    """The single error line of a failed command (no traceback)."""
    assert proc.returncode == code, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("wastore: error: "), proc.stderr
    assert "Traceback" not in proc.stderr
    return lines[0]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh store: an SQLite file (not created yet) or a PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    pg: str = request.getfixturevalue("pg_url")
    return pg


async def fill(url: str, paired: int = 2, unpaired: int = 1) -> list[int]:
    """``paired`` accounts with a row in every table (phone numbers 1555000n, LIDs
    9900n), then ``unpaired`` fresh accounts."""
    async with await wastore.open_store(url) as c:
        return await fill_container(c, paired, unpaired)


async def documents(url: str) -> dict[bytes, bytes]:
    """Every account's export document, by identity key."""
    async with await wastore.open_store(url) as c:
        assert isinstance(c, wastore.contract.PortableContainer)
        out = {}
        for device_id in await c.devices():
            dump = await c.export_account(device_id)
            out[dump.device["identity_key_public"]] = portable.encode(dump)
        return out


async def raw_rows(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, as the database holds it (leases and version excepted)."""
    cols = schema.columns()
    out: dict[str, list[tuple[Any, ...]]] = {}
    for table in portable.EXPORTED_TABLES:
        names = [c for c, _ in cols[table]]
        order = ", ".join(str(i) for i in range(1, len(names) + 1))
        sql = f"SELECT {', '.join(names)} FROM {PREFIX}{table} ORDER BY {order}"
        if url.startswith("sqlite:"):
            con = sqlite3.connect(url.removeprefix("sqlite:///"))
            try:
                rows = [tuple(r) for r in con.execute(sql)]
            finally:
                con.close()
        else:
            conn = await asyncpg.connect(url)
            try:
                rows = [tuple(r) for r in await conn.fetch(sql)]
            finally:
                await conn.close()
        # booleans: 0/1 in SQLite, true/false in PostgreSQL
        out[table] = [tuple(int(v) if isinstance(v, bool) else v for v in r) for r in rows]
    return out


async def raw_execute(url: str, sql: str, *params: object) -> None:
    """Write behind the store's back (no validation, no foreign keys)."""
    if url.startswith("sqlite:"):
        con = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
        try:
            con.execute("PRAGMA foreign_keys=OFF")
            con.execute(sql.replace("$", "?"), params)
        finally:
            con.close()
        return
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("SET session_replication_role = replica")  # no FK triggers
        await conn.execute(sql, *params)
    finally:
        await conn.close()


async def version_row(url: str) -> tuple[int, int]:
    sql = f"SELECT version, compat FROM {PREFIX}version"
    if url.startswith("sqlite:"):
        con = sqlite3.connect(url.removeprefix("sqlite:///"))
        try:
            (row,) = con.execute(sql).fetchall()
        finally:
            con.close()
        return int(row[0]), int(row[1])
    conn = await asyncpg.connect(url)
    try:
        row = await conn.fetchrow(sql)
    finally:
        await conn.close()
    return int(row[0]), int(row[1])


async def make_v1(url: str) -> None:
    """Turn the store at ``url`` into an empty database at schema version 1."""
    if url.startswith("sqlite:"):
        con = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
        try:
            for stmt in schema.render(schema.MIGRATIONS[0].ddl, "sqlite", PREFIX):
                con.execute(stmt)
            con.execute(f"INSERT INTO {PREFIX}version VALUES (1, 1)")
        finally:
            con.close()
        return
    conn = await asyncpg.connect(url)
    try:
        tables = ", ".join(f"{PREFIX}{t}" for t in (*schema.TABLES, *schema.OTHER_TABLES))
        await conn.execute(f"DROP TABLE {tables} CASCADE")
        for stmt in schema.render(schema.MIGRATIONS[0].ddl, "postgres", PREFIX):
            await conn.execute(stmt)
        await conn.execute(f"INSERT INTO {PREFIX}version VALUES (1, 1)")
    finally:
        await conn.close()


def canonical_sha256(tables: Any) -> str:
    text = json.dumps(tables, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode()).hexdigest()


# -- devices and show --------------------------------------------------------------------


async def test_devices_and_show(url: str, tmp_path: Path) -> None:
    ids = await fill(url)
    rows = out_json(cli("devices", url, "--json", cwd=tmp_path))
    assert [r["device_id"] for r in rows] == ids
    assert rows[0]["pn"] == "15550000:7@s.whatsapp.net" and rows[0]["lid"] == "99000:7@lid"
    assert (rows[0]["sessions"], rows[0]["identities"], rows[0]["sender_keys"]) == (2, 2, 2)
    assert rows[0]["prekeys"] == {"total": 3, "uploaded": 1}
    assert rows[1]["app_state"] == {"regular": 8}
    assert rows[2]["pn"] is None and rows[2]["saved_at_ms"] == 0

    table = ok(cli("devices", url, cwd=tmp_path)).stdout
    assert "15550001:7@s.whatsapp.net" in table and "push v1" in table and "never" in table

    async with await wastore.open_store(url) as c:
        device = await c.backend(ids[1]).load()
    assert device is not None
    detail = out_json(cli("show", url, "15550001@s.whatsapp.net", "--json", cwd=tmp_path))
    assert detail["device_id"] == ids[1] and detail["push_name"] == "push v1"
    assert detail["keys"]["identity_key"]["public"] == device.identity_key.public.hex()
    assert detail["rows"]["sessions"] == 2 and detail["problems"] == []
    human = ok(cli("show", url, str(ids[1]), cwd=tmp_path)).stdout
    assert hashlib.sha256(device.identity_key.public).digest()[:8].hex() in human
    for text in (json.dumps(detail), human):
        for pair in (device.identity_key, device.noise_key, device.signed_pre_key):
            assert pair.private.hex() not in text
            assert base64.b64encode(pair.private).decode() not in text
        assert device.adv_secret_key.hex() not in text


def test_names_chosen_by_peers_cannot_drive_the_terminal(tmp_path: Path) -> None:
    import asyncio

    db = tmp_path / "a.db"

    async def rename() -> None:
        (device_id,) = await fill(f"sqlite:///{db}", 1, 0)
        async with await wastore.open_store(f"sqlite:///{db}") as c:
            backend = c.backend(device_id)
            device = await backend.load()
            assert device is not None
            await backend.save(dataclasses.replace(device, push_name="\x1b[2J[bold]boss[/]\x07"))

    asyncio.run(rename())
    for args in (("devices", db), ("show", db, 1)):
        shown = ok(cli(*args, cwd=tmp_path)).stdout
        assert "\x1b" not in shown and "\x07" not in shown
        assert "\\x1b[2J[bold]boss[/]\\x07" in shown  # escaped, markup kept as text


WITHOUT_RICH = (
    "import sys; sys.modules['rich'] = None; sys.argv[0] = 'wastore'; "
    "from wastore.cli import main; main()"
)


def cli_without_rich(*args: object, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run ``wastore ARGS`` in a process where rich cannot be imported."""
    return subprocess.run(
        [sys.executable, "-c", WITHOUT_RICH, *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_without_rich_the_tables_are_plain_text(tmp_path: Path) -> None:
    """rich is optional: without it every command works and prints plain columns."""
    import asyncio

    db = tmp_path / "a.db"
    ids = asyncio.run(fill(f"sqlite:///{db}"))

    async def load() -> wastore.Device:
        async with await wastore.open_store(f"sqlite:///{db}") as c:
            device = await c.backend(ids[1]).load()
        assert device is not None
        return device

    device = asyncio.run(load())

    listing = ok(cli_without_rich("devices", db, cwd=tmp_path)).stdout
    lines = listing.splitlines()
    assert lines[0] == f"sqlite:///{db}"
    assert re.fullmatch(r"\s+sender\s+pre-keys", lines[1])  # two-line names end on one line
    assert re.match(r"id\s+phone JID\s+LID\s+push name\s+sessions\s+identities\s+keys", lines[2])
    assert set(lines[3].replace(" ", "")) == {"-"}  # the rule under the header
    row = lines[5].split()
    assert row[:5] == [str(ids[1]), "15550001:7@s.whatsapp.net", "99001:7@lid", "push", "v1"]
    assert row[5:11] == ["2", "2", "2", "3/1", "regular", "v8"] and lines[6].endswith("never")
    assert "─" not in listing
    assert json.loads(ok(cli_without_rich("devices", db, "--json", cwd=tmp_path)).stdout) == (
        json.loads(ok(cli("devices", db, "--json", cwd=tmp_path)).stdout)
    )

    detail = ok(cli_without_rich("show", db, ids[1], cwd=tmp_path)).stdout
    assert re.search(r"^phone JID\s+15550001:7@s.whatsapp.net$", detail, re.MULTILINE)
    fingerprint = hashlib.sha256(device.identity_key.public).digest()[:8].hex()
    assert re.search(rf"^identity key fingerprint\s+{fingerprint}$", detail, re.MULTILINE)
    assert device.identity_key.private.hex() not in detail

    copied = cli_without_rich("copy", db, tmp_path / "b.db", "--verify", cwd=tmp_path)
    assert ok(copied).stdout.strip().splitlines()[-1] == "3 created"
    assert re.search(
        rf"^{ids[0]}\s+15550000:7@s.whatsapp.net, 99000:7@lid\s+created\s+1\s+identical$",
        copied.stdout,
        re.MULTILINE,
    )
    assert "no problems found" in ok(cli_without_rich("check", db, cwd=tmp_path)).stdout
    assert "device id 99" in one_error(cli_without_rich("show", db, 99, cwd=tmp_path), 5)


# -- export / import ---------------------------------------------------------------------


async def test_export_import_export_gives_the_same_file(url: str, tmp_path: Path) -> None:
    ids = await fill(url)
    first = tmp_path / "first.json"
    result = out_json(cli("export", url, ids[0], "-o", first, "--json", cwd=tmp_path))
    assert result["rows"]["sessions"] == 2 and result["problems"] == []
    assert stat.S_IMODE(first.stat().st_mode) == 0o600
    data = first.read_bytes()
    async with await wastore.open_store(url) as c:
        assert isinstance(c, wastore.contract.PortableContainer)
        assert data == portable.encode(await c.export_account(ids[0]))  # every row

    before = await documents(url)
    same = out_json(cli("import", url, first, "--json", cwd=tmp_path))  # identical: as copy
    assert (same["action"], same["device_id"]) == ("unchanged", ids[0])
    assert await documents(url) == before
    original = portable.decode(data)
    changed = tmp_path / "changed.json"
    device = {**original.device, "push_name": "changed"}
    changed.write_bytes(
        portable.encode(portable.AccountDump(original.tables | {"device": [device]}))
    )
    refused = one_error(cli("import", url, changed, cwd=tmp_path), 4)
    assert "already" in refused and "--replace" in refused
    assert await documents(url) == before

    done = out_json(cli("import", url, first, "--replace", "--json", cwd=tmp_path))
    assert done["action"] == "unchanged"  # identical content is never rewritten
    done = out_json(cli("import", url, changed, "--replace", "--json", cwd=tmp_path))
    assert done["action"] == "replaced" and done["replaced"] == [ids[0]]
    assert done["device_id"] == ids[0]  # the replaced account keeps its id
    done = out_json(cli("import", url, first, "--replace", "--json", cwd=tmp_path))
    assert (done["action"], done["device_id"]) == ("replaced", ids[0])
    second = tmp_path / "second.json"
    ok(cli("export", url, done["device_id"], "-o", second, cwd=tmp_path))
    assert second.read_bytes() == data

    # into another store, as a new account
    other = f"sqlite:///{tmp_path / 'other.db'}"
    moved = out_json(cli("import", other, second, "--json", cwd=tmp_path))
    assert moved["action"] == "created"
    third = tmp_path / "third.json"
    ok(cli("export", other, "15550000@s.whatsapp.net", "-o", third, cwd=tmp_path))
    assert third.read_bytes() == data


def _damaged(data: bytes) -> dict[str, tuple[bytes, str]]:
    """Broken copies of an account file and what the refusal must say."""
    doc = json.loads(data)
    device = doc["tables"]["device"][0]

    flipped = bytearray(data)
    key_text = device["identity_key_private"].encode()
    at = data.index(key_text) + 5
    flipped[at] = ord("A") if flipped[at] != ord("A") else ord("B")

    future = json.loads(data)
    future["format_version"] = portable.FORMAT_VERSION + 1

    short = json.loads(data)
    short_key = base64.b64decode(short["tables"]["identities"][0]["key"])[:31]
    short["tables"]["identities"][0]["key"] = base64.b64encode(short_key).decode()
    short["sha256"] = canonical_sha256(short["tables"])

    mismatch = json.loads(data)
    mismatch["tables"]["device"][0]["noise_key_public"] = base64.b64encode(b"\1" * 32).decode()
    mismatch["sha256"] = canonical_sha256(mismatch["tables"])

    return {
        "truncated": (data[: len(data) // 2], "truncated"),
        "flipped": (bytes(flipped), "checksum"),
        "future": (json.dumps(future).encode(), "upgrade wastore"),
        "short key": (json.dumps(short).encode(), "must be exactly 32 bytes"),
        "key pair": (json.dumps(mismatch).encode(), "does not match"),
    }


async def test_import_refuses_damaged_files_and_writes_nothing(url: str, tmp_path: Path) -> None:
    ids = await fill(url, 2, 0)
    good = tmp_path / "good.json"
    ok(cli("export", url, ids[0], "-o", good, cwd=tmp_path))
    async with await wastore.open_store(url) as c:
        await c.delete_device(ids[0])  # nothing but the damage stops the import now
    before = await raw_rows(url)
    for what, (data, reason) in _damaged(good.read_bytes()).items():
        bad = tmp_path / f"{what}.json"
        bad.write_bytes(data)
        line = one_error(cli("import", url, bad, "--replace", cwd=tmp_path), 4)
        assert reason in line and "nothing was imported" in line, (what, line)
        assert await raw_rows(url) == before, what
    if url.startswith("sqlite:"):
        fresh = tmp_path / "fresh.db"
        one_error(cli("import", f"sqlite:///{fresh}", tmp_path / "short key.json", cwd=tmp_path), 4)
        assert not fresh.exists()
    # the intact file goes in: only the damage stopped the others
    assert out_json(cli("import", url, good, "--json", cwd=tmp_path))["action"] == "created"


def test_export_file_is_private_and_atomic(tmp_path: Path) -> None:
    db = tmp_path / "a.db"
    import asyncio

    (device_id,) = asyncio.run(fill(f"sqlite:///{db}", 1, 0))
    target = tmp_path / "out" / "acct.json"
    target.parent.mkdir()
    proc = ok(cli("export", db, device_id, "-o", target, cwd=tmp_path, umask=0))
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert "private keys" in proc.stderr and "wastore: warning:" in proc.stderr
    assert sorted(p.name for p in target.parent.iterdir()) == ["acct.json"]  # no temp file

    target.write_text("old")
    target.chmod(0o644)
    line = one_error(cli("export", db, device_id, "-o", target, cwd=tmp_path), 4)
    assert "--force" in line and target.read_text() == "old"
    ok(cli("export", db, device_id, "-o", target, "--force", cwd=tmp_path, umask=0))
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    portable.decode(target.read_bytes())
    assert sorted(p.name for p in target.parent.iterdir()) == ["acct.json"]


# -- copy ----------------------------------------------------------------------------------


async def test_copy_there_and_back_gives_identical_rows(url: str, tmp_path: Path) -> None:
    """SQLite -> URL (SQLite or PostgreSQL) -> SQLite: every row of every table survives."""
    src = f"sqlite:///{tmp_path / 'src.db'}"
    back = f"sqlite:///{tmp_path / 'back.db'}"
    ids = await fill(src)

    there = out_json(cli("copy", src, url, "--verify", "--json", cwd=tmp_path))
    assert [a["action"] for a in there["accounts"]] == ["created"] * 3
    assert [a["verified"] for a in there["accounts"]] == [True] * 3 and there["ok"]
    again = out_json(cli("copy", src, url, "--json", cwd=tmp_path))  # idempotent
    assert [a["action"] for a in again["accounts"]] == ["unchanged"] * 3
    out_json(cli("copy", url, back, "--verify", "--json", cwd=tmp_path))

    original = await raw_rows(src)
    assert original["sessions"] and original["msg_secrets"] and original["group_metadata"]
    assert await raw_rows(url) == original
    assert await raw_rows(back) == original
    assert await documents(back) == await documents(src)

    # a changed account is reported, not overwritten, unless --replace
    async with await wastore.open_store(src) as c:
        backend = c.backend(ids[0])
        device = await backend.load()
        assert device is not None
        await backend.save(dataclasses.replace(device, push_name="renamed"))
        await backend.put_session("333@s.whatsapp.net", b"new session")
    before = await raw_rows(url)
    conflict = out_json(cli("copy", src, url, "--json", cwd=tmp_path), code=1)
    assert [a["action"] for a in conflict["accounts"]] == ["conflict", "unchanged", "unchanged"]
    assert "--replace" in conflict["accounts"][0]["detail"] and not conflict["ok"]
    assert await raw_rows(url) == before
    picked = out_json(
        cli(
            "copy",
            src,
            url,
            "--device",
            "15550000@s.whatsapp.net",
            "--replace",
            "--verify",
            "--json",
            cwd=tmp_path,
        )
    )
    assert [(a["source_id"], a["action"], a["verified"]) for a in picked["accounts"]] == [
        (ids[0], "replaced", True)
    ]
    assert await documents(url) == await documents(src)


def _copy_table(stdout: str) -> dict[int, str]:
    """The result column of ``wastore copy``'s table, by source id."""
    results = {}
    for line in stdout.strip().splitlines()[:-1]:  # the last line is the tally
        cells = line.split()
        if len(cells) >= 3 and cells[0].isdigit():
            results[int(cells[0])] = next(
                c.rstrip(":") for c in cells[2:] if c.rstrip(":") in ACTIONS
            )
    return results


ACTIONS = ("created", "replaced", "unchanged", "conflict", "taken", "invalid", "failed")


async def test_copy_says_the_same_words_in_its_table_and_its_json(tmp_path: Path) -> None:
    """What copy did to each account reads the same for people and for scripts."""
    src = f"sqlite:///{tmp_path / 'src.db'}"
    ids = await fill(src)
    to_table, to_json = (f"sqlite:///{tmp_path / name}" for name in ("table.db", "json.db"))

    def both() -> tuple[subprocess.CompletedProcess[str], subprocess.CompletedProcess[str]]:
        """The same copy twice: once for people, once for scripts (into another store)."""
        return cli("copy", src, to_table, cwd=tmp_path), cli(
            "copy", src, to_json, "--json", cwd=tmp_path
        )

    first, again = both(), both()
    async with await wastore.open_store(src) as c:
        backend = c.backend(ids[0])
        device = await backend.load()
        assert device is not None
        await backend.save(dataclasses.replace(device, push_name="renamed"))
    changed = both()
    for (table, as_json), code, expected in (
        (first, 0, ["created"] * 3),
        (again, 0, ["unchanged"] * 3),
        (changed, 1, ["conflict", "unchanged", "unchanged"]),
    ):
        assert table.returncode == as_json.returncode == code, (table.stderr, as_json.stderr)
        actions = [a["action"] for a in json.loads(as_json.stdout)["accounts"]]
        assert actions == expected
        assert [_copy_table(table.stdout)[i] for i in ids] == actions, table.stdout
        tally = {a: actions.count(a) for a in dict.fromkeys(actions)}
        last_line = table.stdout.strip().splitlines()[-1]
        assert last_line == ", ".join(f"{n} {a}" for a, n in tally.items())


# -- check ---------------------------------------------------------------------------------


async def test_check_finds_damage_done_behind_the_store(url: str, tmp_path: Path) -> None:
    ids = await fill(url)
    clean = out_json(cli("check", url, "--json", cwd=tmp_path))
    assert clean["ok"] and clean["accounts_checked"] == 3 and clean["problems"] == []
    assert "no problems found" in ok(cli("check", url, cwd=tmp_path)).stdout

    await raw_execute(
        url,
        f"UPDATE {PREFIX}identities SET key = $1 WHERE device_id = $2 AND address = '111@s.whatsapp.net'",
        b"\x07" * 31,
        ids[0],
    )
    await raw_execute(
        url, f"UPDATE {PREFIX}device SET identity_key_public = $1 WHERE id = $2", b"\2" * 32, ids[1]
    )
    await raw_execute(
        url,
        f"INSERT INTO {PREFIX}sessions (device_id, address, record) VALUES (4242, 'a@lid', $1)",
        b"r",
    )
    report = out_json(cli("check", url, "--json", cwd=tmp_path), code=1)
    assert not report["ok"]
    [problem] = report["account_problems"][str(ids[0])]
    assert problem.startswith("identities row '")
    assert problem.endswith(": identity key must be exactly 32 bytes, got 31")
    assert any(
        "identity_key: the public key does not match" in p
        for p in report["account_problems"][str(ids[1])]
    )
    assert report["orphans"] == [{"table": "sessions", "device_id": 4242, "rows": 1}]
    human = cli("check", url, cwd=tmp_path)
    assert human.returncode == 1
    assert "3 problem(s)" in human.stdout and "orphan" in human.stdout


async def test_check_lists_leases(url: str, tmp_path: Path) -> None:
    (device_id,) = await fill(url, 1, 0)
    async with (
        await wastore.open_store(url) as c,
        await wastore.PersistenceManager.open(c.backend(device_id)),
    ):
        report = out_json(cli("check", url, "--json", cwd=tmp_path))
        replace = cli("copy", url, url, "--replace", cwd=tmp_path)  # same store: no-op
    assert [(lease["device_id"], lease["active"]) for lease in report["leases"]] == [
        (device_id, True)
    ]
    assert f"pid {os.getpid()}" in report["leases"][0]["holder"]
    assert replace.returncode == 0  # an identical account is left alone, lease or not


# -- migrate ------------------------------------------------------------------------------


async def test_migrate_dry_run_changes_nothing_then_migrate(url: str, tmp_path: Path) -> None:
    await make_v1(url)
    plan = out_json(cli("migrate", url, "--dry-run", "--json", cwd=tmp_path))
    assert plan["version"] == 1 and [s["version"] for s in plan["steps"]] == [
        m.version for m in schema.MIGRATIONS[1:]
    ]
    assert await version_row(url) == (1, 1)
    assert "wastore migrate" in one_error(cli("devices", url, cwd=tmp_path), 6)
    assert await version_row(url) == (1, 1)
    report = out_json(cli("check", url, "--json", cwd=tmp_path), code=1)
    assert any("wastore migrate" in p for p in report["problems"])

    done = out_json(cli("migrate", url, "--json", cwd=tmp_path))
    assert (done["from"], done["to"]) == (1, schema.LATEST)
    assert [s["version"] for s in done["applied"]] == [m.version for m in schema.MIGRATIONS[1:]]
    assert await version_row(url) == (schema.LATEST, schema.LATEST_COMPAT)
    assert "up to date" in ok(cli("migrate", url, cwd=tmp_path)).stdout
    assert out_json(cli("check", url, "--json", cwd=tmp_path))["ok"]


def test_migrate_human_output_and_missing_database(tmp_path: Path) -> None:
    import asyncio

    db = tmp_path / "old.db"
    asyncio.run(make_v1(f"sqlite:///{db}"))
    dry = ok(cli("migrate", db, "--dry-run", cwd=tmp_path)).stdout
    steps = len(schema.MIGRATIONS) - 1
    assert f"{steps} step(s) to apply" in dry and "3: account leases" in dry
    applied = ok(cli("migrate", db, cwd=tmp_path)).stdout
    assert all(f"applied {m.version}:" in applied for m in schema.MIGRATIONS[1:])
    missing = tmp_path / "missing.db"
    assert "does not exist" in one_error(cli("migrate", missing, cwd=tmp_path), 5)
    assert not missing.exists()


# -- snapshot ------------------------------------------------------------------------------


async def test_snapshot_writes_a_private_copy(url: str, tmp_path: Path) -> None:
    ids = await fill(url, 1, 0)
    folder = tmp_path / "snaps"
    result = out_json(
        cli("snapshot", url, ids[0], "before upgrade/..", "--dir", folder, "--json", cwd=tmp_path)
    )
    path = Path(result["path"])
    assert path.parent == folder and path.exists() and "before_upgrade_.." in path.name
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    if url.startswith("sqlite:"):
        async with await wastore.open_store(f"sqlite:///{path}") as c:
            assert await c.devices() == ids
    else:
        assert portable.decode(path.read_bytes()).device["pn"] == "15550000:7@s.whatsapp.net"
    human = ok(cli("snapshot", url, ids[0], "again", "--dir", folder, cwd=tmp_path))
    assert str(folder) in human.stdout and "private keys" in human.stderr


# -- errors ---------------------------------------------------------------------------------


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def test_errors_are_one_line_with_meaningful_exit_codes(tmp_path: Path) -> None:
    import asyncio

    db = tmp_path / "a.db"
    asyncio.run(fill(f"sqlite:///{db}", 1, 0))
    missing = tmp_path / "missing.db"
    assert "does not exist" in one_error(cli("show", missing, 1, cwd=tmp_path), 5)
    assert not missing.exists()
    assert "device id 99" in one_error(cli("show", db, 99, cwd=tmp_path), 5)
    assert "unknown store URL scheme" in one_error(cli("devices", "foo://x", cwd=tmp_path), 2)
    assert "no such file" in one_error(cli("import", db, tmp_path / "nope.json", cwd=tmp_path), 5)
    assert "names no account" in one_error(cli("show", db, "alice", cwd=tmp_path), 4)

    pg = f"postgresql://alice:s3cr3t-pw@127.0.0.1:{_closed_port()}/db?retry_timeout=0.2"
    down = cli("devices", pg, cwd=tmp_path)
    assert "unreachable" in one_error(down, 3)
    assert "s3cr3t-pw" not in down.stdout + down.stderr and "alice:***@" in down.stderr

    # --debug (on the command or before it) adds the traceback, still no password
    for args in (("show", db, 99, "--debug"), ("--debug", "show", db, 99)):
        debug = cli(*args, cwd=tmp_path)
        assert debug.returncode == 5
        assert "Traceback" in debug.stderr and "DeviceNotFoundError" in debug.stderr
        assert debug.stderr.strip().splitlines()[-1].startswith("wastore: error: ")
    debug = cli("devices", pg, "--debug", cwd=tmp_path)
    assert debug.returncode == 3 and "Traceback" in debug.stderr
    assert "s3cr3t-pw" not in debug.stdout + debug.stderr

    assert "missing argument 'DEVICE'" in one_error(cli("show", db, cwd=tmp_path), 2)

    # a row the store cannot read is reported (exit 1), not a crash
    con = sqlite3.connect(db, isolation_level=None)
    con.execute(f"UPDATE {PREFIX}sessions SET record = 'text'")
    con.close()
    for args in (("show", db, 1), ("export", db, 1, "-o", tmp_path / "x.json")):
        line = one_error(cli(*args, cwd=tmp_path), 1)
        assert "cannot be read" in line and "wastore check" in line


# -- every command that prints data speaks JSON -----------------------------------------------


def test_json_output_of_every_command(tmp_path: Path) -> None:
    import asyncio

    db = tmp_path / "a.db"
    asyncio.run(fill(f"sqlite:///{db}", 1, 1))
    acct = tmp_path / "acct.json"
    runs = {
        "devices": ("devices", db),
        "show": ("show", db, 1),
        "export": ("export", db, 1, "-o", acct),
        "import": ("import", tmp_path / "b.db", acct),
        "copy": ("copy", db, tmp_path / "c.db", "--verify"),
        "snapshot": ("snapshot", db, 2, "s"),
        "check": ("check", db),
        "migrate --dry-run": ("migrate", db, "--dry-run"),
        "migrate": ("migrate", tmp_path / "c.db"),
    }
    for name, args in runs.items():
        proc = cli(*args, "--json", cwd=tmp_path)
        assert proc.returncode == 0, (name, proc.stderr)
        data = json.loads(proc.stdout)
        assert isinstance(data, dict | list) and data, name


# -- the entry points, help and bench ------------------------------------------------------


COMMANDS = ("devices", "show", "export", "import", "copy", "snapshot", "check", "migrate")
ROOT = Path(__file__).resolve().parents[1]


def test_console_script_and_help_everywhere(tmp_path: Path) -> None:
    script = Path(sys.executable).with_name("wastore")
    assert script.exists(), "the console script is not installed (pip install -e .)"
    proc = subprocess.run(
        [script, "--version"], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0 and proc.stdout.strip() == f"wastore {wastore.__version__}"

    runner = CliRunner()
    top = runner.invoke(app, ["--help"])
    assert top.exit_code == 0 and "Exit codes" in top.output
    for command in COMMANDS:
        result = runner.invoke(app, [command, "--help"])
        assert result.exit_code == 0, command
        assert "--json" in result.output and "--debug" in result.output, command
    alone = cli(cwd=tmp_path)  # no command: the help, as a usage error
    assert alone.returncode == 2 and "Exit codes" in alone.stdout


def test_help_shows_flags_as_flags() -> None:
    """A flag takes no value: no ``<bool>`` or ``BOOLEAN`` placeholder after it."""
    for command in ("", *COMMANDS, "demo"):
        proc = ok(cli(*command.split(), "--help", cwd=ROOT))
        text = proc.stdout
        assert "<bool>" not in text and "BOOLEAN" not in text, command
        assert re.search(r"-h, --help\s+Show this message", text), (command, text)
        if command != "demo":
            assert re.search(r"--debug\s+On errors", text), (command, text)
        if command in COMMANDS:
            assert re.search(r"--json\s+Print the result as JSON", text), (command, text)
            assert "Arguments:" in text and "URL" in text, (command, text)
    copy_help = ok(cli("copy", "--help", cwd=ROOT)).stdout
    for flag in ("--replace", "--verify"):
        assert re.search(rf"{flag}\s+[A-Z]", copy_help), copy_help


def test_help_texts_point_to_files_that_exist() -> None:
    """Every document a help text sends the reader to is in the repository: a path with a
    folder (``docs/cli.md``) or a name in capitals (``README.md``); names of files a
    command writes (``results.md``) and example paths in URLs are not pointers."""
    texts = {
        " ".join(args) or "wastore": ok(cli(*args, "--help", cwd=ROOT)).stdout
        for args in ((), *((c,) for c in COMMANDS), ("demo",), ("bench",))
    }
    cited = {
        (where, name)
        for where, text in texts.items()
        for name in re.findall(
            r"\b[\w.-]+/[\w./-]*\w\.(?:md|rst|txt)\b|\b[A-Z][A-Z_]*\.(?:md|rst|txt)\b", text
        )
    }
    missing = {(where, name) for where, name in cited if not (ROOT / name).is_file()}
    assert not missing
    assert ("bench", "docs/benchmarks.md") in cited  # the harness's help says where its docs are


def test_usage_errors_are_one_line(tmp_path: Path) -> None:
    db = tmp_path / "a.db"
    for args, what in (
        (("show", db), "missing argument 'DEVICE'"),
        (("export", db, 1), "missing option '--output'"),
        (("devices", db, "--bogus"), "no such option"),
        (("frobnicate",), "no such command 'frobnicate'"),
        (("copy", db, db, "--device"), "option '--device' requires an argument"),
    ):
        line = one_error(cli(*args, cwd=tmp_path), 2)
        assert what in line, (args, line)
        command = str(args[0]) if what != "no such command 'frobnicate'" else ""
        assert f"see `{' '.join(['wastore', command]).strip()} --help`" in line, line
    assert not db.exists()


def test_bench_runs_the_harness_of_the_checkout_it_is_in(tmp_path: Path) -> None:
    """In a checkout, ``wastore bench ARGS`` is ``python -m benchmarks ARGS`` there."""
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "wastore"\n')
    harness = tmp_path / "benchmarks"
    harness.mkdir()
    (harness / "__init__.py").write_text("")
    (harness / "__main__.py").write_text(
        "import json, os, sys\n"
        "print(json.dumps({'args': sys.argv[1:], 'cwd': os.getcwd()}))\n"
        "sys.exit(3)\n"
    )
    proc = cli("bench", "--quick", "--only", "sqlite", "--help", cwd=tmp_path)
    assert proc.returncode == 3, proc.stderr
    assert json.loads(proc.stdout) == {
        "args": ["--quick", "--only", "sqlite", "--help"],
        "cwd": str(tmp_path),
    }


def test_bench_runs_the_real_harness(tmp_path: Path) -> None:
    # tmp_path is no checkout: the harness is found in the checkout wastore is installed from
    proc = ok(cli("bench", "--help", cwd=tmp_path))
    assert "--quick" in proc.stdout and "docs/benchmarks.md" in proc.stdout
