"""Leases between real processes, on SQLite and PostgreSQL: a holder stopped (SIGSTOP)
past its lease ttl and resumed after another holder took over writes nothing; a
process in another PID namespace never takes a live holder's lease.

The child is tests/children/stale_holder.py.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import wastore
from wastore import AccountInUseError, PersistenceManager

CHILD = Path(__file__).parent / "children" / "stale_holder.py"
A, B, C, D = (f"4917{i:08d}@s.whatsapp.net" for i in range(4))
TTL = 1.0

pytestmark = pytest.mark.slow


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'leases.db'}"
    pg: str = request.getfixturevalue("pg_url")
    return pg


class Child:
    def __init__(self, *args: str, prefix: tuple[str, ...] = ()) -> None:
        self.proc = subprocess.Popen(
            [*prefix, sys.executable, str(CHILD), *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    async def line(self, timeout: float = 60) -> str:
        assert self.proc.stdout is not None
        text = await asyncio.wait_for(asyncio.to_thread(self.proc.stdout.readline), timeout)
        if not text:
            err = self.proc.stderr.read() if self.proc.stderr else ""
            raise AssertionError(f"the child ended without output: {err}")
        return text.strip()

    def send(self, text: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(text + "\n")
        self.proc.stdin.flush()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(30)
        for f in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if f is not None:
                f.close()


@pytest.fixture
def children() -> Iterator[list[Child]]:
    started: list[Child] = []
    yield started
    for child in started:
        child.kill()


async def take_over(container: wastore.Container, device_id: int) -> PersistenceManager:
    """Open the account as soon as the stopped holder's lease has expired."""
    deadline = time.monotonic() + 30
    while True:
        try:
            return await PersistenceManager.open(container.backend(device_id), holder="new")
        except AccountInUseError:
            assert time.monotonic() < deadline, "the stopped holder's lease never expired"
            await asyncio.sleep(0.05)


async def test_a_holder_resumed_after_its_lease_was_taken_over_writes_nothing(
    url: str, children: list[Child]
) -> None:
    async with await wastore.open_store(url) as c:
        device_id = await c.create_device()
        stale = Child(url, str(device_id), "stale", str(TTL))
        children.append(stale)
        assert await stale.line() == "ready"
        os.kill(stale.proc.pid, signal.SIGSTOP)
        stopped_at = time.monotonic()
        try:
            # While it is stopped (and its lease has not run out) it still holds it; on a
            # loaded machine the ttl may be gone before this check, which then says nothing.
            try:
                early = await PersistenceManager.open(c.backend(device_id))
            except AccountInUseError:
                pass
            else:
                assert time.monotonic() - stopped_at >= TTL / 3, "a live lease was taken"
                await early.close()
            await asyncio.sleep(max(0.0, TTL + 0.2 - (time.monotonic() - stopped_at)))
            pm = await take_over(c, device_id)
            b = pm.backend
            for address in (A, B, C):
                await b.put_session(address, b"new holder")
            await b.store_sent_message(A, "MSG", b"kept")
            await pm.process_command(wastore.SetPushName("new holder"))
            await pm.flush()
            stale.send("go")  # read when it runs again
        finally:
            os.kill(stale.proc.pid, signal.SIGCONT)
        outcome = json.loads(await stale.line())
        assert outcome == {
            "cache flush": "AccountInUseError",
            "put_session": "AccountInUseError",
            "batch": "AccountInUseError",
            "transaction": "AccountInUseError",
            "device save": "AccountInUseError",
            "take_sent_message": "AccountInUseError",
        }
        await asyncio.to_thread(stale.proc.wait, 30)
        # Nothing of the stale holder reached the store.
        fresh = c.backend(device_id)
        sessions = await fresh.get_sessions([A, B, C, D])
        assert sessions == {A: b"new holder", B: b"new holder", C: b"new holder"}
        device = await fresh.load()
        assert device is not None
        assert device.push_name == "new holder"
        assert await fresh.take_sent_message(A, "MSG") == b"kept"
        assert not pm.lease_lost
        await pm.close()


def _unshare() -> tuple[str, ...]:
    tool = shutil.which("unshare")
    if tool is None:
        pytest.skip("needs unshare(1) (util-linux)")
    probe = subprocess.run(
        [tool, "--pid", "--fork", "--mount-proc", "true"], capture_output=True, check=False
    )
    if probe.returncode != 0:
        pytest.skip(f"cannot create a PID namespace here: {probe.stderr.decode().strip()}")
    return (tool, "--pid", "--fork", "--mount-proc")


async def test_a_process_in_another_pid_namespace_never_takes_a_live_lease(
    url: str, children: list[Child]
) -> None:
    """The holder's pid means nothing in another PID namespace (there it is usually no
    process at all): the lease is refused until it expires, never taken over."""
    prefix = _unshare()
    async with await wastore.open_store(url) as c:
        device_id = await c.create_device()
        pm = await PersistenceManager.open(c.backend(device_id), holder="the first holder")
        try:
            other = Child(url, str(device_id), "try", "30", prefix=prefix)
            children.append(other)
            assert await other.line() == "in use: the first holder"
            await asyncio.to_thread(other.proc.wait, 30)
        finally:
            await pm.close()
        # Released: the other namespace may open it now.
        again = Child(url, str(device_id), "try", "30", prefix=prefix)
        children.append(again)
        assert await again.line() == "opened"
