"""The result record, and the scheduler that times runners side by side.

A *runner* is one workload on one implementation. Runners that are compared
with each other (a store and its raw driver, W1c and W1d) are measured
interleaved: one warm-up each, then repetition 1 of every runner, repetition 2
of every runner, and so on — so that a change in the machine's load hits all
of them alike instead of one of them.
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Result:
    """One workload on one implementation: the rate of every timed run."""

    workload: str
    impl: str
    runs: list[float] = field(default_factory=list)
    """Operations per second of each timed run (after the warm-up)."""
    ops: int = 0
    """Operations per timed run."""
    extra: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    note: str = ""

    @property
    def ok(self) -> bool:
        return self.error is None and bool(self.runs)

    @property
    def median(self) -> float:
        return statistics.median(self.runs) if self.runs else 0.0

    @property
    def low(self) -> float:
        return min(self.runs) if self.runs else 0.0

    @property
    def high(self) -> float:
        return max(self.runs) if self.runs else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "workload": self.workload,
            "impl": self.impl,
            "ops_per_run": self.ops,
            "runs_ops_per_s": [round(r, 3) for r in self.runs],
            "median_ops_per_s": round(self.median, 3),
            "min_ops_per_s": round(self.low, 3),
            "max_ops_per_s": round(self.high, 3),
            "extra": self.extra,
            "note": self.note,
            "error": self.error,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Result:
        return cls(
            workload=data["workload"],
            impl=data["impl"],
            runs=list(data.get("runs_ops_per_s", [])),
            ops=int(data.get("ops_per_run", 0)),
            extra=dict(data.get("extra", {})),
            error=data.get("error"),
            note=data.get("note", ""),
        )


class Runner:
    """One workload on one implementation. ``run(-1)`` is the warm-up."""

    workload: str = ""

    def __init__(self, impl: str, ops: int = 1) -> None:
        self.impl = impl
        self.ops = ops
        self.result = Result(self.workload, impl, ops=ops)

    async def before(self, rep: int) -> None:
        """Untimed preparation of a repetition."""

    async def run(self, rep: int) -> None:
        raise NotImplementedError

    async def after(self, rep: int) -> None:
        """Untimed clean-up of a repetition."""

    async def check(self) -> None:
        """Untimed sanity check once all repetitions ran (raises on a wrong result)."""


def _fail(runner: Runner, err: BaseException) -> None:
    runner.result.error = f"{type(err).__name__}: {err}"


async def interleaved(
    runners: Sequence[Runner], reps: int, log: Callable[[str], None] | None = None
) -> list[Result]:
    """Warm every runner up, then time ``reps`` rounds of one repetition each."""
    live = list(runners)
    if log is not None and live:
        names = dict.fromkeys(r.workload for r in live)
        log(f"{'+'.join(names)}: " + ", ".join(f"{r.impl} {r.workload}" for r in live))
    for r in list(live):
        try:
            await r.before(-1)
            await r.run(-1)
            await r.after(-1)
        except Exception as err:
            _fail(r, err)
            live.remove(r)
    for rep in range(reps):
        for r in list(live):
            try:
                await r.before(rep)
                gc.collect()
                t0 = time.perf_counter()
                await r.run(rep)
                elapsed = time.perf_counter() - t0
                await r.after(rep)
            except Exception as err:
                _fail(r, err)
                live.remove(r)
                continue
            r.result.runs.append(r.ops / elapsed)
    for r in live:
        try:
            await r.check()
        except Exception as err:
            _fail(r, err)
    return [r.result for r in runners]
