"""SyncSignal: a SignalCache served on the caller's thread, one loop hop per flush.

Every test counts the round trips to the store's event loop (``LoopBridge.call``)
and checks what the database itself holds (the backend, not the cache).
"""

from __future__ import annotations

import threading
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any

import pytest

import wastore
from wastore import StoreError, ValidationError
from wastore.cache import IDENTITY, SESSION, SignalCache
from wastore.interop.bridge import LoopBridge, SyncContainer, SyncSignal, WrongThreadError

pytestmark = pytest.mark.filterwarnings("error")

A = "15550000001@s.whatsapp.net"
B = "15550000002:3@s.whatsapp.net"
G = "120363000000000001@g.us::15550000001@s.whatsapp.net"
KEY = bytes(range(32))


class Hops:
    """Counts the coroutines a bridge runs on its loop, by name."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.names: list[str] = []
        real = LoopBridge.call

        def call(bridge: LoopBridge, coro: Coroutine[Any, Any, Any]) -> Any:
            self.names.append(getattr(coro, "__qualname__", "?"))
            return real(bridge, coro)

        monkeypatch.setattr(LoopBridge, "call", call)

    def take(self) -> list[str]:
        out, self.names = self.names, []
        return out


class Account:
    def __init__(self, container: SyncContainer, *, cache: bool = True, **opts: Any) -> None:
        self.container = container
        self.device_id = container.create_device()
        self.pm = container.open_manager(self.device_id, signal_cache=cache, **opts)
        self.sync = SyncSignal(container.bridge, self.pm)

    @property
    def backend(self) -> wastore.Backend:
        return self.pm.backend

    def committed_session(self, address: str) -> bytes | None:
        """What the database holds (the backend, not the cache)."""
        return self.container.run(self.backend.get_session(address))

    def close(self) -> None:
        self.container.run(self.pm.close())


@pytest.fixture(params=["sqlite", "memory"])
def container(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SyncContainer]:
    url = f"sqlite:///{tmp_path}/sync.db" if request.param == "sqlite" else "memory://"
    c = SyncContainer.open(url)
    yield c
    c.close()


def test_hits_and_writes_take_no_hop_and_a_flush_takes_one(
    container: SyncContainer, monkeypatch: pytest.MonkeyPatch
) -> None:
    acct = Account(container)
    s = acct.sync
    hops = Hops(monkeypatch)
    s.put_session(A, b"first")  # the manager checked the account when it opened it
    assert hops.take() == []
    assert s.get_session(B) is None  # a miss: loaded on the loop (and cached as absent)
    assert hops.take() == ["SignalCache.get_session"]

    for n in range(50):
        assert s.get_session(A) == (b"first" if n == 0 else b"m%d" % (n - 1))
        assert s.has_session(A)
        assert not s.has_session(B)
        s.put_session(A, b"m%d" % n)
        s.put_identity(A, KEY)
        assert s.load_identity(A) == KEY
        s.put_sender_key(G, b"sk%d" % n)
        assert s.get_sender_key(G) == b"sk%d" % n
    assert hops.take() == []  # all on the caller's thread
    assert s.pending
    assert acct.committed_session(A) is None  # buffered, not committed
    hops.take()

    s.flush()
    assert hops.take() == ["SyncSignal._flush"]
    assert not s.pending
    assert acct.committed_session(A) == b"m49"
    assert container.run(acct.backend.load_identity(A)) == KEY
    assert container.run(acct.backend.get_sender_key(G)) == b"sk49"
    hops.take()
    s.flush()  # nothing pending: no hop at all
    assert hops.take() == []

    s.delete_session(A)
    s.delete_identity(A)
    s.delete_sender_key(G)
    assert s.get_session(A) is None and s.load_identity(A) is None
    assert hops.take() == []
    s.flush()
    assert hops.take() == ["SyncSignal._flush"]
    assert acct.committed_session(A) is None
    acct.close()


def test_the_flusher_commits_and_the_barrier_then_costs_nothing(
    container: SyncContainer, monkeypatch: pytest.MonkeyPatch
) -> None:
    acct = Account(container, background_saver=30.0)
    s = acct.sync
    s.put_session(A, b"one")  # first write (on the loop), wakes the flusher
    s.put_session(A, b"two")
    _wait_committed(s)
    assert acct.committed_session(A) == b"two"
    hops = Hops(monkeypatch)
    # Buffered on this thread (not the loop's): it wakes the flusher through the loop.
    s.put_session(A, b"three")
    assert hops.take() == []
    _wait_committed(s)
    assert acct.committed_session(A) == b"three"
    hops.take()
    s.flush()  # the flusher committed everything: the barrier needs no hop
    assert hops.take() == []
    acct.close()


def _wait_committed(s: SyncSignal) -> None:
    for _ in range(500):
        if not s.pending:
            return
        threading.Event().wait(0.01)
    raise AssertionError("the flusher did not commit within 5 s")


def test_writes_past_the_bound_flush_on_the_loop_first(
    container: SyncContainer, monkeypatch: pytest.MonkeyPatch
) -> None:
    device_id = container.create_device()
    pm = container.open_manager(device_id)
    cache = container.run(_cache(pm, max_entries=4))
    s = SyncSignal(container.bridge, cache)
    hops = Hops(monkeypatch)
    for n in range(10):
        s.put_session(f"{n}@s.whatsapp.net", b"r%d" % n)
    names = hops.take()
    # The first write checks the account; a write that finds 4 dirty entries
    # goes to the loop, which flushes first (back-pressure).
    assert names[0] == "SignalCache.put_session"
    assert names.count("SignalCache.put_session") == 3, names
    assert cache.dirty_count <= 4
    committed = container.run(pm.backend.get_sessions([f"{n}@s.whatsapp.net" for n in range(8)]))
    assert len(committed) == 8
    hops.take()
    s.flush()
    assert hops.take() == ["SyncSignal._flush"]
    assert container.run(pm.backend.get_session("9@s.whatsapp.net")) == b"r9"
    container.run(cache.close())
    container.run(pm.close())


async def _cache(pm: wastore.PersistenceManager, **opts: Any) -> SignalCache:
    return SignalCache(pm.backend, **opts)


def test_bad_input_is_refused_on_the_caller_thread_and_nothing_is_buffered(
    container: SyncContainer,
) -> None:
    acct = Account(container)
    s = acct.sync
    s.put_session(A, b"x")
    s.flush()
    with pytest.raises(ValidationError):
        s.put_session("", b"x")
    with pytest.raises(ValidationError):
        s.put_session(A, "not bytes")  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        s.put_identity(A, b"short")
    with pytest.raises(ValidationError):
        s.get_session(123)  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        s.remove_prekey(-1)
    assert not s.pending
    assert s.get_session(A) == b"x"
    acct.close()


def test_on_the_loop_thread_every_call_is_refused_hit_or_miss(container: SyncContainer) -> None:
    acct = Account(container)
    s = acct.sync
    s.put_session(A, b"x")

    async def on_the_loop(fn: Any) -> None:
        fn()

    for fn in (lambda: s.get_session(A), lambda: s.get_session(B), lambda: s.put_session(A, b"y")):
        with pytest.raises(WrongThreadError):
            container.run(on_the_loop(fn))
    assert s.get_session(A) == b"x"
    acct.close()


def test_inside_a_held_transaction_calls_belong_to_it(container: SyncContainer) -> None:
    acct = Account(container)
    s = acct.sync
    b = container.bridge
    s.put_session(A, b"before")
    s.flush()

    class Boom(Exception):
        pass

    def block() -> None:
        with b.held(acct.pm.transaction()):
            s.put_session(A, b"rolled back")
            s.put_session(B, b"rolled back")
            assert s.get_session(A) == b"rolled back"  # the block sees its own writes
            raise Boom

    with pytest.raises(Boom):
        block()
    assert s.get_session(A) == b"before"
    assert s.get_session(B) is None
    assert not s.pending

    with b.held(acct.pm.transaction()):
        s.put_session(B, b"kept")
        s.remove_prekey(7)
    # Committed with the block: durable, clean.
    assert not s.pending
    assert acct.committed_session(B) == b"kept"
    acct.close()


def test_after_the_store_closed_nothing_is_buffered(tmp_path: Path) -> None:
    c = SyncContainer.open(f"sqlite:///{tmp_path}/closed.db")
    acct = Account(c)
    s = acct.sync
    s.put_session(A, b"x")
    s.flush()
    acct.close()
    c.close()
    with pytest.raises(StoreError):
        s.put_session(A, b"lost?")
    with pytest.raises(StoreError):
        s.get_session(B)
    # A hit is not served either once the loop is gone: the answer could be stale.
    with pytest.raises(StoreError):
        s.get_session(A)


def test_without_a_cache_every_call_commits_on_its_own(
    container: SyncContainer, monkeypatch: pytest.MonkeyPatch
) -> None:
    acct = Account(container, cache=False)
    s = acct.sync
    assert s.cache is None
    hops = Hops(monkeypatch)
    s.put_session(A, b"x")
    assert len(hops.take()) == 1  # one round trip, committed when it returns
    assert acct.committed_session(A) == b"x"
    hops.take()
    assert s.get_session(A) == b"x"
    assert len(hops.take()) == 1
    assert not s.pending
    s.flush()  # nothing to do
    assert hops.take() == []
    acct.close()


def test_threads_share_one_cache(container: SyncContainer) -> None:
    """Several threads at once, each writing its own addresses and reading them back."""
    acct = Account(container)
    s = acct.sync
    s.put_identity(A, KEY)  # the first write checks the account
    errors: list[BaseException] = []

    def worker(t: int) -> None:
        try:
            for n in range(300):
                address = f"{t}{n % 7}@s.whatsapp.net"
                s.put_session(address, b"%d:%d" % (t, n))
                got = s.get_session(address)
                assert got == b"%d:%d" % (t, n), (address, got)
                if n % 50 == 0:
                    s.flush()
        except BaseException as err:  # pragma: no cover - reported below
            errors.append(err)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(1, 5)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)
    assert not errors, errors
    s.flush()
    for t in range(1, 5):
        for k in range(7):
            last = max(n for n in range(300) if n % 7 == k)
            assert acct.committed_session(f"{t}{k}@s.whatsapp.net") == b"%d:%d" % (t, last)
    acct.close()


def test_peek_and_buffer_of_the_cache(container: SyncContainer) -> None:
    acct = Account(container)
    cache = acct.pm.signal_cache
    assert cache is not None
    fresh = container.run(_cache(acct.pm))
    assert fresh.buffer(SESSION, A, b"x") is False  # its account was not checked yet
    assert not fresh.pending
    container.run(fresh.put_session(A, b"x"))  # the async method checks it
    assert fresh.buffer(SESSION, A, b"x2") is True
    container.run(fresh.close())
    assert cache.buffer(SESSION, A, b"y") is True
    assert cache.peek(SESSION, A) == (True, b"y")
    assert cache.peek(IDENTITY, A) == (False, None)
    with pytest.raises(ValidationError):
        cache.peek(9, A)
    assert cache.pending
    acct.sync.flush()
    assert not cache.pending
    acct.close()
