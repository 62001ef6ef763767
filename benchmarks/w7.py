"""W7, many accounts with leases: set-up (in the harness) and the timed part (a child).

Set-up, not timed: ``accounts`` device rows in a fresh database (one created by
wastore, the others copies of its row made in one SQL statement: W7 measures
opening accounts, not generating keys).

Timed, in a child process started for every run (so that its RSS and CPU are
its own): open the container, list its accounts and open them all with their
leases, :meth:`PersistenceManager.open_many` — what a bridge does at start-up.
The child reports the seconds, its RSS growth (``VmRSS`` after minus before, and
the peak), the size of the decoded device objects (the accounts' own data, to
subtract), the connections, and — when asked — the CPU it uses while the
accounts sit open and idle for ``--idle`` seconds (the container renews the
leases meanwhile), as a share of one core; with ``--server-pid`` (the
PostgreSQL postmaster) also the server's CPU over the same window. Then it
closes every manager (:meth:`PersistenceManager.close_many`, timed too).

    python -m benchmarks.w7 URL [--idle S] [--server-pid PID] [--pool-size N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any

from .w5 import _count_pg_sessions, _reset_peak, _status_kib


async def setup(url: str, accounts: int) -> None:
    """A fresh database with ``accounts`` device rows."""
    from wastore.backends.sql.codec import DEVICE_COLUMNS
    from wastore.registry import open_store

    container = await open_store(url)
    try:
        first = await container.create_device()
    finally:
        await container.close()
    if accounts <= 1:
        return
    cols = ", ".join(DEVICE_COLUMNS)
    if url.startswith("sqlite:"):
        con = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
        try:
            con.execute(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?) "
                f"INSERT INTO wastore_device ({cols}) SELECT {cols} FROM wastore_device, n "
                "WHERE id = ?",
                (accounts - 1, first),
            )
        finally:
            con.close()
        return
    import asyncpg

    conn: Any = await asyncpg.connect(url)
    try:
        await conn.execute(
            f"INSERT INTO wastore_device ({cols}) SELECT {cols} FROM wastore_device d, "
            "generate_series(1, $2) WHERE d.id = $1",
            first,
            accounts - 1,
        )
        await conn.execute("VACUUM ANALYZE")
    finally:
        await conn.close()


def process_cpu() -> float:
    """CPU seconds (user + system) this process used so far."""
    t = os.times()
    return t.user + t.system


_TICKS = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list[str]:
    text = Path(f"/proc/{pid}/stat").read_text()
    return text[text.rindex(")") + 2 :].split()  # the fields after "(comm)"


def server_cpu(postmaster: int) -> float:
    """CPU seconds used by a PostgreSQL server: the postmaster, its reaped children
    (``cutime``/``cstime``), and its live children."""
    fields = _stat(postmaster)
    ticks = sum(int(fields[i]) for i in (11, 12, 13, 14))  # utime stime cutime cstime
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            f = _stat(int(entry.name))
        except (OSError, ValueError):
            continue
        if int(f[1]) == postmaster:  # ppid
            ticks += int(f[11]) + int(f[12])
    return ticks / _TICKS


def deep_size(obj: Any, seen: set[int] | None = None) -> int:
    """Bytes of ``obj`` and of every object it holds (containers, dataclass fields)."""
    seen = set() if seen is None else seen
    if id(obj) in seen:
        return 0
    seen.add(id(obj))
    size = sys.getsizeof(obj)
    if isinstance(obj, dict):
        size += sum(deep_size(k, seen) + deep_size(v, seen) for k, v in obj.items())
    elif isinstance(obj, list | tuple | set | frozenset):
        size += sum(deep_size(x, seen) for x in obj)
    elif hasattr(obj, "__dict__"):
        size += deep_size(vars(obj), seen)
    elif hasattr(obj, "__slots__"):
        for name in obj.__slots__:
            if hasattr(obj, name):
                size += deep_size(getattr(obj, name), seen)
    return size


async def timed_run(url: str, options: dict[str, Any], idle: float, server: int | None) -> Any:
    from wastore.manager import PersistenceManager
    from wastore.registry import open_store

    peak_reset = _reset_peak()
    rss0 = _status_kib("VmRSS")
    t0 = time.perf_counter()
    container = await open_store(url, **options)
    ids = await container.devices()
    managers = await PersistenceManager.open_many([container.backend(i) for i in ids])
    seconds = time.perf_counter() - t0
    rss1 = _status_kib("VmRSS")
    peak = _status_kib("VmHWM")
    sample = managers[:: max(1, len(managers) // 100)]
    device_bytes = sum(deep_size(pm.get_device_snapshot()) for pm in sample) / len(sample)
    held = getattr(container, "open_connections", None)
    if url.startswith(("postgresql:", "postgres:")):
        connections = await _count_pg_sessions(url)
    else:
        connections = int(held) if held is not None else -1
    idle_cpu: float | None = None
    idle_server: float | None = None
    if idle > 0:
        cpu0 = process_cpu()
        srv0 = server_cpu(server) if server else 0.0
        w0 = time.perf_counter()
        await asyncio.sleep(idle)
        wall = time.perf_counter() - w0
        idle_cpu = (process_cpu() - cpu0) / wall
        if server:
            idle_server = (server_cpu(server) - srv0) / wall
    lost = sum(pm.lease_lost for pm in managers)
    t1 = time.perf_counter()
    await PersistenceManager.close_many(managers)
    await container.close()
    close_seconds = time.perf_counter() - t1
    return {
        "accounts": len(ids),
        "seconds": seconds,
        "close_seconds": close_seconds,
        "rss_start_kib": rss0,
        "rss_growth_kib": rss1 - rss0,
        "rss_peak_growth_kib": peak - rss0,
        "device_bytes": device_bytes,
        "connections": connections,
        "idle_seconds": idle,
        "idle_cpu_share": idle_cpu,
        "idle_server_cpu_share": idle_server,
        "leases_lost": lost,
        "peak_reset": peak_reset,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("url")
    ap.add_argument("--idle", type=float, default=0.0)
    ap.add_argument("--server-pid", type=int, default=None)
    ap.add_argument("--pool-size", type=int, default=None)
    args = ap.parse_args()
    options: dict[str, Any] = {}
    if args.pool_size is not None:
        options["pool_size"] = args.pool_size
    result = asyncio.run(timed_run(args.url, options, args.idle, args.server_pid))
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
