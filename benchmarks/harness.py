"""The whole run: every implementation, every workload, then the report."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from . import clients, raw_sqlite, report, store_workloads
from .config import PROCESS_WORKLOADS, Sizes
from .data import W5Data, write_file
from .measure import Result, Runner, interleaved
from .peers import Baileys, PeerUnavailable, Yowsup, default_cache_dir, node_version, to_result
from .pg import ENV_URL, SHARED_BUFFERS, PgCluster, db_url, find_bindir

ALL_IMPLS = ("memory", "sqlite", "raw-sqlite3", "postgres", "raw-asyncpg", "yowsup", "baileys")
Log = Callable[[str], None]


@dataclasses.dataclass
class Options:
    sizes: Sizes
    workloads: set[str]
    impls: set[str]
    out: Path
    cache: Path | None = None
    chart: bool = True
    quiet: bool = False
    command: str = ""


class _Logger:
    def __init__(self, quiet: bool) -> None:
        self.t0 = time.monotonic()
        self.quiet = quiet

    def __call__(self, msg: str) -> None:
        if not self.quiet:
            print(f"[{time.monotonic() - self.t0:6.1f}s] {msg}", file=sys.stderr, flush=True)


def _merge(*groups: dict[str, list[Runner]]) -> dict[str, list[Runner]]:
    out: dict[str, list[Runner]] = {}
    for g in groups:
        for key, runners in g.items():
            out.setdefault(key, []).extend(runners)
    return out


async def _run_groups(groups: dict[str, list[Runner]], reps: int, log: Log) -> list[Result]:
    results: list[Result] = []
    for key in ("W1", "W1w", "W2", "W3", "W4"):
        if key in groups:
            results += await interleaved(groups[key], reps, log)
    return results


def _failed(workloads: Sequence[str], impl: str, err: BaseException) -> list[Result]:
    msg = f"{type(err).__name__}: {err}"
    return [Result(w, impl, error=msg) for w in workloads]


# -- in-process implementations ------------------------------------------------
async def _memory(data: store_workloads.Data, o: Options, log: Log) -> list[Result]:
    from wastore.backends.memory import MemoryStore

    store = MemoryStore()
    acc = await store_workloads.prepare(store, data)
    groups = store_workloads.runners("memory", store, acc, data, o.workloads, o.sizes.w1_ops)
    try:
        return await _run_groups(groups, o.sizes.reps, log)
    finally:
        await store.close()


async def _sqlite(data: store_workloads.Data, o: Options, tmp: Path, log: Log) -> list[Result]:
    from wastore.backends.sqlite import SqliteStore

    log("preparing the SQLite databases")
    template = tmp / "template.db"
    tpl = await SqliteStore.open(template)
    acc = await store_workloads.prepare(tpl, data)
    await tpl.close()
    groups: list[dict[str, list[Runner]]] = []
    raw: raw_sqlite.RawSqlite | None = None
    store: SqliteStore | None = None
    fenced: SqliteStore | None = None
    try:
        if "raw-sqlite3" in o.impls:
            shutil.copyfile(template, tmp / "raw.db")
            raw = raw_sqlite.RawSqlite(tmp / "raw.db")
            groups.append(raw_sqlite.runners(raw, acc, data, o.workloads, o.sizes.w1_ops))
        if "sqlite" in o.impls:
            shutil.copyfile(template, tmp / "store.db")
            store = await SqliteStore.open(tmp / "store.db")
            groups.append(
                store_workloads.runners("sqlite", store, acc, data, o.workloads, o.sizes.w1_ops)
            )
            if {"W1d", "W1c"} & o.workloads:
                # The same, with the account's lease held: every write fenced by its epoch.
                shutil.copyfile(template, tmp / "fenced.db")
                fenced = await SqliteStore.open(tmp / "fenced.db")
                groups.append(await _leased("sqlite+lease", fenced, acc, data, o, o.sizes.w1_ops))
        return await _run_groups(_merge(*groups), o.sizes.reps, log)
    finally:
        if raw is not None:
            raw.close()
        if store is not None:
            await store.close()
        if fenced is not None:
            await fenced.close()


async def _leased(
    impl: str, store: Any, acc: store_workloads.Accounts, data: Any, o: Options, ops: int
) -> dict[str, list[Runner]]:
    """W1d and W1c on ``store`` with the W1 account's lease held (writes fenced)."""
    await store.backend(acc.w1).acquire_lease("benchmark", 300.0)
    wanted = o.workloads & {"W1d", "W1c"}
    return store_workloads.runners(impl, store, acc, data, wanted, ops)


def _w5(impl: str, url: str, o: Options, log: Log, bound: int, **opts: Any) -> Result:
    """Set up the W5 database (not timed), then time it in a fresh process per run."""
    from . import w5

    sizes = o.sizes
    log(f"W5 {impl}: setting up {sizes.w5_accounts} accounts x {sizes.w5_sessions} sessions")
    asyncio.run(w5.setup(url, sizes.w5_accounts, W5Data.make(sizes).sessions, **opts))
    res = Result("W5", impl, ops=sizes.w5_accounts)
    res.extra = {
        "accounts": sizes.w5_accounts,
        "seconds": [],
        "rss_growth_mib": [],
        "rss_peak_mib": [],
        "connections": [],
        "bound": bound,
    }
    cmd = [sys.executable, "-m", "benchmarks.w5", url]
    if "pool_size" in opts:
        cmd += ["--pool-size", str(opts["pool_size"])]
    # The child imports this package from the checkout, wherever the harness was started.
    root = str(Path(__file__).resolve().parents[1])
    path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH", "")) if p)
    env = {**os.environ, "PYTHONPATH": path}
    log(f"W5 {impl}: {sizes.w5_runs} runs")
    for _ in range(sizes.w5_runs):
        proc = subprocess.run(
            cmd, capture_output=True, text=True, timeout=600, check=False, env=env
        )
        if proc.returncode != 0:
            res.error = f"W5 child failed: {proc.stderr.strip()[-800:]}"
            return res
        out = json.loads(proc.stdout.strip().splitlines()[-1])
        res.runs.append(out["accounts"] / out["seconds"])
        res.extra["seconds"].append(round(out["seconds"], 4))
        res.extra["rss_growth_mib"].append(round(out["rss_growth_kib"] / 1024, 2))
        res.extra["rss_peak_mib"].append(round(out["rss_peak_kib"] / 1024, 2))
        res.extra["connections"].append(out["connections"])
        res.ops = out["accounts"]
    return res


def _child_env() -> dict[str, str]:
    # The child imports this package from the checkout, wherever the harness was started.
    root = str(Path(__file__).resolve().parents[1])
    path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONPATH": path}


def size_label(n: int) -> str:
    return f"{n // 1000}k" if n >= 1000 and n % 1000 == 0 else str(n)


def _w7(
    impl: str,
    url_for: Callable[[int], str],
    prepare: Callable[[int], None] | None,
    o: Options,
    log: Log,
    server: int | None,
    bound: int,
    **opts: Any,
) -> list[Result]:
    """For every size: set up a fresh database (not timed), then time the opens, each in
    a fresh process; the last run also measures the idle CPU."""
    from . import w7

    sizes = o.sizes
    out: list[Result] = []
    for n in sizes.w7_accounts:
        res = Result(f"W7-{size_label(n)}", impl, ops=n)
        out.append(res)
        keys = ("seconds", "close_seconds", "rss_growth_kib", "connections", "idle_cpu_share")
        res.extra = {"accounts": n, "bound": bound, **{k: [] for k in keys}}
        try:
            if prepare is not None:
                prepare(n)
            url = url_for(n)
            log(f"W7 {impl}: setting up {n} accounts")
            asyncio.run(w7.setup(url, n))
            for run in range(sizes.w7_runs):
                last = run == sizes.w7_runs - 1
                cmd = [sys.executable, "-m", "benchmarks.w7", url]
                if last:
                    cmd += ["--idle", str(sizes.w7_idle)]
                    if server is not None:
                        cmd += ["--server-pid", str(server)]
                if "pool_size" in opts:
                    cmd += ["--pool-size", str(opts["pool_size"])]
                log(f"W7 {impl}: opening {n} accounts" + (" then idle" if last else ""))
                proc = subprocess.run(
                    cmd, capture_output=True, text=True, timeout=1800, check=False,
                    env=_child_env(),
                )  # fmt: skip
                if proc.returncode != 0:
                    res.error = f"W7 child failed: {proc.stderr.strip()[-800:]}"
                    break
                got = json.loads(proc.stdout.strip().splitlines()[-1])
                res.runs.append(got["accounts"] / got["seconds"])
                for k in keys[:4]:
                    res.extra[k].append(round(got[k], 4))
                if last:
                    res.extra["idle_seconds"] = got["idle_seconds"]
                    res.extra["idle_cpu_share"] = got["idle_cpu_share"]
                    res.extra["idle_server_cpu_share"] = got["idle_server_cpu_share"]
                    res.extra["device_bytes"] = got["device_bytes"]
                    res.extra["leases_lost"] = got["leases_lost"]
        except Exception as err:
            res.error = f"{type(err).__name__}: {err}"
    return out


def _w7_postgres(url: str, o: Options, log: Log, server: int | None) -> list[Result]:
    tag = f"wastore_bench_{os.getpid()}_w7"
    made: list[str] = []

    def prepare(n: int) -> None:
        name = f"{tag}_{n}"
        asyncio.run(_pg_admin(url, [f'CREATE DATABASE "{name}" TEMPLATE template0']))
        made.append(name)

    pool = o.sizes.pg_pool_size
    try:
        return _w7(
            "postgres",
            lambda n: db_url(url, f"{tag}_{n}"),
            prepare,
            o,
            log,
            server,
            pool,
            pool_size=pool,
        )
    finally:
        with contextlib.suppress(Exception):
            asyncio.run(
                _pg_admin(url, [f'DROP DATABASE IF EXISTS "{d}" WITH (FORCE)' for d in made])
            )


def _w8(url: str, o: Options, log: Log, server: int | None) -> list[Result]:
    """For 1, 2, 4 processes: a fresh database, then every process sends its messages
    at the same moment; the server's CPU is measured over the run."""
    from . import w7, w8

    sizes = o.sizes
    out: list[Result] = []
    for procs in sizes.w8_processes:
        name = f"wastore_bench_{os.getpid()}_w8_{procs}"
        res = Result(f"W8-{procs}p", "postgres", ops=procs * sizes.w8_ops)
        res.extra = {
            "processes": procs,
            "accounts_per_process": sizes.w8_accounts,
            "connections": [],
            "server_cpu_us_per_message": [],
            "process_rates": [],
        }
        out.append(res)
        try:
            asyncio.run(_pg_admin(url, [f'CREATE DATABASE "{name}" TEMPLATE template0']))
            db = db_url(url, name)
            log(f"W8: setting up {procs} x {sizes.w8_accounts} accounts")
            asyncio.run(w8.setup(db, procs * sizes.w8_accounts, sizes.w8_peers))
            for run in range(sizes.w7_runs):
                log(f"W8: {procs} process(es), run {run + 1}")
                _w8_run(db, procs, o, server, res, w7.server_cpu, run)
                if res.error is not None:
                    break
        except Exception as err:
            res.error = f"{type(err).__name__}: {err}"
        finally:
            with contextlib.suppress(Exception):
                asyncio.run(_pg_admin(url, [f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)']))
    return out


def _w8_run(
    db: str,
    procs: int,
    o: Options,
    server: int | None,
    res: Result,
    server_cpu: Callable[[int], float],
    run: int,
) -> None:
    sizes = o.sizes
    children = []
    try:
        for k in range(procs):
            cmd = [
                sys.executable, "-m", "benchmarks.w8", db,
                "--first", str(1 + k * sizes.w8_accounts),
                "--count", str(sizes.w8_accounts),
                "--ops", str(sizes.w8_ops),
                "--concurrency", str(sizes.w8_concurrency),
                "--peers", str(sizes.w8_peers),
                "--seed", str(run * 10 + k),
            ]  # fmt: skip
            children.append(
                subprocess.Popen(
                    cmd,
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                    env=_child_env(),
                )
            )
        for child in children:
            assert child.stdout is not None
            line = child.stdout.readline().strip()
            if line != "ready":
                err = child.stderr.read() if child.stderr else ""
                res.error = f"W8 child failed: {err.strip()[-800:]}"
                return
        cpu0 = server_cpu(server) if server else None
        start = time.time() + 0.5
        for child in children:
            assert child.stdin is not None
            child.stdin.write(f"go {start}\n")
            child.stdin.flush()
        got = []
        for child in children:
            out, err = child.communicate(timeout=1800)
            if child.returncode != 0:
                res.error = f"W8 child failed: {err.strip()[-800:]}"
                return
            got.append(json.loads(out.strip().splitlines()[-1]))
        total = sum(g["ops"] for g in got)
        wall = max(g["seconds"] for g in got)
        res.runs.append(total / wall)
        res.extra["connections"].append(sum(g["connections"] for g in got))
        res.extra["process_rates"].append([round(g["ops"] / g["seconds"], 1) for g in got])
        if cpu0 is not None and server is not None:
            used = server_cpu(server) - cpu0
            res.extra["server_cpu_us_per_message"].append(round(used / total * 1e6, 1))
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()
            for f in (child.stdin, child.stdout, child.stderr):
                if f is not None:
                    f.close()


def _postmaster(cluster: PgCluster | None) -> int | None:
    """The pid of the harness's own server (its CPU is measured), None for another."""
    if cluster is None:
        return None
    try:
        return int((cluster.data / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


async def _pg_admin(url: str, sql: Sequence[str]) -> None:
    import asyncpg

    conn: Any = await asyncpg.connect(url)
    try:
        for s in sql:
            await conn.execute(s)
    finally:
        await conn.close()


async def _postgres(data: store_workloads.Data, o: Options, url: str, log: Log) -> list[Result]:
    from wastore.backends.postgres import PostgresStore

    from . import raw_pg

    tag = f"wastore_bench_{os.getpid()}"
    tpl, store_db, raw_db = f"{tag}_tpl", f"{tag}_store", f"{tag}_raw"
    log("preparing the PostgreSQL databases")
    await _pg_admin(url, [f'CREATE DATABASE "{tpl}" TEMPLATE template0'])
    try:
        s = await PostgresStore.open(db_url(url, tpl), pool_size=o.sizes.pg_pool_size)
        try:
            acc = await store_workloads.prepare(s, data)
        finally:
            await s.close()
        await _pg_admin(
            url,
            [
                f'CREATE DATABASE "{store_db}" TEMPLATE "{tpl}"',
                f'CREATE DATABASE "{raw_db}" TEMPLATE "{tpl}"',
            ],
        )
        await _pg_admin(db_url(url, store_db), ["VACUUM ANALYZE"])
        await _pg_admin(db_url(url, raw_db), ["VACUUM ANALYZE"])
        groups: list[dict[str, list[Runner]]] = []
        raw: raw_pg.RawPg | None = None
        store: PostgresStore | None = None
        fenced: PostgresStore | None = None
        fenced_db = f"{tag}_fenced"
        try:
            if "raw-asyncpg" in o.impls:
                raw = await raw_pg.RawPg.connect(db_url(url, raw_db))
                groups.append(raw_pg.runners(raw, acc, data, o.workloads, o.sizes.w1_ops_pg))
            if "postgres" in o.impls:
                store = await PostgresStore.open(
                    db_url(url, store_db), pool_size=o.sizes.pg_pool_size
                )
                groups.append(
                    store_workloads.runners(
                        "postgres", store, acc, data, o.workloads, o.sizes.w1_ops_pg
                    )
                )
                if {"W1d", "W1c"} & o.workloads:
                    await _pg_admin(url, [f'CREATE DATABASE "{fenced_db}" TEMPLATE "{tpl}"'])
                    await _pg_admin(db_url(url, fenced_db), ["VACUUM ANALYZE"])
                    fenced = await PostgresStore.open(
                        db_url(url, fenced_db), pool_size=o.sizes.pg_pool_size
                    )
                    groups.append(
                        await _leased("postgres+lease", fenced, acc, data, o, o.sizes.w1_ops_pg)
                    )
            return await _run_groups(_merge(*groups), o.sizes.reps, log)
        finally:
            if raw is not None:
                await raw.close()
            if store is not None:
                await store.close()
            if fenced is not None:
                await fenced.close()
    finally:
        with contextlib.suppress(Exception):
            await _pg_admin(
                url,
                [
                    f'DROP DATABASE IF EXISTS "{d}" WITH (FORCE)'
                    for d in (store_db, raw_db, f"{tag}_fenced", tpl)
                ],
            )


def _postgres_section(
    data: store_workloads.Data, o: Options, meta: dict[str, Any], log: Log
) -> list[Result]:
    wanted_impls = {"postgres", "raw-asyncpg"} & o.impls
    w14 = sorted(o.workloads - PROCESS_WORKLOADS)
    names = [(w, i) for i in sorted(wanted_impls) for w in w14]
    if "postgres" in wanted_impls:
        names += [(w, "postgres") for w in ("W5", "W7", "W8") if w in o.workloads]
    if not names:
        return []
    try:
        import asyncpg  # noqa: F401

        from wastore.backends.postgres import PostgresStore  # noqa: F401
    except ImportError as err:
        why = f"PostgresStore or asyncpg is not available ({err}); pip install 'wastore[postgres]'"
        log(f"skipping PostgreSQL: {why}")
        return [Result(w, i, error=why) for w, i in names]
    cluster: PgCluster | None = None
    url = os.environ.get(ENV_URL, "").strip()
    results: list[Result] = []
    try:
        if not url:
            bindir = find_bindir()
            if bindir is None:
                why = f"no PostgreSQL server binaries (initdb, pg_ctl) and {ENV_URL} is not set"
                log(f"skipping PostgreSQL: {why}")
                return [Result(w, i, error=why) for w, i in names]
            log(f"starting a throwaway PostgreSQL ({bindir})")
            cluster = PgCluster(bindir, shared_buffers=SHARED_BUFFERS)
            cluster.init()
            cluster.start()
            url = cluster.url
            meta["postgresql"] = cluster.version()
        else:
            meta["postgresql"] = f"external server ({ENV_URL})"
        server = _postmaster(cluster)
        if w14:
            results += asyncio.run(_postgres(data, o, url, log))
        if ("W5", "postgres") in names:
            w5db = f"wastore_bench_{os.getpid()}_w5"
            asyncio.run(_pg_admin(url, [f'CREATE DATABASE "{w5db}" TEMPLATE template0']))
            try:
                pool = o.sizes.pg_pool_size
                results.append(_w5("postgres", db_url(url, w5db), o, log, pool, pool_size=pool))
            except Exception as err:
                results.append(Result("W5", "postgres", error=f"{type(err).__name__}: {err}"))
            finally:
                with contextlib.suppress(Exception):
                    asyncio.run(_pg_admin(url, [f'DROP DATABASE IF EXISTS "{w5db}" WITH (FORCE)']))
        if ("W7", "postgres") in names:
            results += _w7_postgres(url, o, log, server)
        if ("W8", "postgres") in names:
            results += _w8(url, o, log, server)
    except Exception as err:
        done = {(r.workload.split("-")[0], r.impl) for r in results}
        results += [
            Result(w, i, error=f"{type(err).__name__}: {err}")
            for w, i in names
            if (w, i) not in done
        ]
    finally:
        if cluster is not None:
            log("stopping PostgreSQL")
            cluster.destroy()
    return results


# -- peers in other processes ------------------------------------------------------
def _peers(
    data: store_workloads.Data, o: Options, tmp: Path, meta: dict[str, Any], log: Log
) -> list[Result]:
    sizes = o.sizes
    wanted = o.workloads & {"W1d", "W3"}
    if not wanted or not ({"yowsup", "baileys"} & o.impls):
        return []
    cache = o.cache or default_cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    data_file = tmp / "peers.bin"
    ops = max(sizes.w1_ops_yowsup, sizes.w1_ops_baileys)
    write_file(data_file, sizes, data.w1, data.w3, min(ops, len(data.w1.op_peers)))
    results: list[Result] = []
    common = {"reps": sizes.reps}
    if "yowsup" in o.impls:
        y = Yowsup(cache, log)
        try:
            y.install()
        except PeerUnavailable as err:
            log(f"yowsup unavailable: {err}")
            results += [Result(w, "yowsup", error=str(err)) for w in sorted(wanted)]
        else:
            wd = tmp / "yowsup"
            wd.mkdir()
            w1opts = {"ops": sizes.w1_ops_yowsup, "warmup": min(sizes.w1_warmup, 500), **common}
            jobs: list[tuple[str, str, str, dict[str, int], str]] = []
            if "W1d" in wanted:
                jobs += [
                    ("W1d", "yowsup", "W1d", w1opts, "SessionRecord objects, fsync per commit"),
                    ("W1d", "yowsup-sql", "W1d-rows", w1opts, "yowsup's SQL with plain bytes"),
                ]
            if "W3" in wanted:
                jobs.append(
                    (
                        "W3",
                        "yowsup",
                        "W3",
                        {"cycles": sizes.w3_cycles_yowsup, **common},
                        "PreKeyRecord objects, one commit per key",
                    )
                )
            for wl, impl, mode, opts, note in jobs:
                log(f"{wl} {impl}")
                try:
                    out = y.run(mode, data_file, wd, **opts)
                    meta.setdefault("peers", {})["yowsup"] = {
                        k: out.get(k) for k in ("yowsup", "python-axolotl", "protobuf")
                    }
                    results.append(to_result(wl, impl, out, note))
                except PeerUnavailable as err:
                    results.append(Result(wl, impl, error=str(err)))
    if "baileys" in o.impls:
        b = Baileys(cache, log)
        try:
            b.install()
        except PeerUnavailable as err:
            log(f"Baileys unavailable: {err}")
            results += [Result(w, "baileys", error=str(err)) for w in sorted(wanted)]
        else:
            wd = tmp / "baileys"
            wd.mkdir()
            meta["node"] = node_version()
            if "W1d" in wanted:
                log("W1d baileys")
                try:
                    out = b.run(
                        "W1d",
                        data_file,
                        wd,
                        ops=sizes.w1_ops_baileys,
                        warmup=min(sizes.w1_warmup, 1000),
                        **common,
                    )
                    meta.setdefault("peers", {})["baileys"] = out.get("baileys")
                    results.append(to_result("W1d", "baileys", out, "one JSON file per key"))
                except PeerUnavailable as err:
                    results.append(Result("W1d", "baileys", error=str(err)))
            if "W3" in wanted:
                log("W3 baileys")
                try:
                    out = b.run("W3", data_file, wd, cycles=sizes.w3_cycles, **common)
                    results.append(to_result("W3", "baileys", out, "one JSON file per pre-key"))
                except PeerUnavailable as err:
                    results.append(Result("W3", "baileys", error=str(err)))
    return results


# -- the run -------------------------------------------------------------------------
def run(o: Options) -> dict[str, Any]:
    """Run everything ``o`` asks for, print the tables, write the JSON (and the chart)."""
    log = _Logger(o.quiet)
    meta: dict[str, Any] = {
        "command": o.command,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": report.machine(),
    }
    if o.chart and not report.have_matplotlib():
        log(report.MATPLOTLIB_MISSING)
    o.out.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    data = store_workloads.Data.make(o.sizes)
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="wastore-bench-") as tmpname:
        tmp = Path(tmpname)
        if "memory" in o.impls and o.workloads - PROCESS_WORKLOADS:
            results += asyncio.run(_memory(data, o, log))
        if {"sqlite", "raw-sqlite3"} & o.impls and o.workloads - PROCESS_WORKLOADS:
            results += asyncio.run(_sqlite(data, o, tmp, log))
        if "sqlite" in o.impls and "W5" in o.workloads:
            try:
                results.append(_w5("sqlite", f"sqlite:///{tmp / 'w5.db'}", o, log, 3))
            except Exception as err:
                results.append(Result("W5", "sqlite", error=f"{type(err).__name__}: {err}"))
        if "sqlite" in o.impls and "W7" in o.workloads:
            results += _w7(
                "sqlite", lambda n: f"sqlite:///{tmp / f'w7-{n}.db'}", None, o, log, None, 3
            )
        results += _postgres_section(data, o, meta, log)
        results += _peers(data, o, tmp, meta, log)
        results += clients.run(o.sizes, o.workloads, o.impls, tmp, o.cache, meta, log)
    meta["seconds"] = round(time.monotonic() - t0, 1)
    meta["machine"]["loadavg_end"] = report.machine().get("loadavg")
    gl = report.goals(results)
    title = f"wastore benchmarks ({o.command or 'python -m benchmarks'})"
    if not o.quiet:
        report.print_tables(results, gl, title)
    sizes = dataclasses.asdict(o.sizes)
    report.write_json(o.out / "results.json", meta, sizes, results, gl)
    (o.out / "results.md").write_text(report.markdown(results, gl))
    if o.chart:
        if report.have_matplotlib():
            report.chart(o.out / "chart.png", results, title)
            log(f"wrote {o.out / 'results.json'}, {o.out / 'results.md'}, {o.out / 'chart.png'}")
        else:
            log(report.MATPLOTLIB_MISSING)
    else:
        log(f"wrote {o.out / 'results.json'} and {o.out / 'results.md'}")
    return {"meta": meta, "results": results, "goals": gl}
