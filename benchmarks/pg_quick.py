"""PostgresStore beside raw asyncpg on the same statements: W1d, W2, W3, W4, W5.

    python benchmarks/pg_quick.py [--url postgresql://...] [--quick] [--fsync]

Without ``--url`` (or ``WASTORE_TEST_POSTGRES_URL``) a throwaway cluster is
started with ``initdb`` (``wastore.testing.pgcluster``, as for the tests;
``fsync=off`` unless ``--fsync``). Workloads (docs/benchmarks.md), one account each, pre-filled:

- W1d: 20,000 x (load_identity, get_session, put_session of a new 1,200-byte
  record) over 2,000 peers, each put committed before the call returns.
- W2: get_sessions of 1,024 addresses, put_sessions_batch of 1,024 records,
  get_sender_key + put_sender_key once.
- W3: store_prekeys_batch of 812, mark_prekeys_uploaded(all), 812 x
  (load_prekey, remove_prekey).
- W4: put_mutation_macs of 50,000 MACs in batches of 500, then 50 x
  get_mutation_macs of 1,000 index MACs (half present).
- W5: 1,000 accounts with a device row and 50 sessions: open the container,
  then for every account PersistenceManager.open + get_device_snapshot + one
  get_session. Seconds, peak server connections of the database, RSS growth.

"raw (same)" runs the very statements PostgresStore sends (``= ANY`` reads,
``unnest`` batch upserts) on one plain asyncpg connection, with no validation,
decoding or retry logic; "raw (executemany)" runs the batches as
``executemany`` of the one-row upsert instead. Each figure is the median of the
repetitions, store and raw runs interleaved; the ratio is raw time / store time
(1.0 = as fast as raw asyncpg).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import resource
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

import wastore
from wastore.backends.postgres import STATEMENTS, PostgresStore
from wastore.backends.sql import codec
from wastore.backends.sql.queries import Queries
from wastore.testing.pgcluster import start_cluster

RECORD = 1200
PEERS = 2000
Q = Queries("postgres", "wastore_")
PQ = {name: sql.format(p="wastore_") for name, sql in STATEMENTS.items()}


def peer(i: int) -> str:
    return f"{491700000000 + i}@s.whatsapp.net"


def member(i: int) -> str:
    return f"{491600000000 + i}:{i % 4}@s.whatsapp.net"


async def timed(fn: Callable[[], Awaitable[Any]]) -> float:
    started = time.perf_counter()
    await fn()
    return time.perf_counter() - started


async def compare(
    name: str,
    reps: int,
    store_run: Callable[[], Awaitable[Any]],
    raw_runs: dict[str, Callable[[], Awaitable[Any]]],
    before: Callable[[], Awaitable[Any]] | None = None,
) -> dict[str, float]:
    """Interleaved repetitions after one warm-up of each; medians in seconds.
    ``before`` runs (untimed) before every run."""
    runs = {"wastore": store_run, **raw_runs}
    for fn in runs.values():
        if before is not None:
            await before()
        await fn()
    times: dict[str, list[float]] = {k: [] for k in runs}
    for _ in range(reps):
        for k, fn in runs.items():
            if before is not None:
                await before()
            times[k].append(await timed(fn))
    medians = {k: statistics.median(v) for k, v in times.items()}
    line = f"{name:4} wastore {medians['wastore']:8.3f}s"
    for k in raw_runs:
        line += f" | {k} {medians[k]:8.3f}s (ratio {medians[k] / medians['wastore']:.2f})"
    print(line, flush=True)
    return medians


async def w1d(store: PostgresStore, raw: Any, ops: int, reps: int) -> dict[str, float]:
    dev = await store.create_device()
    b = store.backend(dev)
    rnd = random.Random(1)
    await b.put_identities_batch([(peer(i), rnd.randbytes(32)) for i in range(PEERS)])
    await b.put_sessions_batch([(peer(i), rnd.randbytes(RECORD)) for i in range(PEERS)])
    seq = [(peer(rnd.randrange(PEERS)), rnd.randbytes(RECORD)) for _ in range(ops)]

    async def store_run() -> None:
        for a, rec in seq:
            await b.load_identity(a)
            await b.get_session(a)
            await b.put_session(a, rec)

    async def raw_run() -> None:
        li, gs, ps = Q.load_identity, Q.get_session, Q.put_session
        for a, rec in seq:
            await raw.fetchval(li, dev, a)
            await raw.fetchval(gs, dev, a)
            await raw.execute(ps, dev, a, rec, 0)

    result = await compare("W1d", reps, store_run, {"raw (same)": raw_run})
    print(f"     {ops / result['wastore']:,.0f} ops/s wastore, "
          f"{ops / result['raw (same)']:,.0f} ops/s raw")  # fmt: skip
    return result


async def w2(store: PostgresStore, raw: Any, reps: int) -> dict[str, float]:
    dev = await store.create_device()
    b = store.backend(dev)
    rnd = random.Random(2)
    members = [member(i) for i in range(1024)]
    await b.put_sessions_batch([(a, rnd.randbytes(RECORD)) for a in members])
    sk = "120363000000000001@g.us::491700000001:3@s.whatsapp.net"
    await b.put_sender_key(sk, rnd.randbytes(300))
    fanouts = [[(a, rnd.randbytes(RECORD)) for a in members] for _ in range(3)]
    keys = [rnd.randbytes(300) for _ in range(3)]
    n = [0]

    async def store_run() -> None:
        k = n[0] = n[0] + 1
        assert len(await b.get_sessions(members)) == 1024
        await b.put_sessions_batch(fanouts[k % 3])
        await b.get_sender_key(sk)
        await b.put_sender_key(sk, keys[k % 3])

    def raw_run(executemany: bool) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            k = n[0] = n[0] + 1
            rows = await raw.fetch(PQ["get_sessions"], dev, members)
            assert len({r[0]: r[1] for r in rows}) == 1024
            f = fanouts[k % 3]
            if executemany:
                await raw.executemany(Q.put_session, [(dev, a, r, 0) for a, r in f])
            else:
                await raw.execute(
                    PQ["put_sessions"], dev, [a for a, _ in f], [r for _, r in f], [0] * len(f)
                )
            await raw.fetchval(Q.get_sender_key, dev, sk)
            await raw.execute(Q.put_sender_key, dev, sk, keys[k % 3], 0)

        return run

    return await compare(
        "W2",
        reps,
        store_run,
        {"raw (same)": raw_run(False), "raw (executemany)": raw_run(True)},
    )


async def w3(store: PostgresStore, raw: Any, reps: int) -> dict[str, float]:
    dev = await store.create_device()
    b = store.backend(dev)
    rnd = random.Random(3)
    batch = [(i, rnd.randbytes(150)) for i in range(1, 813)]
    ids = [i for i, _ in batch]

    async def store_run() -> None:
        await b.store_prekeys_batch(batch, False)
        await b.mark_prekeys_uploaded(ids)
        for i in ids:
            await b.load_prekey(i)
            await b.remove_prekey(i)

    def raw_run(executemany: bool) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            if executemany:
                await raw.executemany(Q.store_prekey, [(dev, i, r, 0, False) for i, r in batch])
                await raw.executemany(Q.mark_prekey_uploaded, [(dev, i) for i in ids])
            else:
                recs = [r for _, r in batch]
                await raw.execute(PQ["store_prekeys"], dev, ids, recs, [0] * len(ids), False)
                await raw.execute(PQ["mark_prekeys_uploaded"], dev, ids)
            for i in ids:
                await raw.fetchval(Q.load_prekey, dev, i)
                await raw.execute(Q.remove_prekey, dev, i)

        return run

    return await compare(
        "W3", reps, store_run, {"raw (same)": raw_run(False), "raw (executemany)": raw_run(True)}
    )


async def w4(store: PostgresStore, raw: Any, reps: int, total: int) -> dict[str, float]:
    dev = await store.create_device()
    b = store.backend(dev)
    rnd = random.Random(4)
    index = [rnd.randbytes(32) for _ in range(total)]
    values = [rnd.randbytes(32) for _ in range(total)]
    lookups = [rnd.sample(index, 500) + [rnd.randbytes(32) for _ in range(500)] for _ in range(50)]
    name = "regular"
    batches = [
        [
            wastore.MutationMAC(i, m)
            for i, m in zip(index[k : k + 500], values[k : k + 500], strict=True)
        ]
        for k in range(0, total, 500)
    ]

    async def empty() -> None:  # untimed: every run starts from an empty, vacuumed table
        await raw.execute(Q.clear_mutation_macs, dev, name)
        await raw.execute("VACUUM wastore_app_state_macs")

    async def store_run() -> None:
        for v, macs in enumerate(batches, start=1):
            await b.put_mutation_macs(name, v, macs)
        for look in lookups:
            assert len(await b.get_mutation_macs(name, look)) == 500

    def raw_run(executemany: bool) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            for v, k in enumerate(range(0, total, 500), start=1):
                idx, vals = index[k : k + 500], values[k : k + 500]
                if executemany:
                    await raw.executemany(
                        Q.put_mutation_mac,
                        [(dev, name, i, v, m, 0) for i, m in zip(idx, vals, strict=True)],
                    )
                else:
                    await raw.execute(
                        PQ["put_mutation_macs"], dev, name, v, idx, vals, [0] * len(idx)
                    )
            for look in lookups:
                rows = await raw.fetch(PQ["get_mutation_macs"], dev, name, look)
                assert len({r[0]: r[2] for r in rows}) == 500

        return run

    return await compare(
        "W4",
        reps,
        store_run,
        {"raw (same)": raw_run(False), "raw (executemany)": raw_run(True)},
        before=empty,
    )


def rss_mb() -> float:
    """Current resident set size (Linux), else the peak."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def w5(server_url: str, accounts: int) -> None:
    dbname = f"wastore_w5_{os.getpid()}"
    admin = await asyncpg.connect(server_url)
    await admin.execute(f"DROP DATABASE IF EXISTS {dbname} WITH (FORCE)")
    await admin.execute(f"CREATE DATABASE {dbname}")
    url = server_url.rsplit("/", 1)[0] + "/" + dbname
    try:
        setup = await wastore.open_store(url)
        assert isinstance(setup, PostgresStore)
        ids = await asyncio.gather(*(setup.create_device() for _ in range(accounts)))
        rnd = random.Random(5)
        await asyncio.gather(
            *(
                setup.backend(i).put_sessions_batch(
                    [(peer(k), rnd.randbytes(RECORD)) for k in range(50)]
                )
                for i in ids
            )
        )
        await setup.close()
        peak = 0
        stop = asyncio.Event()

        async def watch() -> None:
            nonlocal peak
            mon = await asyncpg.connect(server_url)
            while not stop.is_set():
                n = await mon.fetchval(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = $1", dbname
                )
                peak = max(peak, n)
                await asyncio.sleep(0.01)
            await mon.close()

        async def store_run() -> tuple[float, float]:
            rss = rss_mb()
            started = time.perf_counter()
            c = await wastore.open_store(url)
            managers = []
            for i in ids:
                pm = await wastore.PersistenceManager.open(c.backend(i))
                managers.append(pm)
                assert pm.get_device_snapshot().registration_id > 0
                assert await pm.backend.get_session(peer(i % 50)) is not None
            elapsed = time.perf_counter() - started
            grown = rss_mb() - rss  # while the 1,000 managers are open
            for pm in managers:
                await pm.close()
            await c.close()
            return elapsed, grown

        async def raw_run() -> float:
            started = time.perf_counter()
            conn = await asyncpg.connect(url, statement_cache_size=256)
            for i in ids:
                await conn.fetchval(Q.device_exists, i)
                await conn.fetchval(PQ["try_lease"], 1, i, i)
                codec.row_to_device(await conn.fetchrow(Q.load_device, i), i)
                await conn.fetchval(Q.get_session, i, peer(i % 50))
            elapsed = time.perf_counter() - started
            await conn.execute("SELECT pg_advisory_unlock_all()")
            await conn.close()
            return elapsed

        watcher = asyncio.create_task(watch())
        store_times, raw_times, growth = [], [], []
        for _ in range(3):
            t, g = await store_run()
            store_times.append(t)
            growth.append(g)
            raw_times.append(await raw_run())
        stop.set()
        await watcher
        s, r = statistics.median(store_times), statistics.median(raw_times)
        print(
            f"W5   wastore {s:8.3f}s | raw (same) {r:8.3f}s (ratio {r / s:.2f}) | "
            f"{accounts} accounts, peak server connections {peak} (pool_size 10), "
            f"RSS growth {max(growth):.1f} MB with the 1,000 managers open",
            flush=True,
        )
    finally:
        await admin.execute(f"DROP DATABASE IF EXISTS {dbname} WITH (FORCE)")
        await admin.close()


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--url", default=os.environ.get("WASTORE_TEST_POSTGRES_URL", ""))
    ap.add_argument("--quick", action="store_true", help="fewer operations and repetitions")
    ap.add_argument("--fsync", action="store_true", help="throwaway cluster with fsync=on")
    ap.add_argument("--only", default="W1d,W2,W3,W4,W5")
    args = ap.parse_args()
    wanted = set(args.only.split(","))
    cluster = None
    url = args.url
    if not url:
        cluster = start_cluster(fsync=args.fsync)
        if cluster is None:
            sys.exit("no PostgreSQL: pass --url or install the server binaries (.ci/pg.sh)")
        url = cluster.url
    try:
        admin = await asyncpg.connect(url)
        version = await admin.fetchval("SHOW server_version")
        fsync = await admin.fetchval("SHOW fsync")
        dbname = f"wastore_quick_{os.getpid()}"
        await admin.execute(f"CREATE DATABASE {dbname}")
        db = url.rsplit("/", 1)[0] + "/" + dbname
        print(f"PostgreSQL {version} (fsync={fsync}), asyncpg {asyncpg.__version__}, "
              f"{os.cpu_count()} CPUs; medians of {3 if args.quick else 5} runs")  # fmt: skip
        store = await wastore.open_store(db)
        assert isinstance(store, PostgresStore)
        raw = await asyncpg.connect(db, statement_cache_size=256)
        reps = 3 if args.quick else 5
        try:
            if "W1d" in wanted:
                await w1d(store, raw, 5000 if args.quick else 20000, reps)
            if "W2" in wanted:
                await w2(store, raw, 10 if args.quick else 30)
            if "W3" in wanted:
                await w3(store, raw, reps)
            if "W4" in wanted:
                await w4(store, raw, reps, 10000 if args.quick else 50000)
        finally:
            await raw.close()
            await store.close()
            await admin.execute(f"DROP DATABASE {dbname} WITH (FORCE)")
            await admin.close()
        if "W5" in wanted:
            await w5(url, 1000)
    finally:
        if cluster is not None:
            cluster.destroy()


if __name__ == "__main__":
    asyncio.run(main())
