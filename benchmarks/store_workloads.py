"""W1d, W1c, W2, W3 and W4 through wastore's public API (any Container).

Every W1 operation ends with ``await asyncio.sleep(0)``: a client yields to
the event loop between two messages (it awaits the network), and that is when
the SignalCache's flusher and the store's background work get to run. The
raw-driver peers do not yield (raw-sqlite3 has no event loop at all).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from wastore.cache import SignalCache
from wastore.contract import Backend, Container
from wastore.values import MutationMAC

from .config import Sizes
from .data import W1Data, W2Data, W3Data, W4Data, sender_key_address
from .measure import Runner

APP_STATE_COLLECTION = "regular"


@dataclass
class Data:
    """The data sets of one harness run (built once, shared by every implementation)."""

    sizes: Sizes
    w1: W1Data
    w2: W2Data
    w3: W3Data
    w4: W4Data

    @classmethod
    def make(cls, sizes: Sizes) -> Data:
        return cls(
            sizes, W1Data.make(sizes), W2Data.make(sizes), W3Data.make(sizes), W4Data.make(sizes)
        )


@dataclass
class Accounts:
    """The device ids of the accounts prepared for each workload."""

    w1: int
    w2: int
    w3: int
    w4: int


async def prepare(container: Container, data: Data) -> Accounts:
    """Create one account per workload and pre-fill W1's peers and W2's group (not timed)."""
    ids = [await container.create_device() for _ in range(4)]
    acc = Accounts(*ids)
    b1 = container.backend(acc.w1)
    w1 = data.w1
    step = 500
    for i in range(0, len(w1.addresses), step):
        await b1.put_identities_batch(
            list(zip(w1.addresses[i : i + step], w1.identities[i : i + step], strict=True))
        )
        await b1.put_sessions_batch(
            list(zip(w1.addresses[i : i + step], w1.sessions[i : i + step], strict=True))
        )
    b2 = container.backend(acc.w2)
    w2 = data.w2
    await b2.put_sessions_batch(list(zip(w2.members, w2.sessions, strict=True)))
    await b2.put_sender_key(sender_key_address(), w2.sender_key)
    return acc


class W1d(Runner):
    workload = "W1d"

    def __init__(self, impl: str, b: Backend, data: Data, ops: int) -> None:
        super().__init__(impl, ops)
        self.b = b
        self.warm = data.w1.ops(data.sizes.w1_warmup, offset=ops)
        self.seq = data.w1.ops(ops)

    async def run(self, rep: int) -> None:
        b = self.b
        load_identity, get_session, put_session = b.load_identity, b.get_session, b.put_session
        sleep = asyncio.sleep
        for a, rec in self.warm if rep < 0 else self.seq:
            await load_identity(a)
            await get_session(a)
            await put_session(a, rec)
            await sleep(0)

    async def check(self) -> None:
        a, rec = self.seq[-1]
        if await self.b.get_session(a) != rec:
            raise AssertionError("W1d did not store the last session")


class W1c(W1d):
    """W1 through a SignalCache, warmed (like W1d's page cache) by the warm-up run.

    The cache outlives the runs, as it outlives the messages of a running client;
    every run ends with a flush, so each starts with nothing dirty.
    """

    workload = "W1c"

    def __init__(
        self, impl: str, b: Backend, data: Data, ops: int, window: float | None = None
    ) -> None:
        super().__init__(impl, b, data, ops)
        self.window = window
        self.cache: SignalCache | None = None
        self.flushes_before = 0
        self.result.extra["flushes_per_run"] = []

    async def before(self, rep: int) -> None:
        if self.cache is None:
            if self.window is None:
                self.cache = SignalCache(self.b)
            else:
                self.cache = SignalCache(self.b, flush_window=self.window)
        self.cache.start_flusher()

    async def run(self, rep: int) -> None:
        cache = self.cache
        assert cache is not None
        load_identity, get_session, put_session = (
            cache.load_identity,
            cache.get_session,
            cache.put_session,
        )
        sleep = asyncio.sleep
        for a, rec in self.warm if rep < 0 else self.seq:
            await load_identity(a)
            await get_session(a)
            await put_session(a, rec)
            await sleep(0)
        await cache.flush()

    async def after(self, rep: int) -> None:
        assert self.cache is not None
        await self.cache.stop_flusher()
        if rep >= 0:
            self.result.extra["flushes_per_run"].append(self.cache.flushes - self.flushes_before)
        self.flushes_before = self.cache.flushes


class WalWatch:
    """Samples the size of a ``-wal`` file every millisecond on a thread: its peak."""

    def __init__(self, db: Path) -> None:
        self.wal = f"{db}-wal"
        self.peak = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self.peak = 0
        self._stop.clear()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def stop(self) -> int:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        return self.peak

    def _watch(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(OSError):
                self.peak = max(self.peak, os.stat(self.wal).st_size)
            time.sleep(0.001)


def w1w_ops(data: Data, rep: int) -> list[tuple[str, bytes]]:
    """W1w's writes of one run: new peers (never written before), W1's records."""
    recs = data.w1.sessions
    return [
        (f"9{rep + 2:02d}{i:08d}@s.whatsapp.net", recs[i % len(recs)])
        for i in range(data.sizes.w1w_ops)
    ]


class W1w(Runner):
    """Sustained writes: one committed ``put_session`` after another, never yielding to
    the event loop (the worst case for the WAL), and the peak size of the ``-wal``."""

    workload = "W1w"

    def __init__(self, impl: str, b: Backend, data: Data, db: Path) -> None:
        super().__init__(impl, data.sizes.w1w_ops)
        self.b = b
        self.data = data
        self.watch = WalWatch(db)
        self.result.extra["peak_wal_mib"] = []

    async def before(self, rep: int) -> None:
        self.ops_now = w1w_ops(self.data, rep)
        self.watch.start()

    async def run(self, rep: int) -> None:
        put_session = self.b.put_session
        for a, rec in self.ops_now:
            await put_session(a, rec)

    async def after(self, rep: int) -> None:
        peak = self.watch.stop()
        if rep >= 0:
            self.result.extra["peak_wal_mib"].append(round(peak / 2**20, 1))


class W2(Runner):
    workload = "W2"

    def __init__(self, impl: str, b: Backend, data: Data) -> None:
        super().__init__(impl, data.sizes.w2_fanouts)
        self.b = b
        self.members = data.w2.members
        self.fanouts = [data.w2.fanout(k) for k in range(3)]
        self.sender_keys = data.w2.sender_keys

    async def run(self, rep: int) -> None:
        b = self.b
        sk_addr = sender_key_address()
        for k in range(1 if rep < 0 else self.ops):
            found = await b.get_sessions(self.members)
            await b.put_sessions_batch(self.fanouts[k % 3])
            await b.get_sender_key(sk_addr)
            await b.put_sender_key(sk_addr, self.sender_keys[k % 3])
            if len(found) != len(self.members):
                raise AssertionError(f"W2 found {len(found)} of {len(self.members)} sessions")


class W3Base(Runner):
    """W3 for any implementation: the refill batches of a run, prepared untimed
    (each cycle uses new pre-key ids, as a client's refills do)."""

    workload = "W3"

    def __init__(self, impl: str, data: Data) -> None:
        super().__init__(impl, data.sizes.w3_cycles)
        self.data = data
        self.cycle = 0
        self.batches: list[list[tuple[int, bytes]]] = []

    async def before(self, rep: int) -> None:
        self.batches = []
        for _ in range(1 if rep < 0 else self.ops):
            self.batches.append(self.data.w3.batch(self.cycle))
            self.cycle += 1


class W3(W3Base):
    def __init__(self, impl: str, b: Backend, data: Data) -> None:
        super().__init__(impl, data)
        self.b = b

    async def run(self, rep: int) -> None:
        b = self.b
        for batch in self.batches:
            ids = [i for i, _ in batch]
            await b.store_prekeys_batch(batch, False)
            await b.mark_prekeys_uploaded(ids)
            for i in ids:
                await b.load_prekey(i)
                await b.remove_prekey(i)

    async def check(self) -> None:
        if await self.b.count_prekeys() != (0, 0):
            raise AssertionError("W3 left pre-keys behind")


class W4(Runner):
    workload = "W4"

    def __init__(self, impl: str, b: Backend, data: Data) -> None:
        super().__init__(impl, 1)
        self.b = b
        sizes = data.sizes
        d = data.w4
        n = sizes.w4_batch
        self.batches = [
            [
                MutationMAC(i, m)
                for i, m in zip(d.index_macs[k : k + n], d.value_macs[k : k + n], strict=True)
            ]
            for k in range(0, len(d.index_macs), n)
        ]
        self.lookups = d.lookups
        self.half = sizes.w4_get_size // 2

    async def before(self, rep: int) -> None:
        await self.b.clear_mutation_macs(APP_STATE_COLLECTION)

    async def run(self, rep: int) -> None:
        b = self.b
        for version, batch in enumerate(self.batches, start=1):
            await b.put_mutation_macs(APP_STATE_COLLECTION, version, batch)
        for lookup in self.lookups:
            found = await b.get_mutation_macs(APP_STATE_COLLECTION, lookup)
            if len(found) != self.half:
                raise AssertionError(f"W4 found {len(found)} MACs, expected {self.half}")


def runners(
    impl: str, container: Container, acc: Accounts, data: Data, wanted: set[str], w1_ops: int
) -> dict[str, list[Runner]]:
    """This implementation's runners, by workload (W1c is grouped with W1d)."""
    out: dict[str, list[Runner]] = {}
    if "W1d" in wanted:
        out.setdefault("W1", []).append(W1d(impl, container.backend(acc.w1), data, w1_ops))
    if "W1c" in wanted:
        out.setdefault("W1", []).append(W1c(impl, container.backend(acc.w1), data, w1_ops))
    db = getattr(container, "path", None)
    if "W1w" in wanted and isinstance(db, Path):
        out["W1w"] = [W1w(impl, container.backend(acc.w1), data, db)]
    if "W2" in wanted:
        out["W2"] = [W2(impl, container.backend(acc.w2), data)]
    if "W3" in wanted:
        out["W3"] = [W3(impl, container.backend(acc.w3), data)]
    if "W4" in wanted:
        out["W4"] = [W4(impl, container.backend(acc.w4), data)]
    return out
