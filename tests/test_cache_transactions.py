"""SignalCache transactions: cached writes belong to the transaction they are made in.

Each test runs on a real SQLite file and on MemoryStore; the state after a test is
read back from the backend directly (what a crash right then would leave).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import pytest

import wastore
from wastore.cache import SESSION, CacheBudget, SignalCache
from wastore.errors import StoreError

A = "15551234567@s.whatsapp.net"
B = "15557654321:3@s.whatsapp.net"
C = "15550000001@s.whatsapp.net"
MSG = ("chat@s.whatsapp.net", A, "3EB0ABCD")


class Abort(Exception):
    pass


async def _body_then_abort(
    transaction: Callable[[], AbstractAsyncContextManager[None]],
    body: Callable[[], Awaitable[object]],
) -> None:
    async with transaction():
        await body()
        raise Abort


async def rolled_back(
    transaction: Callable[[], AbstractAsyncContextManager[None]],
    body: Callable[[], Awaitable[object]],
) -> None:
    """Run ``body`` inside ``transaction()`` and raise from inside it; check it propagates."""
    with pytest.raises(Abort):
        await _body_then_abort(transaction, body)


@pytest.fixture(params=["sqlite", "memory"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Any]:
    url = f"sqlite:///{tmp_path}/c.db" if request.param == "sqlite" else "memory://"
    async with await wastore.open_store(url) as c:
        yield c


@pytest.fixture
async def backend(store: Any) -> Any:
    return store.backend(await store.create_device())


@pytest.fixture
def cache(backend: Any) -> SignalCache:
    return SignalCache(backend, budget=CacheBudget())


async def test_rollback_drops_the_cached_writes(backend: Any, cache: SignalCache) -> None:
    await backend.put_session(A, b"committed")
    await backend.put_identity(A, b"i" * 32)

    async def body() -> None:
        await cache.put_session(A, b"ratchet advanced")
        await cache.delete_identity(A)
        await cache.put_sender_key(f"g@g.us::{A}", b"sk")
        await cache.store_pending_inbound(*MSG, b"plaintext")
        assert await cache.get_session(A) == b"ratchet advanced"
        assert await cache.load_identity(A) is None

    await rolled_back(cache.transaction, body)
    assert await cache.get_session(A) == b"committed"
    assert await cache.load_identity(A) == b"i" * 32
    assert await cache.get_sender_key(f"g@g.us::{A}") is None
    assert cache.dirty_count == 0
    await cache.flush()  # nothing of the rolled-back block is left to commit
    assert await backend.get_session(A) == b"committed"
    assert await backend.get_pending_inbound(*MSG) is None


async def test_commit_makes_the_cached_writes_durable_with_the_block(
    backend: Any, cache: SignalCache
) -> None:
    # The decrypt path: the advanced session and the plaintext, in one commit.
    async with cache.transaction():
        await cache.put_session(A, b"ratchet advanced")
        await cache.store_pending_inbound(*MSG, b"plaintext")
    assert await backend.get_session(A) == b"ratchet advanced"  # no flush needed
    assert await backend.get_pending_inbound(*MSG) == b"plaintext"
    assert cache.dirty_count == 0
    assert await cache.get_session(A) == b"ratchet advanced"


async def test_a_nested_block_that_raises_drops_only_its_own_writes(
    backend: Any, cache: SignalCache
) -> None:
    async with cache.transaction():
        await cache.put_session(A, b"outer")

        async def inner() -> None:
            await cache.put_session(A, b"inner overwrite")
            await cache.put_session(B, b"inner")
            await cache.remove_prekey(5)

        await rolled_back(cache.transaction, inner)
        assert await cache.get_sessions([A, B]) == {A: b"outer"}
        async with cache.transaction():  # a nested block that commits joins the outer one
            await cache.put_session(C, b"inner kept")
    assert await backend.get_sessions([A, B, C]) == {A: b"outer", C: b"inner kept"}


async def test_flush_inside_a_rolled_back_transaction_leaves_everything_dirty(
    backend: Any, cache: SignalCache
) -> None:
    await cache.put_session(A, b"buffered before")

    async def body() -> None:
        await cache.put_session(B, b"inside")
        await cache.flush()
        assert await backend.get_sessions([A, B]) == {A: b"buffered before", B: b"inside"}

    await rolled_back(cache.transaction, body)
    assert await backend.get_sessions([A, B]) == {}  # nothing was saved...
    assert cache.is_dirty(SESSION, A)  # ...and nothing is marked clean
    assert await cache.get_session(A) == b"buffered before"
    await cache.flush()
    assert await backend.get_sessions([A, B]) == {A: b"buffered before"}


async def test_flush_inside_a_transaction_is_clean_only_after_the_outer_commit(
    backend: Any, cache: SignalCache
) -> None:
    await cache.put_session(A, b"before")
    async with cache.transaction():
        async with cache.transaction():
            await cache.flush()
        assert cache.is_dirty(SESSION, A)
    assert not cache.is_dirty(SESSION, A)
    assert await backend.get_session(A) == b"before"


async def test_flush_in_a_nested_block_that_raises_is_undone_with_it(
    backend: Any, cache: SignalCache
) -> None:
    await cache.put_session(A, b"before")
    async with cache.transaction():
        await rolled_back(cache.transaction, cache.flush)
    # The outer block committed, but the flush was inside the rolled-back savepoint.
    assert await backend.get_session(A) is None
    assert cache.is_dirty(SESSION, A)
    await cache.flush()
    assert await backend.get_session(A) == b"before"


async def test_other_tasks_see_the_writes_only_after_the_commit(
    backend: Any, cache: SignalCache
) -> None:
    await cache.put_session(A, b"old")
    seen: list[bytes | None] = []
    async with cache.transaction():
        await cache.put_session(A, b"new")
        seen.append(await asyncio.create_task(cache.get_session(A)))
    seen.append(await asyncio.create_task(cache.get_session(A)))
    assert seen == [b"old", b"new"]


async def test_a_later_write_by_another_task_wins_over_the_commit(
    backend: Any, cache: SignalCache
) -> None:
    go = asyncio.Event()

    async def later() -> None:  # started outside the transaction
        await go.wait()
        await cache.put_session(A, b"later, outside")

    task = asyncio.create_task(later())
    async with cache.transaction():
        await cache.put_session(A, b"in the transaction")
        go.set()
        await task
    assert await cache.get_session(A) == b"later, outside"
    assert cache.is_dirty(SESSION, A)
    await cache.flush()
    assert await backend.get_session(A) == b"later, outside"


async def test_a_flush_waits_for_an_open_transaction(backend: Any, cache: SignalCache) -> None:
    await cache.put_session(A, b"older, outside")
    go = asyncio.Event()

    async def flush_when_told() -> None:  # started outside the transaction, as the flusher
        await go.wait()
        await cache.flush()

    flushing = asyncio.create_task(flush_when_told())
    async with cache.transaction():
        await cache.put_session(A, b"newer, inside")
        go.set()
        await asyncio.sleep(0.05)
        assert not flushing.done()
    await flushing
    # The flush must not have written the older value over the committed one.
    assert await backend.get_session(A) == b"newer, inside"
    assert await cache.get_session(A) == b"newer, inside"
    assert cache.dirty_count == 0


async def test_consumed_prekeys_follow_the_transaction(backend: Any, cache: SignalCache) -> None:
    await backend.store_prekeys_batch([(1, b"one"), (2, b"two")], True)

    async def consume() -> None:
        await cache.remove_prekey(1)
        assert await cache.load_prekey(1) is None

    await rolled_back(cache.transaction, consume)
    assert await cache.load_prekey(1) == b"one"
    async with cache.transaction():
        await cache.put_session(A, b"built from pre-key 2")
        await cache.remove_prekey(2)
    assert await backend.load_prekeys_batch([1, 2]) == {1: b"one"}
    assert await backend.get_session(A) == b"built from pre-key 2"


async def test_a_prekey_stored_again_in_a_rolled_back_block_stays_consumed(
    backend: Any, cache: SignalCache
) -> None:
    await backend.store_prekey(1, b"one", True)
    await cache.remove_prekey(1)

    async def store_again() -> None:
        await cache.store_prekey(1, b"replacement", False)
        assert await cache.load_prekey(1) == b"replacement"

    await rolled_back(cache.transaction, store_again)
    assert await cache.load_prekey(1) is None
    await cache.flush()
    assert await backend.load_prekey(1) is None


async def test_a_per_user_delete_in_a_rolled_back_block_comes_back(
    backend: Any, cache: SignalCache
) -> None:
    await cache.put_session("1555:2@s.whatsapp.net", b"s")
    await cache.put_identity("1555@s.whatsapp.net", b"k" * 32)
    await cache.flush()

    async def delete_user() -> None:
        assert await cache.delete_signal_state_for_user("1555") == 2
        assert await cache.get_session("1555:2@s.whatsapp.net") is None

    await rolled_back(cache.transaction, delete_user)
    assert await cache.get_session("1555:2@s.whatsapp.net") == b"s"
    async with cache.transaction():
        await cache.put_session("1555:3@s.whatsapp.net", b"new device")
        assert await cache.delete_signal_state_for_user("1555") == 3
    assert await cache.get_session("1555:3@s.whatsapp.net") is None
    assert await cache.load_identity("1555@s.whatsapp.net") is None
    assert not await backend.has_signal_state_for_user("1555")


async def test_the_cache_refuses_a_transaction_it_did_not_open(
    backend: Any, cache: SignalCache
) -> None:
    await cache.put_session(A, b"buffered")

    async def through_the_cache() -> None:
        with pytest.raises(wastore.StoreError, match=r"pm\.transaction"):
            await cache.put_session(B, b"would escape the rollback")
        with pytest.raises(wastore.StoreError, match=r"pm\.transaction"):
            await cache.flush()
        with pytest.raises(wastore.StoreError, match=r"pm\.transaction"):
            await _body_then_abort(cache.transaction, asyncio.sleep)
        assert await cache.get_session(A) == b"buffered"  # reads are fine

    await rolled_back(backend.transaction, through_the_cache)
    assert cache.is_dirty(SESSION, A)
    assert await cache.get_session(B) is None
    await cache.flush()
    assert await backend.get_session(A) == b"buffered"


class FailingBatches:
    """The real backend, whose session batches fail while ``fail`` is set."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.fail = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def put_sessions_batch(self, items: Any) -> None:
        await self.inner.put_sessions_batch(items)
        if self.fail:
            raise wastore.BackendUnavailableError("injected")


async def _in_transaction(cache: SignalCache, body: Callable[[], Awaitable[None]]) -> None:
    async with cache.transaction():
        await body()


async def test_a_commit_that_fails_keeps_nothing(backend: Any) -> None:
    failing = FailingBatches(backend)
    cache = SignalCache(failing, budget=CacheBudget())  # type: ignore[arg-type]
    await cache.put_session(A, b"before")

    async def body() -> None:
        await cache.put_session(B, b"inside")
        await cache.flush()
        await cache.store_pending_inbound(*MSG, b"plaintext")
        failing.fail = True  # the block's writes fail when they go in at the end

    with pytest.raises(wastore.BackendUnavailableError):
        await _in_transaction(cache, body)
    assert cache.is_dirty(SESSION, A)
    assert await cache.get_session(B) is None
    assert await backend.get_sessions([A, B]) == {}
    assert await backend.get_pending_inbound(*MSG) is None
    failing.fail = False
    await cache.flush()
    assert await backend.get_sessions([A, B]) == {A: b"before"}


# -- through the PersistenceManager ------------------------------------------------
async def test_pm_flush_inside_a_rolled_back_transaction_keeps_everything_unsaved(
    store: Any,
) -> None:
    backend = store.backend(await store.create_device())
    pm = await wastore.PersistenceManager.open(backend, signal_cache=True)
    try:
        await pm.process_command(wastore.SetPushName("changed"))

        async def decrypt() -> None:
            await pm.signal.put_session(A, b"ratchet advanced")
            await pm.signal.store_pending_inbound(*MSG, b"plaintext")
            await pm.flush()

        await rolled_back(pm.transaction, decrypt)
        assert pm.is_dirty
        assert pm.signal_cache is not None and pm.signal_cache.dirty_count == 0
        assert await backend.get_session(A) is None
        device = await backend.load()
        assert device is not None and device.push_name != "changed"
        await pm.flush()
        assert not pm.is_dirty
        device = await backend.load()
        assert device is not None and device.push_name == "changed"
    finally:
        await pm.close()


async def test_pm_flush_inside_a_committed_transaction_saves_with_it(store: Any) -> None:
    backend = store.backend(await store.create_device())
    pm = await wastore.PersistenceManager.open(backend, signal_cache=True)
    pm.run_background_saver(interval=10.0)
    try:
        await pm.signal.put_session(B, b"buffered before")
        await pm.process_command(wastore.SetPushName("changed"))
        async with pm.transaction():
            await pm.signal.put_session(A, b"ratchet advanced")
            await pm.flush()
        assert await backend.get_sessions([A, B]) == {A: b"ratchet advanced", B: b"buffered before"}
        device = await backend.load()
        assert device is not None and device.push_name == "changed"
        for _ in range(200):  # the saver saves the row once more, outside
            if not pm.is_dirty:
                break
            await asyncio.sleep(0.01)
        assert not pm.is_dirty
    finally:
        await pm.close()


async def test_pm_flush_inside_a_backend_transaction_is_refused(store: Any) -> None:
    backend = store.backend(await store.create_device())
    pm = await wastore.PersistenceManager.open(backend, signal_cache=True)
    try:
        await pm.signal.put_session(A, b"buffered")

        async def flush_refused() -> None:
            with pytest.raises(wastore.StoreError, match=r"pm\.transaction"):
                await pm.flush()

        await rolled_back(backend.transaction, flush_refused)
        assert pm.signal_cache is not None and pm.signal_cache.dirty_count == 1
    finally:
        await pm.close()
    assert await backend.get_session(A) == b"buffered"


async def test_pm_flush_without_a_cache_inside_a_rolled_back_transaction(store: Any) -> None:
    backend = store.backend(await store.create_device())
    pm = await wastore.PersistenceManager.open(backend)
    try:
        await pm.process_command(wastore.SetPushName("changed"))
        await rolled_back(pm.transaction, pm.flush)
        assert pm.is_dirty
        await pm.flush()
        device = await backend.load()
        assert device is not None and device.push_name == "changed"
    finally:
        await pm.close()


async def test_a_task_started_inside_cannot_flush_or_open_a_transaction(
    backend: Any, cache: SignalCache
) -> None:
    """The cache's transaction holds its flush lock until it ends, and its task may await
    a task it started (gather, create_task, wait_for on 3.11): such a task's flush or
    transaction is refused at once (StoreError), never a wait for the lock. With
    nothing to flush, the reads that flush first go on and see the committed state."""
    await backend.store_prekeys_batch([(1, b"one"), (2, b"two")], True)
    committed = await backend.count_prekeys()

    async def open_one() -> None:
        async with cache.transaction():
            pass

    async with cache.transaction():
        await cache.put_session(A, b"inside")
        await cache.remove_prekey(1)
        found = await asyncio.wait_for(
            asyncio.gather(cache.count_prekeys(), cache.get_max_prekey_id(), cache.flush()), 5
        )
        assert found == [committed, 2, None]
    await cache.put_session(B, b"dirty, outside")
    async with cache.transaction():
        await cache.put_session(A, b"inside again")
        results = await asyncio.wait_for(
            asyncio.gather(
                cache.flush(), cache.count_prekeys(), open_one(), return_exceptions=True
            ),
            5,
        )
        assert all(isinstance(r, StoreError) for r in results), results
        assert "started inside" in str(results[0])
    assert await backend.get_session(A) == b"inside again"
    assert await backend.get_session(B) is None  # the refused flush wrote nothing
    await cache.flush()
    assert await backend.get_session(B) == b"dirty, outside"
    assert await backend.count_prekeys() != committed  # pre-key 1 is gone
