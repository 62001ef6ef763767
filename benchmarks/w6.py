"""W6: a Signal client's view — python-axolotl on wastore, side by side.

    python -m benchmarks.w6 --dir DIR [--messages 400] [--runs 5] [--warmup 40]
                            [--pg-url postgresql://...] [--impls axolotl-memory,sqlite,...]

Two python-axolotl parties, Alice and Bob, hold a session; one operation is one
message (see :mod:`benchmarks._axolotl_conversation`): the sender encrypts and
flushes, the receiver decrypts and flushes, the direction alternating so that
every message ratchets. The stores, in one process, interleaved run by run:

- ``axolotl-memory``: python-axolotl's ``InMemoryAxolotlStore`` for both (the
  ceiling: serialized records in a dict, nothing durable);
- ``sqlite`` / ``postgres``: wastore, both accounts in one store, through
  ``SyncContainer.account(..., signal_cache=True)``: session reads and writes
  on python-axolotl's thread, one round trip to the store's loop per flush;
- ``sqlite-nocache`` / ``postgres-nocache``: ``signal_cache=False``, every store
  call a committed round trip.

(yowsup's ``LiteAxolotlStore`` runs the same conversation in its own
virtualenv: ``_yowsup_child.py W6``.) Prints one JSON line: every run's rate,
and for wastore the milliseconds per message spent in the two flushes.
"""

from __future__ import annotations

import os

os.environ.setdefault("PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION", "python")

import argparse
import asyncio
import gc
import json
import sys
import time
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path
from typing import Any

from ._axolotl_conversation import Conversation, own_bundle

IMPLS = ("axolotl-memory", "sqlite", "sqlite-nocache", "postgres", "postgres-nocache")
NOTES = {
    "axolotl-memory": "python-axolotl's InMemoryAxolotlStore: nothing durable (the ceiling)",
    "sqlite": "signal_cache=True: one round trip per flush",
    "sqlite-nocache": "every store call a committed round trip",
    "postgres": "signal_cache=True: one round trip per flush",
    "postgres-nocache": "every store call a committed round trip",
}


class Timed:
    """A flush that counts the time spent in it."""

    def __init__(self, flush: Callable[[], None]) -> None:
        self._flush = flush
        self.seconds = 0.0

    def __call__(self) -> None:
        t0 = time.perf_counter()
        self._flush()
        self.seconds += time.perf_counter() - t0


class Party:
    """One implementation: the conversation, and what to close afterwards."""

    def __init__(self, impl: str) -> None:
        self.impl = impl
        self.conversation: Conversation | None = None
        self.flushes: list[Timed] = []
        self.close: Callable[[], None] = lambda: None

    @property
    def flush_seconds(self) -> float:
        return sum(f.seconds for f in self.flushes)


def memory_party() -> Party:
    from axolotl.tests.inmemoryaxolotlstore import InMemoryAxolotlStore

    party = Party("axolotl-memory")
    alice, bob = InMemoryAxolotlStore(), InMemoryAxolotlStore()
    party.conversation = Conversation(alice, bob, own_bundle(bob))
    return party


def wastore_party(impl: str, url: str) -> Party:
    from wastore.interop.axolotl import SyncContainer

    party = Party(impl)
    container = SyncContainer.open(url)
    cache = not impl.endswith("-nocache")
    alice, bob = (container.account(container.create_device(), signal_cache=cache) for _ in "ab")
    [key] = bob.store.generate_pre_keys(1)
    flushes = [Timed(alice.flush), Timed(bob.flush)]
    party.conversation = Conversation(
        alice.store, bob.store, bob.store.pre_key_bundle(key.getId()), *flushes
    )
    party.flushes = flushes
    party.close = container.close
    return party


def create_database(server_url: str, name: str) -> str:
    import asyncpg

    from .pg import db_url

    async def create() -> None:
        conn = await asyncpg.connect(server_url)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    asyncio.run(create())
    return str(db_url(server_url, name))


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.w6", description=__doc__)
    ap.add_argument("--dir", type=Path, required=True, help="where the SQLite files go")
    ap.add_argument("--messages", type=int, default=400, help="messages per timed run")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=40, help="messages before the timed runs")
    ap.add_argument("--pg-url", default="", help="a PostgreSQL server (role with CREATEDB)")
    ap.add_argument("--impls", default=",".join(IMPLS))
    args = ap.parse_args(argv)
    wanted = [i for i in IMPLS if i in args.impls.split(",")]
    if not args.pg_url:
        wanted = [i for i in wanted if not i.startswith("postgres")]
    parties: list[Party] = []
    errors: dict[str, str] = {}
    for impl in wanted:
        try:
            if impl == "axolotl-memory":
                parties.append(memory_party())
            elif impl.startswith("sqlite"):
                parties.append(wastore_party(impl, f"sqlite:///{args.dir / f'w6-{impl}.db'}"))
            else:
                url = create_database(args.pg_url, f"w6_{impl.replace('-', '_')}_{os.getpid()}")
                parties.append(wastore_party(impl, url))
        except Exception as err:
            errors[impl] = f"{type(err).__name__}: {err}"
    runs: dict[str, list[float]] = {p.impl: [] for p in parties}
    flush_ms: dict[str, list[float]] = {p.impl: [] for p in parties}
    try:
        for p in parties:
            assert p.conversation is not None
            p.conversation.run(args.warmup)
        for rep in range(args.runs if parties else 0):
            order = parties[rep % len(parties) :] + parties[: rep % len(parties)]
            for p in order:
                assert p.conversation is not None
                gc.collect()
                before = p.flush_seconds
                t0 = time.perf_counter()
                p.conversation.run(args.messages)
                elapsed = time.perf_counter() - t0
                runs[p.impl].append(args.messages / elapsed)
                flush_ms[p.impl].append(1000 * (p.flush_seconds - before) / args.messages)
    finally:
        for p in parties:
            try:
                p.close()
            except Exception as err:  # reported, the figures stand
                errors.setdefault(p.impl, f"closing: {type(err).__name__}: {err}")
    results = [
        {
            "impl": impl,
            "runs": runs.get(impl, []),
            "ops": args.messages,
            "note": NOTES[impl],
            "extra": {"flush_ms_per_msg": [round(x, 4) for x in flush_ms.get(impl, [])]},
            "error": errors.get(impl),
        }
        for impl in wanted
    ]
    return {
        "results": results,
        "python-axolotl": version("python-axolotl"),
        "protobuf": version("protobuf"),
    }


if __name__ == "__main__":
    out = main()
    json.dump(out, sys.stdout)
    sys.stdout.write("\n")
