"""The data every implementation runs on: random bytes from a fixed seed.

The same peers, records and operation sequences go to every implementation.
The Python implementations in this process take them from :class:`W1Data`
and friends; the peers in other processes (yowsup, Baileys) read them from a
data file written by :func:`write_file` (a JSON header line, then the raw
sections), so they see exactly the same bytes.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

from .config import SEED, Sizes

GROUP = "120363000000000001@g.us"


def peer(i: int) -> tuple[str, int]:
    """The user and device of W1 peer ``i`` (a third of them are linked devices)."""
    return str(15550000000 + i), i % 3


def peer_address(i: int) -> str:
    """Signal address of W1 peer ``i``: ``user[:device]@s.whatsapp.net``."""
    user, device = peer(i)
    return f"{user}:{device}@s.whatsapp.net" if device else f"{user}@s.whatsapp.net"


def group_member(i: int) -> str:
    """Signal address of W2 group device ``i`` (4 devices per user)."""
    user, device = str(15560000000 + i // 4), i % 4
    return f"{user}:{device}@s.whatsapp.net" if device else f"{user}@s.whatsapp.net"


def sender_key_address() -> str:
    return f"{GROUP}::{peer_address(0)}"


def _rng(n: int) -> random.Random:
    return random.Random(SEED + n)  # reproducible data, not secrets


@dataclass
class W1Data:
    """Pre-filled sessions and identities of the peers, and the operation sequence."""

    addresses: list[str]
    sessions: list[bytes]
    identities: list[bytes]
    op_peers: list[int]
    op_records: list[bytes]

    @classmethod
    def make(cls, sizes: Sizes) -> W1Data:
        rnd = _rng(1)
        n = sizes.w1_peers
        sessions = [rnd.randbytes(sizes.w1_record) for _ in range(n)]
        identities = [rnd.randbytes(32) for _ in range(n)]
        ops = max(sizes.w1_ops, sizes.w1_warmup)
        op_peers = [rnd.randrange(n) for _ in range(ops)]
        op_records = [rnd.randbytes(sizes.w1_record) for _ in range(ops)]
        return cls([peer_address(i) for i in range(n)], sessions, identities, op_peers, op_records)

    def ops(self, count: int, offset: int = 0) -> list[tuple[str, bytes]]:
        """``count`` operations (address, new record), starting at ``offset`` (wrapping)."""
        total = len(self.op_peers)
        out = []
        for k in range(offset, offset + count):
            j = k % total
            out.append((self.addresses[self.op_peers[j]], self.op_records[j]))
        return out


@dataclass
class W2Data:
    members: list[str]
    sessions: list[bytes]
    pools: list[list[bytes]]
    """New records for a fan-out: pool ``k % 3`` (so a write always changes the record)."""
    sender_key: bytes
    sender_keys: list[bytes]

    @classmethod
    def make(cls, sizes: Sizes) -> W2Data:
        rnd = _rng(2)
        n = sizes.w2_group
        sessions = [rnd.randbytes(sizes.w2_record) for _ in range(n)]
        pools = [[rnd.randbytes(sizes.w2_record) for _ in range(n)] for _ in range(3)]
        sender_keys = [rnd.randbytes(sizes.w2_sender_key) for _ in range(3)]
        return cls(
            [group_member(i) for i in range(n)],
            sessions,
            pools,
            rnd.randbytes(sizes.w2_sender_key),
            sender_keys,
        )

    def fanout(self, k: int) -> list[tuple[str, bytes]]:
        return list(zip(self.members, self.pools[k % 3], strict=True))


@dataclass
class W3Data:
    records: list[bytes]

    @classmethod
    def make(cls, sizes: Sizes) -> W3Data:
        rnd = _rng(3)
        return cls([rnd.randbytes(sizes.w3_record) for _ in range(sizes.w3_prekeys)])

    def batch(self, cycle: int) -> list[tuple[int, bytes]]:
        """Pre-key ids keep growing from cycle to cycle, as on a real device."""
        base = 1 + cycle * len(self.records)
        return [(base + i, r) for i, r in enumerate(self.records)]


@dataclass
class W4Data:
    index_macs: list[bytes]
    value_macs: list[bytes]
    lookups: list[list[bytes]]
    """For every get: ``get_size`` index MACs, half of them stored."""

    @classmethod
    def make(cls, sizes: Sizes) -> W4Data:
        rnd = _rng(4)
        n = sizes.w4_macs
        index_macs = [rnd.randbytes(32) for _ in range(n)]
        value_macs = [rnd.randbytes(32) for _ in range(n)]
        lookups = []
        half = sizes.w4_get_size // 2
        for _ in range(sizes.w4_gets):
            present = rnd.sample(index_macs, half)
            absent = [rnd.randbytes(32) for _ in range(sizes.w4_get_size - half)]
            both = present + absent
            rnd.shuffle(both)
            lookups.append(both)
        return cls(index_macs, value_macs, lookups)


@dataclass
class W5Data:
    sessions: list[bytes]
    """One record per session slot (``w5_sessions`` of them, shared by all accounts)."""

    @classmethod
    def make(cls, sizes: Sizes) -> W5Data:
        rnd = _rng(5)
        return cls([rnd.randbytes(sizes.w5_record) for _ in range(sizes.w5_sessions)])


def w5_address(j: int) -> str:
    return peer_address(j)


def write_file(path: Path, sizes: Sizes, w1: W1Data, w3: W3Data, w1_ops: int) -> None:
    """The data of W1 and W3 for the peers in other processes.

    Layout: one JSON header line, then the sections it lists (``[offset, length]``
    relative to the end of the header line).
    """
    sections: dict[str, bytes] = {
        "sessions": b"".join(w1.sessions),
        "identities": b"".join(w1.identities),
        "op_peers": b"".join(i.to_bytes(4, "little") for i in w1.op_peers[:w1_ops]),
        "op_records": b"".join(w1.op_records[:w1_ops]),
        "prekeys": b"".join(w3.records),
    }
    offsets: dict[str, list[int]] = {}
    pos = 0
    for name, blob in sections.items():
        offsets[name] = [pos, len(blob)]
        pos += len(blob)
    header = {
        "peers": sizes.w1_peers,
        "peer_users": [peer(i)[0] for i in range(sizes.w1_peers)],
        "peer_devices": [peer(i)[1] for i in range(sizes.w1_peers)],
        "record": sizes.w1_record,
        "identity": 32,
        "ops": w1_ops,
        "prekeys": sizes.w3_prekeys,
        "prekey_record": sizes.w3_record,
        "sections": offsets,
    }
    with path.open("wb") as f:
        f.write(json.dumps(header).encode() + b"\n")
        for blob in sections.values():
            f.write(blob)
