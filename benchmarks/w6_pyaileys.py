"""W6-pyaileys: pyaileys' Signal repository on its own store and on wastore, side by side.

    python -m benchmarks --only W6-pyaileys       # in the harness's table, with its goal
    python -m benchmarks.w6_pyaileys [--messages 400] [--runs 5] [--group-every 4]
                                     [--url postgresql://...] [--no-postgres] [--json FILE]

Two pyaileys clients (Alice and Bob, each a ``SignalRepository`` over an auth
state) hold a session and each other's sender keys (set up before timing).
One operation is one message: the sender encrypts, the receiver decrypts;
the direction alternates every message, so every message advances the
ratchet, and every ``--group-every``-th message is a group message (sender
keys). The auth states under test, in one run and on the same workload:

- ``memory``: a dict, as pyaileys' own tests use — no persistence (the ceiling);
- ``MultiFileAuthState``: pyaileys' default, one JSON file per key;
- ``wastore SQLite`` / ``wastore PostgreSQL``: ``WastoreAuthState``, both
  accounts in one database; every ``keys.set()`` is a committed transaction.

Every store is run ``--runs`` times, interleaved (the order rotates each run);
the table shows the medians and their ratios to MultiFileAuthState (goal of the
benchmark brief: wastore SQLite ≥ 3x). Without ``--url`` (or
``WASTORE_TEST_POSTGRES_URL``) a throwaway PostgreSQL cluster is started
(``initdb``; fsync off unless ``--fsync``). ``--json`` writes the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

from pyaileys.auth.creds import Contact
from pyaileys.auth.state import AuthenticationState
from pyaileys.auth.store import MultiFileAuthState
from pyaileys.auth.utils import init_auth_creds
from pyaileys.crypto.curve import DefaultCurve25519Provider
from pyaileys.signal.repository import PreKeyBundle, PreKeyBundleKey, SignalRepository
from pyaileys.signal.util import signal_pubkey

import wastore
from wastore.interop.pyaileys import WastoreAuthState

ALICE = "15550000001:3@s.whatsapp.net"
BOB = "15550000002:7@s.whatsapp.net"
GROUP = "120363000000000001@g.us"
BASELINE = "MultiFileAuthState"
GOAL = 3.0
IMPL_IDS = {
    "memory": "dict",
    BASELINE: "multifile",
    "wastore SQLite": "sqlite",
    "wastore PostgreSQL": "postgres",
}
"""The harness's implementation ids of the auth states."""
NOTES = {
    "memory": "a dict, as pyaileys' own tests use: nothing durable (the ceiling)",
    BASELINE: "pyaileys' default: one JSON file per key",
    "wastore SQLite": "WastoreAuthState: every keys.set() a committed transaction",
    "wastore PostgreSQL": "WastoreAuthState on PostgreSQL",
}


class DictKeys:
    """A key store in a dict (no persistence): what pyaileys' tests use."""

    def __init__(self) -> None:
        self.data: dict[str, dict[str, Any]] = {}

    async def get(self, key_type: str, ids: list[str]) -> dict[str, Any]:
        family = self.data.get(key_type, {})
        return {i: family.get(i) for i in ids}

    async def set(self, data: Mapping[str, Mapping[str, Any]]) -> None:
        for key_type, items in data.items():
            family = self.data.setdefault(key_type, {})
            for key, value in items.items():
                if value is None:
                    family.pop(key, None)
                else:
                    family[key] = value

    async def clear(self) -> None:
        self.data.clear()


class DictState:
    def __init__(self) -> None:
        self.creds = init_auth_creds()
        self.keys = DictKeys()

    async def save_creds(self) -> None:
        return None


class Peer:
    """One pyaileys client's Signal side: an auth state and a ``SignalRepository`` over it."""

    def __init__(self, jid: str, state: Any) -> None:
        self.jid = jid
        self.state = state
        self.auth = AuthenticationState(creds=state.creds, keys=state.keys)
        self.repo = SignalRepository(self.auth)

    async def claim(self) -> None:
        """The device JID in the credentials, as pyaileys records it at pairing."""
        self.state.creds.me = Contact(id=self.jid)
        await self.state.save_creds()

    async def bundle(self) -> PreKeyBundle:
        """Store and "upload" one pre-key as pyaileys does; the bundle the server gives."""
        c = self.state.creds
        key_id, pair = c.next_pre_key_id, DefaultCurve25519Provider().generate_keypair()
        await self.state.keys.set(
            {"pre-key": {str(key_id): {"public": pair.public, "private": pair.private}}}
        )
        c.next_pre_key_id = c.first_unuploaded_pre_key_id = key_id + 1
        await self.state.save_creds()
        return PreKeyBundle(
            registration_id=c.registration_id,
            identity_key=signal_pubkey(c.signed_identity_key.public),
            signed_pre_key=PreKeyBundleKey(
                key_id=c.signed_pre_key.key_id,
                public_key=signal_pubkey(c.signed_pre_key.key_pair.public),
                signature=c.signed_pre_key.signature,
            ),
            pre_key=PreKeyBundleKey(key_id=key_id, public_key=signal_pubkey(pair.public)),
        )

    async def send(self, to: Peer, text: str) -> tuple[str, bytes]:
        return await self.repo.encrypt_message(to.jid, data=text.encode())

    async def receive(self, sender: Peer, wire: tuple[str, bytes]) -> str:
        kind, data = wire
        out = await self.repo.decrypt_message(sender.jid, message_type=kind, ciphertext=data)
        return out.decode()

    async def send_group(self, text: str) -> tuple[bytes, bytes]:
        return await self.repo.encrypt_group_message(
            group_jid=GROUP, me_jid=self.jid, data=text.encode()
        )

    async def receive_group(self, sender: Peer, ct: bytes, dist: bytes | None = None) -> str:
        if dist is not None:
            await self.repo.process_sender_key_distribution_message(
                GROUP, author_jid=sender.jid, distribution_bytes=dist
            )
        out = await self.repo.decrypt_group_message(
            group_jid=GROUP, author_jid=sender.jid, ciphertext=ct
        )
        return out.decode()


async def handshake(alice: Peer, bob: Peer) -> None:
    """A session (pre-key message and a reply) and each one's sender key at the other."""
    await alice.repo.inject_outgoing_session(bob.jid, await bob.bundle())
    for sender, receiver in ((alice, bob), (bob, alice)):
        text = f"hello from {sender.jid}"
        if await receiver.receive(sender, await sender.send(receiver, text)) != text:
            raise AssertionError("the handshake failed")
        ct, dist = await sender.send_group(text)
        if await receiver.receive_group(sender, ct, dist) != text:
            raise AssertionError("the group handshake failed")


Setup = Callable[[Path], Awaitable[tuple[Peer, Peer, Callable[[], Awaitable[None]]]]]


async def _pair(
    make: Callable[[str], Awaitable[Any]], close: Callable[[Any], Awaitable[None]]
) -> Any:
    states = [await make(jid) for jid in (ALICE, BOB)]
    alice, bob = (Peer(jid, s) for jid, s in zip((ALICE, BOB), states, strict=True))
    await alice.claim()
    await bob.claim()
    await handshake(alice, bob)

    async def cleanup() -> None:
        for s in states:
            await close(s)

    return alice, bob, cleanup


async def _nothing(_state: Any) -> None:
    return None


def memory_setup() -> Setup:
    async def setup(_folder: Path) -> Any:
        async def make(_jid: str) -> Any:
            return DictState()

        return await _pair(make, _nothing)

    return setup


def multifile_setup() -> Setup:
    async def setup(folder: Path) -> Any:
        async def make(jid: str) -> Any:
            return await MultiFileAuthState.load(folder / jid.split("@")[0])

        return await _pair(make, _nothing)

    return setup


def wastore_setup(url_of: Callable[[Path], str]) -> Setup:
    async def setup(folder: Path) -> Any:
        url = url_of(folder)
        container = await wastore.open_store(url)

        async def make(_jid: str) -> Any:
            device_id = await container.create_device()
            return await WastoreAuthState.load(container, account=device_id)

        async def close(state: Any) -> None:
            await state.close()

        alice, bob, cleanup = await _pair(make, close)

        async def close_all() -> None:
            await cleanup()
            await container.close()

        return alice, bob, close_all

    return setup


class TimedKeys:
    """The key store under test, timing every call (the time spent in the store)."""

    def __init__(self, keys: Any) -> None:
        self.keys = keys
        self.seconds = 0.0

    async def get(self, key_type: str, ids: list[str]) -> dict[str, Any]:
        start = time.perf_counter()
        try:
            result: dict[str, Any] = await self.keys.get(key_type, ids)
            return result
        finally:
            self.seconds += time.perf_counter() - start

    async def set(self, data: Mapping[str, Mapping[str, Any]]) -> None:
        start = time.perf_counter()
        try:
            await self.keys.set(data)
        finally:
            self.seconds += time.perf_counter() - start

    async def clear(self) -> None:
        await self.keys.clear()


def _time_store(*peers: Peer) -> list[TimedKeys]:
    timers = []
    for peer in peers:
        timer = TimedKeys(peer.auth.keys)
        peer.auth.keys = timer  # the repository reads the keys through this object
        timers.append(timer)
    return timers


async def conversation(
    alice: Peer, bob: Peer, messages: int, group_every: int
) -> tuple[float, float]:
    """``(seconds, seconds in the key store)`` for ``messages`` messages, alternating
    directions; every ``group_every``-th one a group message (0: none)."""
    timers = _time_store(alice, bob)
    start = time.perf_counter()
    for i in range(messages):
        sender, receiver = (alice, bob) if i % 2 == 0 else (bob, alice)
        text = f"message {i}"
        if group_every and i % group_every == group_every - 1:
            ct, _ = await sender.send_group(text)
            got = await receiver.receive_group(sender, ct)
        else:
            got = await receiver.receive(sender, await sender.send(receiver, text))
        if got != text:
            raise AssertionError(f"message {i} came out as {got!r}")
    return time.perf_counter() - start, sum(t.seconds for t in timers)


Results = dict[str, dict[str, list[tuple[float, float]]]]


async def measure(
    stores: dict[str, Setup], workloads: dict[str, int], messages: int, runs: int, root: Path
) -> Results:
    """Per workload and store: ``[(messages per second, store ms per message)]``."""
    results: Results = {w: {name: [] for name in stores} for w in workloads}
    names = list(stores)
    for run in range(runs):
        order = names[run % len(names) :] + names[: run % len(names)]
        for workload, group_every in workloads.items():
            for name in order:
                folder = root / f"run{run}-{workload}-{name.replace(' ', '_')}"
                folder.mkdir()
                alice, bob, cleanup = await stores[name](folder)
                try:
                    seconds, in_store = await conversation(alice, bob, messages, group_every)
                finally:
                    await cleanup()
                rate, store_ms = messages / seconds, in_store * 1000 / messages
                results[workload][name].append((rate, store_ms))
                print(
                    f"  run {run + 1}/{runs}  {workload:12} {name:20} {rate:8.1f} msgs/s"
                    f"  {store_ms:7.3f} ms/msg in the store",
                    file=sys.stderr,
                    flush=True,
                )
    return results


def report(results: Results, args: argparse.Namespace, info: dict[str, Any]) -> dict[str, Any]:
    print()
    print(
        f"W6-pyaileys: {args.messages} messages per run, alternating directions; medians of "
        f"{args.runs} interleaved runs"
    )
    head = f"{'workload':12} {'auth state':20} {'msgs/s':>9} {'x MultiFile':>12} {'x memory':>9}"
    print(head + f" {'store ms/msg':>13} {'store x MultiFile':>18}")
    out: dict[str, Any] = {}
    for workload, by_store in results.items():
        rate = {n: statistics.median(r for r, _ in v) for n, v in by_store.items()}
        store = {n: statistics.median(s for _, s in v) for n, v in by_store.items()}
        for name in by_store:
            store_ratio = store[BASELINE] / store[name] if store[name] else float("inf")
            print(
                f"{workload:12} {name:20} {rate[name]:9.1f} {rate[name] / rate[BASELINE]:12.2f} "
                f"{rate[name] / rate['memory']:9.2f} {store[name]:13.3f} "
                + ("" if name == "memory" else f"{store_ratio:18.2f}")
            )
        out[workload] = {
            "runs": by_store,
            "median_msgs_per_s": rate,
            "median_store_ms_per_msg": store,
            "ratio_to_multifile": {n: rate[n] / rate[BASELINE] for n in rate},
            "ratio_to_memory": {n: rate[n] / rate["memory"] for n in rate},
            "store_time_ratio_multifile_over": {
                n: store[BASELINE] / store[n] for n in store if n != "memory" and store[n]
            },
        }
    print()
    goals = {}
    for workload, figures in out.items():
        ratio = figures["ratio_to_multifile"]["wastore SQLite"]
        ceiling = figures["ratio_to_multifile"]["memory"]
        met = ratio >= GOAL
        goals[workload] = {"measured": ratio, "met": met, "ceiling_memory": ceiling}
        print(
            f"goal ({workload}): wastore SQLite ≥ {GOAL:g} x {BASELINE}: {ratio:.2f} x — "
            f"{'met' if met else 'not met'} (a store costing nothing: {ceiling:.2f} x)"
        )
    return {
        "workload": "W6-pyaileys",
        "messages": args.messages,
        "runs": args.runs,
        **info,
        "results": out,
        "goal": {"wastore SQLite / MultiFileAuthState": GOAL, **goals},
    }


async def main(args: argparse.Namespace) -> dict[str, Any]:
    import pyaileys
    from google.protobuf.internal import api_implementation

    info: dict[str, Any] = {
        "pyaileys": getattr(pyaileys, "__version__", "0.1.5"),
        "protobuf_implementation": api_implementation.Type(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
    }
    stores: dict[str, Setup] = {
        "memory": memory_setup(),
        BASELINE: multifile_setup(),
        "wastore SQLite": wastore_setup(lambda folder: f"sqlite:///{folder / 'wa.db'}"),
    }
    cluster = None
    if not args.no_postgres:
        url = args.url or os.environ.get("WASTORE_TEST_POSTGRES_URL", "")
        if not url:
            from wastore.testing.pgcluster import start_cluster

            cluster = start_cluster(fsync=args.fsync)
            if cluster is None:
                sys.exit("no PostgreSQL server binaries: pass --url or --no-postgres")
            url = cluster.url
        info["postgres_fsync"] = args.fsync if cluster is not None else "server setting"
        pg_url = url
        stores["wastore PostgreSQL"] = wastore_setup(lambda _folder: pg_url)
    try:
        workloads = {"1:1": 0}
        if not args.harness:
            workloads["with groups"] = args.group_every
        with tempfile.TemporaryDirectory(prefix="w6-pyaileys-") as tmp:
            results = await measure(stores, workloads, args.messages, args.runs, Path(tmp))
    finally:
        if cluster is not None:
            cluster.destroy()
    if args.harness:
        return {
            "results": [
                {
                    "impl": IMPL_IDS[name],
                    "runs": [rate for rate, _ in runs],
                    "ops": args.messages,
                    "note": NOTES[name],
                    "extra": {
                        "store_ms_per_msg": round(statistics.median(ms for _, ms in runs), 4)
                    },
                }
                for name, runs in results["1:1"].items()
            ],
            **info,
        }
    return report(results, args, info)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--messages", type=int, default=400)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--group-every", type=int, default=4)
    ap.add_argument("--url", help="PostgreSQL server URL (default: a throwaway cluster)")
    ap.add_argument("--no-postgres", action="store_true")
    ap.add_argument("--fsync", action="store_true", help="throwaway cluster with fsync=on")
    ap.add_argument("--json", type=Path, help="write the figures as JSON here")
    ap.add_argument(
        "--harness",
        action="store_true",
        help="the 1:1 workload only, and one JSON line for the harness on stdout",
    )
    arguments = ap.parse_args()
    out = asyncio.run(main(arguments))
    if arguments.harness:
        print(json.dumps(out))
    elif arguments.json:
        arguments.json.write_text(json.dumps(out, indent=1) + "\n")
