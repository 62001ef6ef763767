"""Smoke test of the benchmark harness (``python -m benchmarks``).

Tiny sizes, MemoryStore and SQLite only: no PostgreSQL, no peers (so nothing is
installed), no chart. It checks that every workload runs, that the JSON has
every workload with sane numbers, and that the goals are evaluated. The
benchmark itself is not a test: its numbers are never asserted here.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from benchmarks import Options, run, tiny
from benchmarks.__main__ import main as bench_main
from benchmarks.config import WORKLOADS
from benchmarks.measure import Result, Runner, interleaved
from benchmarks.report import goals, markdown


def test_harness_runs_every_workload_on_memory_and_sqlite(tmp_path: Path) -> None:
    out = tmp_path / "results"
    opts = Options(
        sizes=tiny(),
        workloads=set(WORKLOADS),
        impls={"memory", "sqlite", "raw-sqlite3"},
        out=out,
        chart=False,
        quiet=True,
        command="pytest",
    )
    run(opts)
    doc = json.loads((out / "results.json").read_text())
    rows = {(r["workload"], r["impl"]): r for r in doc["results"]}
    in_process = [w for w in WORKLOADS if w in ("W1d", "W1c", "W1w", "W2", "W3", "W4")]
    clients = [w for w in WORKLOADS if w.startswith("W6")]
    expected = {(w, "sqlite") for w in (*in_process, *clients, "W5", "W7-30", "W7-60")}
    expected |= {(w, "memory") for w in in_process if w != "W1w"}  # W1w: an SQLite file's WAL
    expected |= {(w, "sqlite+lease") for w in ("W1d", "W1c")}  # the fencing cost
    expected |= {(w, "raw-sqlite3") for w in ("W1d", "W1w", "W2", "W3", "W4")}
    # The clients' view, each against its reference (no PostgreSQL, no yowsup here).
    expected |= {
        ("W6", "axolotl-memory"),
        ("W6", "sqlite-nocache"),
        ("W6-pywhats", "pywhats-sqlite"),
        ("W6-pywhats", "sqlite-full"),
        ("W6-pyaileys", "multifile"),
        ("W6-pyaileys", "dict"),
    }
    assert expected <= set(rows)
    assert not any(w.startswith("W8") for w, _ in rows)  # PostgreSQL only
    for key in expected:
        r = rows[key]
        assert r["error"] is None, (key, r["error"])
        runs = r["runs_ops_per_s"]
        assert len(runs) == (1 if key[0].startswith(("W5", "W7")) else 2), key
        assert all(math.isfinite(x) and x > 0 for x in runs), (key, runs)
        assert r["min_ops_per_s"] <= r["median_ops_per_s"] <= r["max_ops_per_s"]
    w5 = rows[("W5", "sqlite")]["extra"]
    assert w5["accounts"] == 20
    assert w5["connections"] == [3]  # the store's three connections, not one per account
    assert all(s > 0 for s in w5["seconds"])
    assert all(g >= 0 for g in w5["rss_growth_mib"])
    assert rows[("W1c", "sqlite")]["extra"]["flushes_per_run"]
    w7 = rows[("W7-60", "sqlite")]["extra"]
    assert w7["accounts"] == 60
    assert w7["connections"] == [3]
    assert w7["leases_lost"] == 0
    assert 0 <= w7["idle_cpu_share"] < 2  # measured (a share of one core), not asserted
    assert w7["device_bytes"] > 0
    assert all(p > 0 for p in rows[("W1w", "sqlite")]["extra"]["peak_wal_mib"])
    by_goal = {g["goal"]: g for g in doc["goals"]}
    assert by_goal["W1d SQLite >= 0.5 x raw-sqlite3"]["measured"] > 0
    assert by_goal["W5 SQLite: 20 accounts in < 2 s"]["met"] is True
    assert by_goal["W7 SQLite: 60 accounts open with leases in < 10 s"]["measured"] > 0
    assert by_goal["W1d SQLite, lease held (fenced) >= 0.8 x raw-sqlite3"]["measured"] > 0
    assert by_goal["W1w SQLite: peak -wal < 64 MiB under sustained writes"]["met"] is True
    assert by_goal["W1d SQLite >= 2 x yowsup"]["measured"] is None  # peers not run
    for goal in (
        "W1c SQLite >= 0.8 x W1c MemoryStore (durability nearly free when cached)",
        "W6 SQLite (cached) >= 0.8 x InMemoryAxolotlStore",
        "W6-pywhats SQLite >= 0.9 x pywhats' SqliteStore",
        "W6-pyaileys SQLite >= 3 x MultiFileAuthState",
    ):
        assert by_goal[goal]["measured"] > 0, goal
    assert all(x >= 0 for x in rows[("W6", "sqlite")]["extra"]["flush_ms_per_msg"])
    assert doc["meta"]["machine"]["nproc"] >= 1
    assert "| W1d | SqliteStore |" in (out / "results.md").read_text()


def test_only_filter_and_cli(tmp_path: Path) -> None:
    # W1c brings W1d along (its reference); nothing else runs.
    code = bench_main(
        [
            "--quick",
            "--only",
            "w1c",
            "--impls",
            "memory",
            "--no-chart",
            "--reps",
            "1",
            "--out",
            str(tmp_path),
        ]
    )
    doc = json.loads((tmp_path / "results.json").read_text())
    assert code == 0
    assert {(r["workload"], r["impl"]) for r in doc["results"]} == {
        ("W1d", "memory"),
        ("W1c", "memory"),
    }


def test_unknown_workload_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="unknown workload"):
        bench_main(["--only", "W9", "--out", str(tmp_path)])


async def test_a_failing_runner_is_reported_not_fatal() -> None:
    class Broken(Runner):
        workload = "W2"

        async def run(self, rep: int) -> None:
            if rep >= 1:
                raise RuntimeError("boom")

    class Fine(Runner):
        workload = "W2"

        async def run(self, rep: int) -> None:
            pass

    broken, fine = await interleaved([Broken("sqlite"), Fine("raw-sqlite3")], reps=3)
    assert broken.error == "RuntimeError: boom" and not broken.ok
    assert fine.ok and len(fine.runs) == 3
    table = markdown([broken, fine], goals([broken, fine]))
    assert "failed: RuntimeError: boom" in table


def test_goal_ratios_are_medians_side_by_side() -> None:
    results = [
        Result("W1d", "sqlite", runs=[10.0, 20.0, 30.0]),
        Result("W1d", "raw-sqlite3", runs=[40.0, 40.0, 40.0]),
        Result("W1c", "sqlite", runs=[200.0, 210.0, 190.0]),
        Result("W1c", "memory", runs=[250.0, 260.0, 240.0]),
        Result("W6", "sqlite", runs=[70.0, 90.0, 80.0]),
        Result("W6", "axolotl-memory", runs=[100.0, 100.0, 110.0]),
    ]
    by_goal = {g.text: g for g in goals(results)}
    assert by_goal["W1d SQLite >= 0.5 x raw-sqlite3"].measured == pytest.approx(0.5)
    assert by_goal["W1d SQLite >= 0.5 x raw-sqlite3"].met is True
    w1c = by_goal["W1c SQLite >= 0.8 x W1c MemoryStore (durability nearly free when cached)"]
    assert w1c.measured == pytest.approx(0.8)
    assert w1c.met is True
    w6 = by_goal["W6 SQLite (cached) >= 0.8 x InMemoryAxolotlStore"]
    assert w6.measured == pytest.approx(0.8)
    assert by_goal["W6-pywhats SQLite >= 0.9 x pywhats' SqliteStore"].met is None
    assert by_goal["W2 SQLite >= 0.7 x raw-sqlite3"].met is None
