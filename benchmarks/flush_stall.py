"""How long a SignalCache flush holds the event loop, on PostgreSQL and SQLite.

    python -m benchmarks.flush_stall [--sessions 2000] [--runs 5] [--url postgresql://...]

Buffers ``--sessions`` sessions of 1.2 KB in a manager's SignalCache, then
flushes them, ``--runs`` times, and reports the longest stretch any callback
of the event loop ran while the flush was in progress (the loop's stall): in
CPU time of the loop's thread (``time.thread_time``), which is what the flush
itself costs, and in wall time, which also counts the moments the machine's
other processes take the core. Without ``--url`` a throwaway PostgreSQL
cluster is started (``wastore.testing.pgcluster``); ``--no-postgres`` skips it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from asyncio import events
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import wastore

RECORD = 1200


@contextmanager
def timed_callbacks() -> Iterator[list[tuple[float, float]]]:
    """Every callback the event loop runs meanwhile, as ``(wall, cpu)`` seconds."""
    seen: list[tuple[float, float]] = []
    run = events.Handle._run

    def _run(handle: Any) -> None:
        wall, cpu = time.perf_counter(), time.thread_time()
        run(handle)
        seen.append((time.perf_counter() - wall, time.thread_time() - cpu))

    events.Handle._run = _run  # type: ignore[method-assign,assignment]
    try:
        yield seen
    finally:
        events.Handle._run = run  # type: ignore[method-assign]


async def measure(url: str, sessions: int, runs: int) -> dict[str, Any]:
    container = await wastore.open_store(url)
    try:
        device_id = await container.create_device()
        pm = await wastore.PersistenceManager.open(container.backend(device_id), signal_cache=True)
        cache = pm.signal_cache
        assert cache is not None
        worst_cpu, worst_wall, flush_wall = [], [], []
        for _ in range(runs + 1):  # the first one warms up
            for i in range(sessions):
                await cache.put_session(f"{i}@s.whatsapp.net", os.urandom(RECORD))
            await asyncio.sleep(0.01)  # the buffering's own callback is done
            with timed_callbacks() as seen:
                t0 = time.perf_counter()
                await cache.flush()
                elapsed = time.perf_counter() - t0
            worst_wall.append(max(w for w, _ in seen))
            worst_cpu.append(max(c for _, c in seen))
            flush_wall.append(elapsed)
        await pm.close()
    finally:
        await container.close()
    return {
        "longest_stall_cpu_ms": [round(1000 * x, 3) for x in worst_cpu[1:]],
        "longest_stall_wall_ms": [round(1000 * x, 3) for x in worst_wall[1:]],
        "flush_ms": [round(1000 * x, 2) for x in flush_wall[1:]],
    }


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.flush_stall", description=__doc__)
    ap.add_argument("--sessions", type=int, default=2000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--url", default="", help="a PostgreSQL server (role with CREATEDB)")
    ap.add_argument("--no-postgres", action="store_true")
    args = ap.parse_args()
    urls: dict[str, str] = {}
    cluster = None
    with tempfile.TemporaryDirectory(prefix="flush-stall-") as tmp:
        urls["SQLite"] = f"sqlite:///{tmp}/stall.db"
        if not args.no_postgres:
            url = args.url
            if not url:
                from wastore.testing.pgcluster import start_cluster

                cluster = start_cluster()
                if cluster is None:
                    sys.exit("no PostgreSQL server binaries: pass --url or --no-postgres")
                url = cluster.url
            urls["PostgreSQL"] = url
        try:
            print(f"a flush of {args.sessions} sessions of {RECORD} bytes, {args.runs} runs:")
            for name, url in urls.items():
                out = asyncio.run(measure(url, args.sessions, args.runs))
                cpu = statistics.median(out["longest_stall_cpu_ms"])
                wall = statistics.median(out["longest_stall_wall_ms"])
                print(
                    f"{name:11} longest loop stall: {cpu:.2f} ms CPU (max "
                    f"{max(out['longest_stall_cpu_ms']):.2f}), {wall:.2f} ms wall; "
                    f"flush {statistics.median(out['flush_ms']):.1f} ms"
                )
        finally:
            if cluster is not None:
                cluster.destroy()


if __name__ == "__main__":
    main()
