"""The comparison table, the goals of docs/benchmarks.md, the JSON file and the chart."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import sqlite3
import statistics
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .config import UNITS, WHAT, WORKLOADS
from .measure import Result

IMPLS: dict[str, str] = {
    # the clients' references (W6*), first in their workloads' rows
    "axolotl-memory": "InMemoryAxolotlStore",
    "pywhats-sqlite": "pywhats SqliteStore",
    "multifile": "MultiFileAuthState",
    "dict": "dict (no persistence)",
    "memory": "MemoryStore",
    "sqlite": "SqliteStore",
    "sqlite+lease": "SqliteStore, lease held",
    "sqlite-nocache": "SqliteStore, no cache",
    "sqlite-full": "SqliteStore, synchronous=FULL",
    "raw-sqlite3": "raw-sqlite3",
    "postgres": "PostgresStore",
    "postgres+lease": "PostgresStore, lease held",
    "postgres-nocache": "PostgresStore, no cache",
    "raw-asyncpg": "raw-asyncpg",
    "yowsup": "yowsup",
    "yowsup-memory": "InMemoryAxolotlStore (yowsup's env)",
    "yowsup-sql": "yowsup (SQL only)",
    "baileys": "Baileys",
}
"""Implementation ids (in table order) and their display names."""

RATIO_COLUMNS = ("raw-sqlite3", "raw-asyncpg", "yowsup", "baileys", "W1d", "ref")
REFERENCES: dict[str, str] = {
    "W1c": "memory",
    "W6": "axolotl-memory",
    "W6-pywhats": "pywhats-sqlite",
    "W6-pyaileys": "multifile",
}
"""The "vs ref." column: each workload's rates over this implementation's (same run)."""
_OWN_REFERENCE = {("W6", "yowsup"): "yowsup-memory"}
"""Rows measured in another environment, against their own reference there."""

# Which ratios each implementation's rows show (the relevant peers and limits).
_RELEVANT: dict[str, tuple[str, ...]] = {
    "memory": ("raw-sqlite3", "yowsup", "baileys"),
    "sqlite": ("raw-sqlite3", "yowsup", "baileys"),
    "sqlite+lease": ("raw-sqlite3", "yowsup", "baileys"),
    "postgres": ("raw-asyncpg", "yowsup", "baileys"),
    "postgres+lease": ("raw-asyncpg", "yowsup", "baileys"),
    "yowsup": ("raw-sqlite3",),
    "yowsup-sql": ("raw-sqlite3",),
    "baileys": ("raw-sqlite3",),
}


def find(results: Sequence[Result], workload: str, impl: str) -> Result | None:
    for r in results:
        if r.workload == workload and r.impl == impl and r.ok:
            return r
    return None


def ratio(
    results: Sequence[Result],
    workload: str,
    impl: str,
    other: str,
    other_workload: str | None = None,
) -> float | None:
    """Median rate of ``impl`` over the median rate of ``other`` (same run)."""
    a = find(results, workload, impl)
    b = find(results, other_workload or workload, other)
    if a is None or b is None or b.median <= 0:
        return None
    return a.median / b.median


def _fmt_rate(x: float) -> str:
    if x >= 100:
        return f"{x:,.0f}"
    if x >= 10:
        return f"{x:.1f}"
    return f"{x:.2f}"


def _fmt_ratio(x: float | None) -> str:
    if x is None:
        return ""
    return f"{x:.2f}x" if x < 10 else f"{x:.1f}x"


def _sorted(results: Sequence[Result]) -> list[Result]:
    order = {name: i for i, name in enumerate(IMPLS)}
    wl = {name: i for i, name in enumerate(WORKLOADS)}

    def key(r: Result) -> tuple[int, int, int, int]:
        # W7-1k, W8-2p, ... sort under W7, W8; W6-pywhats is a workload of its own
        base = r.workload if r.workload in wl else r.workload.split("-")[0]
        return (wl.get(base, 99), int(r.extra.get("accounts", 0)), order.get(r.impl, 99),
                int(r.extra.get("processes", 0)))  # fmt: skip

    return sorted(results, key=key)


def fencing_note(results: Sequence[Result], r: Result) -> str:
    """The cost of fencing: a leased row's rate over the same store's without a lease."""
    plain = r.impl.removesuffix("+lease")
    x = ratio(results, r.workload, r.impl, plain)
    return "" if x is None else f"fenced writes: {x:.2f}x the rate without a lease"


def w7_note(r: Result) -> str:
    e = r.extra
    parts = []
    secs = e.get("seconds", [])
    if secs:
        parts.append(f"open {statistics.median(secs):.2f} s")
    closes = e.get("close_seconds", [])
    if closes:
        parts.append(f"close {statistics.median(closes):.2f} s")
    per = w7_kib_per_account(r)
    if per is not None:
        parts.append(f"RSS {per:.1f} KiB/account beyond its data")
    cpu = e.get("idle_cpu_share")
    if isinstance(cpu, float):
        parts.append(f"idle {cpu * 100:.2f}% of a core")
    srv = e.get("idle_server_cpu_share")
    if isinstance(srv, float):
        parts.append(f"server idle {srv * 100:.2f}%")
    conns = e.get("connections", [])
    if conns:
        parts.append(f"{max(conns)} conn.")
    return ", ".join(parts)


def w7_kib_per_account(r: Result) -> float | None:
    """RSS growth per account minus the account's own data (its decoded device)."""
    e = r.extra
    growth = e.get("rss_growth_kib", [])
    n = int(e.get("accounts", 0))
    if not growth or not n:
        return None
    data_kib = float(e.get("device_bytes", 0.0)) / 1024
    return float(statistics.median(growth)) / n - data_kib


def w8_note(r: Result) -> str:
    e = r.extra
    parts = [f"{e.get('processes', '?')} x {e.get('accounts_per_process', '?')} accounts"]
    conns = e.get("connections", [])
    if conns:
        parts.append(f"{max(conns)} conn.")
    cpu = e.get("server_cpu_us_per_message", [])
    if cpu:
        parts.append(f"server CPU {statistics.median(cpu):.0f} µs/message")
    return ", ".join(parts)


def reference(workload: str, impl: str) -> str | None:
    """The implementation ``impl``'s rate in ``workload`` is compared with, if any."""
    return _OWN_REFERENCE.get((workload, impl), REFERENCES.get(workload))


def _header(column: str) -> str:
    return "vs ref." if column == "ref" else f"vs {IMPLS.get(column, column)}"


def table_rows(results: Sequence[Result]) -> list[dict[str, str]]:
    """The comparison table as plain strings (for the terminal and for Markdown)."""
    rows = []
    for r in _sorted(results):
        row = {
            "workload": r.workload,
            "impl": IMPLS.get(r.impl, r.impl),
            "median": "",
            "range": "",
            **{c: "" for c in RATIO_COLUMNS},
            "notes": r.note,
        }
        if not r.ok:
            row["notes"] = f"failed: {r.error}" if r.error else "no result"
            rows.append(row)
            continue
        row["median"] = _fmt_rate(r.median)
        row["range"] = f"{_fmt_rate(r.low)}-{_fmt_rate(r.high)}"
        base = r.workload.split("-")[0]
        if base not in ("W5", "W6", "W7", "W8"):
            for other in _RELEVANT.get(r.impl, ()):
                row[other] = _fmt_ratio(ratio(results, r.workload, r.impl, other))
        ref = reference(r.workload, r.impl)
        if ref is not None and ref != r.impl:
            row["ref"] = _fmt_ratio(ratio(results, r.workload, r.impl, ref))
        elif ref == r.impl:
            row["ref"] = "ref."
        if r.workload == "W1c":
            row["W1d"] = _fmt_ratio(ratio(results, "W1c", r.impl, r.impl, "W1d"))
        if r.impl.endswith("+lease"):
            row["notes"] = fencing_note(results, r)
        if r.workload == "W5":
            row["notes"] = w5_note(r)
        elif base == "W7":
            row["notes"] = w7_note(r)
        elif base == "W8":
            row["notes"] = w8_note(r)
        if r.workload == "W1w" and r.extra.get("peak_wal_mib"):
            row["notes"] = f"peak -wal {max(r.extra['peak_wal_mib']):.1f} MiB"
        rows.append(row)
    return rows


def w5_note(r: Result) -> str:
    e = r.extra
    secs = e.get("seconds", [])
    growth = e.get("rss_growth_mib", [])
    conns = e.get("connections", [])
    parts = []
    if secs:
        parts.append(f"{statistics.median(secs):.2f} s/{e.get('accounts', '?')} accounts")
    if growth:
        parts.append(f"RSS +{max(growth):.1f} MiB")
    if conns:
        bound = e.get("bound")
        parts.append(f"{max(conns)} conn." + (f" (pool {bound})" if bound else ""))
    return ", ".join(parts)


@dataclass
class Goal:
    text: str
    measured: float | None
    target: float
    kind: str  # "min" (measured >= target) or "max" (measured < target)
    unit: str = "x"

    @property
    def met(self) -> bool | None:
        if self.measured is None:
            return None
        return self.measured >= self.target if self.kind == "min" else self.measured < self.target

    def to_json(self) -> dict[str, Any]:
        return {
            "goal": self.text,
            "measured": None if self.measured is None else round(self.measured, 4),
            "target": self.target,
            "kind": self.kind,
            "unit": self.unit,
            "met": self.met,
        }


def goals(results: Sequence[Result]) -> list[Goal]:
    out = [
        Goal(
            "W1d SQLite >= 0.5 x raw-sqlite3",
            ratio(results, "W1d", "sqlite", "raw-sqlite3"),
            0.5,
            "min",
        ),
        Goal(
            "W1d SQLite, lease held (fenced) >= 0.8 x raw-sqlite3",
            ratio(results, "W1d", "sqlite+lease", "raw-sqlite3"),
            0.8,
            "min",
        ),
        Goal("W1d SQLite >= 2 x yowsup", ratio(results, "W1d", "sqlite", "yowsup"), 2, "min"),
        Goal("W1d SQLite >= 3 x Baileys", ratio(results, "W1d", "sqlite", "baileys"), 3, "min"),
        Goal(
            "W1c SQLite >= 0.8 x W1c MemoryStore (durability nearly free when cached)",
            ratio(results, "W1c", "sqlite", "memory"),
            0.8,
            "min",
        ),
        Goal(
            "W6 SQLite (cached) >= 0.8 x InMemoryAxolotlStore",
            ratio(results, "W6", "sqlite", "axolotl-memory"),
            0.8,
            "min",
        ),
        Goal(
            "W6-pywhats SQLite >= 0.9 x pywhats' SqliteStore",
            ratio(results, "W6-pywhats", "sqlite", "pywhats-sqlite"),
            0.9,
            "min",
        ),
        Goal(
            "W6-pyaileys SQLite >= 3 x MultiFileAuthState",
            ratio(results, "W6-pyaileys", "sqlite", "multifile"),
            3,
            "min",
        ),
    ]
    w1w = find(results, "W1w", "sqlite")
    peaks = w1w.extra.get("peak_wal_mib") if w1w is not None else None
    out.append(
        Goal(
            "W1w SQLite: peak -wal < 64 MiB under sustained writes",
            max(peaks) if peaks else None,
            64.0,
            "max",
            " MiB",
        )
    )
    for wl in ("W2", "W3", "W4"):
        out.append(
            Goal(
                f"{wl} SQLite >= 0.7 x raw-sqlite3",
                ratio(results, wl, "sqlite", "raw-sqlite3"),
                0.7,
                "min",
            )
        )
    for wl in ("W2", "W3", "W4"):
        out.append(
            Goal(
                f"{wl} PostgreSQL >= 0.7 x raw-asyncpg",
                ratio(results, wl, "postgres", "raw-asyncpg"),
                0.7,
                "min",
            )
        )
    for impl, name in (("sqlite", "SQLite"), ("postgres", "PostgreSQL")):
        r = find(results, "W5", impl)
        e = r.extra if r is not None else {}
        secs = e.get("seconds") or None
        growth = e.get("rss_growth_mib") or None
        conns = e.get("connections") or None
        n = e.get("accounts", 1000)
        out.append(
            Goal(
                f"W5 {name}: {n} accounts in < 2 s",
                statistics.median(secs) if secs else None,
                2.0,
                "max",
                " s",
            )
        )
        mb = max(growth) * 1.048576 if growth else None  # MiB -> MB
        out.append(Goal(f"W5 {name}: RSS growth < 50 MB", mb, 50.0, "max", " MB"))
        bound = e.get("bound")
        out.append(
            Goal(
                f"W5 {name}: connections <= pool size ({bound if bound else '?'}), not per account",
                float(max(conns)) if conns else None,
                float(bound or 0) + 0.5,
                "max",
                "",
            )
        )
    out += w7_goals(results)
    return out


def w7_goals(results: Sequence[Result]) -> list[Goal]:
    """W7's goals, on the largest number of accounts measured (50,000 in a full run)."""
    out = []
    for impl, name in (("sqlite", "SQLite"), ("postgres", "PostgreSQL")):
        rows = [r for r in results if r.workload.startswith("W7-") and r.impl == impl and r.ok]
        if not rows:
            continue
        r = max(rows, key=lambda x: int(x.extra.get("accounts", 0)))
        n = int(r.extra.get("accounts", 0))
        secs = r.extra.get("seconds") or None
        out.append(
            Goal(
                f"W7 {name}: {n:,} accounts open with leases in < 10 s",
                statistics.median(secs) if secs else None,
                10.0,
                "max",
                " s",
            )
        )
        cpu = r.extra.get("idle_cpu_share")
        out.append(
            Goal(
                f"W7 {name}: idle CPU with {n:,} accounts open < 5% of a core",
                cpu * 100 if isinstance(cpu, float) else None,
                5.0,
                "max",
                " %",
            )
        )
        out.append(
            Goal(
                f"W7 {name}: RSS < 10 KiB per account beyond its data ({n:,} accounts)",
                w7_kib_per_account(r),
                10.0,
                "max",
                " KiB",
            )
        )
    return out


def _fmt_goal(g: Goal) -> tuple[str, str]:
    if g.measured is None:
        return "not measured", "-"
    if g.unit == "x":
        value = f"{g.measured:.2f}x"
    elif g.unit == "":
        value = f"{g.measured:.0f}"
    else:
        value = f"{g.measured:.2f}{g.unit}"
    return value, "met" if g.met else "NOT met"


def print_tables(results: Sequence[Result], gl: Sequence[Goal], title: str) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=max(190, Console().width))
    t = Table(title=title, show_lines=False)
    t.add_column("workload", no_wrap=True)
    t.add_column("implementation", no_wrap=True)
    t.add_column("ops/s (median)", justify="right", no_wrap=True)
    t.add_column("min-max", justify="right", no_wrap=True)
    for c in RATIO_COLUMNS:
        t.add_column(_header(c), justify="right", no_wrap=True)
    t.add_column("notes")
    last = None
    for row in table_rows(results):
        if last is not None and row["workload"] != last:
            t.add_section()
        last = row["workload"]
        t.add_row(
            row["workload"],
            row["impl"],
            row["median"],
            row["range"],
            *(row[c] for c in RATIO_COLUMNS),
            row["notes"],
        )
    console.print(t)
    g = Table(title="Goals of docs/benchmarks.md (ratios measured side by side in this run)")
    g.add_column("goal")
    g.add_column("measured", justify="right")
    g.add_column("", justify="left")
    for goal in gl:
        value, verdict = _fmt_goal(goal)
        style = "green" if goal.met else ("red" if goal.met is False else "yellow")
        g.add_row(goal.text, value, f"[{style}]{verdict}[/{style}]")
    console.print(g)


def markdown(results: Sequence[Result], gl: Sequence[Goal]) -> str:
    """Both tables in Markdown (for docs/benchmarks.md)."""
    head = [
        "workload",
        "implementation",
        "ops/s (median)",
        "min-max",
        *(_header(c) for c in RATIO_COLUMNS),
        "notes",
    ]
    lines = [
        "| " + " | ".join(head) + " |",
        "|" + "|".join(["---", "---", "---:", "---:", *["---:"] * len(RATIO_COLUMNS), "---"]) + "|",
    ]
    for row in table_rows(results):
        cells = [
            row["workload"],
            row["impl"],
            row["median"],
            row["range"],
            *(row[c] for c in RATIO_COLUMNS),
            row["notes"],
        ]
        lines.append("| " + " | ".join(c.replace("|", "/") for c in cells) + " |")
    lines += ["", "| goal | measured | |", "|---|---:|---|"]
    for goal in gl:
        value, verdict = _fmt_goal(goal)
        lines.append(f"| {goal.text} | {value} | {verdict} |")
    return "\n".join(lines) + "\n"


def machine() -> dict[str, Any]:
    info: dict[str, Any] = {
        "nproc": os.cpu_count(),
        "python": sys.version.split()[0],
        "sqlite": sqlite3.sqlite_version,
        "platform": platform.platform(),
    }
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                info["ram_gib"] = round(int(line.split()[1]) / 1024 / 1024, 1)
                break
    except OSError:
        pass
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                info["os"] = line.split("=", 1)[1].strip('"')
    except OSError:
        pass
    with contextlib.suppress(OSError):
        info["loadavg"] = Path("/proc/loadavg").read_text().split()[:3]
    return info


def write_json(
    path: Path,
    meta: dict[str, Any],
    sizes: dict[str, Any],
    results: Sequence[Result],
    gl: Sequence[Goal],
) -> None:
    doc = {
        "meta": meta,
        "sizes": sizes,
        "workloads": WHAT,
        "units": UNITS,
        "results": [r.to_json() for r in _sorted(results)],
        "goals": [g.to_json() for g in gl],
    }
    path.write_text(json.dumps(doc, indent=2) + "\n")


def have_matplotlib() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


MATPLOTLIB_MISSING = (
    "the chart needs matplotlib, which is not installed: pip install 'wastore[bench]' "
    "(or run with --no-chart); the tables and the JSON file do not need it"
)


def chart(path: Path, results: Sequence[Result], title: str) -> None:
    """One panel per workload: the median rate of each implementation, min-max as error bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    present = [w for w in WORKLOADS if any(r.workload == w and r.ok for r in results)]
    if not present:
        return
    cols = 3
    nrows = (len(present) + cols - 1) // cols
    fig, axes = plt.subplots(nrows, cols, figsize=(15, 3.6 * nrows), squeeze=False)
    palette = {
        "memory": "#9e9e9e",
        "sqlite": "#1f77b4",
        "raw-sqlite3": "#aec7e8",
        "postgres": "#2ca02c",
        "raw-asyncpg": "#98df8a",
        "yowsup": "#d62728",
        "yowsup-sql": "#ff9896",
        "baileys": "#ff7f0e",
    }
    for ax, wl in zip(axes.flat, present, strict=False):
        rows = [r for r in _sorted(results) if r.workload == wl and r.ok]
        names = [IMPLS.get(r.impl, r.impl) for r in rows]
        med = [r.median for r in rows]
        err = [[r.median - r.low for r in rows], [r.high - r.median for r in rows]]
        ypos = list(range(len(rows)))
        ax.barh(
            ypos, med, xerr=err, color=[palette.get(r.impl, "#777777") for r in rows], capsize=3
        )
        ax.set_yticks(ypos, names)
        ax.invert_yaxis()
        if med and max(med) / max(min(med), 1e-9) > 30:
            ax.set_xscale("log")
        ax.set_title(f"{wl}: {UNITS.get(wl, 'ops/s')} (higher is better)", fontsize=10)
        ax.grid(axis="x", alpha=0.3)
        for y, r in zip(ypos, rows, strict=True):  # the label right of the error bar
            ax.annotate(
                _fmt_rate(r.median),
                (r.high, y),
                xytext=(5, 0),
                textcoords="offset points",
                va="center",
                fontsize=8,
            )
    for ax in list(axes.flat)[len(present) :]:
        ax.axis("off")
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
