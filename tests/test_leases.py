"""Leases, fencing and transaction locks in one process, on SQLite and PostgreSQL (and
the memory store where it has the feature).

A takeover by another process is played by a second container on the same
database whose holder finds the first holder's lease expired (its holder row
is aged by hand, as if the first process had stalled past its ttl).
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import pytest

import wastore
from wastore import (
    AccountInUseError,
    BackendUnavailableError,
    PersistenceManager,
    SetPushName,
)
from wastore.backends.memory import MemoryStore
from wastore.backends.sql import schema
from wastore.backends.sql.store import SqlStore

A, B, C, D = (f"4917{i:08d}@s.whatsapp.net" for i in range(4))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'leases.db'}"
    pg: str = request.getfixturevalue("pg_url")
    return pg


async def open_sql(url: str, **options: Any) -> SqlStore:
    store = await wastore.open_store(url, **options)
    assert isinstance(store, SqlStore)
    return store


@pytest.fixture
async def store(url: str) -> AsyncIterator[SqlStore]:
    s = await open_sql(url)
    yield s
    await s.close()


async def execute(url: str, sql: str, *args: Any) -> Any:
    """Run one statement on the database behind the store's back (``$n`` placeholders)."""
    if url.startswith("sqlite:"):
        con = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
        try:
            return con.execute(sql.replace("$", "?"), args).fetchall()
        finally:
            con.close()
    conn = await asyncpg.connect(url)
    try:
        return [tuple(r) for r in await conn.fetch(sql, *args)]
    finally:
        await conn.close()


async def expire_holder(url: str, store: SqlStore) -> None:
    """Age the store's holder row past every ttl: its process "stalled"."""
    await execute(
        url,
        "UPDATE wastore_lease_holders SET renewed_at = renewed_at - 100000 WHERE token = $1",
        store.engine.leases.token,
    )


# -- fencing -----------------------------------------------------------------------------


async def test_a_holder_that_lost_its_lease_writes_nothing(url: str) -> None:
    """Every kind of write of the old holder is refused before anything is written:
    single statements, batches, atomic calls, transactions, the SignalCache's flush,
    the device row, a take of a sent message."""
    old = await open_sql(url)
    new = await open_sql(url)
    try:
        device_id = await old.create_device()
        pm = await PersistenceManager.open(old.backend(device_id), signal_cache=True)
        b = pm.backend
        await b.put_session(A, b"before")  # fenced, and allowed while held
        await expire_holder(url, old)
        taker = await PersistenceManager.open(new.backend(device_id), holder="the new holder")
        nb = taker.backend
        await nb.put_session(B, b"new holder")
        await nb.store_sent_message(A, "MSG", b"kept")
        assert not pm.lease_lost  # not noticed yet: only the fence can stop its writes

        cache = pm.signal_cache
        assert cache is not None

        async def in_transaction() -> None:
            async with b.transaction():
                await b.put_session(C, b"stale")

        async def flush_cache() -> None:
            await cache.put_session(A, b"stale")
            await cache.flush()

        attempts: list[Callable[[], Awaitable[Any]]] = [
            lambda: b.put_session(A, b"stale"),
            lambda: b.delete_session(B),
            lambda: b.put_sessions_batch([(C, b"stale"), (D, b"stale")]),
            lambda: b.delete_signal_state_for_user("4917"),
            in_transaction,
            flush_cache,
            lambda: b.take_sent_message(A, "MSG"),
            lambda: old.backend(device_id).put_session(D, b"another view of the account"),
        ]
        for attempt in attempts:
            with pytest.raises(AccountInUseError, match="lost the account lease"):
                await attempt()
        await pm.process_command(SetPushName("stale"))
        with pytest.raises(AccountInUseError):
            await pm.flush()
        assert pm.lease_lost
        # The new holder's view is intact.
        assert await nb.get_sessions([A, B, C, D]) == {A: b"before", B: b"new holder"}
        assert (await nb.load()).push_name != "stale"  # type: ignore[union-attr]
        assert await nb.take_sent_message(A, "MSG") == b"kept"
        await taker.close()
        with pytest.raises(AccountInUseError):
            await pm.close()
    finally:
        await new.close()
        await old.close()


async def test_the_renewal_notices_a_lost_lease(url: str) -> None:
    old = await open_sql(url)
    new = await open_sql(url)
    try:
        device_id = await old.create_device()
        pm = await PersistenceManager.open(old.backend(device_id))
        await expire_holder(url, old)
        taker = await PersistenceManager.open(new.backend(device_id))
        assert not pm.lease_lost
        await old.engine.leases.renew_now()
        assert pm.lease_lost
        await taker.close()
        await pm.close()  # nothing to save: closes quietly
    finally:
        await new.close()
        await old.close()


async def test_a_lease_row_removed_behind_the_holder_fences_it_off(url: str) -> None:
    s = await open_sql(url)
    try:
        device_id = await s.create_device()
        pm = await PersistenceManager.open(s.backend(device_id))
        await execute(url, "DELETE FROM wastore_leases WHERE device_id = $1", device_id)
        with pytest.raises(AccountInUseError, match="lost the account lease"):
            await pm.backend.put_session(A, b"unfenced?")
        assert await pm.backend.get_session(A) is None
        assert pm.lease_lost
        await pm.close()
    finally:
        await s.close()


async def test_an_unleased_view_of_a_leased_account_is_fenced_too(store: SqlStore) -> None:
    device_id = await store.create_device()
    pm = await PersistenceManager.open(store.backend(device_id))
    other_view = store.backend(device_id)
    await other_view.put_session(A, b"same container, same holder")
    assert await pm.backend.get_session(A) == b"same container, same holder"
    await pm.close()


# -- 64-bit ids -----------------------------------------------------------------------------


async def test_accounts_5_and_2_pow_32_plus_5_are_held_at_once(url: str) -> None:
    """Leases and transaction locks use the whole 64-bit id: two processes (two
    containers) serve accounts 5 and 2**32 + 5 at once (an advisory lock on the low 32
    bits made them exclude each other)."""
    low, high = 5, 2**32 + 5
    first, second = await open_sql(url), await open_sql(url)
    try:
        for device_id in (low, high):
            await first.backend(device_id).create()
        pms = [
            await PersistenceManager.open(first.backend(low)),
            await PersistenceManager.open(second.backend(high)),
        ]
        inside = [asyncio.Event(), asyncio.Event()]

        async def hold(n: int, store: SqlStore, device_id: int) -> None:
            b = store.backend(device_id)
            async with b.transaction():
                await b.put_session(A, b"%d" % device_id)
                inside[n].set()
                await asyncio.wait_for(inside[1 - n].wait(), 10)  # both open at once

        if first.dialect == "postgres":  # (SQLite has one writer per file)
            await asyncio.gather(hold(0, first, low), hold(1, second, high))
        else:
            for store, device_id in ((first, low), (second, high)):
                async with store.backend(device_id).transaction():
                    await store.backend(device_id).put_session(A, b"%d" % device_id)
        assert await first.backend(low).get_session(A) == b"5"
        assert await first.backend(high).get_session(A) == b"%d" % high
        for pm in pms:
            await pm.close()
    finally:
        await second.close()
        await first.close()


# -- waits name the holder ------------------------------------------------------------------


async def _deadlock(store: Any, backend: Any) -> BackendUnavailableError:
    """A transaction awaits a task (started outside it) that writes the same account:
    the task's wait times out, naming the transaction's task, and the transaction
    goes on."""
    go = asyncio.Event()

    async def writer() -> None:
        await go.wait()
        await backend.put_sessions_batch([(B, b"writer"), (C, b"writer")])

    task = asyncio.create_task(writer(), name="the-writer")

    async def owner() -> BackendUnavailableError:
        async with backend.transaction():
            await backend.put_session(A, b"owner")
            go.set()
            with pytest.raises(BackendUnavailableError) as caught:
                await asyncio.wait_for(task, 30)
            return caught.value

    err = await asyncio.create_task(owner(), name="the-owner")
    assert await backend.get_session(A) == b"owner"
    return err


async def test_a_wait_for_another_tasks_transaction_names_it(url: str) -> None:
    options = {"command_timeout": 0.5} if url.startswith("postgres") else {}
    s = await open_sql(url, **options)
    try:
        if s.dialect == "sqlite":
            s.engine.lock_timeout = 0.3  # type: ignore[attr-defined]
        err = await _deadlock(s, s.backend(await s.create_device()))
        assert "'the-owner'" in str(err)
        assert "transaction" in str(err)
    finally:
        await s.close()


async def test_memory_waits_name_the_holder_too() -> None:
    store = MemoryStore()
    store.lock_timeout = 0.3
    err = await _deadlock(store, store.backend(await store.create_device()))
    assert "'the-owner'" in str(err)


# -- opening many accounts ---------------------------------------------------------------


async def test_open_many_takes_every_lease_in_batches(url: str) -> None:
    s = await open_sql(url)
    other = await open_sql(url)
    try:
        ids = [await s.create_device() for _ in range(1500)]  # more than one batch
        pms = await PersistenceManager.open_many([s.backend(i) for i in ids], holder="bulk")
        assert [pm.device_id for pm in pms] == ids
        rows = await execute(
            url, "SELECT count(*), count(DISTINCT token) FROM wastore_leases WHERE token <> ''"
        )
        assert tuple(rows[0]) == (1500, 1)
        # Another container cannot take any of them; all or nothing: it keeps none.
        free = await other.create_device()
        with pytest.raises(AccountInUseError, match="bulk"):
            await PersistenceManager.open_many([other.backend(i) for i in (free, ids[700])])
        held = await execute(url, "SELECT device_id FROM wastore_leases WHERE token <> ''")
        assert sorted(r[0] for r in held) == ids
        await pms[0].process_command(SetPushName("first"))
        for pm in pms:
            await pm.close()
        assert await execute(url, "SELECT count(*) FROM wastore_leases WHERE token <> ''") == [(0,)]
        assert (await s.backend(ids[0]).load()).push_name == "first"  # type: ignore[union-attr]
        # Missing accounts are created, as open() does.
        [pm] = await PersistenceManager.open_many([other.backend(987654)])
        assert pm.get_device_snapshot().registration_id > 0
        await pm.close()
    finally:
        await other.close()
        await s.close()


async def test_open_many_on_other_backends_opens_each() -> None:
    store = MemoryStore()
    ids = [await store.create_device() for _ in range(3)]
    pms = await PersistenceManager.open_many([store.backend(i) for i in ids])
    with pytest.raises(AccountInUseError):
        await PersistenceManager.open_many([store.backend(ids[1])])
    for pm in pms:
        await pm.close()


# -- cancellation -----------------------------------------------------------------------------


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def any_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "memory":
        return "memory://"
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'storm.db'}"
    pg: str = request.getfixturevalue("pg_url")
    return pg


async def test_a_cancellation_storm_loses_no_sent_message(any_url: str) -> None:
    """2,400 takes, many cancelled at random moments: every message is either returned
    to its taker or still stored, never deleted unreturned."""
    async with await wastore.open_store(any_url) as store:
        await _storm(store)


async def _storm(store: Any) -> None:
    b = store.backend(await store.create_device())
    n = 2400
    ids = [f"MSG{i}" for i in range(n)]
    for start in range(0, n, 200):
        await asyncio.gather(
            *(b.store_sent_message(A, m, m.encode()) for m in ids[start : start + 200])
        )
    rnd = random.Random(20261127)
    returned: list[str] = []

    async def take(m: str) -> None:
        got = await b.take_sent_message(A, m)
        if got is not None:
            assert got == m.encode()
            returned.append(m)

    for start in range(0, n, 100):
        tasks = [asyncio.create_task(take(m)) for m in ids[start : start + 100]]
        pause = rnd.choice([None, 0.0, rnd.uniform(0, 0.004)])
        if pause is not None:  # (none: cancelled before they start)
            await asyncio.sleep(pause)
        for t in tasks:
            if rnd.random() < 0.7:
                t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    left = [m for m in ids if await b.take_sent_message(A, m) is not None]
    assert len(returned) == len(set(returned))
    assert sorted(returned + left) == sorted(ids), "a cancelled take lost a message"
    assert returned and left, "the storm cancelled nothing, or everything"


@pytest.mark.postgres
async def test_cancelled_statements_keep_their_connections(pg_url: str) -> None:
    """A statement whose caller is cancelled leaves its connection in the pool (asyncpg
    finishes the cancellation first): 800 cancelled statements open no connection."""
    s = await open_sql(pg_url, pool_size=4)
    try:
        pool: Any = s.engine.pool  # wastore's own pool: count the connections it opens
        connect = pool._connect
        opened = 0

        async def counting(limit: float) -> Any:
            nonlocal opened
            opened += 1
            return await connect(limit)

        pool._connect = counting
        b = s.backend(await s.create_device())
        await asyncio.gather(*(b.get_session(A) for _ in range(8)))  # four connections
        warm = opened
        keys = [f"{i}@s.whatsapp.net" for i in range(50)]
        for _ in range(200):
            tasks = [asyncio.create_task(b.get_sessions(keys)) for _ in range(4)]
            await asyncio.sleep(0)  # each sends its statement, then it is cancelled
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        assert await b.get_session(A) is None  # the pool still works
        assert opened - warm == 0, f"{opened - warm} reconnections for 800 cancellations"
    finally:
        await s.close()


# -- the schema step ------------------------------------------------------------------------


async def _to_schema_4(url: str) -> None:
    """Take a fresh database back to schema 4 (before epochs and lease holders)."""
    for sql in (
        "DROP TABLE wastore_lease_holders",
        "DROP INDEX wastore_leases_by_token",
        "ALTER TABLE wastore_leases DROP COLUMN epoch",
        "ALTER TABLE wastore_leases DROP COLUMN ttl",
        "UPDATE wastore_version SET version = 4, compat = 1",
    ):
        await execute(url, sql)


async def test_upgrade_to_schema_5_keeps_a_live_lease_of_the_older_code(url: str) -> None:
    async with await open_sql(url) as s:
        device_id = await s.create_device()
    await _to_schema_4(url)
    import time

    await execute(
        url,
        "INSERT INTO wastore_leases VALUES ($1, 'old', 'schema 4 holder', 'elsewhere', 1, $2)",
        device_id,
        time.time() + 60,
    )
    async with await open_sql(url) as s:
        assert await s.schema_version() == (schema.LATEST, schema.LATEST_COMPAT)
        assert schema.LATEST_COMPAT == 5  # code of schema 4 may not open it any more
        with pytest.raises(AccountInUseError, match="schema 4 holder"):
            await PersistenceManager.open(s.backend(device_id))
        await execute(url, "UPDATE wastore_leases SET expires_at = 0")
        pm = await PersistenceManager.open(s.backend(device_id))
        [(epoch,)] = await execute(url, "SELECT epoch FROM wastore_leases")
        assert epoch > 0
        await pm.close()


@pytest.mark.postgres
async def test_a_lease_of_an_older_wastore_process_is_respected(pg_url: str) -> None:
    """wastore before schema 5 held one advisory lock per account: while such a process
    still runs (during an upgrade), its accounts are refused."""
    from wastore.backends.postgres import lock_class

    s = await open_sql(pg_url)
    old = await asyncpg.connect(pg_url, server_settings={"application_name": "wastore 0.1"})
    try:
        device_id = await s.create_device()
        assert await old.fetchval(
            "SELECT pg_try_advisory_lock($1, $2)", lock_class("wastore_"), device_id
        )
        with pytest.raises(AccountInUseError, match=r"wastore 0\.1"):
            await PersistenceManager.open(s.backend(device_id))
        await old.fetchval("SELECT pg_advisory_unlock($1, $2)", lock_class("wastore_"), device_id)
        pm = await PersistenceManager.open(s.backend(device_id))
        await pm.close()
    finally:
        await old.close()
        await s.close()
