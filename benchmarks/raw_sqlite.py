"""raw-sqlite3: the limit for any Python SQLite store.

The same database (a copy of the file the store's data was prepared in), the
same pragmas as SqliteStore's writer (WAL, ``synchronous=NORMAL``,
``foreign_keys=ON``) and the very same SQL statements — taken from
:class:`wastore.backends.sql.queries.Queries` and the IN-list helpers of
:mod:`wastore.backends.sqlite` — run through the standard-library ``sqlite3``
module in one thread: no asyncio (the runners are coroutines only so that the
scheduler can interleave them with the store's; they never suspend), no
validation, no decoding; autocommit for single statements and
``BEGIN IMMEDIATE`` ... ``COMMIT`` around batches (multi-row upserts of up to
64 rows per statement, ``executemany`` for the rest), as the store does. SQLite's
own automatic WAL checkpoints stay on (the default).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from wastore.backends.sql.queries import Queries
from wastore.backends.sqlite import (
    CACHE_KIB,
    GET_MACS_IN,
    GET_SESSIONS_IN,
    multi_row_sql,
    padded_chunks,
    render_in_list,
    row_chunks,
)

from .data import sender_key_address
from .measure import Runner
from .store_workloads import APP_STATE_COLLECTION, Accounts, Data, W3Base, WalWatch, w1w_ops

IMPL = "raw-sqlite3"
NO_CRC = 0
"""What the raw peer writes where the store writes a row's checksum: it computes none
(and checks none on reads), so the ratios include what the checksums cost."""


class RawSqlite:
    """One plain ``sqlite3`` connection and the store's statements."""

    def __init__(self, path: Path, prefix: str = "wastore_") -> None:
        self.path = path
        self.q = Queries("sqlite", prefix)
        self.prefix = prefix
        self.conn = sqlite3.connect(path, isolation_level=None, cached_statements=512)
        self.conn.execute("PRAGMA journal_mode=WAL").fetchall()
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.execute("PRAGMA foreign_keys=ON")
        self.conn.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
        self._in: dict[tuple[str, int], str] = {}

    def close(self) -> None:
        self.conn.close()

    def in_sql(self, template: str, size: int) -> str:
        key = (template, size)
        sql = self._in.get(key)
        if sql is None:
            sql = self._in[key] = render_in_list(template, self.prefix, size)
        return sql

    def select_in(self, template: str, head: tuple[Any, ...], keys: list[Any]) -> list[Any]:
        ex = self.conn.execute
        rows: list[Any] = []
        for size, chunk in padded_chunks(keys):
            rows.extend(ex(self.in_sql(template, size), (*head, *chunk)))
        return rows

    def batch(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        """``executemany`` in one transaction (the store's plain batches)."""
        c = self.conn
        c.execute("BEGIN IMMEDIATE")
        c.executemany(sql, rows)
        c.execute("COMMIT")

    def upsert_batch(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        """The store's multi-row upserts (up to 64 rows per statement) in one transaction."""
        c = self.conn
        c.execute("BEGIN IMMEDIATE")
        for start, size in row_chunks(len(rows)):
            key = (sql, -size)
            text = self._in.get(key)
            if text is None:
                text = self._in[key] = multi_row_sql(sql, size)
            c.execute(text, [x for row in rows[start : start + size] for x in row])
        c.execute("COMMIT")


class W1d(Runner):
    workload = "W1d"

    def __init__(self, raw: RawSqlite, acc: Accounts, data: Data, ops: int) -> None:
        super().__init__(IMPL, ops)
        self.raw, self.dev = raw, acc.w1
        self.warm = data.w1.ops(data.sizes.w1_warmup, offset=ops)
        self.seq = data.w1.ops(ops)

    async def run(self, rep: int) -> None:
        q, ex, dev = self.raw.q, self.raw.conn.execute, self.dev
        li, gs, ps = q.load_identity, q.get_session, q.put_session
        for a, rec in self.warm if rep < 0 else self.seq:
            ex(li, (dev, a)).fetchone()
            ex(gs, (dev, a)).fetchone()
            ex(ps, (dev, a, rec, NO_CRC))


class W1w(Runner):
    """W1w: one-row commits back to back; SQLite's own automatic checkpoints."""

    workload = "W1w"

    def __init__(self, raw: RawSqlite, acc: Accounts, data: Data) -> None:
        super().__init__(IMPL, data.sizes.w1w_ops)
        self.raw, self.dev, self.data = raw, acc.w1, data
        self.watch = WalWatch(raw.path)
        self.result.extra["peak_wal_mib"] = []

    async def before(self, rep: int) -> None:
        self.ops_now = w1w_ops(self.data, rep)
        self.watch.start()

    async def run(self, rep: int) -> None:
        ex, ps, dev = self.raw.conn.execute, self.raw.q.put_session, self.dev
        for a, rec in self.ops_now:
            ex(ps, (dev, a, rec, NO_CRC))

    async def after(self, rep: int) -> None:
        peak = self.watch.stop()
        if rep >= 0:
            self.result.extra["peak_wal_mib"].append(round(peak / 2**20, 1))


class W2(Runner):
    workload = "W2"

    def __init__(self, raw: RawSqlite, acc: Accounts, data: Data) -> None:
        super().__init__(IMPL, data.sizes.w2_fanouts)
        self.raw, self.dev = raw, acc.w2
        self.members = data.w2.members
        self.fanouts = [data.w2.fanout(k) for k in range(3)]
        self.sender_keys = data.w2.sender_keys

    async def run(self, rep: int) -> None:
        raw, dev = self.raw, self.dev
        q, ex = raw.q, raw.conn.execute
        sk = sender_key_address()
        for k in range(1 if rep < 0 else self.ops):
            found = {r[0]: r[1] for r in raw.select_in(GET_SESSIONS_IN, (dev,), self.members)}
            raw.upsert_batch(q.put_session, [(dev, a, r, NO_CRC) for a, r in self.fanouts[k % 3]])
            ex(q.get_sender_key, (dev, sk)).fetchone()
            ex(q.put_sender_key, (dev, sk, self.sender_keys[k % 3], NO_CRC))
            if len(found) != len(self.members):
                raise AssertionError("W2 did not find every session")


class W3(W3Base):
    def __init__(self, raw: RawSqlite, acc: Accounts, data: Data) -> None:
        super().__init__(IMPL, data)
        self.raw, self.dev = raw, acc.w3

    async def run(self, rep: int) -> None:
        raw, dev = self.raw, self.dev
        q, ex = raw.q, raw.conn.execute
        lp, rp = q.load_prekey, q.remove_prekey
        for batch in self.batches:
            ids = [i for i, _ in batch]
            raw.upsert_batch(q.store_prekey, [(dev, i, r, NO_CRC, False) for i, r in batch])
            raw.batch(q.mark_prekey_uploaded, [(dev, i) for i in ids])
            for i in ids:
                ex(lp, (dev, i)).fetchone()
                ex(rp, (dev, i))

    async def check(self) -> None:
        if self.raw.conn.execute(self.raw.q.count_prekeys, (self.dev,)).fetchone() != (0, 0):
            raise AssertionError("W3 left pre-keys behind")


class W4(Runner):
    workload = "W4"

    def __init__(self, raw: RawSqlite, acc: Accounts, data: Data) -> None:
        super().__init__(IMPL, 1)
        self.raw, self.dev = raw, acc.w4
        sizes = data.sizes
        d = data.w4
        pairs = list(zip(d.index_macs, d.value_macs, strict=True))
        n = sizes.w4_batch
        self.batches = [pairs[k : k + n] for k in range(0, len(pairs), n)]
        self.lookups = d.lookups
        self.half = sizes.w4_get_size // 2

    async def before(self, rep: int) -> None:
        self.raw.conn.execute(self.raw.q.clear_mutation_macs, (self.dev, APP_STATE_COLLECTION))

    async def run(self, rep: int) -> None:
        raw, dev, name = self.raw, self.dev, APP_STATE_COLLECTION
        put = raw.q.put_mutation_mac
        for version, batch in enumerate(self.batches, start=1):
            raw.upsert_batch(put, [(dev, name, i, version, m, NO_CRC) for i, m in batch])
        for lookup in self.lookups:
            found = {r[0]: r[2] for r in raw.select_in(GET_MACS_IN, (dev, name), lookup)}
            if len(found) != self.half:
                raise AssertionError("W4 found a wrong number of MACs")


def runners(
    raw: RawSqlite, acc: Accounts, data: Data, wanted: set[str], w1_ops: int
) -> dict[str, list[Runner]]:
    out: dict[str, list[Runner]] = {}
    if "W1d" in wanted:
        out["W1"] = [W1d(raw, acc, data, w1_ops)]
    if "W1w" in wanted:
        out["W1w"] = [W1w(raw, acc, data)]
    if "W2" in wanted:
        out["W2"] = [W2(raw, acc, data)]
    if "W3" in wanted:
        out["W3"] = [W3(raw, acc, data)]
    if "W4" in wanted:
        out["W4"] = [W4(raw, acc, data)]
    return out
