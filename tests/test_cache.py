"""SignalCache behaviour, one rule per test (the model-based test is test_cache_stateful)."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest

import wastore
from wastore.cache import SESSION, CacheBudget, SignalCache

A = "15551234567@s.whatsapp.net"
B = "15557654321:3@s.whatsapp.net"


class Counting:
    """A real backend that counts calls (and can slow down or fail batch writes)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.calls: Counter[str] = Counter()
        self.batch_delay = 0.0
        self.fail = False

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.inner, name)
        if not callable(attr):
            return attr

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls[name] += 1
            return attr(*args, **kwargs)

        return counted

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        self.calls["transaction"] += 1
        async with self.inner.transaction():
            yield

    async def put_session(self, address: str, record: bytes) -> None:
        # A flush of a single entry commits it with the single-row method.
        self.calls["put_session"] += 1
        if self.fail:
            raise wastore.BackendUnavailableError("injected")
        await self.inner.put_session(address, record)

    async def put_sessions_batch(self, items: Sequence[tuple[str, bytes]]) -> None:
        self.calls["put_sessions_batch"] += 1
        if self.batch_delay:
            await asyncio.sleep(self.batch_delay)
        if self.fail:
            raise wastore.BackendUnavailableError("injected")
        await self.inner.put_sessions_batch(items)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Any]:
    async with await wastore.open_store(f"sqlite:///{tmp_path}/c.db") as c:
        yield c


@pytest.fixture
async def backend(store: Any) -> Counting:
    return Counting(store.backend(await store.create_device()))


async def test_reads_are_served_from_memory_including_misses(backend: Counting) -> None:
    await backend.inner.put_session(A, b"stored")
    cache = SignalCache(backend)  # type: ignore[arg-type]
    for _ in range(3):
        assert await cache.get_session(A) == b"stored"
        assert await cache.get_session(B) is None
        assert not await cache.has_session(B)
    assert backend.calls["get_session"] == 2


async def test_writes_are_seen_at_once_and_durable_only_after_flush(backend: Counting) -> None:
    cache = SignalCache(backend)  # type: ignore[arg-type]
    await cache.put_session(A, b"new")
    await cache.put_identity(A, b"k" * 32)
    await cache.put_sender_key(f"g@g.us::{A}", b"sk")
    assert await cache.get_session(A) == b"new"
    assert await backend.inner.get_session(A) is None
    assert cache.dirty_count == 3
    await cache.flush()
    assert cache.dirty_count == 0
    assert await backend.inner.get_session(A) == b"new"
    assert await backend.inner.load_identity(A) == b"k" * 32
    assert await backend.inner.get_sender_key(f"g@g.us::{A}") == b"sk"


async def test_deletes_are_tombstones_until_flushed(backend: Counting) -> None:
    await backend.inner.put_session(A, b"old")
    cache = SignalCache(backend)  # type: ignore[arg-type]
    await cache.delete_session(A)
    assert await cache.get_session(A) is None
    assert await backend.inner.get_session(A) == b"old"
    await cache.flush()
    assert await backend.inner.get_session(A) is None


async def test_flush_is_one_transaction_with_one_batch_per_kind(backend: Counting) -> None:
    cache = SignalCache(backend)  # type: ignore[arg-type]
    for i in range(100):
        await cache.put_session(f"{i}@s.whatsapp.net", b"s")
        await cache.put_identity(f"{i}@s.whatsapp.net", b"k" * 32)
    await cache.flush()
    assert backend.calls["transaction"] == 1
    assert backend.calls["put_sessions_batch"] == 1
    assert backend.calls["put_identities_batch"] == 1
    assert len(await backend.inner.get_sessions([f"{i}@s.whatsapp.net" for i in range(100)])) == 100


async def test_failed_flush_keeps_everything_dirty(backend: Counting) -> None:
    cache = SignalCache(backend)  # type: ignore[arg-type]
    await cache.put_session(A, b"s")
    await cache.put_identity(B, b"k" * 32)
    backend.fail = True
    with pytest.raises(wastore.BackendUnavailableError):
        await cache.flush()
    assert cache.dirty_count == 2
    assert await backend.inner.load_identity(B) is None  # rolled back with the sessions
    backend.fail = False
    await cache.flush()
    assert cache.dirty_count == 0
    assert await backend.inner.load_identity(B) == b"k" * 32


async def test_a_write_during_a_flush_stays_dirty(backend: Counting) -> None:
    cache = SignalCache(backend)  # type: ignore[arg-type]
    await cache.put_session(A, b"first")
    backend.batch_delay = 0.05
    flushing = asyncio.create_task(cache.flush())
    await asyncio.sleep(0.01)
    await cache.put_session(A, b"second")
    await flushing
    assert await backend.inner.get_session(A) == b"first"
    assert cache.is_dirty(SESSION, A)
    backend.batch_delay = 0
    await cache.flush()
    assert await backend.inner.get_session(A) == b"second"


async def test_load_racing_a_write_never_overwrites_it(backend: Counting, store: Any) -> None:
    await backend.inner.put_session(A, b"old")
    cache = SignalCache(backend)  # type: ignore[arg-type]
    inner_get = backend.inner.get_session

    async def slow_get(address: str) -> bytes | None:
        value = await inner_get(address)
        await asyncio.sleep(0.02)
        return value

    backend.inner = _Patched(backend.inner, get_session=slow_get)
    reading = asyncio.create_task(cache.get_session(A))
    await asyncio.sleep(0.005)
    await cache.put_session(A, b"new")
    assert await reading == b"new"
    assert await cache.get_session(A) == b"new"


class _Patched:
    def __init__(self, inner: Any, **overrides: Any) -> None:
        self._inner = inner
        self.__dict__.update(overrides)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


async def test_eviction_drops_clean_entries_only(backend: Counting) -> None:
    cache = SignalCache(backend, max_entries=3, budget=CacheBudget())  # type: ignore[arg-type]
    for i in range(3):
        await cache.get_session(f"clean{i}@s.whatsapp.net")  # three clean (absent) entries
    backend.fail = True  # flushes fail: the dirty entries cannot become clean
    await cache.put_session("0@s.whatsapp.net", b"s")
    await cache.put_session("1@s.whatsapp.net", b"s")
    assert cache.dirty_count == 2
    assert len(cache) <= 3  # clean ones made room, the dirty ones stayed
    assert cache.is_dirty(SESSION, "0@s.whatsapp.net")
    assert cache.is_dirty(SESSION, "1@s.whatsapp.net")
    backend.fail = False
    for i in range(2, 6):
        await cache.put_session(f"{i}@s.whatsapp.net", b"s")
    await cache.flush()
    assert len(cache) <= 3
    for i in range(6):  # evicted entries are reloaded, never lost
        assert await cache.get_session(f"{i}@s.whatsapp.net") == b"s"
    assert len(cache) <= 3


async def test_dirty_entries_are_bounded_by_flushing_first(backend: Counting) -> None:
    cache = SignalCache(backend, max_entries=10, budget=CacheBudget())  # type: ignore[arg-type]
    for i in range(95):
        await cache.put_session(f"{i}@s.whatsapp.net", b"s")
        assert cache.dirty_count <= 10
    assert backend.calls["put_sessions_batch"] == 9  # one flush per ten writes
    found = await backend.inner.get_sessions([f"{i}@s.whatsapp.net" for i in range(95)])
    assert len(found) == 90


async def test_a_write_that_cannot_make_room_fails_and_buffers_nothing(backend: Counting) -> None:
    cache = SignalCache(backend, max_entries=2, budget=CacheBudget())  # type: ignore[arg-type]
    await cache.put_session("0@s.whatsapp.net", b"s0")
    await cache.put_session("1@s.whatsapp.net", b"s1")
    backend.fail = True
    with pytest.raises(wastore.BackendUnavailableError):
        await cache.put_session("2@s.whatsapp.net", b"s2")
    assert await cache.get_session("2@s.whatsapp.net") is None
    assert cache.dirty_count == 2  # the buffered writes are kept, dirty
    backend.fail = False
    await cache.put_session("2@s.whatsapp.net", b"s2")
    await cache.flush()
    assert len(await backend.inner.get_sessions([f"{i}@s.whatsapp.net" for i in range(3)])) == 3


async def test_writes_to_a_missing_account_raise_at_once(store: Any) -> None:
    cache = SignalCache(store.backend(4242), budget=CacheBudget())
    with pytest.raises(wastore.DeviceNotFoundError):
        await cache.put_session(A, b"s")
    with pytest.raises(wastore.DeviceNotFoundError):
        await cache.remove_prekey(1)
    assert cache.dirty_count == 0
    assert await cache.get_session(A) is None


async def test_consumed_prekey_goes_with_the_session(backend: Counting) -> None:
    await backend.inner.store_prekey(7, b"one-time", True)
    cache = SignalCache(backend)  # type: ignore[arg-type]
    assert await cache.load_prekey(7) == b"one-time"
    await cache.put_session(A, b"built from pre-key 7")
    await cache.remove_prekey(7)
    assert await cache.load_prekey(7) is None
    assert await cache.load_prekeys_batch([7]) == {}
    # crash before the flush: the pre-key is still there to build the session again
    cache.drop()
    assert await backend.inner.load_prekey(7) == b"one-time"
    assert await backend.inner.get_session(A) is None
    # and when the flush fails, neither goes
    cache = SignalCache(backend)  # type: ignore[arg-type]
    await cache.put_session(A, b"built from pre-key 7")
    await cache.remove_prekey(7)
    backend.fail = True
    with pytest.raises(wastore.BackendUnavailableError):
        await cache.flush()
    assert await backend.inner.load_prekey(7) == b"one-time"
    backend.fail = False
    await cache.flush()
    assert await backend.inner.load_prekey(7) is None
    assert await backend.inner.get_session(A) == b"built from pre-key 7"
    assert await cache.count_prekeys() == (0, 0)


async def test_flusher_coalesces_a_burst(backend: Counting) -> None:
    cache = SignalCache(backend, flush_window=0.05)  # type: ignore[arg-type]
    cache.start_flusher()
    for i in range(200):
        await cache.put_session(f"{i}@s.whatsapp.net", b"s")
        if i % 20 == 0:
            await asyncio.sleep(0)
    for _ in range(100):
        if cache.dirty_count == 0:
            break
        await asyncio.sleep(0.01)
    await cache.close()
    assert cache.dirty_count == 0
    assert 1 <= cache.flushes <= 3
    assert not cache.flusher_running


async def test_flusher_retries_after_a_failure(backend: Counting) -> None:
    cache = SignalCache(backend, flush_window=0.001)  # type: ignore[arg-type]
    backend.fail = True
    cache.start_flusher()
    await cache.put_session(A, b"s")
    while cache.failed_flushes < 2:
        await asyncio.sleep(0.01)
    backend.fail = False
    for _ in range(300):
        if cache.dirty_count == 0:
            break
        await asyncio.sleep(0.01)
    await cache.stop_flusher()
    assert await backend.inner.get_session(A) == b"s"


async def test_delete_signal_state_for_user_through_the_cache(backend: Counting) -> None:
    cache = SignalCache(backend)  # type: ignore[arg-type]
    await cache.put_session("1555:2@s.whatsapp.net", b"s")
    await cache.put_identity("1555@s.whatsapp.net", b"k" * 32)
    await cache.put_session("15556@s.whatsapp.net", b"other user")
    assert await cache.has_signal_state_for_user("1555")
    assert await cache.delete_signal_state_for_user("1555") == 2
    assert await cache.get_session("1555:2@s.whatsapp.net") is None
    assert await cache.load_identity("1555@s.whatsapp.net") is None
    assert await cache.get_session("15556@s.whatsapp.net") == b"other user"


async def test_bad_input_is_rejected_before_buffering(backend: Counting) -> None:
    cache = SignalCache(backend)  # type: ignore[arg-type]
    with pytest.raises(wastore.ValidationError):
        await cache.put_identity(A, b"short")
    with pytest.raises(wastore.ValidationError):
        await cache.put_sessions_batch([(A, b"ok"), ("", b"bad address")])
    assert cache.dirty_count == 0


async def test_manager_saver_runs_the_flusher_and_close_flushes(store: Any) -> None:
    device_id = await store.create_device()
    backend = store.backend(device_id)
    pm = await wastore.PersistenceManager.open(backend, signal_cache=True)
    assert pm.signal is pm.signal_cache
    pm.run_background_saver(interval=10.0)
    await pm.signal.put_session(A, b"via the flusher")
    for _ in range(200):
        if await backend.get_session(A) is not None:
            break
        await asyncio.sleep(0.01)
    assert await backend.get_session(A) == b"via the flusher"
    await pm.signal.put_session(B, b"via close")
    await pm.close()
    assert await backend.get_session(B) == b"via close"
    assert not any(t.get_name().startswith("wastore-cache") for t in asyncio.all_tasks())


async def test_manager_flush_flushes_the_cache(store: Any) -> None:
    backend = store.backend(await store.create_device())
    pm = await wastore.PersistenceManager.open(backend, signal_cache=True)
    await pm.signal.put_session(A, b"s")
    await pm.flush()
    assert await backend.get_session(A) == b"s"
    await pm.close()


class _SlowReads:
    """A backend whose session reads suspend after reading (as a server round trip does)."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    async def get_session(self, address: str) -> bytes | None:
        value = await self._inner.get_session(address)
        await asyncio.sleep(0.05)
        return value

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


async def test_a_load_racing_a_per_user_delete_does_not_resurrect_the_session(
    backend: Counting,
) -> None:
    await backend.inner.put_session("1@s.whatsapp.net", b"old session")
    cache = SignalCache(_SlowReads(backend.inner))  # type: ignore[arg-type]
    reading = asyncio.create_task(cache.get_session("1@s.whatsapp.net"))
    await asyncio.sleep(0.01)
    assert await cache.delete_signal_state_for_user("1") == 1
    await reading  # it read before the delete: either answer is fine for it
    assert await backend.inner.get_session("1@s.whatsapp.net") is None
    assert await cache.get_session("1@s.whatsapp.net") is None


async def test_a_load_racing_a_flush_and_eviction_does_not_cache_a_stale_value(
    backend: Counting,
) -> None:
    await backend.inner.put_session(A, b"v0")
    cache = SignalCache(_SlowReads(backend.inner), max_entries=1)  # type: ignore[arg-type]
    reading = asyncio.create_task(cache.get_session(A))  # reads v0, then waits
    await asyncio.sleep(0.01)
    await cache.put_session(A, b"v1")
    await cache.flush()
    await cache.put_session(B, b"other")  # evicts the clean A
    await cache.flush()
    await reading
    assert await cache.get_session(A) == b"v1"


async def test_session_addresses_of_a_user_see_buffered_writes_without_a_flush(
    backend: Counting,
) -> None:
    u = "15551234567"
    await backend.inner.put_session(f"{u}:1@s.whatsapp.net", b"stored")
    await backend.inner.put_session(f"{u}:2@s.whatsapp.net", b"stored")
    cache = SignalCache(backend)  # type: ignore[arg-type]
    await cache.put_session(f"{u}:3@s.whatsapp.net", b"buffered")
    await cache.delete_session(f"{u}:1@s.whatsapp.net")
    await cache.put_session("1555123456:4@s.whatsapp.net", b"another user")
    assert await cache.get_session_addresses(u) == [
        f"{u}:2@s.whatsapp.net",
        f"{u}:3@s.whatsapp.net",
    ]
    assert backend.calls["transaction"] == 0 and cache.flushes == 0  # nothing committed

    class Boom(Exception):
        pass

    async def block() -> None:
        async with cache.transaction():
            await cache.put_session(f"{u}@s.whatsapp.net", b"in the block")
            await cache.delete_session(f"{u}:2@s.whatsapp.net")
            assert await cache.get_session_addresses(u) == [
                f"{u}:3@s.whatsapp.net",
                f"{u}@s.whatsapp.net",
            ]
            # Another task sees the state without the block's writes (and does not
            # wait for the block).
            other = await asyncio.create_task(_addresses(cache, u))
            assert other == [f"{u}:2@s.whatsapp.net", f"{u}:3@s.whatsapp.net"]
            raise Boom

    with pytest.raises(Boom):
        await block()
    assert await cache.get_session_addresses(u) == [
        f"{u}:2@s.whatsapp.net",
        f"{u}:3@s.whatsapp.net",
    ]
    await cache.flush()
    assert await backend.inner.get_session_addresses(u) == [
        f"{u}:2@s.whatsapp.net",
        f"{u}:3@s.whatsapp.net",
    ]


async def _addresses(cache: SignalCache, user: str) -> list[str]:
    return await cache.get_session_addresses(user)
