"""wastore's benchmark harness: ``python -m wastore.bench [--quick] [--only W1d,W3]``.

It runs the workloads W1-W5 of ``BENCHMARKS.md`` on MemoryStore, SqliteStore
and PostgresStore and, in the same run and on the same data, on the peers and
limits: raw ``sqlite3`` and raw asyncpg (the same SQL statements as the
stores), yowsup's ``LiteAxolotlStore`` and Baileys' ``useMultiFileAuthState``
(installed by the harness into ``.bench-cache/``). It prints one comparison
table and the goals, and writes ``results.json``, ``results.md`` and
``chart.png`` (the chart needs the ``bench`` extra: matplotlib). See
``docs/benchmarks.md``.
"""

from __future__ import annotations

from .config import FULL, QUICK, Sizes, tiny
from .harness import ALL_IMPLS, Options, run

__all__ = ["ALL_IMPLS", "FULL", "QUICK", "Options", "Sizes", "run", "tiny"]
