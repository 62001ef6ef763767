"""How should an asyncio store talk to SQLite?  Measure the designs side by side.

W1d (inbound DM, durable): load_identity + get_session + put_session (committed
before the call returns) for a peer drawn from 2,000, on a WAL database with
synchronous=NORMAL. Each design runs the same statements:

- raw:        synchronous sqlite3 in one thread, no asyncio (the limit);
- inline:     coroutines that call sqlite3 directly on the event-loop thread;
- to_thread:  every statement handed to a worker thread (asyncio.to_thread);
- one_hop:    the three statements of one operation handed over in one hop;
- queue:      a dedicated writer thread fed through a queue, one hop per call.

It also runs a ticker task beside the inline design and reports the worst
event-loop stall seen while W1d runs (with checkpoints kept off the loop).

    python benchmarks/sqlite_designs.py [--ops 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import queue
import random
import sqlite3
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

PEERS = 2000
RECORD = 1200

SCHEMA = """
CREATE TABLE identities (device_id INTEGER, address TEXT, key BLOB,
    PRIMARY KEY (device_id, address)) WITHOUT ROWID;
CREATE TABLE sessions (device_id INTEGER, address TEXT, record BLOB,
    PRIMARY KEY (device_id, address)) WITHOUT ROWID;
"""
Q_ID = "SELECT key FROM identities WHERE device_id = ?1 AND address = ?2"
Q_GET = "SELECT record FROM sessions WHERE device_id = ?1 AND address = ?2"
Q_PUT = (
    "INSERT INTO sessions (device_id, address, record) VALUES (?1, ?2, ?3) "
    "ON CONFLICT (device_id, address) DO UPDATE SET record = excluded.record"
)


def make_db(path: str) -> None:
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    con.executescript(SCHEMA)
    rnd = random.Random(1)
    con.execute("BEGIN")
    for i in range(PEERS):
        a = f"{1000000 + i}@s.whatsapp.net"
        con.execute("INSERT INTO identities VALUES (1, ?, ?)", (a, rnd.randbytes(32)))
        con.execute("INSERT INTO sessions VALUES (1, ?, ?)", (a, rnd.randbytes(RECORD)))
    con.execute("COMMIT")
    con.close()


def connect(path: str, *, autockpt: bool = True) -> sqlite3.Connection:
    con = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    con.execute("PRAGMA synchronous=NORMAL")
    if not autockpt:
        con.execute("PRAGMA wal_autocheckpoint=0")
    return con


def workload(n: int) -> list[tuple[str, bytes]]:
    rnd = random.Random(2)
    return [
        (f"{1000000 + rnd.randrange(PEERS)}@s.whatsapp.net", rnd.randbytes(RECORD))
        for _ in range(n)
    ]


def raw(path: str, ops: list[tuple[str, bytes]]) -> float:
    con = connect(path)
    t = time.perf_counter()
    for a, rec in ops:
        con.execute(Q_ID, (1, a)).fetchone()
        con.execute(Q_GET, (1, a)).fetchone()
        con.execute(Q_PUT, (1, a, rec))
    el = time.perf_counter() - t
    con.close()
    return len(ops) / el


def inline(
    path: str,
    ops: list[tuple[str, bytes]],
    stall: list[float] | None = None,
    offload_checkpoints: bool = False,
) -> float:
    async def main() -> float:
        r = connect(path)
        w = connect(path, autockpt=not offload_checkpoints)
        lock = asyncio.Lock()
        ckpt = connect(path) if offload_checkpoints else None
        pool = None
        commits = 0

        async def load_identity(a: str) -> Any:
            return r.execute(Q_ID, (1, a)).fetchone()

        async def get_session(a: str) -> Any:
            return r.execute(Q_GET, (1, a)).fetchone()

        async def put_session(a: str, rec: bytes) -> None:
            nonlocal commits, pool
            async with lock:
                w.execute(Q_PUT, (1, a, rec))
            commits += 1
            if ckpt is not None and commits % 1000 == 0 and (pool is None or pool.done()):
                pool = asyncio.get_running_loop().run_in_executor(
                    None, lambda: ckpt.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                )

        stop = False

        async def ticker() -> None:
            last = time.perf_counter()
            while not stop:
                await asyncio.sleep(0)
                now = time.perf_counter()
                assert stall is not None
                stall.append(now - last)
                last = now

        tick = asyncio.create_task(ticker()) if stall is not None else None
        t = time.perf_counter()
        for a, rec in ops:
            await load_identity(a)
            await get_session(a)
            await put_session(a, rec)
            if tick is not None:
                await asyncio.sleep(0)  # a real client awaits I/O between messages
        el = time.perf_counter() - t
        stop = True
        if tick is not None:
            await tick
        if pool is not None:
            await pool
        return len(ops) / el

    return asyncio.run(main())


def to_thread(path: str, ops: list[tuple[str, bytes]]) -> float:
    async def main() -> float:
        w = connect(path)
        t = time.perf_counter()
        for a, rec in ops:
            await asyncio.to_thread(w.execute, Q_ID, (1, a))
            await asyncio.to_thread(w.execute, Q_GET, (1, a))
            await asyncio.to_thread(w.execute, Q_PUT, (1, a, rec))
        return len(ops) / (time.perf_counter() - t)

    return asyncio.run(main())


def one_hop(path: str, ops: list[tuple[str, bytes]]) -> float:
    async def main() -> float:
        w = connect(path)

        def op(a: str, rec: bytes) -> None:
            w.execute(Q_ID, (1, a)).fetchone()
            w.execute(Q_GET, (1, a)).fetchone()
            w.execute(Q_PUT, (1, a, rec))

        t = time.perf_counter()
        for a, rec in ops:
            await asyncio.to_thread(op, a, rec)
        return len(ops) / (time.perf_counter() - t)

    return asyncio.run(main())


def queue_thread(path: str, ops: list[tuple[str, bytes]]) -> float:
    async def main() -> float:
        q: queue.SimpleQueue[tuple[Callable[[], Any], Future[Any]] | None] = queue.SimpleQueue()

        w = connect(path)

        def worker() -> None:
            while (item := q.get()) is not None:
                fn, fut = item
                try:
                    fut.set_result(fn())
                except BaseException as e:
                    fut.set_exception(e)

        th = threading.Thread(target=worker, daemon=True)
        th.start()

        async def call(fn: Callable[[], Any]) -> Any:
            fut: Future[Any] = Future()
            q.put((fn, fut))
            return await asyncio.wrap_future(fut)

        t = time.perf_counter()
        for a, rec in ops:
            await call(functools.partial(w.execute, Q_ID, (1, a)))
            await call(functools.partial(w.execute, Q_GET, (1, a)))
            await call(functools.partial(w.execute, Q_PUT, (1, a, rec)))
        el = time.perf_counter() - t
        q.put(None)
        th.join()
        return len(ops) / el

    return asyncio.run(main())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ops", type=int, default=20000)
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()
    ops = workload(args.ops)
    designs: dict[str, Callable[[str, list[tuple[str, bytes]]], float]] = {
        "raw sqlite3 (limit)": raw,
        "inline on the loop": inline,
        "to_thread per statement": to_thread,
        "one hop per operation": one_hop,
        "writer thread + queue": queue_thread,
    }
    results: dict[str, list[float]] = {k: [] for k in designs}
    stalls: dict[str, list[float]] = {"on the loop": [], "off the loop": []}
    with tempfile.TemporaryDirectory() as d:
        for rep in range(args.reps):
            for name, fn in designs.items():
                path = os.path.join(d, f"{rep}-{name[:5]}.db")
                make_db(path)
                results[name].append(fn(path, ops))
            for label, offload in (("on the loop", False), ("off the loop", True)):
                path = os.path.join(d, f"{rep}-stall-{offload}.db")
                make_db(path)
                inline(path, ops, stalls[label], offload_checkpoints=offload)
    base = statistics.median(results["raw sqlite3 (limit)"])
    print(f"W1d, {args.ops} operations, median of {args.reps} runs")
    print(f"{'design':28} {'ops/s':>10} {'vs raw':>8}")
    for name, vals in results.items():
        med = statistics.median(vals)
        print(f"{name:28} {med:10.0f} {med / base:8.2f}")
    print("event-loop stalls of the inline design under W1d (gap between two ticks):")
    for label, gaps in stalls.items():
        gaps.sort()
        print(
            f"  checkpoints {label:13} p50 {gaps[len(gaps) // 2] * 1e6:6.0f} us   "
            f"p99.9 {gaps[int(len(gaps) * 0.999)] * 1e3:6.2f} ms   max {gaps[-1] * 1e3:6.2f} ms"
        )


if __name__ == "__main__":
    main()
