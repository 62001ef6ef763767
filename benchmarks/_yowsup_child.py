"""The yowsup peer: W1d and W3 on yowsup's ``LiteAxolotlStore``.

This file runs in a separate virtualenv that has ``yowsup`` (and its
python-axolotl) installed, NOT in wastore's: it imports nothing from wastore.
It reads the harness's data file (see :func:`benchmarks.data.write_file`)
and prints one JSON object.

yowsup's store takes python-axolotl record objects, so the records are real
``SessionRecord`` / ``PreKeyRecord`` objects whose key material comes from the
data file's random bytes, built before the clock starts (a client holds them
in memory after decrypting). What one operation is:

- W1d: ``isTrustedIdentity(user, IdentityKey)`` (yowsup's read of a peer's
  identity key: one SELECT), ``loadSession(user, device)`` (SELECT and parse of
  the record), ``storeSession(user, device, SessionRecord)`` (DELETE + commit,
  serialize, INSERT + commit: that is how yowsup replaces a session).
- W6: the conversation of ``_axolotl_conversation.py`` (encrypt, decrypt, both
  ways) on two ``LiteAxolotlStore`` files, and on ``InMemoryAxolotlStore``.
- W3: 812 x ``storePreKey(id, PreKeyRecord)`` (yowsup has no batch; its own
  ``level_prekeys`` stores them one by one, each committed),
  ``preKeyStore.setAsSent(ids)`` (one commit), then 812 x (``loadPreKey(id)``,
  ``removePreKey(id)``).

yowsup opens its database with the ``sqlite3`` defaults (rollback journal,
``synchronous=FULL``: every commit is fsynced); that is measured as shipped.
``--rows-only`` runs yowsup's own SQL statements in the same way but with
plain bytes instead of record objects, to show how much of its time goes to
protobuf (pure Python: python-axolotl's generated code needs protobuf 3.20,
which has no compiled extension for current Pythons).
"""

from __future__ import annotations

import argparse
import gc
import importlib
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any


def read_data(path: str) -> tuple[dict[str, Any], dict[str, bytes]]:
    with open(path, "rb") as f:
        header = json.loads(f.readline())
        body = f.read()
    sections = {name: body[off : off + n] for name, (off, n) in header["sections"].items()}
    return header, sections


def chunks(blob: bytes, size: int) -> list[bytes]:
    return [blob[i : i + size] for i in range(0, len(blob), size)]


class Keys:
    """python-axolotl classes, imported lazily (they live in the yowsup virtualenv only)."""

    def __init__(self) -> None:
        self.sp: Any = importlib.import_module("axolotl.state.storageprotos_pb2")
        self.SessionRecord: Any = importlib.import_module(
            "axolotl.state.sessionrecord"
        ).SessionRecord
        self.PreKeyRecord: Any = importlib.import_module("axolotl.state.prekeyrecord").PreKeyRecord
        djbec: Any = importlib.import_module("axolotl.ecc.djbec")
        self.Public = djbec.DjbECPublicKey
        self.Private = djbec.DjbECPrivateKey
        self.ECKeyPair: Any = importlib.import_module("axolotl.ecc.eckeypair").ECKeyPair
        self.IdentityKey: Any = importlib.import_module("axolotl.identitykey").IdentityKey

    def session_record(self, material: bytes, target: int) -> Any:
        """A SessionRecord of about ``target`` serialized bytes, keys taken from ``material``."""
        pos = 0

        def take(n: int) -> bytes:
            nonlocal pos
            out = bytes(material[(pos + i) % len(material)] for i in range(n))
            pos += n
            return out

        s = self.sp.SessionStructure()
        s.sessionVersion = 3
        s.localIdentityPublic = b"\x05" + take(32)
        s.remoteIdentityPublic = b"\x05" + take(32)
        s.rootKey = take(32)
        s.previousCounter = 7
        s.senderChain.senderRatchetKey = b"\x05" + take(32)
        s.senderChain.senderRatchetKeyPrivate = take(32)
        s.senderChain.chainKey.index = 12
        s.senderChain.chainKey.key = take(32)
        s.remoteRegistrationId = 12345
        s.localRegistrationId = 54321
        s.aliceBaseKey = b"\x05" + take(32)
        chain = s.receiverChains.add()
        chain.senderRatchetKey = b"\x05" + take(32)
        chain.chainKey.index = 40
        chain.chainKey.key = take(32)
        record = self.sp.RecordStructure()
        record.currentSession.CopyFrom(s)
        keys = record.currentSession.receiverChains[0].messageKeys
        while record.ByteSize() < target:  # skipped message keys up to the target size
            mk = keys.add()
            mk.index = len(keys)
            mk.cipherKey = take(32)
            mk.macKey = take(32)
            mk.iv = take(16)
        if len(keys) > 1 and record.ByteSize() - target > 45:
            del keys[-1]  # a key is ~90 bytes: keep whichever size is closer
        return self.SessionRecord(serialized=record.SerializeToString())

    def identity_key(self, key32: bytes) -> Any:
        return self.IdentityKey(self.Public(key32))

    def prekey_record(self, pid: int, material: bytes) -> Any:
        pair = self.ECKeyPair(self.Public(material[:32]), self.Private(material[32:64]))
        return self.PreKeyRecord(pid, pair)


def run_reps(
    fn: Callable[[int], None], warm: Callable[[], None], reps: int, ops: int
) -> list[float]:
    warm()
    out = []
    for rep in range(reps):
        gc.collect()
        t0 = time.perf_counter()
        fn(rep)
        out.append(ops / (time.perf_counter() - t0))
    return out


def w1d(args: argparse.Namespace, header: dict[str, Any], sec: dict[str, bytes]) -> dict[str, Any]:
    lite: Any = importlib.import_module("yowsup.axolotl.store.sqlite.liteaxolotlstore")
    keys = Keys()
    rec_size = header["record"]
    users: list[str] = header["peer_users"]
    devices: list[int] = header["peer_devices"]
    sessions = chunks(sec["sessions"], rec_size)
    identities = chunks(sec["identities"], 32)
    op_peers = [int.from_bytes(b, "little") for b in chunks(sec["op_peers"], 4)]
    op_records = chunks(sec["op_records"], rec_size)
    ops = min(args.ops, len(op_peers))
    path = os.path.join(args.dir, "yowsup-w1.db")
    store = lite.LiteAxolotlStore(path)
    ident = [keys.identity_key(k) for k in identities]
    sizes = []
    # Pre-fill (not timed): the rows saveIdentity / storeSession write, in one commit.
    db = store.sessionStore.dbConn
    for i, u in enumerate(users):
        db.execute(
            "INSERT INTO identities (recipient_id, public_key) VALUES(?, ?)",
            (u, ident[i].getPublicKey().serialize()),
        )
        serialized = keys.session_record(sessions[i], rec_size).serialize()
        sizes.append(len(serialized))
        db.execute(
            "INSERT INTO sessions(recipient_id, device_id, record) VALUES(?,?,?)",
            (u, devices[i], serialized),
        )
    db.commit()
    new = [keys.session_record(r, rec_size) for r in op_records[:ops]]
    seq = [(users[p], devices[p], ident[p], new[k]) for k, p in enumerate(op_peers[:ops])]
    warm = seq[: max(1, min(len(seq), args.warmup))]

    def run(items: list[tuple[str, int, Any, Any]]) -> None:
        trusted = store.identityKeyStore.isTrustedIdentity
        load, save = store.loadSession, store.storeSession
        for u, d, ik, rec in items:
            if not trusted(u, ik):
                raise AssertionError("identity not trusted")
            load(u, d)
            save(u, d, rec)

    runs = run_reps(lambda rep: run(seq), lambda: run(warm), args.reps, ops)
    return {"runs": runs, "ops": ops, "record_bytes": statistics.mean(sizes)}


def w1d_rows(
    args: argparse.Namespace, header: dict[str, Any], sec: dict[str, bytes]
) -> dict[str, Any]:
    """yowsup's W1d SQL (same statements, commits and defaults), bytes instead of objects."""
    import sqlite3

    rec_size = header["record"]
    users: list[str] = header["peer_users"]
    devices: list[int] = header["peer_devices"]
    sessions = chunks(sec["sessions"], rec_size)
    identities = chunks(sec["identities"], 32)
    op_peers = [int.from_bytes(b, "little") for b in chunks(sec["op_peers"], 4)]
    op_records = chunks(sec["op_records"], rec_size)
    ops = min(args.ops, len(op_peers))
    conn = sqlite3.connect(os.path.join(args.dir, "yowsup-rows-w1.db"), check_same_thread=False)
    conn.text_factory = bytes
    conn.execute(
        "CREATE TABLE IF NOT EXISTS identities (_id INTEGER PRIMARY KEY AUTOINCREMENT,"
        "recipient_id INTEGER UNIQUE, registration_id INTEGER, public_key BLOB, "
        "private_key BLOB, next_prekey_id INTEGER, timestamp INTEGER);"
    )
    conn.execute(
        "CREATE TABLE IF NOT EXISTS sessions (_id INTEGER PRIMARY KEY AUTOINCREMENT,"
        "recipient_id INTEGER UNIQUE, device_id INTEGER, record BLOB, timestamp INTEGER);"
    )
    for i, u in enumerate(users):
        conn.execute(
            "INSERT INTO identities (recipient_id, public_key) VALUES(?, ?)",
            (u, b"\x05" + identities[i]),
        )
        conn.execute(
            "INSERT INTO sessions(recipient_id, device_id, record) VALUES(?,?,?)",
            (u, devices[i], sessions[i]),
        )
    conn.commit()
    seq = [(users[p], devices[p], op_records[k]) for k, p in enumerate(op_peers[:ops])]
    warm = seq[: max(1, min(len(seq), args.warmup))]

    def run(items: list[tuple[str, int, bytes]]) -> None:
        for u, d, rec in items:
            c = conn.cursor()
            c.execute("SELECT public_key from identities WHERE recipient_id = ?", (u,))
            c.fetchone()
            c = conn.cursor()
            c.execute(
                "SELECT record FROM sessions WHERE recipient_id = ? AND device_id = ?", (u, d)
            )
            c.fetchone()
            conn.cursor().execute(
                "DELETE FROM sessions WHERE recipient_id = ? AND device_id = ?", (u, d)
            )
            conn.commit()
            conn.cursor().execute(
                "INSERT INTO sessions(recipient_id, device_id, record) VALUES(?,?,?)", (u, d, rec)
            )
            conn.commit()

    runs = run_reps(lambda rep: run(seq), lambda: run(warm), args.reps, ops)
    return {"runs": runs, "ops": ops}


def w3(args: argparse.Namespace, header: dict[str, Any], sec: dict[str, bytes]) -> dict[str, Any]:
    lite: Any = importlib.import_module("yowsup.axolotl.store.sqlite.liteaxolotlstore")
    keys = Keys()
    records = chunks(sec["prekeys"], header["prekey_record"])
    n = len(records)
    store = lite.LiteAxolotlStore(os.path.join(args.dir, "yowsup-w3.db"))
    cycle = 0
    sizes: list[int] = []

    def one_cycle() -> None:
        nonlocal cycle
        base = 1 + cycle * n
        cycle += 1
        batch = [keys.prekey_record(base + i, r) for i, r in enumerate(records)]
        if not sizes:
            sizes.extend(len(p.serialize()) for p in batch)
        ids = [base + i for i in range(n)]
        t0 = time.perf_counter()
        for i, pk in zip(ids, batch, strict=True):
            store.storePreKey(i, pk)
        store.preKeyStore.setAsSent(ids)
        for i in ids:
            store.loadPreKey(i)
            store.removePreKey(i)
        timings.append(time.perf_counter() - t0)

    timings: list[float] = []
    one_cycle()  # warm-up
    runs = []
    for _ in range(args.reps):
        timings.clear()
        gc.collect()
        for _ in range(args.cycles):
            one_cycle()
        runs.append(args.cycles / sum(timings))
    return {"runs": runs, "ops": args.cycles, "record_bytes": statistics.mean(sizes)}


def w6(args: argparse.Namespace) -> dict[str, Any]:
    """W6 (see ``_axolotl_conversation.py``): yowsup's ``LiteAxolotlStore`` for both
    parties, and python-axolotl's ``InMemoryAxolotlStore`` in this same environment
    (its ceiling here: python-axolotl and protobuf differ from wastore's), interleaved."""
    conv: Any = importlib.import_module("_axolotl_conversation")  # beside this file
    Conversation, own_bundle = conv.Conversation, conv.own_bundle

    lite: Any = importlib.import_module("yowsup.axolotl.store.sqlite.liteaxolotlstore")
    memory: Any = importlib.import_module("axolotl.tests.inmemoryaxolotlstore")
    alice = lite.LiteAxolotlStore(os.path.join(args.dir, "yowsup-w6-alice.db"))
    bob = lite.LiteAxolotlStore(os.path.join(args.dir, "yowsup-w6-bob.db"))
    talks = {"yowsup": Conversation(alice, bob, own_bundle(bob))}
    a, b = memory.InMemoryAxolotlStore(), memory.InMemoryAxolotlStore()
    talks["memory"] = Conversation(a, b, own_bundle(b))
    for talk in talks.values():
        talk.run(args.warmup)
    rates: dict[str, list[float]] = {name: [] for name in talks}
    names = list(talks)
    for rep in range(args.reps):
        for name in names[rep % 2 :] + names[: rep % 2]:
            gc.collect()
            t0 = time.perf_counter()
            talks[name].run(args.ops)
            rates[name].append(args.ops / (time.perf_counter() - t0))
    return {"runs": rates["yowsup"], "ops": args.ops, "memory_runs": rates["memory"]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("workload", choices=["W1d", "W1d-rows", "W3", "W6"])
    ap.add_argument("--data", default="")
    ap.add_argument("--dir", required=True)
    ap.add_argument("--ops", type=int, default=1000)
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--cycles", type=int, default=1)
    args = ap.parse_args()
    if args.workload == "W6":
        out = w6(args)
    else:
        header, sec = read_data(args.data)
        fn = {"W1d": w1d, "W1d-rows": w1d_rows, "W3": w3}[args.workload]
        out = fn(args, header, sec)
    out["python"] = sys.version.split()[0]
    try:
        from importlib.metadata import version

        out["yowsup"] = version("yowsup")
        out["python-axolotl"] = version("python-axolotl")
        out["protobuf"] = version("protobuf")
    except Exception:
        pass
    json.dump(out, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
