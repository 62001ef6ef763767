"""``python -m benchmarks``: run the benchmark workloads and print the comparison."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from .config import FULL, QUICK, WHAT, WORKLOADS
from .harness import ALL_IMPLS, Options, run


def _split(value: str, known: tuple[str, ...], what: str) -> set[str]:
    items = {x.strip() for x in value.split(",") if x.strip()}
    lookup = {k.lower(): k for k in known}
    out = set()
    for item in items:
        if item.lower() not in lookup:
            raise SystemExit(f"unknown {what} {item!r}; known: {', '.join(known)}")
        out.add(lookup[item.lower()])
    return out


def main(argv: list[str] | None = None) -> int:
    args_list = sys.argv[1:] if argv is None else argv
    ap = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Run the workloads of docs/benchmarks.md on wastore's backends and on the "
        "peers (raw sqlite3, raw asyncpg, yowsup, Baileys) side by side, and compare.",
        epilog="workloads: " + "; ".join(f"{k}: {v}" for k, v in WHAT.items()),
    )
    ap.add_argument(
        "--quick",
        action="store_true",
        help="fewer operations per run (about a fifth; W4 with 10,000 MACs)",
    )
    ap.add_argument(
        "--only",
        metavar="W1d,W3",
        default="",
        help="run only these workloads (W1c also runs W1d, its reference)",
    )
    ap.add_argument(
        "--impls",
        metavar="sqlite,raw-sqlite3",
        default="",
        help=f"run only these implementations ({', '.join(ALL_IMPLS)})",
    )
    ap.add_argument("--no-peers", action="store_true", help="skip yowsup and Baileys")
    ap.add_argument("--no-postgres", action="store_true", help="skip PostgreSQL")
    ap.add_argument("--no-chart", action="store_true", help="do not draw chart.png")
    ap.add_argument("--reps", type=int, default=None, help="timed runs per workload (>= 5)")
    ap.add_argument(
        "--out",
        metavar="DIR",
        type=Path,
        default=None,
        help="where results.json, results.md and chart.png go "
        "(default: bench-results/full or bench-results/quick)",
    )
    ap.add_argument(
        "--cache-dir",
        metavar="DIR",
        type=Path,
        default=None,
        help="where the peers are installed (default: .bench-cache in the checkout)",
    )
    args = ap.parse_args(args_list)
    sizes = QUICK if args.quick else FULL
    if args.reps is not None:
        if args.reps < 1:
            ap.error("--reps must be at least 1")
        sizes = sizes.scaled(reps=args.reps, w5_runs=args.reps)
    workloads = _split(args.only, WORKLOADS, "workload") if args.only else set(WORKLOADS)
    if "W1c" in workloads:
        workloads.add("W1d")
    impls = _split(args.impls, ALL_IMPLS, "implementation") if args.impls else set(ALL_IMPLS)
    if args.no_peers:
        impls -= {"yowsup", "baileys"}
    if args.no_postgres:
        impls -= {"postgres", "raw-asyncpg"}
    out = args.out or Path("bench-results") / ("quick" if args.quick else "full")
    command = "python -m benchmarks" + ("" if not args_list else " " + shlex.join(args_list))
    opts = Options(
        sizes=sizes,
        workloads=workloads,
        impls=impls,
        out=out,
        cache=args.cache_dir,
        chart=not args.no_chart,
        command=command,
    )
    result = run(opts)
    return 1 if any(not r.ok for r in result["results"]) else 0


if __name__ == "__main__":
    sys.exit(main())
