"""wastore.admin: what the command line needs beyond the public API, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import asyncpg
import pytest

import wastore
from _accounts import fill
from pg_server import pg_server, pg_url  # noqa: F401
from wastore import admin, portable
from wastore.backends.sql import schema


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    pg: str = request.getfixturevalue("pg_url")
    return pg


async def raw_execute(url: str, sql: str, *params: object) -> None:
    """Write behind the store's back (no validation, foreign keys off)."""
    if url.startswith("sqlite:"):
        con = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
        try:
            con.execute("PRAGMA foreign_keys=OFF")
            con.execute(sql.replace("$1", "?1").replace("$2", "?2"), params)
        finally:
            con.close()
        return
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("SET session_replication_role = replica")  # no FK triggers
        await conn.execute(sql, *params)
    finally:
        await conn.close()


# -- overviews and details ---------------------------------------------------------


async def test_overviews_count_every_account(url: str) -> None:
    async with await admin.open_url(url, create=True) as c:
        ids = await fill(c)
        rows = await admin.overviews(c)
        one = await admin.overviews(c, ids[1])
    assert [r.device_id for r in rows] == ids
    first = rows[0]
    assert (first.pn, first.lid, first.push_name) == (
        "15550000:7@s.whatsapp.net",
        "99000:7@lid",
        "push v0",
    )
    assert (first.sessions, first.identities, first.sender_keys) == (2, 2, 2)
    assert (first.prekeys, first.prekeys_uploaded, first.signed_prekeys) == (3, 1, 1)
    assert first.app_state == {"regular": 7}
    assert first.saved_at_ms > 0 and first.lease is None
    assert rows[1].app_state == {"regular": 8}
    fresh = rows[2]
    assert (fresh.pn, fresh.sessions, fresh.prekeys, fresh.app_state, fresh.saved_at_ms) == (
        None,
        0,
        0,
        {},
        0,
    )
    assert one == [rows[1]]
    json.dumps([r.as_dict() for r in rows])  # JSON-ready


async def test_overview_shows_the_lease_of_a_served_account(url: str) -> None:
    async with await admin.open_url(url, create=True) as c:
        (device_id,) = await fill(c, 1, 0)
        async with await wastore.PersistenceManager.open(c.backend(device_id)):
            (row,) = await admin.overviews(c)
            held = await admin.leases(c)
        after = await admin.leases(c)
    assert row.lease is not None and row.lease.active()
    assert [lease.device_id for lease in held] == [device_id]
    assert f"pid {os.getpid()}" in held[0].describe()  # the holder names this process
    assert [lease for lease in after if lease.active()] == []


async def test_detail_shows_public_keys_never_private_ones(url: str) -> None:
    async with await admin.open_url(url, create=True) as c:
        (device_id,) = await fill(c, 1, 0)
        device = await c.backend(device_id).load()
        detail = await admin.account_detail(c, device_id)
    assert device is not None
    text = json.dumps(detail.as_dict())
    for pair in (device.identity_key, device.noise_key, device.signed_pre_key):
        assert pair.private.hex() not in text
        assert pair.public.hex() in text
        assert admin.fingerprint(pair.public) in text
    assert device.adv_secret_key.hex() not in text
    assert detail.keys["identity_key"].public == device.identity_key.public
    assert detail.rows["sessions"] == 2 and detail.rows["device"] == 1
    assert detail.prekeys_uploaded == 1 and detail.signed_prekey_ids == [1]
    assert [(n, v) for n, v, _ in detail.app_state] == [("regular", 7)]
    assert detail.sync_keys == [("00000001", 100)]
    assert detail.problems == []
    assert detail.fields["push_name"] == "push v0"


async def test_resolve_device_by_id_or_jid(url: str) -> None:
    async with await admin.open_url(url, create=True) as c:
        ids = await fill(c, 2, 0)
        assert await admin.resolve_device(c, str(ids[1])) == ids[1]
        assert await admin.resolve_device(c, "15550001@s.whatsapp.net") == ids[1]
        assert await admin.resolve_device(c, "99000@lid") == ids[0]
        with pytest.raises(wastore.DeviceNotFoundError):
            await admin.resolve_device(c, "999")
        with pytest.raises(admin.NotFoundError):
            await admin.resolve_device(c, "1777@s.whatsapp.net")
        with pytest.raises(wastore.ValidationError):
            await admin.resolve_device(c, "alice")


# -- checks ------------------------------------------------------------------------


async def test_check_is_clean_on_a_sound_store(url: str) -> None:
    async with await admin.open_url(url, create=True) as c:
        await fill(c)
        report = await admin.check(c)
    assert report.ok, report.problems
    assert report.accounts == 3
    assert report.schema.up_to_date and report.schema.version == schema.LATEST
    assert report.integrity == (["ok"] if url.startswith("sqlite") else None)


async def test_check_finds_rows_damaged_behind_the_store(url: str) -> None:
    async with await admin.open_url(url, create=True) as c:
        ids = await fill(c)
    p = "wastore_"
    await raw_execute(
        url, f"UPDATE {p}identities SET key = $1 WHERE device_id = $2", b"k" * 31, ids[0]
    )
    await raw_execute(
        url, f"UPDATE {p}device SET noise_key_public = $1 WHERE id = $2", b"\1" * 32, ids[1]
    )
    await raw_execute(
        url,
        f"INSERT INTO {p}sessions (device_id, address, record) VALUES ($1, 'x@lid', $2)",
        77,
        b"r",
    )
    async with await admin.open_url(url) as c:
        report = await admin.check(c)
        orphans = await admin.orphan_rows(c)
    assert not report.ok
    problems = report.account_problems[ids[0]]
    # each of the two rows: changed behind the store (its checksum), and not valid
    assert len(problems) == 4
    assert all("identities row '" in p for p in problems)
    assert sum("does not match its checksum" in p for p in problems) == 2
    assert sum(p.endswith(": identity key must be exactly 32 bytes, got 31") for p in problems) == 2
    assert report.account_problems[ids[1]] == [
        f"the device row {ids[1]} does not match its checksum: it was damaged or changed "
        "outside wastore",
        "device row: noise_key: the public key does not match the private key",
    ]
    assert ids[2] not in report.account_problems
    assert orphans == [admin.OrphanRows("sessions", 77, 1)] == report.orphans
    assert any("orphan" in p for p in report.problems)


async def test_schema_status_at_reads_without_creating_or_migrating(tmp_path: Path) -> None:
    missing = tmp_path / "missing.db"
    with pytest.raises(admin.NotFoundError):
        await admin.schema_status_at(f"sqlite:///{missing}")
    with pytest.raises(admin.NotFoundError):
        await admin.open_url(f"sqlite:///{missing}")
    assert not missing.exists()

    old = tmp_path / "old.db"
    con = sqlite3.connect(old, isolation_level=None)
    for stmt in schema.render(schema.MIGRATIONS[0].ddl, "sqlite", "wastore_"):
        con.execute(stmt)
    con.execute("INSERT INTO wastore_version VALUES (1, 1)")
    con.close()
    status = await admin.schema_status_at(f"sqlite:///{old}")
    assert (status.version, [m.version for m in status.pending]) == (
        1,
        [m.version for m in schema.MIGRATIONS[1:]],
    )
    with pytest.raises(wastore.SchemaError, match="wastore migrate"):
        await admin.open_url(f"sqlite:///{old}")
    con = sqlite3.connect(old)
    assert con.execute("SELECT version FROM wastore_version").fetchall() == [(1,)]
    con.close()
    async with await admin.open_url(f"sqlite:///{old}", migrate=True) as c:
        assert (await admin.schema_status(c)).up_to_date

    empty = tmp_path / "empty.db"
    empty.touch()
    status = await admin.schema_status_at(f"sqlite:///{empty}")
    assert not status.initialised and len(status.pending) == len(schema.MIGRATIONS)
    assert empty.stat().st_size == 0


@pytest.mark.postgres
async def test_schema_status_at_on_postgres(pg_url: str) -> None:  # noqa: F811
    status = await admin.schema_status_at(pg_url)
    assert status.up_to_date and status.version == schema.LATEST
    conn = await asyncpg.connect(pg_url)
    try:
        await conn.execute(
            "UPDATE wastore_version SET version = $1, compat = $1", schema.LATEST + 1
        )
    finally:
        await conn.close()
    with pytest.raises(wastore.SchemaTooNewError):
        await admin.schema_status_at(pg_url)


async def test_memory_store_is_refused() -> None:
    with pytest.raises(wastore.ConfigError, match="memory"):
        await admin.open_url("memory://")
    async with await wastore.open_store("memory://") as c:
        with pytest.raises(wastore.ConfigError, match="SQL store"):
            await admin.overviews(c)


# -- moving accounts ---------------------------------------------------------------


async def test_put_account_is_idempotent_and_refuses_or_replaces(url: str, tmp_path: Path) -> None:
    async with await admin.open_url(f"sqlite:///{tmp_path / 'src.db'}", create=True) as src:
        ids = await fill(src, 1, 1)
        paired = await src.export_account(ids[0])
        fresh = await src.export_account(ids[1])
    async with await admin.open_url(url, create=True) as dst:
        first = await admin.put_account(dst, paired)
        assert first.action == "created" and first.existing == ()
        again = await admin.put_account(dst, paired, skip_identical=True)
        assert (again.action, again.device_id, again.identical) == (
            "unchanged",
            first.device_id,
            True,
        )
        conflict = await admin.put_account(dst, paired)
        assert (conflict.action, conflict.identical) == ("conflict", True)

        # An unpaired account is known by its identity key only.
        made = await admin.put_account(dst, fresh)
        assert made.action == "created"
        assert (await admin.put_account(dst, fresh)).action == "conflict"
        changed = AccountDumpWith.push_name(fresh, "renamed")
        assert (await admin.put_account(dst, changed, skip_identical=True)).action == "conflict"
        replaced = await admin.put_account(dst, changed, replace=True)
        assert replaced.action == "replaced" and replaced.existing == (made.device_id,)
        assert await dst.devices() == sorted([first.device_id, replaced.device_id])
        assert admin.same_content(await dst.export_account(replaced.device_id), changed)

        # Never over an account that a process is serving.
        renamed = AccountDumpWith.push_name(paired, "other")
        async with await wastore.PersistenceManager.open(dst.backend(first.device_id)):
            with pytest.raises(wastore.AccountInUseError):
                await admin.put_account(dst, renamed, replace=True)
        assert admin.same_content(await dst.export_account(first.device_id), paired)
        done = await admin.put_account(dst, renamed, replace=True)
        assert done.action == "replaced"


class AccountDumpWith:
    @staticmethod
    def push_name(dump: portable.AccountDump, name: str) -> portable.AccountDump:
        tables = {t: [dict(r) for r in rows] for t, rows in dump.tables.items()}
        tables["device"][0]["push_name"] = name
        return portable.AccountDump(tables)


async def test_copy_account_skips_identical_and_reports_damaged(url: str, tmp_path: Path) -> None:
    src_url = f"sqlite:///{tmp_path / 'src.db'}"
    async with await admin.open_url(src_url, create=True) as src:
        ids = await fill(src, 2, 0)
    await raw_execute(
        src_url, "UPDATE wastore_identities SET key = $1 WHERE device_id = $2", b"s" * 31, ids[1]
    )
    async with await admin.open_url(src_url) as src, await admin.open_url(url, create=True) as dst:
        good = await admin.copy_account(src, dst, ids[0])
        assert good.action == "created" and good.target_id is not None
        assert await admin.verify_copy(src, ids[0], dst, good.target_id)
        assert (await admin.copy_account(src, dst, ids[0])).action == "unchanged"
        bad = await admin.copy_account(src, dst, ids[1])
        assert bad.action == "invalid"
        assert "identities row" in bad.detail
        assert "does not match its checksum" in bad.detail  # changed behind the store
        assert await dst.devices() == [good.target_id]


async def test_values_of_the_wrong_type_are_reported_not_raised(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    async with await admin.open_url(url, create=True) as c:
        ids = await fill(c, 2, 0)
    # SQLite keeps whatever type is written: text where the store keeps bytes
    await raw_execute(
        url, "UPDATE wastore_sessions SET record = 'text' WHERE device_id = $1", ids[0]
    )
    async with (
        await admin.open_url(url) as c,
        await admin.open_url(f"sqlite:///{tmp_path / 'dst.db'}", create=True) as dst,
    ):
        report = await admin.check(c)
        assert list(report.account_problems) == [ids[0]]
        (problem,) = report.account_problems[ids[0]]
        assert problem == (
            "sessions row 0, column record: a str is stored where the schema has blob"
        )
        with pytest.raises(wastore.CorruptRecordError, match=f"rows of account {ids[0]}"):
            await admin.account_detail(c, ids[0])
        copied = await admin.copy_account(c, dst, ids[0])
        assert copied.action == "invalid" and await dst.devices() == []
        assert (await admin.copy_account(c, dst, ids[1])).action == "created"
