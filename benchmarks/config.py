"""Sizes of the workloads (full and ``--quick``), and the workload names.

The full sizes are those of ``docs/benchmarks.md``. ``--quick`` keeps every
workload and every implementation but runs fewer operations per repetition
(see :data:`QUICK`); the ratios it prints are noisier, not different in kind.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Final

WORKLOADS: Final = (
    "W1d",
    "W1c",
    "W1w",
    "W2",
    "W3",
    "W4",
    "W5",
    "W6",
    "W6-pywhats",
    "W6-pyaileys",
    "W7",
    "W8",
)
PROCESS_WORKLOADS: Final = frozenset({"W5", "W6", "W6-pywhats", "W6-pyaileys", "W7", "W8"})
"""Workloads timed in child processes of their own (not by the in-process runners)."""

WHAT: Final[dict[str, str]] = {
    "W1d": "load_identity + get_session + committed put_session (1,200 B), peer of 2,000",
    "W1c": "W1 through the SignalCache (flusher on); time includes the final flush()",
    "W1w": "sustained writes (SQLite): 50,000 committed put_session of new peers back to back, "
    "peak size of the -wal file",
    "W2": "one fan-out to 1,024 devices: get_sessions + put_sessions_batch + sender key get/put",
    "W3": "store 812 pre-keys (1 batch), mark uploaded, 812 x (load_prekey, remove_prekey)",
    "W4": "put 50,000 MACs in batches of 500, then 50 x get_mutation_macs of 1,000 (half present)",
    "W5": "open container, then per account: PersistenceManager.open + snapshot + get_session",
    "W6": "python-axolotl: encrypt + flush, decrypt + flush, alternating directions (ratchets)",
    "W6-pywhats": "a pywhats client's 1:1 and group conversation through pywhats' fake server",
    "W6-pyaileys": "pyaileys' SignalRepository: encrypt, decrypt, alternating directions",
    "W7": "open N accounts with their leases (PersistenceManager.open_many), then sit idle",
    "W8": "1, 2, 4 processes x 1,000 leased accounts on one PostgreSQL: W1 messages (fenced)",
}
"""What one operation of each workload is (at full size)."""

UNITS: Final[dict[str, str]] = {
    "W1d": "ops/s",
    "W1c": "ops/s",
    "W1w": "commits/s",
    "W2": "fan-outs/s",
    "W3": "refills/s",
    "W4": "syncs/s",
    "W5": "accounts/s",
    "W6": "msgs/s",
    "W6-pywhats": "msgs/s",
    "W6-pyaileys": "msgs/s",
    "W7": "accounts/s",
    "W8": "messages/s",
}

SEED: Final = 20261126
"""Every record is random bytes from ``random.Random(SEED + n)``."""


@dataclass(frozen=True)
class Sizes:
    """How much of each workload one run does."""

    reps: int = 5
    """Timed repetitions per workload and implementation (after one warm-up)."""
    # W1
    w1_peers: int = 2000
    w1_ops: int = 20_000
    w1_record: int = 1200
    w1_ops_pg: int = 10_000
    """W1 operations for PostgreSQL (three round trips each: slower, same rate)."""
    w1_ops_yowsup: int = 4000
    """yowsup commits with an fsync twice per operation; it runs a prefix of the same sequence."""
    w1_ops_baileys: int = 10_000
    w1_warmup: int = 2000
    w1w_ops: int = 50_000
    """W1w: one-row commits per run, each a new peer (the database and its WAL grow)."""
    # W2
    w2_group: int = 1024
    w2_fanouts: int = 20
    w2_record: int = 1200
    w2_sender_key: int = 256
    # W3
    w3_prekeys: int = 812
    w3_cycles: int = 10
    w3_cycles_yowsup: int = 1
    w3_record: int = 72
    """A serialized libsignal PreKeyRecord: id, 33-byte public key, 32-byte private key."""
    # W4
    w4_macs: int = 50_000
    w4_batch: int = 500
    w4_gets: int = 50
    w4_get_size: int = 1000
    # W5
    w5_accounts: int = 1000
    w5_sessions: int = 50
    w5_record: int = 1200
    w5_runs: int = 5
    pg_pool_size: int = 10
    # W6 (clients)
    w6_messages: int = 400
    w6_messages_yowsup: int = 100
    """yowsup fsyncs several commits per message: it runs fewer, same rate."""
    w6_warmup: int = 40
    w6_pywhats_rounds: int = 100
    """1:1 rounds of W6-pywhats (two messages each); then ``w6_pywhats_group`` group rounds."""
    w6_pywhats_group: int = 30
    w6_pyaileys_messages: int = 400
    # W7
    w7_accounts: tuple[int, ...] = (1000, 10_000, 50_000)
    w7_runs: int = 3
    """Timed opens per size (each in a fresh process)."""
    w7_idle: float = 60.0
    """Seconds of idle measured after the last open of each size (CPU per minute)."""
    # W8
    w8_processes: tuple[int, ...] = (1, 2, 4)
    w8_accounts: int = 1000
    """Accounts each process owns (with their leases)."""
    w8_peers: int = 10
    """Peers (session + identity) per account."""
    w8_ops: int = 5000
    """Messages (W1 operations on a random account of the process) per process."""
    w8_concurrency: int = 16
    """Messages in flight per process."""

    def scaled(self, **changes: Any) -> Sizes:
        return dataclasses.replace(self, **changes)


FULL: Final = Sizes()

QUICK: Final = FULL.scaled(
    w1_ops=4000,
    w1_ops_pg=2000,
    w1_ops_yowsup=1000,
    w1_ops_baileys=2000,
    w1_warmup=500,
    w1w_ops=10_000,
    w2_fanouts=5,
    w3_cycles=2,
    w4_macs=10_000,
    w4_gets=10,
    w5_runs=3,
    w6_messages=100,
    w6_messages_yowsup=40,
    w6_warmup=10,
    w6_pywhats_rounds=30,
    w6_pywhats_group=10,
    w6_pyaileys_messages=100,
    w7_accounts=(1000, 5000),
    w7_runs=1,
    w7_idle=10.0,
    w8_ops=1500,
)
"""``--quick``: a fifth of the W1/W2 operations, 10,000 MACs in W4, 3 W5 runs, a quarter of the
W6 messages; W7 opens 1,000 and 5,000 accounts once each and measures 10 s of idle; W8 sends
1,500 messages per process; same data sizes."""


def tiny() -> Sizes:
    """Sizes for the test suite's smoke test (seconds, not minutes)."""
    return FULL.scaled(
        reps=2,
        w1_peers=50,
        w1_ops=200,
        w1_ops_pg=100,
        w1_ops_yowsup=50,
        w1_ops_baileys=100,
        w1_warmup=20,
        w1w_ops=300,
        w2_group=64,
        w2_fanouts=2,
        w3_prekeys=40,
        w3_cycles=1,
        w4_macs=1000,
        w4_gets=3,
        w4_get_size=100,
        w5_accounts=20,
        w5_sessions=3,
        w5_runs=1,
        w6_messages=10,
        w6_messages_yowsup=5,
        w6_warmup=2,
        w6_pywhats_rounds=3,
        w6_pywhats_group=1,
        w6_pyaileys_messages=10,
        w7_accounts=(30, 60),
        w7_runs=1,
        w7_idle=0.3,
        w8_processes=(1, 2),
        w8_accounts=10,
        w8_peers=2,
        w8_ops=60,
        w8_concurrency=4,
    )
