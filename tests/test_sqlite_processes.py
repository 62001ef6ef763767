"""SqliteStore with real processes: SIGKILL crashes, two writers on one file, leases.

The children live in tests/children/. Every check is made by reopening the
database after the child is gone, so what is asserted is what is on disk.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import pytest

import wastore
from wastore import AccountInUseError, PersistenceManager

CHILDREN = Path(__file__).parent / "children"
pytestmark = pytest.mark.slow


def spawn(script: str, *args: object) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(CHILDREN / script), *map(str, args)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


class Lines:
    """Complete lines a child printed, read without blocking."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        self.proc = proc
        self.fd = proc.stdout.fileno()
        os.set_blocking(self.fd, False)
        self.buf = b""
        self.lines: list[str] = []

    def pump(self) -> None:
        while True:
            try:
                chunk = os.read(self.fd, 65536)
            except BlockingIOError:
                return
            if not chunk:
                return
            self.buf += chunk
            *done, self.buf = self.buf.split(b"\n")
            self.lines += [d.decode() for d in done if d.strip()]

    def wait_for_first(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not self.lines:
            self.pump()
            if time.monotonic() > deadline or self.proc.poll() is not None:
                err = self.proc.stderr.read() if self.proc.stderr else ""
                raise AssertionError(f"the child printed nothing: {err}")
            time.sleep(0.001)

    def run_for(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.pump()
            time.sleep(0.001)


def close(proc: subprocess.Popen[str]) -> None:
    for f in (proc.stdin, proc.stdout, proc.stderr):
        if f is not None:
            f.close()


def test_sigkill_never_loses_an_acknowledged_write(tmp_path: Path) -> None:
    db = tmp_path / "crash.db"
    rnd = random.Random(20261126)
    acked: dict[str, set[int]] = defaultdict(set)
    kills = 0
    for _ in range(22):
        proc = spawn("crash_writer.py", db)
        out = Lines(proc)
        out.wait_for_first(timeout=30.0)
        out.run_for(rnd.uniform(0.005, 0.25))  # then kill it at a random moment
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        assert proc.returncode == -signal.SIGKILL
        kills += 1
        # Whatever was printed before the kill was committed before it was printed.
        out.pump()
        close(proc)
        for line in out.lines:
            _, kind, n = line.split()
            acked[kind].add(int(n))
        check_crash_db(db, acked)
    assert kills >= 20
    assert len(acked["txn"]) > 20, "the child did too little work for the test to mean much"


def check_crash_db(db: Path, acked: dict[str, set[int]]) -> None:
    con = sqlite3.connect(db)
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    # no batch is half applied
    per_round: dict[int, int] = defaultdict(int)
    for (address,) in con.execute("SELECT address FROM wastore_sessions"):
        per_round[int(address[1:].split("-")[0])] += 1
    assert all(n == 20 for n in per_round.values()), per_round
    prekeys: dict[int, int] = defaultdict(int)
    for (pid,) in con.execute("SELECT id FROM wastore_prekeys"):
        prekeys[(pid - 1) // 10] += 1
    assert all(n == 10 for n in prekeys.values()), prekeys
    # every acknowledged write is there
    assert acked["sessions"] <= set(per_round)
    assert acked["prekeys"] <= set(prekeys)
    txn_keys = {
        int(a.split("@")[0][1:]) for (a,) in con.execute("SELECT address FROM wastore_sender_keys")
    }
    pending = {int(m[1:]) for (m,) in con.execute("SELECT message_id FROM wastore_pending_inbound")}
    assert acked["txn"] <= txn_keys
    assert txn_keys == pending, "a transaction was half applied"
    row = con.execute(
        "SELECT next_pre_key_id, first_unupload_pre_key_id, login_counter FROM wastore_device"
    ).fetchone()
    con.close()
    if acked["device"]:
        last = max(acked["device"])
        assert row[2] >= last + 1
        assert row[0] >= 10 * last + 11
        assert row[0] == 10 * (row[2] - 1) + 11  # both watermarks and the counter moved together
        assert row[1] == row[0] - 10


def test_two_processes_share_one_file(tmp_path: Path) -> None:
    db = tmp_path / "shared.db"
    sqlite3.connect(db).close()  # both children race to create the schema
    os.chmod(db, 0o600)
    procs = [spawn("busy_writer.py", db, name, 3.0) for name in ("alpha", "beta")]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        close(proc)
        assert proc.returncode == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))
    names = {r["device_id"]: n for r, n in zip(results, ("alpha", "beta"), strict=True)}
    assert len(names) == 2
    con = sqlite3.connect(db)
    for r in results:
        d, name = r["device_id"], names[r["device_id"]]
        assert r["singles"] > 100
        singles = dict(
            con.execute(
                "SELECT address, record FROM wastore_sessions WHERE device_id = ? AND address LIKE 's%'",
                (d,),
            ).fetchall()
        )
        assert len(singles) == r["singles"]
        assert all(v == f"{name}{k[1:].split('@')[0]}".encode() for k, v in singles.items())
        batch_rows = con.execute(
            "SELECT count(*) FROM wastore_sessions WHERE device_id = ? AND address LIKE 'b%'", (d,)
        ).fetchone()[0]
        assert batch_rows == 50 * r["batches"]
        assert (
            con.execute(
                "SELECT count(*) FROM wastore_sent_messages WHERE device_id = ?", (d,)
            ).fetchone()[0]
            == r["txns"]
        )
        push = con.execute("SELECT push_name FROM wastore_device WHERE id = ?", (d,)).fetchone()[0]
        assert push == f"{name}-{r['txns']}"
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    con.close()


async def test_lease_of_a_killed_process_is_taken_over(tmp_path: Path) -> None:
    db = tmp_path / "lease.db"
    async with await wastore.open_store(f"sqlite:///{db}") as c:
        device_id = await c.create_device()
        proc = spawn("lease_holder.py", db, device_id, 60.0, "hold")
        assert proc.stdout is not None
        ready = proc.stdout.readline().split()
        assert ready[0] == "ready", proc.stderr.read() if proc.stderr else ready
        with pytest.raises(AccountInUseError) as info:
            await PersistenceManager.open(c.backend(device_id))
        assert f"pid {proc.pid} " in info.value.holder
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        close(proc)
        # The holder is dead: its lease (60 s left) is taken over at once.
        pm = await PersistenceManager.open(c.backend(device_id))
        await pm.close()


async def test_lease_released_by_clean_close_of_another_process(tmp_path: Path) -> None:
    db = tmp_path / "lease.db"
    async with await wastore.open_store(f"sqlite:///{db}") as c:
        device_id = await c.create_device()
        proc = spawn("lease_holder.py", db, device_id, 60.0, "close")
        assert proc.stdout is not None and proc.stdin is not None
        assert proc.stdout.readline().startswith("ready")
        with pytest.raises(AccountInUseError):
            await PersistenceManager.open(c.backend(device_id))
        proc.stdin.write("go\n")
        proc.stdin.flush()
        assert proc.stdout.readline().strip() == "closed"
        assert proc.wait(timeout=30) == 0
        close(proc)
        pm = await PersistenceManager.open(c.backend(device_id))
        await pm.close()
