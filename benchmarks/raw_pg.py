"""raw-asyncpg: the limit for PostgreSQL.

One plain asyncpg connection (no pool), the very statements PostgresStore runs
— the shared ones of :class:`wastore.backends.sql.queries.Queries` and the
PostgreSQL-only multi-key ones of :mod:`wastore.backends.postgres` (``= ANY``
reads, ``unnest`` batch upserts) — with no validation, no decoding and no
retry logic. Single statements run in autocommit mode, as in the store.
"""

from __future__ import annotations

from typing import Any

from wastore.backends.sql.queries import Queries

from .data import sender_key_address
from .measure import Runner
from .store_workloads import APP_STATE_COLLECTION, Accounts, Data, W3Base

IMPL = "raw-asyncpg"
NO_CRC = 0
"""What the raw peer writes where the store writes a row's checksum (it computes none)."""


def pg_statements(prefix: str = "wastore_") -> dict[str, str]:
    """The PostgreSQL-only statements of PostgresStore, rendered for ``prefix``."""
    from wastore.backends.postgres import STATEMENTS

    return {name: sql.format(p=prefix) for name, sql in STATEMENTS.items()}


class RawPg:
    """One asyncpg connection and the store's statements."""

    def __init__(self, conn: Any, prefix: str = "wastore_") -> None:
        self.conn = conn
        self.q = Queries("postgres", prefix)
        self.pq = pg_statements(prefix)

    @classmethod
    async def connect(cls, url: str) -> RawPg:
        import asyncpg

        return cls(await asyncpg.connect(url, statement_cache_size=256))

    async def close(self) -> None:
        await self.conn.close()


class W1d(Runner):
    workload = "W1d"

    def __init__(self, raw: RawPg, acc: Accounts, data: Data, ops: int) -> None:
        super().__init__(IMPL, ops)
        self.raw, self.dev = raw, acc.w1
        self.warm = data.w1.ops(data.sizes.w1_warmup, offset=ops)
        self.seq = data.w1.ops(ops)

    async def run(self, rep: int) -> None:
        q, c, dev = self.raw.q, self.raw.conn, self.dev
        li, gs, ps = q.load_identity, q.get_session, q.put_session
        fetchrow, execute = c.fetchrow, c.execute
        for a, rec in self.warm if rep < 0 else self.seq:
            await fetchrow(li, dev, a)
            await fetchrow(gs, dev, a)
            await execute(ps, dev, a, rec, NO_CRC)


class W2(Runner):
    workload = "W2"

    def __init__(self, raw: RawPg, acc: Accounts, data: Data) -> None:
        super().__init__(IMPL, data.sizes.w2_fanouts)
        self.raw, self.dev = raw, acc.w2
        self.members = data.w2.members
        self.fanouts = [
            ([a for a, _ in f], [r for _, r in f]) for f in (data.w2.fanout(k) for k in range(3))
        ]
        self.sender_keys = data.w2.sender_keys

    async def run(self, rep: int) -> None:
        q, pq, c, dev = self.raw.q, self.raw.pq, self.raw.conn, self.dev
        sk = sender_key_address()
        for k in range(1 if rep < 0 else self.ops):
            rows = await c.fetch(pq["get_sessions"], dev, self.members)
            found = {r[0]: r[1] for r in rows}
            addrs, recs = self.fanouts[k % 3]
            await c.execute(pq["put_sessions"], dev, addrs, recs, [NO_CRC] * len(addrs))
            await c.fetchrow(q.get_sender_key, dev, sk)
            await c.execute(q.put_sender_key, dev, sk, self.sender_keys[k % 3], NO_CRC)
            if len(found) != len(self.members):
                raise AssertionError("W2 did not find every session")


class W3(W3Base):
    def __init__(self, raw: RawPg, acc: Accounts, data: Data) -> None:
        super().__init__(IMPL, data)
        self.raw, self.dev = raw, acc.w3

    async def run(self, rep: int) -> None:
        q, pq, c, dev = self.raw.q, self.raw.pq, self.raw.conn, self.dev
        lp, rp = q.load_prekey, q.remove_prekey
        for batch in self.batches:
            ids = [i for i, _ in batch]
            recs = [r for _, r in batch]
            await c.execute(pq["store_prekeys"], dev, ids, recs, [NO_CRC] * len(ids), False)
            await c.execute(pq["mark_prekeys_uploaded"], dev, ids)
            for i in ids:
                await c.fetchrow(lp, dev, i)
                await c.execute(rp, dev, i)

    async def check(self) -> None:
        row = await self.raw.conn.fetchrow(self.raw.q.count_prekeys, self.dev)
        if tuple(row) != (0, 0):
            raise AssertionError("W3 left pre-keys behind")


class W4(Runner):
    workload = "W4"

    def __init__(self, raw: RawPg, acc: Accounts, data: Data) -> None:
        super().__init__(IMPL, 1)
        self.raw, self.dev = raw, acc.w4
        sizes = data.sizes
        d = data.w4
        n = sizes.w4_batch
        self.batches = [
            (d.index_macs[k : k + n], d.value_macs[k : k + n])
            for k in range(0, len(d.index_macs), n)
        ]
        self.lookups = d.lookups
        self.half = sizes.w4_get_size // 2

    async def before(self, rep: int) -> None:
        await self.raw.conn.execute(self.raw.q.clear_mutation_macs, self.dev, APP_STATE_COLLECTION)

    async def run(self, rep: int) -> None:
        pq, c, dev, name = self.raw.pq, self.raw.conn, self.dev, APP_STATE_COLLECTION
        for version, (idx, vals) in enumerate(self.batches, start=1):
            await c.execute(
                pq["put_mutation_macs"], dev, name, version, idx, vals, [NO_CRC] * len(idx)
            )
        for lookup in self.lookups:
            rows = await c.fetch(pq["get_mutation_macs"], dev, name, lookup)
            if len({r[0]: r[2] for r in rows}) != self.half:
                raise AssertionError("W4 found a wrong number of MACs")


def runners(
    raw: RawPg, acc: Accounts, data: Data, wanted: set[str], w1_ops: int
) -> dict[str, list[Runner]]:
    out: dict[str, list[Runner]] = {}
    if "W1d" in wanted:
        out["W1"] = [W1d(raw, acc, data, w1_ops)]
    if "W2" in wanted:
        out["W2"] = [W2(raw, acc, data)]
    if "W3" in wanted:
        out["W3"] = [W3(raw, acc, data)]
    if "W4" in wanted:
        out["W4"] = [W4(raw, acc, data)]
    return out
