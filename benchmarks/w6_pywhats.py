"""W6-pywhats: a pywhats conversation on pywhats' own store and on wastore, side by side.

    python -m benchmarks --only W6-pywhats        # in the harness's table, with its goal
    python -m benchmarks.w6_pywhats [--runs 3] [--messages 100] [--group 30]
                                    [--no-postgres] [--url postgresql://...] [--json PATH]

One real ``pywhats.Client`` talks to a peer through pywhats' fake WhatsApp
server (from pywhats' sdist, downloaded into the git-ignored cache, see
``wastore.testing.pywhats_sdist``): ``--messages`` rounds of 1:1 traffic both
ways (the peer writes, the client answers: every change of direction is a
Diffie-Hellman ratchet step) and ``--group`` rounds in a group (sender keys
both ways). The client's state is kept, in turn, by:

- ``pywhats-sqlite``: pywhats' own ``SqliteStore`` (``Client(session_path=...)``,
  its device JSON and ``{session_path}.signal.db``) — the reference;
- ``wastore-sqlite``: ``WastoreClient`` on an SQLite file (wastore's default
  ``synchronous=NORMAL`` in WAL mode: a commit survives a crash of the
  process, not a power loss);
- ``wastore-sqlite-full``: the same with ``synchronous=FULL`` — every commit
  reaches the disk (fsync), the durability of pywhats' own store, whose
  rollback journal with SQLite's default ``synchronous=FULL`` syncs at every
  commit;
- ``wastore-postgres``: ``WastoreClient`` on PostgreSQL (a throwaway cluster
  started with ``initdb``, ``fsync=off`` unless ``--fsync``; or
  ``--url``/``WASTORE_TEST_POSTGRES_URL``).

pywhats' own store commits every call before it returns. ``WastoreClient``
keeps sessions, identities and sender keys in a SignalCache on pywhats' own
thread and commits them before any frame goes to the server (the ciphertext
of a message, the receipt of a decrypted one); everything else it commits per
call. The fake server and the peer run in the same process and event loop as
the client (as in pywhats' own tests), so their work is in every figure alike.

Figures, per variant, medians of ``--runs`` runs, the variants interleaved
(the order rotates each run): messages per second over the whole
conversation (1:1 and group, both directions), and the event-loop lag pywhats
sees — how late a 1 ms timer on the client's loop fires (p50, p99, max): a
store call blocks that loop for its duration. The table gives each variant's
rate as a ratio of ``pywhats-sqlite``'s (goal: wastore-sqlite >= 0.9). The
JSON file holds every run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION", "python")

from wastore.formats import import_from
from wastore.interop.bridge import SyncContainer
from wastore.interop.pywhats import WastoreClient
from wastore.testing.pywhats_peer import ConversationPeer
from wastore.testing.pywhats_sdist import load_fakeserver

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from pywhats.events import JID as PwJID
    from pywhats.store import save_device_store

    import pywhats

PEER = PwJID(user="15559990000", server="s.whatsapp.net", device=1)
GROUP = PwJID(user="120363000000000000", server="g.us")
VARIANTS = ("pywhats-sqlite", "wastore-sqlite", "wastore-sqlite-full", "wastore-postgres")
REFERENCE = "pywhats-sqlite"
IMPL_IDS = {
    "pywhats-sqlite": "pywhats-sqlite",
    "wastore-sqlite": "sqlite",
    "wastore-sqlite-full": "sqlite-full",
    "wastore-postgres": "postgres",
}
"""The harness's implementation ids of the variants."""
NOTES = {
    "pywhats-sqlite": "pywhats' own store: every call committed (fsync: synchronous=FULL)",
    "wastore-sqlite": "WastoreClient: buffered on pywhats' thread, committed before each send",
    "wastore-sqlite-full": "the same with synchronous=FULL (fsync per commit)",
    "wastore-postgres": "WastoreClient on PostgreSQL",
}


class LagMonitor:
    """How late a 1 ms timer fires on the running loop (seconds), while it runs."""

    def __init__(self, period: float = 0.001) -> None:
        self.period = period
        self.lags: list[float] = []
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            start = loop.time()
            await asyncio.sleep(self.period)
            self.lags.append(max(0.0, loop.time() - start - self.period))

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    def summary(self) -> dict[str, float]:
        lags = sorted(self.lags) or [0.0]
        return {
            "lag_p50_ms": 1000 * lags[len(lags) // 2],
            "lag_p99_ms": 1000 * lags[min(len(lags) - 1, int(len(lags) * 0.99))],
            "lag_max_ms": 1000 * lags[-1],
        }


async def _wait(pred: Callable[[], bool], limit: float = 30.0) -> None:
    deadline = time.monotonic() + limit
    while not pred():
        if time.monotonic() > deadline:
            raise TimeoutError("the conversation stalled")
        await asyncio.sleep(0)


async def converse(client: Any, server: Any, sp: Any, messages: int, group: int) -> dict[str, Any]:
    """Log in, then the measured conversation; returns its figures."""
    got: list[Any] = []
    errors: list[Any] = []
    connected = asyncio.Event()

    async def _message(m: Any) -> None:
        got.append(m)

    async def _error(msg_id: str, reason: str) -> None:
        errors.append(reason)

    async def _connected() -> None:
        connected.set()

    client.on("message")(_message)
    client.on("decrypt_error")(_error)
    client.on("connected")(_connected)

    await client.connect()
    await asyncio.wait_for(connected.wait(), 30)
    # Logged in: the LID is stored and the first pre-keys are uploaded (not measured).
    await _wait(lambda: client.device.lid is not None and bool(server.prekey_uploads))
    await asyncio.sleep(0.05)
    peer = ConversationPeer(server, sp)

    async def inbound(send: Any) -> None:
        before = len(got)
        await send
        await _wait(lambda: len(got) > before or bool(errors))
        if errors:
            raise RuntimeError(f"the client could not decrypt: {errors}")

    monitor = LagMonitor()
    monitor.start()
    started = time.perf_counter()
    for i in range(messages):
        await inbound(peer.send_text(f"message {i} from the peer", client_device=client.device))
        await client.send_text(PEER, f"answer {i}")
        [(_, text)] = await peer.wait_read(1, limit=30)
        assert text == f"answer {i}", text
    one_to_one = time.perf_counter() - started
    for i in range(group):
        await inbound(peer.send_group_text(GROUP, f"group message {i}"))
        await client.send_group_text(GROUP, f"group answer {i}", [PEER])
        [(_, text)] = await peer.wait_read(1, limit=30)
        assert text == f"group answer {i}", text
    elapsed = time.perf_counter() - started
    await monitor.stop()
    total = 2 * (messages + group)
    return {
        "messages": total,
        "seconds": elapsed,
        "msgs_per_s": total / elapsed,
        "one_to_one_msgs_per_s": 2 * messages / one_to_one if messages else 0.0,
        "group_msgs_per_s": 2 * group / (elapsed - one_to_one) if group else 0.0,
        **monitor.summary(),
    }


class Postgres:
    """A PostgreSQL server for the run, and a fresh database per measurement."""

    def __init__(self, url: str | None, fsync: bool) -> None:
        self.cluster: Any = None
        if url is None:
            from wastore.testing.pgcluster import start_cluster

            self.cluster = start_cluster(fsync=fsync)
            if self.cluster is None:
                raise RuntimeError("no PostgreSQL: give --url, or install initdb/pg_ctl")
            url = self.cluster.url
        self.url = url
        self._n = 0

    async def database(self) -> str:
        import asyncpg

        from wastore.testing.pgcluster import db_url

        self._n += 1
        name = f"w6_pywhats_{os.getpid()}_{self._n}"
        conn = await asyncpg.connect(self.url)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        return str(db_url(self.url, name))

    def close(self) -> None:
        if self.cluster is not None:
            self.cluster.destroy()


@contextlib.asynccontextmanager
async def client_for(
    variant: str, folder: Path, ws_url: str, pg: Postgres | None
) -> AsyncIterator[Any]:
    fake = load_fakeserver()
    session = folder / "acct.session"
    save_device_store(fake.factories.paired_device(), session)
    if variant == REFERENCE:
        client = pywhats.Client(session_path=str(session), ws_url=ws_url)
        try:
            yield client
        finally:
            await client.disconnect()
        return
    if variant == "wastore-sqlite":
        url = f"sqlite:///{folder / 'wastore.db'}"
    elif variant == "wastore-sqlite-full":
        url = f"sqlite:///{folder / 'wastore.db'}?synchronous=FULL"
    else:
        assert pg is not None
        url = await pg.database()
    store = await asyncio.to_thread(SyncContainer.open, url)
    try:
        [result] = await asyncio.to_thread(
            store.run, import_from(store.container, session, "pywhats")
        )
        client = WastoreClient(store, account=result.device_id, ws_url=ws_url)
        try:
            yield client
        finally:
            await client.close()
    finally:
        await asyncio.to_thread(store.close)


async def measure(variant: str, messages: int, group: int, pg: Postgres | None) -> dict[str, Any]:
    fake = load_fakeserver()
    sp = fake.SignalPeer(jid=PEER)
    with tempfile.TemporaryDirectory(prefix="w6-pywhats-") as tmp:
        async with (
            fake.FakeWhatsAppServer(peer=sp) as server,
            client_for(variant, Path(tmp), server.url, pg) as client,
        ):
            return await converse(client, server, sp, messages, group)


def median_of(runs: list[dict[str, Any]], key: str) -> float:
    return float(statistics.median(r[key] for r in runs))


def report(results: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    ref = median_of(results[REFERENCE], "msgs_per_s")
    rows = []
    for variant, runs in results.items():
        rate = median_of(runs, "msgs_per_s")
        rows.append(
            {
                "variant": variant,
                "msgs_per_s": rate,
                "ratio": rate / ref,
                "one_to_one_msgs_per_s": median_of(runs, "one_to_one_msgs_per_s"),
                "group_msgs_per_s": median_of(runs, "group_msgs_per_s"),
                "lag_p50_ms": median_of(runs, "lag_p50_ms"),
                "lag_p99_ms": median_of(runs, "lag_p99_ms"),
                "lag_max_ms": median_of(runs, "lag_max_ms"),
            }
        )
    header = (
        f"{'variant':<18}{'msgs/s':>9}{'x pywhats':>11}{'1:1/s':>9}{'group/s':>9}"
        f"{'lag p50':>10}{'lag p99':>10}{'lag max':>10}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        print(
            f"{r['variant']:<18}{r['msgs_per_s']:>9.1f}{r['ratio']:>11.2f}"
            f"{r['one_to_one_msgs_per_s']:>9.1f}{r['group_msgs_per_s']:>9.1f}"
            f"{r['lag_p50_ms']:>8.2f}ms{r['lag_p99_ms']:>8.2f}ms{r['lag_max_ms']:>8.2f}ms"
        )
    return rows


def harness_output(results: dict[str, list[dict[str, Any]]], messages: int) -> dict[str, Any]:
    """The figures as the harness reads them (one JSON line on stdout)."""
    out = []
    for variant, runs in results.items():
        out.append(
            {
                "impl": IMPL_IDS[variant],
                "runs": [r["msgs_per_s"] for r in runs],
                "ops": messages,
                "note": NOTES[variant],
                "extra": {
                    k: round(median_of(runs, k), 3)
                    for k in ("lag_p50_ms", "lag_p99_ms", "one_to_one_msgs_per_s")
                }
                if runs
                else {},
            }
        )
    return {"results": out, "pywhats": pywhats.__version__}


async def main(args: argparse.Namespace) -> None:
    variants = [v for v in VARIANTS if not (args.no_postgres and v == "wastore-postgres")]
    pg = None
    if "wastore-postgres" in variants:
        pg = Postgres(args.url or os.environ.get("WASTORE_TEST_POSTGRES_URL") or None, args.fsync)
    results: dict[str, list[dict[str, Any]]] = {v: [] for v in variants}
    try:
        await measure(REFERENCE, 5, 2, pg)  # warm-up: imports, first connections
        for run in range(args.runs):
            order = variants[run % len(variants) :] + variants[: run % len(variants)]
            for variant in order:
                figures = await measure(variant, args.messages, args.group, pg)
                results[variant].append(figures)
                print(
                    f"run {run + 1}/{args.runs} {variant:<18} {figures['msgs_per_s']:8.1f} msgs/s",
                    file=sys.stderr,
                )
    finally:
        if pg is not None:
            pg.close()
    if args.harness:
        line = json.dumps(harness_output(results, 2 * (args.messages + args.group)))
        print(line)
        return
    rows = report(results)
    out = {
        "benchmark": "W6-pywhats",
        "started": args.started,
        "python": platform.python_version(),
        "pywhats": pywhats.__version__,
        "protobuf_implementation": os.environ.get("PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION"),
        "postgres_fsync": bool(args.fsync or args.url),
        "messages": args.messages,
        "group": args.group,
        "runs": args.runs,
        "summary": rows,
        "all_runs": results,
    }
    path = Path(args.json)
    await asyncio.to_thread(path.parent.mkdir, parents=True, exist_ok=True)
    await asyncio.to_thread(path.write_text, json.dumps(out, indent=1) + "\n")
    print(f"\nwritten to {path}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="runs per variant (median)")
    parser.add_argument("--messages", type=int, default=100, help="1:1 rounds (2 messages each)")
    parser.add_argument("--group", type=int, default=30, help="group rounds (2 messages each)")
    parser.add_argument("--no-postgres", action="store_true", help="leave PostgreSQL out")
    parser.add_argument("--url", help="a PostgreSQL server URL (a role with CREATEDB)")
    parser.add_argument("--fsync", action="store_true", help="the throwaway cluster syncs")
    parser.add_argument("--json", default="bench-results/w6_pywhats.json", help="where to write")
    parser.add_argument(
        "--harness", action="store_true", help="print one JSON line for the harness instead"
    )
    arguments = parser.parse_args()
    arguments.started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    asyncio.run(main(arguments))
