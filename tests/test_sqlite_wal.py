"""The WAL stays bounded under sustained writes (issue 14, point 5).

Writers that commit one row at a time at full speed, never yielding to the
event loop, with batches in between: the ``-wal`` file must stay under
:data:`~wastore.backends.sqlite.connections.WAL_LIMIT` (64 MiB) while the database
keeps growing, and every checkpoint must run on the worker thread, never on
the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import threading
import time
from pathlib import Path

import pytest

import wastore
from wastore.backends.sqlite import SqliteStore
from wastore.backends.sqlite.checkpoints import AHEAD_OF_CHECKPOINT
from wastore.backends.sqlite.connections import WAL_LIMIT

pytestmark = pytest.mark.slow

RECORD = os.urandom(1200)


class Watch:
    """The peak size of a file, sampled every millisecond on a thread."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Watch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(OSError):
                self.peak = max(self.peak, os.stat(self.path).st_size)
            time.sleep(0.001)


async def test_the_wal_stays_bounded_under_sustained_one_row_commits(tmp_path: Path) -> None:
    db = tmp_path / "wa.db"
    store = await wastore.open_store(db)
    assert isinstance(store, SqliteStore)
    engine = store.engine
    # Which threads run a checkpoint. Recorded by wrapping the engine's checkpoint call,
    # not with a SQLite trace callback: a Python callback on the worker's connection
    # needs the GIL while that connection's mutex is held, and changing the callback
    # from the loop while a checkpoint runs deadlocks the two threads.
    checkpoint_threads: set[str] = set()
    passive = engine._passive

    def recorded() -> tuple[int, int]:
        checkpoint_threads.add(threading.current_thread().name)
        return passive()

    engine._passive = recorded  # type: ignore[method-assign]
    written = 0
    async with store:
        b = store.backend(await store.create_device())
        with Watch(f"{db}-wal") as watch:
            t0 = time.monotonic()
            n = 0
            # Never yields to the event loop: every put_session commits inline.
            # 100,000 commits take ~7 s here; the cap only ends a run on a far slower machine.
            while written < 400 * 2**20 and time.monotonic() - t0 < 300:
                for _ in range(1000):
                    await b.put_session(f"{n}@s.whatsapp.net", RECORD)
                    n += 1
                written += 1000 * 4096  # at least a page a commit goes through the WAL
                if n % 20_000 == 0:
                    await b.put_sessions_batch(
                        [(f"b{n}-{i}@s.whatsapp.net", RECORD) for i in range(2000)]
                    )
        # The writer never checkpoints on commit (on the event loop).
        assert engine._w is not None
        assert engine._w.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
    size = db.stat().st_size
    assert n >= 100_000, f"only {n} commits: the test did not write enough to tell"
    assert size > 100 * 2**20, "the database did not grow as expected"
    assert watch.peak < WAL_LIMIT, (
        f"the -wal file reached {watch.peak / 2**20:.1f} MiB after {n} commits "
        f"(database {size / 2**20:.0f} MiB)"
    )
    assert checkpoint_threads and all(t.startswith("wastore-sqlite") for t in checkpoint_threads)
    # Everything is there.
    check = sqlite3.connect(db)
    assert check.execute("SELECT COUNT(*) FROM wastore_sessions").fetchone()[0] == n + 2000 * (
        n // 20_000
    )
    check.close()


async def test_the_wal_stays_bounded_with_a_reader_task_and_yields(tmp_path: Path) -> None:
    db = tmp_path / "wa.db"
    async with await wastore.open_store(db) as c:
        b = c.backend(await c.create_device())
        stop = False

        async def reader() -> None:
            i = 0
            while not stop:
                await b.get_session(f"{i % 5000}@s.whatsapp.net")
                i += 1
                await asyncio.sleep(0)

        task = asyncio.create_task(reader())
        with Watch(f"{db}-wal") as watch:
            for n in range(120_000):
                await b.put_session(f"{n}@s.whatsapp.net", RECORD)
                await asyncio.sleep(0)
        stop = True
        await task
    assert watch.peak < WAL_LIMIT, f"the -wal file reached {watch.peak / 2**20:.1f} MiB"


async def test_a_slow_checkpoint_holds_the_writers_back(tmp_path: Path) -> None:
    """A checkpoint slowed down (a busy disk, a starved worker thread) must not let the
    writer run ahead of it: a writer that commits 25,000 rows a second made the WAL
    230 MiB while checkpoints took half a second each. At most AHEAD_OF_CHECKPOINT
    commits are made while one runs; then the next write waits and completes one."""
    db = tmp_path / "wa.db"
    store = await wastore.open_store(db)
    engine = store.engine
    passive = engine._passive
    n = 0
    during: list[int] = []  # commits made while each checkpoint ran

    def slow() -> tuple[int, int]:
        start = n
        time.sleep(0.2)
        during.append(n - start)
        return passive()

    engine._passive = slow  # type: ignore[method-assign]
    async with store:
        b = store.backend(await store.create_device())
        with Watch(f"{db}-wal") as watch:
            while n < 8000:  # never yields to the event loop but for the checkpoints
                await b.put_session(f"{n}@s.whatsapp.net", RECORD)
                n += 1
    assert len(during) >= 4, during
    assert max(during) <= AHEAD_OF_CHECKPOINT, during
    assert watch.peak < WAL_LIMIT
