"""wastore's benchmark harness: ``python -m benchmarks [--quick] [--only W1d,W3]``.

It lives in the repository, not in the installed package: run it from the root
of a checkout (``make bench``, ``make bench-quick``), or with ``wastore bench``,
which finds the checkout. It runs the workloads W1-W5 described in
``docs/benchmarks.md`` on MemoryStore, SqliteStore and PostgresStore and, in
the same run and on the same data, on the peers and limits: raw ``sqlite3``
and raw asyncpg (the same SQL statements as the stores), yowsup's
``LiteAxolotlStore`` and Baileys' ``useMultiFileAuthState`` (installed by the
harness into ``.bench-cache/``). It prints one comparison table and the goals,
and writes ``results.json``, ``results.md`` and ``chart.png`` (the chart needs
the ``bench`` extra: matplotlib).

Beside it, two studies that chose the stores' designs: ``sqlite_designs.py``
(how an asyncio store should talk to SQLite, ``docs/sqlite.md``) and
``pg_quick.py`` (PostgresStore beside raw asyncpg, ``docs/postgres.md``).
"""

from __future__ import annotations

from .config import FULL, QUICK, Sizes, tiny
from .harness import ALL_IMPLS, Options, run

__all__ = ["ALL_IMPLS", "FULL", "QUICK", "Options", "Sizes", "run", "tiny"]
