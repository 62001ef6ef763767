"""W8, scale-out: 1, 2, 4 processes each owning 1,000 accounts on one PostgreSQL.

Set-up, not timed (in the harness): ``processes x accounts`` device rows (copies
of one row, made in SQL), each with ``peers`` sessions (1,200 bytes) and
identities.

Timed, in one child process per owner (started together): each opens its
accounts with their leases (``PersistenceManager.open_many``), says ``ready``,
and at the common start time sends ``ops`` messages with ``concurrency`` in
flight. One message is W1's inbound DM on a random account of its own and a
random peer of that account: ``load_identity``, ``get_session``, and a
``put_session`` of a new record, committed (and fenced by the account's lease
epoch) before the call returns. The harness measures the server's CPU over the
run (the postmaster and its children, from ``/proc``), and reports the total
messages per second, the connections, and the server CPU per message.

    python -m benchmarks.w8 URL --first ID --count N --ops K --concurrency C --peers P
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
from typing import Any

from .config import SEED

RECORD = 1200


def peer(i: int) -> str:
    return f"4917{i:08d}@s.whatsapp.net"


async def setup(url: str, accounts: int, peers: int) -> None:
    """``accounts`` device rows, each with ``peers`` sessions and identities."""
    import asyncpg

    from wastore.backends.sql.codec import DEVICE_COLUMNS
    from wastore.registry import open_store

    container = await open_store(url)
    try:
        first = await container.create_device()
    finally:
        await container.close()
    cols = ", ".join(DEVICE_COLUMNS)
    rnd = random.Random(SEED + 8)
    conn: Any = await asyncpg.connect(url)
    try:
        if accounts > 1:
            await conn.execute(
                f"INSERT INTO wastore_device ({cols}) SELECT {cols} FROM wastore_device d, "
                "generate_series(1, $2) WHERE d.id = $1",
                first,
                accounts - 1,
            )
        await conn.execute(
            "INSERT INTO wastore_sessions (device_id, address, record) "
            "SELECT d.id, '4917' || lpad(p::text, 8, '0') || '@s.whatsapp.net', $1 "
            "FROM wastore_device d, generate_series(0, $2 - 1) p",
            rnd.randbytes(RECORD),
            peers,
        )
        await conn.execute(
            "INSERT INTO wastore_identities (device_id, address, key) "
            "SELECT d.id, '4917' || lpad(p::text, 8, '0') || '@s.whatsapp.net', $1 "
            "FROM wastore_device d, generate_series(0, $2 - 1) p",
            rnd.randbytes(32),
            peers,
        )
        await conn.execute("VACUUM ANALYZE")
    finally:
        await conn.close()


async def owner(
    url: str, first: int, count: int, ops: int, concurrency: int, peers: int, seed: int
) -> dict[str, Any]:
    from wastore.manager import PersistenceManager
    from wastore.registry import open_store

    container = await open_store(url)
    managers = await PersistenceManager.open_many(
        [container.backend(i) for i in range(first, first + count)]
    )
    backends = [pm.backend for pm in managers]
    rnd = random.Random(seed)
    records = [rnd.randbytes(RECORD) for _ in range(64)]
    plan = [(rnd.randrange(count), peer(rnd.randrange(peers)), i % 64) for i in range(ops)]
    print("ready", flush=True)
    line = await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    await asyncio.sleep(max(0.0, float(line.split()[1]) - time.time()))
    queue = iter(plan)

    async def worker() -> None:
        for account, address, r in queue:
            b = backends[account]
            await b.load_identity(address)
            await b.get_session(address)
            await b.put_session(address, records[r])

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    seconds = time.perf_counter() - t0
    connections = getattr(container, "open_connections", -1)
    lost = sum(pm.lease_lost for pm in managers)
    await PersistenceManager.close_many(managers)
    await container.close()
    return {"ops": ops, "seconds": seconds, "connections": connections, "leases_lost": lost}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("url")
    ap.add_argument("--first", type=int, required=True)
    ap.add_argument("--count", type=int, required=True)
    ap.add_argument("--ops", type=int, required=True)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--peers", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    result = asyncio.run(
        owner(a.url, a.first, a.count, a.ops, a.concurrency, a.peers, SEED + 80 + a.seed)
    )
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
