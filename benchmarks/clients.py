"""The clients' view: W6 (python-axolotl), W6-pywhats and W6-pyaileys.

Each workload runs in a process of its own (``python -m benchmarks.w6``,
``benchmarks.w6_pywhats --harness``, ``benchmarks.w6_pyaileys --harness``; the
yowsup peer in its own virtualenv), which times its implementations side by
side, interleaved run by run, and prints one JSON line: a process of its own
because python-axolotl needs protobuf's pure-Python implementation, chosen
before protobuf is first imported, and so that no client shares its event loop
or its threads with the harness. PostgreSQL variants use one throwaway
cluster for all three (or ``WASTORE_BENCH_POSTGRES_URL``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .config import Sizes
from .measure import Result
from .peers import PeerUnavailable, Yowsup, default_cache_dir
from .pg import ENV_URL, PgCluster, find_bindir

CLIENT_WORKLOADS = ("W6", "W6-pywhats", "W6-pyaileys")
REFERENCES = {
    "W6": "axolotl-memory",
    "W6-pywhats": "pywhats-sqlite",
    "W6-pyaileys": "multifile",
}
"""The implementation each workload's ratios are taken against."""

Log = Callable[[str], None]
_TIMEOUT = 1800
ROOT = Path(__file__).resolve().parents[1]


def _child_env() -> dict[str, str]:
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONPATH": path, "PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION": "python"}


def _run_child(cmd: list[str], log: Log) -> dict[str, Any]:
    proc = subprocess.run(
        cmd, capture_output=True, text=True, timeout=_TIMEOUT, check=False, env=_child_env()
    )
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip()[-800:]
        raise RuntimeError(f"{' '.join(cmd[1:4])} failed ({proc.returncode}): {tail}")
    for line in reversed(proc.stdout.strip().splitlines()):
        if line.startswith("{"):
            out: dict[str, Any] = json.loads(line)
            return out
    raise RuntimeError(f"no JSON in the output of {' '.join(cmd[1:4])}: {proc.stdout[-300:]!r}")


def _results(workload: str, out: dict[str, Any]) -> list[Result]:
    results = []
    for r in out["results"]:
        res = Result(
            workload,
            r["impl"],
            runs=[float(x) for x in r.get("runs", [])],
            ops=int(r.get("ops", 0)),
            extra=dict(r.get("extra") or {}),
            error=r.get("error"),
            note=r.get("note", ""),
        )
        if not res.runs and res.error is None:
            res.error = "no run finished"
        results.append(res)
    return results


def _w6(
    sizes: Sizes, impls: set[str], tmp: Path, pg_url: str, meta: dict[str, Any], log: Log
) -> list[Result]:
    wanted = ["axolotl-memory"]
    if "sqlite" in impls:
        wanted += ["sqlite", "sqlite-nocache"]
    if pg_url:
        wanted += ["postgres", "postgres-nocache"]
    folder = tmp / "w6"
    folder.mkdir(exist_ok=True)
    cmd = [
        sys.executable,
        "-m",
        "benchmarks.w6",
        "--dir",
        str(folder),
        "--messages",
        str(sizes.w6_messages),
        "--runs",
        str(sizes.reps),
        "--warmup",
        str(sizes.w6_warmup),
        "--impls",
        ",".join(wanted),
    ]
    if pg_url:
        cmd += ["--pg-url", pg_url]
    log(f"W6: {', '.join(wanted)} ({sizes.w6_messages} messages x {sizes.reps} runs)")
    try:
        out = _run_child(cmd, log)
    except Exception as err:
        return [Result("W6", i, error=f"{type(err).__name__}: {err}") for i in wanted]
    meta.setdefault("peers", {})["python-axolotl"] = {
        k: out.get(k) for k in ("python-axolotl", "protobuf")
    }
    return _results("W6", out)


def _w6_yowsup(
    sizes: Sizes, tmp: Path, cache: Path, meta: dict[str, Any], log: Log
) -> list[Result]:
    y = Yowsup(cache, log)
    folder = tmp / "w6-yowsup"
    folder.mkdir(exist_ok=True)
    try:
        y.install()
        log(f"W6 yowsup ({sizes.w6_messages_yowsup} messages x {sizes.reps} runs)")
        out = y.run(
            "W6",
            Path(""),
            folder,
            ops=sizes.w6_messages_yowsup,
            warmup=sizes.w6_warmup,
            reps=sizes.reps,
        )
    except PeerUnavailable as err:
        return [Result("W6", "yowsup", error=str(err))]
    meta.setdefault("peers", {})["yowsup"] = {
        k: out.get(k) for k in ("yowsup", "python-axolotl", "protobuf")
    }
    memory_runs = [float(x) for x in out.pop("memory_runs", [])]
    ops = int(out["ops"])
    return [
        Result(
            "W6",
            "yowsup",
            runs=[float(x) for x in out["runs"]],
            ops=ops,
            note="LiteAxolotlStore: every call committed (fsync); ratio to InMemoryAxolotlStore "
            "in yowsup's own environment",
        ),
        Result(
            "W6",
            "yowsup-memory",
            runs=memory_runs,
            ops=ops,
            note="InMemoryAxolotlStore with yowsup's python-axolotl and protobuf",
        ),
    ]


def _script(module: str, workload: str, args: list[str], pg_url: str, log: Log) -> list[Result]:
    cmd = [sys.executable, "-m", module, "--harness", *args]
    cmd += ["--url", pg_url] if pg_url else ["--no-postgres"]
    log(f"{workload}: {' '.join(args)}{'' if pg_url else ' (no PostgreSQL)'}")
    try:
        return _results(workload, _run_child(cmd, log))
    except Exception as err:
        return [Result(workload, REFERENCES[workload], error=f"{type(err).__name__}: {err}")]


def run(
    sizes: Sizes,
    workloads: set[str],
    impls: set[str],
    tmp: Path,
    cache: Path | None,
    meta: dict[str, Any],
    log: Log,
) -> list[Result]:
    """Run the client workloads among ``workloads`` (PostgreSQL variants when
    ``postgres`` is among ``impls``, yowsup when ``yowsup`` is)."""
    wanted = [w for w in CLIENT_WORKLOADS if w in workloads]
    if not wanted:
        return []
    cluster: PgCluster | None = None
    pg_url = ""
    if "postgres" in impls:
        pg_url = os.environ.get(ENV_URL, "").strip()
        if not pg_url:
            bindir = find_bindir()
            if bindir is None:
                log("client workloads: no PostgreSQL server binaries, SQLite only")
            else:
                log(f"client workloads: starting a throwaway PostgreSQL ({bindir})")
                cluster = PgCluster(bindir)
                cluster.init()
                cluster.start()
                pg_url = cluster.url
    results: list[Result] = []
    try:
        if "W6" in wanted:
            results += _w6(sizes, impls, tmp, pg_url, meta, log)
            if "yowsup" in impls:
                results += _w6_yowsup(sizes, tmp, cache or default_cache_dir(), meta, log)
        if "W6-pywhats" in wanted:
            args = [
                "--runs",
                str(sizes.reps),
                "--messages",
                str(sizes.w6_pywhats_rounds),
                "--group",
                str(sizes.w6_pywhats_group),
            ]
            results += _script("benchmarks.w6_pywhats", "W6-pywhats", args, pg_url, log)
        if "W6-pyaileys" in wanted:
            args = ["--runs", str(sizes.reps), "--messages", str(sizes.w6_pyaileys_messages)]
            results += _script("benchmarks.w6_pyaileys", "W6-pyaileys", args, pg_url, log)
    finally:
        if cluster is not None:
            cluster.destroy()
    return results
