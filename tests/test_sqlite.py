"""SqliteStore: what only the embedded backend has (the contract is in test_sqlite_contract)."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import stat
import time
from pathlib import Path

import pytest

import wastore
from wastore import (
    JID,
    AccountInUseError,
    BackendUnavailableError,
    CorruptRecordError,
    MutationMAC,
    PersistenceManager,
    SchemaError,
    SchemaTooNewError,
)
from wastore.backends.sql import schema
from wastore.backends.sqlite import SqliteStore


async def open_file(path: Path, **options: object) -> SqliteStore:
    store = await wastore.open_store(f"sqlite:///{path}", **options)
    assert isinstance(store, SqliteStore)
    return store


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def raw(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path, isolation_level=None)


# -- opening and settings ------------------------------------------------------


async def test_url_forms_open_the_same_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    async with await wastore.open_store("sqlite:///rel.db") as c:
        await c.create_device()
    async with await wastore.open_store(f"sqlite:///{tmp_path}/rel.db") as c:
        assert await c.devices() == [1]
    async with await wastore.open_store(tmp_path / "rel.db") as c:
        assert await c.devices() == [1]
    assert (tmp_path / "rel.db").exists()


async def test_files_are_private(tmp_path: Path) -> None:
    db = tmp_path / "wa.db"
    async with await open_file(db) as c:
        b = c.backend(await c.create_device())
        await b.put_session("1@s.whatsapp.net", b"x")
        assert mode(db) == 0o600
        assert mode(Path(f"{db}-wal")) == 0o600
        assert mode(Path(f"{db}-shm")) == 0o600
        snap = Path(await b.snapshot_db("private", b"extra"))
        assert mode(snap) == 0o600
        assert mode(Path(f"{snap}.extra")) == 0o600


async def test_pragmas(tmp_path: Path) -> None:
    async with await open_file(tmp_path / "a.db") as c:
        w = c.engine._w
        assert w is not None
        assert w.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert w.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
        assert w.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    async with await open_file(tmp_path / "b.db", synchronous="FULL") as c:
        w = c.engine._w
        assert w is not None
        assert w.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        b = c.backend(await c.create_device())
        await b.put_session("1@s.whatsapp.net", b"durable")
        async with b.transaction():
            await b.put_session("2@s.whatsapp.net", b"durable too")
        assert await b.get_sessions(["1@s.whatsapp.net", "2@s.whatsapp.net"]) == {
            "1@s.whatsapp.net": b"durable",
            "2@s.whatsapp.net": b"durable too",
        }


async def test_open_waits_for_a_writer_of_a_fresh_file(tmp_path: Path) -> None:
    # Another process writes to a fresh file (still in rollback-journal mode, as when
    # two processes open it together): switching it to WAL fails at once with "database
    # is locked" (SQLite calls no busy handler there), so opening retries within the
    # busy budget instead of failing.
    db = tmp_path / "fresh.db"
    other = sqlite3.connect(db, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    opening = asyncio.ensure_future(open_file(db, busy_timeout=10.0))
    await asyncio.sleep(0.3)
    assert not opening.done()
    other.execute("ROLLBACK")
    other.close()
    async with await opening as c:
        assert await c.devices() == []


async def test_bad_options_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(wastore.ConfigError, match="synchronous"):
        await open_file(tmp_path / "a.db", synchronous="OFF")
    with pytest.raises(wastore.ConfigError, match="unknown"):
        await wastore.open_store(f"sqlite:///{tmp_path}/a.db?colour=blue")
    with pytest.raises(wastore.ConfigError, match="prefix"):
        await open_file(tmp_path / "a.db", prefix="drop table;")
    with pytest.raises(wastore.ConfigError):
        await wastore.open_store("sqlite://")


async def test_prefixes_share_a_file(tmp_path: Path) -> None:
    db = tmp_path / "app.db"
    async with await open_file(db, prefix="one_") as a, await open_file(db, prefix="two_") as b:
        ba = a.backend(await a.create_device())
        bb = b.backend(await b.create_device())
        await ba.put_session("1@s.whatsapp.net", b"a")
        assert await bb.get_session("1@s.whatsapp.net") is None
    tables = {r[0] for r in raw(db).execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"one_sessions", "two_sessions", "one_version", "two_version"} <= tables


# -- migrations ------------------------------------------------------------------


def _schema_sql(path: Path) -> set[str]:
    con = raw(path)
    try:
        return {
            " ".join(r[0].split())
            for r in con.execute("SELECT sql FROM sqlite_master WHERE sql IS NOT NULL")
        }
    finally:
        con.close()


def _v1_database(path: Path) -> None:
    """A database as the first schema step left it, with a row in every table."""
    con = raw(path)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA foreign_keys=ON")
    con.execute("BEGIN")
    for stmt in schema.render(schema.MIGRATIONS[0].ddl, "sqlite", "wastore_"):
        con.execute(stmt)
    con.execute("INSERT INTO wastore_version VALUES (1, 1)")
    con.execute("COMMIT")
    con.close()


async def _fill_v1(path: Path) -> int:
    """Fill every v1 table through the current store code, then drop later tables
    so that the file really is at v1 (the statements of v1 tables did not change)."""
    async with await open_file(path) as c:
        device_id = await c.create_device()
        b = c.backend(device_id)
        await b.put_identity("1@s.whatsapp.net", b"i" * 32)
        await b.put_session("1@s.whatsapp.net", b"session")
        await b.store_prekeys_batch([(1, b"p1"), (2, b"p2")], False)
        await b.store_signed_prekey(1, b"spk")
        await b.put_sender_key("g@g.us::1@s.whatsapp.net", b"sk")
        await b.set_sync_key(b"k1", wastore.AppStateSyncKey(b"d" * 32, b"fp", 5))
        await b.set_version("regular", wastore.HashState(7, b"h" * 128))
        await b.put_mutation_macs("regular", 7, [MutationMAC(b"x" * 32, b"y" * 32)])
        await b.set_sender_key_status("g@g.us", [("1:2@s.whatsapp.net", True)])
        await b.put_lid_mapping(wastore.LidPnMapping("100", "555", 1, 2, "usync"))
        await b.save_base_key("1@s.whatsapp.net", "m1", b"b" * 32)
        await b.update_device_list(
            wastore.DeviceListRecord("555", (wastore.DeviceInfo(0), wastore.DeviceInfo(3, 1)), 9)
        )
        await b.put_tc_token("1@s.whatsapp.net", wastore.TcToken(b"t", 3, 4))
        await b.store_sent_message("c@g.us", "m1", b"payload")
    return device_id


async def test_upgrade_from_v1_keeps_every_row(tmp_path: Path) -> None:
    fresh = tmp_path / "fresh.db"
    async with await open_file(fresh):
        pass
    # Rows for every v1 table, written by the store, copied into a database that
    # was created by the first schema step only.
    filled = tmp_path / "filled.db"
    device_id = await _fill_v1(filled)
    old = tmp_path / "old.db"
    _v1_database(old)
    v1_tables = [t for t in schema.TABLES if f"{{p}}{t} (" in schema.MIGRATIONS[0].ddl]
    assert "sessions" in v1_tables and "leases" not in v1_tables
    src = raw(filled)
    con = raw(old)
    con.execute("BEGIN")
    before: dict[str, list[tuple[object, ...]]] = {}
    v1_columns = {  # the columns each table had at v1 (later steps added some)
        t: ", ".join(
            c for c, _ in schema.columns()[t] if c not in schema.added_columns().get(t, {})
        )
        for t in v1_tables
    }
    for t in v1_tables:
        rows = src.execute(f"SELECT {v1_columns[t]} FROM wastore_{t}").fetchall()
        assert rows, f"fixture left table {t} empty"
        marks = ",".join("?" * len(rows[0]))
        con.executemany(f"INSERT INTO wastore_{t} ({v1_columns[t]}) VALUES ({marks})", rows)
        before[t] = sorted(rows, key=repr)
    con.execute("COMMIT")
    con.close()
    src.close()
    assert _schema_sql(old) != _schema_sql(fresh)

    async with await open_file(old) as c:
        version, compat, pending = c.schema_status()
        assert (version, pending) == (schema.LATEST, [])
        b = c.backend(device_id)
        # every row survived, and the tables added later work
        assert await b.get_session("1@s.whatsapp.net") == b"session"
        await b.put_group_metadata("g@g.us", b"meta")
        assert await b.get_group_metadata("g@g.us") == b"meta"
        pm = await PersistenceManager.open(b)
        await pm.close()
    con = raw(old)
    for t, rows in before.items():
        after = con.execute(f"SELECT {v1_columns[t]} FROM wastore_{t}").fetchall()
        assert sorted(after, key=repr) == rows, t
    con.close()
    assert _schema_sql(old) == _schema_sql(fresh)


async def test_schema_too_new_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "a.db"
    async with await open_file(db):
        pass
    con = raw(db)
    con.execute(
        "UPDATE wastore_version SET version = ?, compat = ?", (schema.LATEST + 1, schema.LATEST + 1)
    )
    con.close()
    with pytest.raises(SchemaTooNewError, match="upgrade wastore"):
        await open_file(db)


async def test_newer_but_compatible_schema_opens(tmp_path: Path) -> None:
    db = tmp_path / "a.db"
    async with await open_file(db):
        pass
    con = raw(db)
    con.execute("UPDATE wastore_version SET version = ?", (schema.LATEST + 5,))
    con.close()
    async with await open_file(db) as c:
        await c.create_device()
        assert c.schema_status()[0] == schema.LATEST + 5


async def test_old_schema_without_migrate_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    _v1_database(db)
    with pytest.raises(SchemaError, match="wastore migrate"):
        await open_file(db, migrate=False)
    async with await open_file(db) as c:  # and it still upgrades normally
        assert c.schema_status()[2] == []


async def test_foreign_tables_with_our_prefix_are_refused(tmp_path: Path) -> None:
    db = tmp_path / "a.db"
    con = raw(db)
    con.execute("CREATE TABLE wastore_sessions (x)")
    con.close()
    with pytest.raises(SchemaError, match="not a wastore database"):
        await open_file(db)


# -- busy handling -------------------------------------------------------------


async def test_locked_database_becomes_unavailable_after_budget(tmp_path: Path) -> None:
    db = tmp_path / "a.db"
    async with await open_file(db, busy_timeout=0.4) as c:
        b = c.backend(await c.create_device())
        other = raw(db)
        other.execute("BEGIN IMMEDIATE")
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        tick = asyncio.create_task(ticker())
        started = time.monotonic()
        with pytest.raises(BackendUnavailableError, match="locked"):
            await b.put_session("1@s.whatsapp.net", b"x")
        elapsed = time.monotonic() - started
        tick.cancel()
        other.execute("ROLLBACK")
        other.close()
        assert 0.4 <= elapsed < 3.0
        assert ticks >= 10, "the event loop was blocked while waiting for the lock"
        assert await b.get_session("1@s.whatsapp.net") is None
        await b.put_session("1@s.whatsapp.net", b"x")  # and works once the lock is gone
        assert await b.get_session("1@s.whatsapp.net") == b"x"


async def test_lock_released_within_budget_is_waited_for(tmp_path: Path) -> None:
    db = tmp_path / "a.db"
    async with await open_file(db, busy_timeout=5.0) as c:
        b = c.backend(await c.create_device())
        other = raw(db)
        other.execute("BEGIN IMMEDIATE")
        asyncio.get_running_loop().call_later(0.2, other.execute, "COMMIT")
        await b.put_sessions_batch([("1@s.whatsapp.net", b"a"), ("2@s.whatsapp.net", b"b")])
        async with b.transaction():
            await b.put_session("3@s.whatsapp.net", b"c")
        assert (
            len(await b.get_sessions(["1@s.whatsapp.net", "2@s.whatsapp.net", "3@s.whatsapp.net"]))
            == 3
        )
        other.close()


# -- parameter limits ------------------------------------------------------------


async def test_lists_beyond_the_parameter_limit(tmp_path: Path) -> None:
    async with await open_file(tmp_path / "a.db") as c:
        b = c.backend(await c.create_device())
        n = 40_000  # SQLite allows 32,766 parameters per statement
        addresses = [f"{i}@s.whatsapp.net" for i in range(n)]
        await b.put_sessions_batch([(a, a.encode()) for a in addresses])
        found = await b.get_sessions(addresses + ["missing@s.whatsapp.net"])
        assert len(found) == n and found[addresses[-1]] == addresses[-1].encode()
        macs = [MutationMAC(i.to_bytes(32, "big"), (i + 1).to_bytes(32, "big")) for i in range(n)]
        await b.put_mutation_macs("regular", 1, macs)
        got = await b.get_mutation_macs("regular", [m.index_mac for m in macs])
        assert len(got) == n and got[macs[7].index_mac] == macs[7].value_mac
        await b.store_prekeys_batch([(i, b"p") for i in range(1, n + 1)], False)
        assert len(await b.load_prekeys_batch(list(range(1, n + 1)))) == n
        await b.mark_prekeys_uploaded(list(range(1, n + 1)))
        assert await b.count_prekeys() == (n, n)


# -- unreadable records are errors, never "missing" -------------------------------


async def test_corrupt_rows_raise(tmp_path: Path) -> None:
    db = tmp_path / "a.db"
    async with await open_file(db) as c:
        device_id = await c.create_device()
        b = c.backend(device_id)
        await b.put_session("1@s.whatsapp.net", b"ok")
        await b.put_identity("1@s.whatsapp.net", b"i" * 32)
        await b.update_device_list(wastore.DeviceListRecord("555", (wastore.DeviceInfo(1),), 1))
        await b.set_version("regular", wastore.HashState(1, b"h" * 128))
        con = raw(db)
        con.execute("UPDATE wastore_sessions SET record = 'text, not bytes'")
        con.execute("UPDATE wastore_identities SET key = zeroblob(31)")
        con.execute("UPDATE wastore_device_lists SET devices = '[[1,'")
        con.execute("UPDATE wastore_app_state_versions SET hash = zeroblob(127)")
        con.close()
        with pytest.raises(CorruptRecordError, match="sessions"):
            await b.get_session("1@s.whatsapp.net")
        with pytest.raises(CorruptRecordError, match="identity"):
            await b.load_identity("1@s.whatsapp.net")
        with pytest.raises(CorruptRecordError, match="device list"):
            await b.get_devices("555")
        with pytest.raises(CorruptRecordError, match="regular"):
            await b.get_version("regular")
        con = raw(db)
        con.execute("UPDATE wastore_device SET identity_key_private = zeroblob(5)")
        con.close()
        with pytest.raises(CorruptRecordError, match="device row") as info:
            await b.load()
        assert info.value.__cause__ is None  # no driver/validation chain with key material
        with pytest.raises(CorruptRecordError):
            await PersistenceManager.open(b)


# -- accounts --------------------------------------------------------------------


async def test_delete_device_cascades_to_every_table(tmp_path: Path) -> None:
    db = tmp_path / "a.db"
    gone = await _fill_v1(db)
    async with await open_file(db) as c:
        kept = await c.create_device()
        kb = c.backend(kept)
        await kb.put_session("1@s.whatsapp.net", b"mine")
        gb = c.backend(gone)
        await gb.put_msg_secrets([wastore.MsgSecret("c", "s", "m", b"s" * 32)])
        await gb.store_pending_inbound("c", "s", "m", b"p")
        await gb.put_group_metadata("g@g.us", b"m")
        pm = await PersistenceManager.open(gb)  # a lease row too
        await pm.close()
        pm = await PersistenceManager.open(gb)
        con = raw(db)
        counts = {
            t: con.execute(
                f"SELECT count(*) FROM wastore_{t} WHERE device_id = ?", (gone,)
            ).fetchone()[0]
            for t in schema.ACCOUNT_TABLES
        }
        assert all(n > 0 for n in counts.values()), counts
        await c.delete_device(gone)
        for t in schema.ACCOUNT_TABLES:
            n = con.execute(
                f"SELECT count(*) FROM wastore_{t} WHERE device_id = ?", (gone,)
            ).fetchone()[0]
            assert n == 0, t
        con.close()
        assert await c.devices() == [kept]
        assert await kb.get_session("1@s.whatsapp.net") == b"mine"
        with pytest.raises(wastore.DeviceNotFoundError):
            await gb.put_session("1@s.whatsapp.net", b"x")
        await pm.process_command(wastore.SetPushName("after the delete"))
        with pytest.raises(wastore.DeviceNotFoundError):
            await pm.close()  # the final save finds the account gone, never recreates it
        assert await c.devices() == [kept]


async def test_find_device_by_pn_and_lid(tmp_path: Path) -> None:
    async with await open_file(tmp_path / "a.db") as c:
        a = await c.create_device()
        pm = await PersistenceManager.open(c.backend(a))
        await pm.process_command(wastore.SetId(JID.parse("15551234567:12@s.whatsapp.net")))
        await pm.process_command(wastore.SetLid(JID.parse("98765432101234:12@lid")))
        await pm.close()
        assert await c.find_device(JID.parse("15551234567@s.whatsapp.net")) == a
        assert await c.find_device("98765432101234@lid") == a
        assert await c.find_device("1@s.whatsapp.net") is None


# -- snapshots -------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["../../etc/x", "a/b", "..", "", "ok-name_1.2", "x" * 300, "é/\x00"]
)
async def test_snapshot_names_never_escape(tmp_path: Path, name: str) -> None:
    folder = tmp_path / "db"
    async with await open_file(folder / "a.db") as c:
        b = c.backend(await c.create_device())
        where = Path(await b.snapshot_db(name, None))
        assert where.parent == folder
        assert where.name.startswith("a.db.snapshot-")
        assert len(where.name) <= len("a.db.snapshot-") + 30 + 100
        assert where.exists()
        assert sorted(p.name for p in folder.iterdir() if "snapshot" in p.name) == [where.name]


async def test_snapshot_is_consistent_while_writers_run(tmp_path: Path) -> None:
    db = tmp_path / "a.db"
    async with await open_file(db) as c:
        b = c.backend(await c.create_device())
        stop = False

        async def writer() -> int:
            n = 0
            while not stop:
                await b.put_sessions_batch(
                    [(f"{n}-{k}@s.whatsapp.net", str(n).encode()) for k in range(100)]
                )
                n += 1
                await asyncio.sleep(0)
            return n

        task = asyncio.create_task(writer())
        snaps = []
        for i in range(5):
            await asyncio.sleep(0.02)
            snaps.append(await b.snapshot_db(f"s{i}", str(i).encode()))
        stop = True
        batches = await task
        assert batches > 5
    seen = set()
    for s in snaps:
        con = raw(Path(s))
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        per_batch = con.execute(
            "SELECT record, count(*) FROM wastore_sessions GROUP BY record"
        ).fetchall()
        assert all(n == 100 for _, n in per_batch), "a snapshot caught half a batch"
        seen.add(len(per_batch))
        con.close()
        assert Path(f"{s}.extra").read_bytes() == str(snaps.index(s)).encode()
    assert len(seen) > 1, "snapshots did not run while the writer was active"


# -- leases ------------------------------------------------------------------------


async def test_second_opener_in_process_gets_account_in_use(tmp_path: Path) -> None:
    async with await open_file(tmp_path / "a.db") as c:
        b = c.backend(await c.create_device())
        pm = await PersistenceManager.open(b, holder="bot-1")
        with pytest.raises(AccountInUseError, match="bot-1") as info:
            await PersistenceManager.open(b)
        assert info.value.holder == "bot-1"
        await pm.close()
        pm2 = await PersistenceManager.open(b)  # a clean close released it at once
        await pm2.close()


async def test_expired_lease_of_another_host_is_taken_over(tmp_path: Path) -> None:
    db = tmp_path / "a.db"
    async with await open_file(db) as c:
        device_id = await c.create_device()
        b = c.backend(device_id)
        con = raw(db)
        con.execute(
            "INSERT INTO wastore_lease_holders VALUES ('tok', 'elsewhere', 1, "
            "'elsewhere/boot/pid:[1]', 0, ?)",
            (time.time(),),
        )
        con.execute(
            "INSERT INTO wastore_leases VALUES (?, 'tok', 'pid 1 on elsewhere', 'elsewhere', 1, "
            "0, 5, 60)",
            (device_id,),
        )
        with pytest.raises(AccountInUseError, match="elsewhere"):
            await PersistenceManager.open(b)
        # pid 1 of another host is not judged by its pid: only its expiry frees it.
        con.execute("UPDATE wastore_lease_holders SET renewed_at = ?", (time.time() - 61,))
        pm = await PersistenceManager.open(b)
        holder, epoch = con.execute("SELECT holder, epoch FROM wastore_leases").fetchone()
        assert holder.startswith(f"pid {os.getpid()} ")
        assert epoch > 5
        con.close()
        await pm.close()


async def test_lease_of_an_older_wastore_is_respected_until_it_expires(tmp_path: Path) -> None:
    """A lease row written by schema-4 code (no holder row) keeps its own expiry."""
    db = tmp_path / "a.db"
    async with await open_file(db) as c:
        device_id = await c.create_device()
        con = raw(db)
        con.execute(
            "INSERT INTO wastore_leases (device_id, token, holder, host, pid, expires_at) "
            "VALUES (?, 'old', 'old wastore', 'elsewhere', 1, ?)",
            (device_id, time.time() + 60),
        )
        with pytest.raises(AccountInUseError, match="old wastore"):
            await PersistenceManager.open(c.backend(device_id))
        con.execute("UPDATE wastore_leases SET expires_at = ?", (time.time() - 1,))
        con.close()
        pm = await PersistenceManager.open(c.backend(device_id))
        await pm.close()


async def test_lease_is_renewed_while_open(tmp_path: Path) -> None:
    """The container renews all its leases with one update of its holder row."""
    db = tmp_path / "a.db"
    async with await open_file(db) as c:
        ids = [await c.create_device() for _ in range(3)]
        pms = [await PersistenceManager.open(c.backend(i), lease_ttl=0.3) for i in ids]
        con = raw(db)
        assert con.execute("SELECT count(*) FROM wastore_lease_holders").fetchone()[0] == 1
        first = con.execute("SELECT renewed_at FROM wastore_lease_holders").fetchone()[0]
        await asyncio.sleep(0.5)
        later = con.execute("SELECT renewed_at FROM wastore_lease_holders").fetchone()[0]
        assert later > first
        # A lease is renewed, not taken again: its epoch stays.
        epochs = con.execute("SELECT epoch FROM wastore_leases ORDER BY device_id").fetchall()
        await asyncio.sleep(0.4)
        again = con.execute("SELECT epoch FROM wastore_leases ORDER BY device_id").fetchall()
        assert again == epochs
        con.close()
        assert not any(pm.lease_lost for pm in pms)
        for pm in pms:
            await pm.close()


async def test_device_saves_are_fenced_by_the_lease(tmp_path: Path) -> None:
    """A manager whose lease was taken over (its process stalled past the expiry) cannot
    overwrite the device row of the new holder."""
    db = tmp_path / "a.db"
    async with await open_file(db) as c, await open_file(db) as other:
        device_id = await c.create_device()
        stale = await PersistenceManager.open(c.backend(device_id), lease_ttl=60)
        con = raw(db)
        con.execute("UPDATE wastore_lease_holders SET renewed_at = ?", (time.time() - 61,))
        con.close()
        fresh = await PersistenceManager.open(other.backend(device_id), holder="new holder")
        await fresh.process_command(wastore.SetPushName("new"))
        await fresh.flush()
        await stale.process_command(wastore.SetPushName("stale"))
        with pytest.raises(AccountInUseError, match="lost the account lease"):
            await stale.flush()
        assert (await c.backend(device_id).load()).push_name == "new"  # type: ignore[union-attr]
        assert stale.lease_lost
        await fresh.close()
        with pytest.raises(AccountInUseError):
            await stale.close()
