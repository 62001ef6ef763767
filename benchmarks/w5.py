"""W5, many accounts: set-up (in the harness) and the timed part (in a fresh process).

Set-up, not timed: ``accounts`` devices in one database, each with a device
row and ``sessions`` sessions.

Timed, in a child process started for every run (so that its peak RSS is its
own): open the container, list its accounts, then for every account —
concurrently, as a bridge starting up does — ``PersistenceManager.open``
(device row check, account lease, device load), ``get_device_snapshot()`` and
one ``get_session``. The child reports the seconds, its RSS before opening the
container and its peak RSS while it ran (``VmHWM``, reset just before the
clock starts) — their difference is the growth — and the connections open at
the end:
for SQLite the connections the store holds, for PostgreSQL the sessions of
that database in ``pg_stat_activity`` (and the store's own count).

    python -m benchmarks.w5 URL [--pool-size N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from typing import Any

from .data import w5_address


async def setup(url: str, accounts: int, records: list[bytes], **options: Any) -> None:
    """Fill a fresh database: ``accounts`` devices, each with ``len(records)`` sessions."""
    from wastore.registry import open_store

    container = await open_store(url, **options)
    try:
        for _ in range(accounts):
            device_id = await container.create_device()
            b = container.backend(device_id)
            await b.put_sessions_batch([(w5_address(j), r) for j, r in enumerate(records)])
    finally:
        await container.close()


def _status_kib(field: str) -> int:
    """``VmRSS`` (resident now) or ``VmHWM`` (peak resident) of this process, in KiB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def _reset_peak() -> bool:
    """Reset this process's peak RSS (``VmHWM``) to its current RSS (Linux >= 4.0).

    Without it the peak could be the harness's: ``ru_maxrss`` survives ``exec``.
    """
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return False
    return True


async def _count_pg_sessions(url: str) -> int:
    import asyncpg

    conn: Any = await asyncpg.connect(url)
    try:
        n = await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return int(n)
    finally:
        await conn.close()


async def timed_run(url: str, options: dict[str, Any]) -> dict[str, Any]:
    from wastore.manager import PersistenceManager
    from wastore.registry import open_store

    address = w5_address(0)
    peak_reset = _reset_peak()
    rss0 = _status_kib("VmRSS")
    t0 = time.perf_counter()
    container = await open_store(url, **options)
    ids = await container.devices()

    async def open_one(device_id: int) -> PersistenceManager:
        pm = await PersistenceManager.open(container.backend(device_id))
        pm.get_device_snapshot()
        if await pm.signal.get_session(address) is None:
            raise AssertionError(f"account {device_id} has no session {address}")
        return pm

    managers = await asyncio.gather(*(open_one(i) for i in ids))
    seconds = time.perf_counter() - t0
    peak = _status_kib("VmHWM")
    held = getattr(container, "open_connections", None)
    if url.startswith(("postgresql:", "postgres:")):
        connections = await _count_pg_sessions(url)
    else:
        connections = int(held) if held is not None else -1
    for pm in managers:
        await pm.close()
    await container.close()
    return {
        "accounts": len(ids),
        "seconds": seconds,
        "rss_start_kib": rss0,
        "rss_peak_kib": peak,
        "rss_growth_kib": peak - rss0,
        "connections": connections,
        "store_connections": held,
        "pool_size": getattr(container, "pool_size", None),
        "peak_reset": peak_reset,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("url")
    ap.add_argument("--pool-size", type=int, default=None)
    args = ap.parse_args()
    options: dict[str, Any] = {}
    if args.pool_size is not None:
        options["pool_size"] = args.pool_size
    result = asyncio.run(timed_run(args.url, options))
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
