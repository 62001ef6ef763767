"""PostgresStore while its server crashes: ``pg_ctl stop -m immediate`` in the middle
of a workload, then ``pg_ctl start``, on a private cluster (``pg_cluster``).

What must hold: calls made while the server is down raise BackendUnavailableError
within the retry budget (no hang); the manager's saver keeps the dirty state and
saves it once the server is back; the container works again without being
reopened; nothing that was acknowledged is lost; a transaction that loses its
connection is rolled back and says so.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator

import asyncpg
import pytest

import wastore
from pg_server import PgCluster, db_url
from wastore import AccountInUseError, BackendUnavailableError, PersistenceManager, StoreError
from wastore.backends.postgres import PostgresStore, holder_class

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

RETRY = 1.5  # retry_timeout of the stores under test (seconds)
SLACK = 1.5  # scheduling slack on a busy 2-core machine
_names = itertools.count(1)


@pytest.fixture
async def fault_url(pg_cluster: PgCluster) -> AsyncIterator[str]:
    if not pg_cluster.running:  # a failed test may have left it stopped
        await asyncio.to_thread(pg_cluster.start)
    name = f"faults_{next(_names)}"
    conn = await asyncpg.connect(pg_cluster.url)
    try:
        await conn.execute(f"CREATE DATABASE {name}")
    finally:
        await conn.close()
    yield db_url(pg_cluster.url, name)
    if not pg_cluster.running:
        await asyncio.to_thread(pg_cluster.start)
    conn = await asyncpg.connect(pg_cluster.url)
    try:
        await conn.execute(f"DROP DATABASE {name} WITH (FORCE)")
    finally:
        await conn.close()


async def open_store(url: str) -> PostgresStore:
    c = await wastore.open_store(url, retry_timeout=RETRY, command_timeout=5.0)
    assert isinstance(c, PostgresStore)
    return c


def addr(i: int) -> str:
    return f"4917{i:08d}@s.whatsapp.net"


async def test_server_crash_and_restart_under_a_workload(
    pg_cluster: PgCluster, fault_url: str
) -> None:
    store = await open_store(fault_url)
    device_id = await store.create_device()
    b = store.backend(device_id)
    pm = await PersistenceManager.open(b, lease_ttl=1.5)  # renewed every 0.5 s
    pm.run_background_saver(interval=0.05)
    acked: dict[str, bytes] = {}
    failures: list[float] = []  # how long each failing call took
    stop = asyncio.Event()

    async def writer(n: int) -> None:
        for i in itertools.count(n * 1_000_000):
            if stop.is_set():
                return
            record = b"record %d" % i
            started = time.monotonic()
            try:
                await b.put_session(addr(i), record)
            except BackendUnavailableError:
                failures.append(time.monotonic() - started)
                continue
            acked[addr(i)] = record

    writers = [asyncio.create_task(writer(n)) for n in range(4)]
    try:
        await asyncio.sleep(0.5)
        before_crash = len(acked)
        assert before_crash > 0
        await asyncio.to_thread(pg_cluster.stop, "immediate")

        # While it is down: calls fail within the budget, the manager keeps its changes.
        started = time.monotonic()
        with pytest.raises(BackendUnavailableError, match="unreachable"):
            await b.get_session(addr(0))
        assert time.monotonic() - started < RETRY + SLACK
        await pm.process_command(wastore.SetPushName("changed while the server was down"))
        await asyncio.sleep(RETRY + 0.5)
        # The saver tried, failed, and kept the change (is_dirty reads False while a save
        # is in flight, so the error it recorded is what shows the failure).
        assert isinstance(pm.last_save_error, BackendUnavailableError)
        assert failures, "no write failed while the server was down"
        assert not pm.is_saver_halted()

        await asyncio.to_thread(pg_cluster.start)
        # The saver writes the kept change once the server is back.
        deadline = time.monotonic() + 20
        while True:
            device = await b.load()
            assert device is not None
            if device.push_name == "changed while the server was down":
                break
            assert time.monotonic() < deadline, "the saver did not save after the restart"
            await asyncio.sleep(0.05)
        # The same container works again, and keeps acknowledging writes.
        dead = [w for w in writers if w.done()]
        assert not dead, [w.exception() for w in dead]
        after = len(acked)
        deadline = time.monotonic() + 5  # a writer may be in a backoff sleep (at most 0.5 s)
        while len(acked) < after + 100:
            assert time.monotonic() < deadline, "the writers did not recover"
            await asyncio.sleep(0.02)
    finally:
        stop.set()
        await asyncio.gather(*writers, return_exceptions=True)
    assert max(failures) < RETRY + SLACK, failures

    # The container's lease lock was taken again on a new connection: a second container
    # is refused.
    monitor = await asyncpg.connect(fault_url)
    try:
        deadline = time.monotonic() + 10
        while not await monitor.fetchval(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
            "AND classid = $1::bigint::oid AND objid = $2::bigint::oid",
            holder_class("wastore_"),
            store.engine.leases.lock_key,
        ):
            assert time.monotonic() < deadline, "the lease lock was not taken again"
            await asyncio.sleep(0.05)
    finally:
        await monitor.close()
    assert not pm.lease_lost
    other = await open_store(fault_url)
    try:
        with pytest.raises(AccountInUseError):
            await PersistenceManager.open(other.backend(device_id))
    finally:
        await other.close()
    await pm.close()
    await store.close()

    # Nothing acknowledged was lost, as a fresh container reads it.
    fresh = await open_store(fault_url)
    try:
        fb = fresh.backend(device_id)
        found = await fb.get_sessions(list(acked))
        assert found == acked, f"{len(acked) - len(found)} acknowledged writes were lost"
        device = await fb.load()
        assert device is not None
        assert device.push_name == "changed while the server was down"
    finally:
        await fresh.close()


async def test_transaction_that_loses_its_connection_is_rolled_back(
    pg_cluster: PgCluster, fault_url: str
) -> None:
    store = await open_store(fault_url)
    try:
        b = store.backend(await store.create_device())
        await b.put_session(addr(0), b"before")

        async def body() -> None:
            async with b.transaction():
                await b.put_session(addr(1), b"in the transaction")
                await asyncio.to_thread(pg_cluster.stop, "immediate")
                started = time.monotonic()
                with pytest.raises(BackendUnavailableError):  # not retried on a new connection
                    await b.put_session(addr(2), b"after the crash")
                assert time.monotonic() - started < SLACK
                with pytest.raises(StoreError, match="aborted"):
                    await b.get_session(addr(1))

        with pytest.raises(BackendUnavailableError, match="rolled back"):
            await body()
        await asyncio.to_thread(pg_cluster.start)
        assert await b.get_sessions([addr(0), addr(1), addr(2)]) == {addr(0): b"before"}
        async with b.transaction():  # and transactions work again
            await b.put_session(addr(3), b"new")
        assert await b.get_session(addr(3)) == b"new"
    finally:
        await store.close()


async def test_open_waits_for_a_server_that_is_starting(
    pg_cluster: PgCluster, fault_url: str
) -> None:
    await asyncio.to_thread(pg_cluster.stop, "immediate")
    starter = asyncio.create_task(asyncio.to_thread(pg_cluster.start))
    try:
        # Refused, then "the database system is starting up", then open.
        c = await wastore.open_store(fault_url, retry_timeout=30.0)
        try:
            await c.create_device()
        finally:
            await c.close()
    finally:
        await starter


async def test_calls_fail_fast_while_down_and_work_after_without_reopening(
    pg_cluster: PgCluster, fault_url: str
) -> None:
    store = await open_store(fault_url)
    try:
        b = store.backend(await store.create_device())
        await b.put_session(addr(1), b"one")
        await asyncio.to_thread(pg_cluster.stop, "immediate")
        for call in (
            b.get_session(addr(1)),
            b.put_sessions_batch([(addr(2), b"two")]),
            b.take_sent_message("c@g.us", "m"),
            store.create_device(),
            store.devices(),
        ):
            started = time.monotonic()
            with pytest.raises(BackendUnavailableError) as info:
                await call
            assert time.monotonic() - started < RETRY + SLACK
            assert info.value.__cause__ is not None
            assert not isinstance(info.value.__cause__, StoreError)
        await asyncio.to_thread(pg_cluster.start)
        assert await b.get_session(addr(1)) == b"one"
        await b.put_sessions_batch([(addr(2), b"two")])
        assert await b.get_sessions([addr(1), addr(2)]) == {addr(1): b"one", addr(2): b"two"}
        assert store.open_connections <= store.pool_size
    finally:
        await store.close()
