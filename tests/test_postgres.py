"""PostgresStore on a real server: opening, the pool, batches, transactions, leases in one
process, snapshots, export/import and error translation.

Processes, server restarts and migrations have their own modules
(test_postgres_processes.py, test_postgres_faults.py, test_postgres_migrations.py).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import stat
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

import wastore
from wastore import (
    AccountInUseError,
    BackendUnavailableError,
    ConfigError,
    CorruptRecordError,
    DeviceNotFoundError,
    PersistenceManager,
    StoreError,
    portable,
)
from wastore.backends.postgres import (
    PostgresStore,
    holder_class,
    parse_postgres_url,
)
from wastore.backends.sql import schema

pytestmark = pytest.mark.postgres

PASSWORD = "pg-S3cret-pw"


@pytest.fixture
async def store(pg_url: str) -> AsyncIterator[PostgresStore]:
    c = await wastore.open_store(pg_url)
    assert isinstance(c, PostgresStore)
    yield c
    await c.close()


async def admin(url: str) -> Any:
    return await asyncpg.connect(url)


def addr(i: int) -> str:
    return f"4917{i:08d}:{i % 7}@s.whatsapp.net"


# -- opening and options -------------------------------------------------------------


async def test_both_schemes_open_a_postgres_store(pg_url: str) -> None:
    for url in (pg_url, "postgres://" + pg_url.split("://", 1)[1]):
        c = await wastore.open_store(url)
        try:
            assert isinstance(c, PostgresStore)
            assert isinstance(c, wastore.Container)
            assert isinstance(c, wastore.contract.PortableContainer)
            b = c.backend(await c.create_device())
            assert isinstance(b, wastore.Backend)
            assert isinstance(b, wastore.LeaseStore)
        finally:
            await c.close()


async def test_options_from_the_url_and_keywords(pg_url: str, tmp_path: Path) -> None:
    url = f"{pg_url}?pool_size=3&prefix=wa_&sslmode=disable&retry_timeout=2"
    dsn, options = parse_postgres_url(url)
    assert "pool_size" not in dsn and "sslmode=disable" in dsn
    assert options == {"pool_size": 3, "prefix": "wa_", "retry_timeout": 2.0}
    c = await wastore.open_store(url, pool_size=4, snapshot_dir=str(tmp_path))
    try:
        assert c.pool_size == 4  # keywords win
        conn = await admin(pg_url)
        try:
            assert await conn.fetchval("SELECT to_regclass('wa_sessions')") is not None
        finally:
            await conn.close()
    finally:
        await c.close()


@pytest.mark.parametrize(
    ("query", "options"),
    [
        ("?pool_sise=3", {}),
        ("?search_path=x", {}),
        ("?pool_size=lots", {}),
        ("?pool_size=1", {}),
        ("?retry_timeout=-1", {}),
        ("?migrate=perhaps", {}),
        ("", {"busy_timeout": 3}),
        ("?prefix=Bad-Prefix", {}),
    ],
)
async def test_bad_options_are_config_errors(
    pg_url: str, query: str, options: dict[str, Any]
) -> None:
    with pytest.raises(ConfigError):
        await wastore.open_store(pg_url + query, **options)


async def test_unreachable_server_fails_within_the_budget_without_the_password(
    caplog: pytest.LogCaptureFixture,
) -> None:
    import socket

    with socket.socket() as s:  # a port where nothing listens
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"postgresql://wauser:{PASSWORD}@127.0.0.1:{port}/db?retry_timeout=0.5"
    caplog.set_level(logging.DEBUG)
    started = time.monotonic()
    with pytest.raises(BackendUnavailableError) as info:
        await wastore.open_store(url)
    assert time.monotonic() - started < 3.0
    err: BaseException | None = info.value
    while err is not None:  # the whole chain, driver errors included
        assert PASSWORD not in str(err) and PASSWORD not in repr(err)
        err = err.__cause__
    assert PASSWORD not in caplog.text
    assert "wauser:***@" in str(info.value)
    assert not isinstance(info.value.__cause__, StoreError)  # the driver error is chained


async def test_missing_database_is_a_config_error(pg_url: str) -> None:
    base, _, _ = pg_url.rpartition("/")
    url = base.replace("postgres@", f"postgres:{PASSWORD}@") + "/no_such_database_here"
    with pytest.raises(ConfigError, match="does not exist") as info:
        await wastore.open_store(url)
    assert PASSWORD not in str(info.value)
    assert isinstance(info.value.__cause__, asyncpg.PostgresError)


async def test_an_existing_asyncpg_pool_is_used_and_left_open(pg_url: str) -> None:
    pool = await asyncpg.create_pool(pg_url, min_size=1, max_size=3)
    try:
        with pytest.raises(ConfigError, match="pool_size"):
            await wastore.open_store(pool, pool_size=5)
        c = await wastore.open_store(pool, prefix="pooled_")
        device_id = await c.create_device()
        b = c.backend(device_id)
        await b.put_session(addr(1), b"rec")
        async with b.transaction():
            await b.put_session(addr(2), b"rec2")
        pm = await PersistenceManager.open(b)
        other = await wastore.open_store(pg_url, prefix="pooled_")
        try:
            with pytest.raises(AccountInUseError):
                await PersistenceManager.open(other.backend(device_id))
        finally:
            await other.close()
        await pm.close()
        await c.close()
        assert await pool.fetchval("SELECT count(*) FROM pooled_sessions") == 2
        assert not pool.is_closing()
    finally:
        await pool.close()


# -- the pool -------------------------------------------------------------------------


async def test_a_thousand_accounts_use_at_most_the_pool(pg_url: str) -> None:
    """1,000 accounts opened with PersistenceManager.open and used at once: the
    connections to the database (counted by the server) never exceed the pool size,
    and the 1,000 leases take one advisory lock (the container's), not one each."""
    size = 10
    dbname = pg_url.rsplit("/", 1)[1]
    monitor = await admin(pg_url)
    peak = 0
    stop = asyncio.Event()

    async def watch() -> None:
        nonlocal peak
        while not stop.is_set():
            # (client sessions only: an autovacuum worker of this database counts too)
            n = await monitor.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 "
                "AND pid <> pg_backend_pid() AND backend_type = 'client backend'",
                dbname,
            )
            peak = max(peak, n)
            await asyncio.sleep(0.005)

    c = await wastore.open_store(pg_url, pool_size=size)
    assert isinstance(c, PostgresStore)
    watcher = asyncio.create_task(watch())
    managers: list[PersistenceManager] = []
    try:
        ids = await asyncio.gather(*(c.create_device() for _ in range(1000)))
        assert len(set(ids)) == 1000

        async def use(device_id: int) -> None:
            pm = await PersistenceManager.open(c.backend(device_id))
            managers.append(pm)
            assert pm.get_device_snapshot().registration_id > 0
            b = pm.backend
            assert await b.get_session(addr(device_id)) is None
            await b.put_session(addr(device_id), b"s%d" % device_id)
            await pm.process_command(wastore.SetPushName(f"account {device_id}"))
            await pm.flush()

        await asyncio.gather(*(use(i) for i in ids))
        stop.set()
        await watcher
        locks = await monitor.fetchrow(
            "SELECT count(*), count(DISTINCT pid) FROM pg_locks WHERE locktype = 'advisory' "
            "AND classid = $1::bigint::oid AND granted",
            holder_class("wastore_"),
        )
        assert tuple(locks) == (1, 1)
        held = await monitor.fetchrow(
            "SELECT count(*), count(DISTINCT token) FROM wastore_leases WHERE token <> ''"
        )
        assert tuple(held) == (1000, 1)
        assert 2 <= peak <= size, peak
        assert c.open_connections <= size
        sample = ids[::97]
        for i in sample:
            assert await c.backend(i).get_session(addr(i)) == b"s%d" % i
    finally:
        stop.set()
        await asyncio.gather(watcher, return_exceptions=True)
        await asyncio.gather(*(pm.close() for pm in managers), return_exceptions=True)
        await c.close()
    remaining = await monitor.fetchval(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = $1::bigint::oid",
        holder_class("wastore_"),
    )
    assert remaining == 0
    assert await monitor.fetchval("SELECT count(*) FROM wastore_leases WHERE token <> ''") == 0
    await monitor.close()


async def test_killed_connections_are_replaced_transparently(
    store: PostgresStore, pg_url: str
) -> None:
    b = store.backend(await store.create_device())
    await asyncio.gather(*(b.put_session(addr(i), b"x") for i in range(20)))
    assert store.open_connections >= 2
    conn = await admin(pg_url)
    try:
        killed = await conn.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        assert killed >= 2
    finally:
        await conn.close()
    # Reads and idempotent writes run again on new connections.
    results = await asyncio.gather(*(b.get_session(addr(i)) for i in range(20)))
    assert results == [b"x"] * 20
    await b.put_session(addr(99), b"after")
    assert await b.get_session(addr(99)) == b"after"


# -- batches ----------------------------------------------------------------------------


class StatementCounter:
    """Counts the statements the store sends (each asyncpg call is one round trip)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[str] = []
        for name in ("fetch", "fetchrow", "fetchval", "execute", "executemany"):
            original = getattr(asyncpg.Connection, name)

            def wrapper(
                self_: Any, *args: Any, _o: Any = original, _n: str = name, **kw: Any
            ) -> Any:
                self.calls.append(f"{_n}: {str(args[0])[:60]}")
                return _o(self_, *args, **kw)

            monkeypatch.setattr(asyncpg.Connection, name, wrapper)


async def test_multi_key_reads_and_batches_are_one_statement(
    store: PostgresStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    b = store.backend(await store.create_device())
    n = 5000  # far beyond any parameter limit
    items = [(addr(i), b"r%d" % i) for i in range(n)]
    macs = [wastore.MutationMAC(i.to_bytes(32, "big"), b"v" * 32) for i in range(n)]
    counter = StatementCounter(monkeypatch)
    await b.put_sessions_batch(items)
    await b.store_prekeys_batch([(i, b"p") for i in range(n)], False)
    await b.mark_prekeys_uploaded(list(range(n)))
    await b.put_mutation_macs("regular", 3, macs)
    got = await b.get_sessions([a for a, _ in items] + ["1@unknown"])
    keys = await b.load_prekeys_batch(list(range(n + 10)))
    found = await b.get_mutation_macs("regular", [m.index_mac for m in macs])
    await b.delete_mutation_macs("regular", [m.index_mac for m in macs[: n // 2]])
    assert len(counter.calls) == 8, counter.calls
    assert got == dict(items)
    assert len(keys) == n and await b.count_prekeys() == (n, n)
    assert len(found) == n
    assert len(await b.get_mutation_macs("regular", [m.index_mac for m in macs])) == n - n // 2


async def test_batches_are_atomic(store: PostgresStore, pg_url: str) -> None:
    gone = store.backend(await store.create_device())
    await store.delete_device(gone.device_id)
    for call in (
        gone.put_sessions_batch([(addr(1), b"a"), (addr(2), b"b")]),
        gone.put_lid_mappings([wastore.LidPnMapping("1", "2", 1, 1, "x")]),
        gone.put_msg_secrets([wastore.MsgSecret("c", "s", "m", b"s" * 32)]),
    ):
        with pytest.raises(DeviceNotFoundError) as info:
            await call
        assert info.value.device_id == gone.device_id
        assert isinstance(info.value.__cause__, asyncpg.ForeignKeyViolationError)
    # A batch whose last item the server refuses (a trigger) leaves nothing behind.
    conn = await admin(pg_url)
    try:
        await conn.execute(
            """
            CREATE FUNCTION refuse_boom() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF NEW.lid = 'boom' THEN RAISE EXCEPTION 'refused'; END IF;
                RETURN NEW;
            END $$;
            CREATE TRIGGER refuse BEFORE INSERT ON wastore_lid_pn_mappings
                FOR EACH ROW EXECUTE FUNCTION refuse_boom();
            CREATE FUNCTION refuse_boom_session() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF NEW.address LIKE 'boom%' THEN RAISE EXCEPTION 'refused'; END IF;
                RETURN NEW;
            END $$;
            CREATE TRIGGER refuse BEFORE INSERT ON wastore_sessions
                FOR EACH ROW EXECUTE FUNCTION refuse_boom_session();
            """
        )
    finally:
        await conn.close()
    b = store.backend(await store.create_device())
    with pytest.raises(StoreError, match="refused") as info:
        await b.put_lid_mappings(
            [wastore.LidPnMapping("1", "2", 1, 1, "x"), wastore.LidPnMapping("boom", "2", 1, 1, "")]
        )
    assert isinstance(info.value.__cause__, asyncpg.PostgresError)
    with pytest.raises(StoreError, match="refused"):
        await b.put_sessions_batch([(addr(1), b"a"), ("boom@s.whatsapp.net", b"b")])
    assert await b.get_all_lid_mappings() == []
    assert await b.get_sessions([addr(1)]) == {}


async def test_concurrent_batches_over_the_same_keys_do_not_deadlock(
    store: PostgresStore,
) -> None:
    b = store.backend(await store.create_device())
    keys = [addr(i) for i in range(200)]

    async def writer(n: int) -> None:
        order = keys[::-1] if n % 2 else keys
        for _ in range(5):
            await b.put_sessions_batch([(a, b"w%d" % n) for a in order])

    await asyncio.wait_for(asyncio.gather(*(writer(n) for n in range(6))), 60)
    assert len(set((await b.get_sessions(keys)).values())) >= 1


# -- transactions -------------------------------------------------------------------------


async def test_a_failed_call_aborts_the_transaction(store: PostgresStore) -> None:
    """PostgreSQL aborts a transaction at its first failed statement: the block then
    refuses further calls and rolls back instead of committing (documented)."""
    b = store.backend(await store.create_device())
    gone = store.backend(await store.create_device())
    await store.delete_device(gone.device_id)

    async def fail_and_go_on() -> None:
        await b.put_session(addr(1), b"inside")
        with pytest.raises(DeviceNotFoundError):
            await gone.put_session(addr(1), b"x")

    async def block() -> None:
        async with b.transaction():
            await fail_and_go_on()
            with pytest.raises(StoreError, match="aborted"):
                await b.get_session(addr(1))

    with pytest.raises(StoreError, match="rolled back"):
        await block()
    assert await b.get_session(addr(1)) is None

    # In a nested block the failure rolls back to its savepoint; the outer block goes on.
    async def nested() -> None:
        async with b.transaction():
            await fail_and_go_on()

    async with b.transaction():
        await b.put_session(addr(1), b"outer")
        with pytest.raises(StoreError, match="rolled back"):
            await nested()
        await b.put_session(addr(3), b"after")
    assert await b.get_sessions([addr(1), addr(2), addr(3)]) == {
        addr(1): b"outer",
        addr(3): b"after",
    }

    # A multi-statement call that fails inside a block is undone alone (a savepoint).
    device = await b.load()
    assert device is not None
    await b.save(dataclasses.replace(device, pn=wastore.JID.parse("15550001:3@s.whatsapp.net")))
    async with b.transaction():
        with pytest.raises(wastore.ValidationError):
            await store.import_account(await store.export_account(b.device_id))
        await b.put_session(addr(4), b"still fine")
    assert await b.get_session(addr(4)) == b"still fine"


async def test_cancelled_transaction_rolls_back_and_frees_its_connection(
    store: PostgresStore, pg_url: str
) -> None:
    b = store.backend(await store.create_device())
    blocker = await admin(pg_url)  # holds the row our transaction will wait for
    await blocker.execute("BEGIN")
    await blocker.execute("INSERT INTO wastore_sessions VALUES ($1, $2, 'x')", b.device_id, addr(2))
    entered = asyncio.Event()

    async def body() -> None:
        async with b.transaction():
            await b.put_session(addr(1), b"never")
            entered.set()
            await b.put_session(addr(2), b"waits for the blocker")

    task = asyncio.create_task(body())
    await entered.wait()
    await asyncio.sleep(0.1)
    assert not task.done()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await blocker.execute("ROLLBACK")
    await blocker.close()
    assert await b.get_session(addr(1)) is None
    await asyncio.gather(*(b.put_session(addr(i), b"y") for i in range(30)))
    assert await b.get_session(addr(2)) == b"y"
    assert store.open_connections <= store.pool_size


async def test_a_statement_longer_than_command_timeout_fails(pg_url: str) -> None:
    c = await wastore.open_store(pg_url, command_timeout=0.5)
    blocker = await admin(pg_url)  # holds a row lock the statements will wait for
    try:
        b = c.backend(await c.create_device())
        await blocker.execute("BEGIN")
        await blocker.execute(
            "INSERT INTO wastore_sessions VALUES ($1, $2, 'x')", b.device_id, addr(1)
        )
        started = time.monotonic()
        with pytest.raises(BackendUnavailableError, match="command_timeout"):
            await b.put_session(addr(1), b"waits")
        assert 0.5 <= time.monotonic() - started < 2.0

        async def in_transaction() -> None:
            async with b.transaction():
                await b.put_session(addr(2), b"rolled back")
                with pytest.raises(BackendUnavailableError, match="command_timeout"):
                    await b.put_session(addr(1), b"waits")

        with pytest.raises(BackendUnavailableError, match="rolled back"):
            await in_transaction()
        await blocker.execute("ROLLBACK")
        await b.put_session(addr(1), b"now")
        assert await b.get_sessions([addr(1), addr(2)]) == {addr(1): b"now"}
    finally:
        await blocker.close()
        await c.close()


# -- leases in one process -----------------------------------------------------------


async def test_lease_survives_a_killed_lease_connection(pg_url: str) -> None:
    c = await wastore.open_store(pg_url)
    other = await wastore.open_store(pg_url)
    assert isinstance(c, PostgresStore)
    try:
        device_id = await c.create_device()
        b = c.backend(device_id)
        token = await b.acquire_lease("me", 30.0)
        conn = await admin(pg_url)
        q = (
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted "
            "AND classid = $1::bigint::oid AND objid = $2::bigint::oid"
        )
        key = c.engine.leases.lock_key
        first = await conn.fetchval(q, holder_class("wastore_"), key)
        assert first is not None
        await conn.fetchval("SELECT pg_terminate_backend($1)", first)
        await asyncio.sleep(0.1)
        # Nobody took it meanwhile: the next renewal takes the container's lock again.
        await c.engine.leases.renew_now()
        assert await b.renew_lease(token, 30.0) is True
        second = await conn.fetchval(q, holder_class("wastore_"), c.engine.leases.lock_key)
        assert second not in (None, first)
        with pytest.raises(AccountInUseError, match="me"):
            await other.backend(device_id).acquire_lease("other", 30.0)

        # Killed again, and another container takes the lease before this one notices:
        # the holder's lock is gone, so it needs no expiry.
        await conn.fetchval("SELECT pg_terminate_backend($1)", second)
        deadline = time.monotonic() + 5
        while True:
            try:
                theirs = await other.backend(device_id).acquire_lease("other", 30.0)
                break
            except AccountInUseError:
                assert time.monotonic() < deadline
                await asyncio.sleep(0.02)
        device = await b.load()
        assert device is not None
        with pytest.raises(AccountInUseError, match="lost the account lease"):
            await b.save(device)  # fenced: the new holder's row is not overwritten
        assert await b.renew_lease(token, 30.0) is False
        await other.backend(device_id).release_lease(theirs)
        await conn.close()
    finally:
        await other.close()
        await c.close()


async def test_second_opener_in_process_names_the_holder(store: PostgresStore) -> None:
    b = store.backend(await store.create_device())
    pm = await PersistenceManager.open(b, holder="bot-1")
    with pytest.raises(AccountInUseError, match="bot-1") as info:
        await PersistenceManager.open(store.backend(b.device_id))
    assert info.value.holder == "bot-1"
    await pm.close()
    pm2 = await PersistenceManager.open(b)
    await pm2.close()


async def test_lease_of_a_missing_account(store: PostgresStore) -> None:
    with pytest.raises(DeviceNotFoundError):
        await store.backend(987654).acquire_lease("me", 30.0)


# -- snapshots, export, import --------------------------------------------------------


async def test_snapshot_is_a_private_portable_export(pg_url: str, tmp_path: Path) -> None:
    folder = tmp_path / "snaps"
    c = await wastore.open_store(pg_url, snapshot_dir=str(folder))
    try:
        b = c.backend(await c.create_device())
        await b.put_session(addr(1), b"session")
        path = Path(await b.snapshot_db("../../nightly run/1", b"\x00extra"))
        assert path.parent == folder
        assert path.name.endswith("-_.._nightly_run_1.json")  # sanitised, never a path
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        extra = path.with_name(path.name + ".extra")
        assert extra.read_bytes() == b"\x00extra"
        assert stat.S_IMODE(extra.stat().st_mode) == 0o600
        dump = portable.decode(path.read_bytes())
        assert portable.encode(dump) == portable.encode(await c.export_account(b.device_id))
        assert dump.tables["sessions"] == [{"address": addr(1), "record": b"session"}]
        pm = await PersistenceManager.open(b, debug_snapshots=True)
        assert (await pm.create_snapshot("from the manager") or "").startswith(str(folder))
        await pm.close()
    finally:
        await c.close()


async def test_snapshot_folder_defaults_to_the_current_directory(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    c = await wastore.open_store(pg_url)
    try:
        b = c.backend(await c.create_device())
        path = Path(await b.snapshot_db("x"))
        assert path.parent == tmp_path / "wastore-snapshots"
    finally:
        await c.close()


async def test_export_import_round_trip_through_sqlite(pg_url: str, tmp_path: Path) -> None:
    """SQLite -> PostgreSQL (the scale-out path) and back, byte for byte."""
    from wastore.testing._support import populate

    pg = await wastore.open_store(pg_url)
    lite = await wastore.open_store(f"sqlite:///{tmp_path}/a.db")
    copy = await wastore.open_store(pg_url, prefix="copy_")
    try:
        assert isinstance(pg, PostgresStore)
        b = pg.backend(await pg.create_device())
        await populate(b)
        device = await b.load()
        assert device is not None
        await b.save(dataclasses.replace(device, lid=wastore.JID.parse("81234567:2@lid")))
        first = portable.encode(await pg.export_account(b.device_id))
        lite_id = await lite.import_account(portable.decode(first))
        via_lite = await lite.export_account(lite_id)
        copied = await copy.import_account(via_lite)
        assert portable.encode(await copy.export_account(copied)) == first
        with pytest.raises(wastore.ValidationError, match="already"):
            await copy.import_account(via_lite)
        again = await copy.import_account(via_lite, replace=True)
        assert await copy.devices() == [again]
    finally:
        await copy.close()
        await lite.close()
        await pg.close()


async def test_export_of_a_missing_account(store: PostgresStore) -> None:
    with pytest.raises(DeviceNotFoundError):
        await store.export_account(424242)


# -- stored values that cannot be decoded ---------------------------------------------


async def test_corrupt_rows_raise_never_missing(store: PostgresStore, pg_url: str) -> None:
    b = store.backend(await store.create_device())
    await b.put_identity(addr(1), b"i" * 32)
    await b.update_device_list(wastore.DeviceListRecord("555", (wastore.DeviceInfo(1),), 1))
    await b.set_version("regular", wastore.HashState(1, b"h" * 128))
    conn = await admin(pg_url)
    try:
        await conn.execute("UPDATE wastore_identities SET key = '\\x0102'::bytea")
        await conn.execute("UPDATE wastore_device_lists SET devices = '[[1,'")
        await conn.execute("UPDATE wastore_app_state_versions SET hash = '\\x00'::bytea")
        await conn.execute("UPDATE wastore_device SET identity_key_private = '\\x01'::bytea")
    finally:
        await conn.close()
    with pytest.raises(CorruptRecordError, match="identity"):
        await b.load_identity(addr(1))
    with pytest.raises(CorruptRecordError, match="device list"):
        await b.get_devices("555")
    with pytest.raises(CorruptRecordError, match="regular"):
        await b.get_version("regular")
    with pytest.raises(CorruptRecordError, match="device row") as info:
        await b.load()
    assert info.value.__cause__ is None


async def test_dropped_tables_are_a_schema_error(store: PostgresStore, pg_url: str) -> None:
    b = store.backend(await store.create_device())
    conn = await admin(pg_url)
    try:
        await conn.execute("DROP TABLE wastore_group_metadata")
    finally:
        await conn.close()
    with pytest.raises(wastore.SchemaError, match="missing") as info:
        await b.get_group_metadata("g@g.us")
    assert isinstance(info.value.__cause__, asyncpg.PostgresError)


async def test_device_ids_given_explicitly_do_not_collide(store: PostgresStore) -> None:
    explicit = store.backend(5)
    assert await explicit.create() == 5
    assert await explicit.create() == 5  # idempotent
    made = [await store.create_device() for _ in range(7)]
    assert 5 not in made and len(set(made)) == 7
    assert await store.devices() == sorted([5, *made])


async def test_schema_status(store: PostgresStore) -> None:
    assert await store.schema_status() == (schema.LATEST, schema.LATEST_COMPAT, [])
