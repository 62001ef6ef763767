"""The SignalCache under threads: the caller's-thread path against the event loop.

Writer threads hammer the synchronous path (SyncSignal: hits, buffered writes
and deletes, pre-key consumption, flushes) of two accounts that share one tiny
memory budget, while on the event loop the flushers flush every millisecond, a
task commits and rolls back transactions of the same caches (with flushes
inside them) and another keeps changing the budget so that entries are evicted
all the time. Then, with everything quiet:

- every thread always read back its own last write (checked as it ran);
- what the database holds equals what each thread and each committed
  transaction wrote last (rolled-back transactions left nothing);
- the budget counts exactly the bytes of the entries the caches hold, the
  shared list holds exactly the caches' clean entries, and no entry is both
  clean and dirty.

On a real SQLite file; a failing run prints the seed (``WASTORE_THREADS_SEED``
replays it).
"""

from __future__ import annotations

import asyncio
import os
import random
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from wastore.cache import ENTRY_OVERHEAD, IDENTITY, SENDER_KEY, SESSION, CacheBudget, SignalCache
from wastore.cache.budget import _cost as cost
from wastore.interop.bridge import SyncContainer, SyncSignal

pytestmark = pytest.mark.filterwarnings("error")

THREADS_PER_ACCOUNT = 3
SWITCH_INTERVAL = 1e-6
"""Seconds between the interpreter's thread switches during the test (5 ms by default:
a race of a few bytecodes would almost never show)."""
OPS = int(os.environ.get("WASTORE_THREADS_OPS", "5000"))
KEYS_PER_THREAD = 3
RECORD = 200


def address(kind: int, owner: str, n: int) -> str:
    a = f"{owner}{n}@s.whatsapp.net"
    return f"120363000000000001@g.us::{a}" if kind == SENDER_KEY else a


def value(kind: int, tag: str) -> bytes:
    if kind == IDENTITY:
        return tag.encode().ljust(32, b".")[:32]
    return tag.encode().ljust(RECORD, b"-")


class Writer(threading.Thread):
    """One thread of one account: its own addresses, a model of its last writes."""

    def __init__(self, sync: SyncSignal, owner: str, seed: int, stop: threading.Event) -> None:
        super().__init__(name=f"writer-{owner}")
        self.sync = sync
        self.owner = owner
        self.rng = random.Random(seed)
        self.stop_event = stop
        self.model: dict[tuple[int, str], bytes | None] = {}
        self.errors: list[BaseException] = []
        self.ops = 0

    def run(self) -> None:
        try:
            self._run()
        except BaseException as err:
            self.errors.append(err)

    def _read(self, kind: int, a: str) -> bytes | None:
        s = self.sync
        if kind == SESSION:
            return s.get_session(a)
        if kind == IDENTITY:
            return s.load_identity(a)
        return s.get_sender_key(a)

    def _run(self) -> None:
        s, rng = self.sync, self.rng
        for n in range(OPS):
            if self.stop_event.is_set():
                return
            kind = rng.choice((SESSION, SESSION, IDENTITY, SENDER_KEY))
            a = address(kind, self.owner, rng.randrange(KEYS_PER_THREAD))
            roll = rng.random()
            if roll < 0.55:
                v = value(kind, f"{self.owner}:{n}")
                if kind == SESSION:
                    s.put_session(a, v)
                elif kind == IDENTITY:
                    s.put_identity(a, v)
                else:
                    s.put_sender_key(a, v)
                self.model[(kind, a)] = v
            elif roll < 0.65:
                if kind == SESSION:
                    s.delete_session(a)
                elif kind == IDENTITY:
                    s.delete_identity(a)
                else:
                    s.delete_sender_key(a)
                self.model[(kind, a)] = None
            elif roll < 0.67:
                s.remove_prekey(rng.randrange(1, 50))
            elif roll < 0.70:
                s.flush()
            # Read-your-writes, whatever the loop did meanwhile (flushed, evicted).
            got = self._read(kind, a)
            want = self.model.get((kind, a))
            assert got == want, (self.owner, n, kind, a, got, want)
            self.ops += 1


async def loop_traffic(
    caches: list[SignalCache], budget: CacheBudget, seed: int, stop: asyncio.Event
) -> dict[tuple[int, int, str], bytes | None]:
    """Transactions (committed or rolled back, flushing inside) and budget changes."""
    rng = random.Random(seed)
    committed: dict[tuple[int, int, str], bytes | None] = {}

    class Rollback(Exception):
        pass

    n = 0
    while not stop.is_set():
        n += 1
        i = rng.randrange(len(caches))
        cache = caches[i]
        writes: dict[tuple[int, int, str], bytes | None] = {}
        try:
            async with cache.transaction():
                for _ in range(rng.randrange(1, 5)):
                    kind = rng.choice((SESSION, IDENTITY))
                    a = address(kind, f"txn{i}-", rng.randrange(6))
                    v = None if rng.random() < 0.2 else value(kind, f"txn{i}:{n}")
                    if kind == SESSION:
                        await (cache.delete_session(a) if v is None else cache.put_session(a, v))
                    else:
                        await (cache.delete_identity(a) if v is None else cache.put_identity(a, v))
                    writes[(i, kind, a)] = v
                    if rng.random() < 0.3:
                        await cache.flush()  # into the transaction
                    await asyncio.sleep(0)  # let the threads in
                if rng.random() < 0.3:
                    raise Rollback
        except Rollback:
            pass
        else:
            committed.update(writes)
        if rng.random() < 0.3:
            # Tighter, then back: evicts clean entries of both accounts at once.
            budget.max_bytes = rng.choice((2, 6, 12, 40)) * (ENTRY_OVERHEAD + RECORD)
        await asyncio.sleep(rng.random() * 0.002)
    return committed


def check_accounting(caches: list[SignalCache], budget: CacheBudget) -> None:
    with budget._lock:
        held = 0
        clean_keys: set[Any] = set()
        for c in caches:
            for key, (v, _) in c._dirty.items():
                assert key not in budget._clean, f"{key} is clean and dirty"
                held += cost(key, v)
            clean_keys |= c._clean_keys
        assert clean_keys == set(budget._clean), "the shared list and the caches disagree"
        held += sum(cost(k, v) for k, v in budget._clean.items())
        assert budget.used == held, (budget.used, held)


@pytest.fixture
def switch_often() -> Iterator[None]:
    before = sys.getswitchinterval()
    sys.setswitchinterval(SWITCH_INTERVAL)
    try:
        yield
    finally:
        sys.setswitchinterval(before)


@pytest.mark.usefixtures("switch_often")
def test_threads_on_the_sync_path_while_the_loop_flushes_evicts_and_commits(
    tmp_path: Path,
) -> None:
    seed = int(os.environ.get("WASTORE_THREADS_SEED", str(random.randrange(2**32))))
    print(f"seed {seed} (replay with WASTORE_THREADS_SEED={seed})")
    container = SyncContainer.open(f"sqlite:///{tmp_path}/threads.db")
    try:
        budget = CacheBudget(16 * (ENTRY_OVERHEAD + RECORD))
        accounts = []
        for _ in range(2):
            device_id = container.create_device()
            pm = container.open_manager(device_id)

            async def make(pm: Any = pm) -> SignalCache:
                cache = SignalCache(pm.backend, max_entries=24, flush_window=0.001, budget=budget)
                # The pre-keys the writers consume exist (their removal is committed).
                await pm.backend.store_prekeys_batch([(i, b"pk") for i in range(1, 50)], True)
                await cache.put_session("setup@s.whatsapp.net", b"x")  # checks the account
                cache.start_flusher()
                return cache

            accounts.append((pm, container.run(make())))
        caches = [c for _, c in accounts]

        stop_threads = threading.Event()
        writers = [
            Writer(
                SyncSignal(container.bridge, cache), f"t{a}{t}-", seed + 10 * a + t, stop_threads
            )
            for a, cache in enumerate(caches)
            for t in range(THREADS_PER_ACCOUNT)
        ]
        loop_stop = asyncio.Event()

        async def start_loop_traffic() -> asyncio.Task[Any]:
            return asyncio.ensure_future(loop_traffic(caches, budget, seed, loop_stop))

        traffic = container.run(start_loop_traffic())
        started = time.monotonic()
        for w in writers:
            w.start()
        for w in writers:
            w.join(300)
            assert not w.is_alive(), "a writer thread hangs"
        stop_threads.set()

        async def finish() -> dict[tuple[int, int, str], bytes | None]:
            loop_stop.set()
            done: dict[tuple[int, int, str], bytes | None] = await traffic
            return done

        committed = container.run(finish())
        elapsed = time.monotonic() - started
        errors = [e for w in writers for e in w.errors]
        assert not errors, f"seed {seed}: {errors[0]!r}"
        assert sum(w.ops for w in writers) == OPS * len(writers)

        # Quiet now: flush, then compare the database with the models.
        for cache in caches:
            container.run(cache.stop_flusher())
            container.run(cache.flush())
        check_accounting(caches, budget)
        for a, (pm, _) in enumerate(accounts):
            b = pm.backend
            for w in writers[a * THREADS_PER_ACCOUNT : (a + 1) * THREADS_PER_ACCOUNT]:
                for (kind, addr), want in w.model.items():
                    got = container.run(_committed(b, kind, addr))
                    assert got == want, (seed, w.owner, kind, addr)
            for (i, kind, addr), want in committed.items():
                if i == a:
                    assert container.run(_committed(b, kind, addr)) == want, (seed, kind, addr)
            assert container.run(b.count_prekeys())[0] < 49  # some were consumed, durably
        assert budget.evictions > 0, "the budget never evicted: the test did not stress it"
        assert sum(c.flushes for c in caches) > 10
        print(f"{OPS * len(writers)} thread ops in {elapsed:.1f}s, {budget.evictions} evictions")
        for pm, cache in accounts:
            container.run(cache.close())
            container.run(pm.close())
    finally:
        container.close()


async def _committed(backend: Any, kind: int, addr: str) -> bytes | None:
    if kind == SESSION:
        got: bytes | None = await backend.get_session(addr)
    elif kind == IDENTITY:
        got = await backend.load_identity(addr)
    else:
        got = await backend.get_sender_key(addr)
    return got
