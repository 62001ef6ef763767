"""PostgresStore with real processes: account leases between processes, and the atomic
rules of the contract (take_sent_message, the two tc-token writers) under concurrent
callers in two processes.

The child is the script CHILD below, run with ``python -c``; it prints ``ready`` once
its store is open, waits for ``go`` on stdin, and prints one JSON line of results.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from typing import Any

import pytest

import wastore
from wastore import AccountInUseError, PersistenceManager, TcToken

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

CHILD = textwrap.dedent(
    """
    import asyncio, json, sys, time
    import wastore

    async def main(url, mode, device_id, seed):
        c = await wastore.open_store(url, pool_size=6)
        b = c.backend(device_id)
        result = None
        if mode == "hold":
            pm = await wastore.PersistenceManager.open(b, lease_ttl=30.0)
        # open every connection now, so that "go" starts the work in earnest
        await asyncio.gather(*(b.get_session("warm@s.whatsapp.net") for _ in range(6)))
        print("ready", flush=True)
        go = await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        await asyncio.sleep(max(float(go.split()[1]) - time.time(), 0))  # start together
        if mode == "take":
            # Rounds: "go AT ROUND" takes that round's 1,000 messages (seed 1 from the
            # other end), prints what it got, and waits for the next line ("stop" ends).
            while True:
                ids = [f"R{go.split()[2]}-MSG{i}" for i in range(1000)]
                if seed:
                    ids.reverse()
                got = []

                async def take(msg_id):
                    if await b.take_sent_message("chat@g.us", msg_id) is not None:
                        got.append(msg_id)

                for start in range(0, len(ids), 30):
                    await asyncio.gather(*(take(m) for m in ids[start:start + 30]))
                print(json.dumps(got), flush=True)
                go = await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
                if go.strip() == "stop":
                    break
                await asyncio.sleep(max(float(go.split()[1]) - time.time(), 0))
            result = "stopped"
        elif mode == "tc":
            # seed 0 sends the touches, seed 1 the received tokens: per jid in rising
            # order, every jid at once, so each write races the other process's.
            async def one(j):
                jid = f"4917{j:08d}@s.whatsapp.net"
                for ts in range(1, 31):
                    if seed == 0:
                        await b.touch_tc_token_sender_timestamp(jid, ts)
                    else:
                        await b.store_received_tc_token(jid, b"t%d" % ts, ts)
                return 30

            result = sum(await asyncio.gather(*(one(j) for j in range(60))))
        elif mode == "hold":
            await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
            await pm.close()
            result = "closed"
        print(json.dumps(result), flush=True)
        await c.close()

    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])))
    """
)


class Child:
    def __init__(self, url: str, mode: str, device_id: int, seed: int = 0) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", CHILD, url, mode, str(device_id), str(seed)],
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

    async def result(self) -> Any:
        value = json.loads(await self.line())
        await asyncio.to_thread(self.proc.wait, 30)
        assert self.proc.returncode == 0
        return value

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(30)
        for f in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if f is not None:
                f.close()


async def start_all(children: list[Child]) -> None:
    for child in children:
        assert await child.line() == "ready"
    at = time.time() + 0.3  # every child starts at this moment
    for child in children:
        child.send(f"go {at}")


async def test_two_processes_never_both_take_a_sent_message(pg_url: str) -> None:
    """Two processes take the same 1,000 messages at the same moment (one from each
    end): no message is taken twice and none is left. On a loaded machine one process
    may happen to take a whole round before the other starts: rounds repeat (each
    held to the same rules) until both have taken messages, so the race was real."""
    async with await wastore.open_store(pg_url) as c:
        device_id = await c.create_device()
        b = c.backend(device_id)
        children = [Child(pg_url, "take", device_id, n) for n in range(2)]
        taken = [0, 0]
        try:
            for child in children:
                assert await child.line() == "ready"
            for rnd in range(20):
                ids = {f"R{rnd}-MSG{i}" for i in range(1000)}
                for start in range(0, 1000, 100):
                    await asyncio.gather(
                        *(
                            b.store_sent_message("chat@g.us", f"R{rnd}-MSG{i}", b"p%d" % i)
                            for i in range(start, start + 100)
                        )
                    )
                at = time.time() + 0.3  # both start at this moment
                for child in children:
                    child.send(f"go {at} {rnd}")
                first, second = [set(json.loads(await ch.line())) for ch in children]
                assert not first & second, "a sent message was taken twice"
                assert first | second == ids
                taken = [taken[0] + len(first), taken[1] + len(second)]
                if all(taken):
                    break
            for child in children:
                child.send("stop")
            assert [await ch.result() for ch in children] == ["stopped", "stopped"]
        finally:
            for ch in children:
                ch.kill()
        assert all(taken), f"the two processes never took messages at the same time: {taken}"
        assert await b.take_sent_message("chat@g.us", "R0-MSG0") is None


async def test_tc_token_writers_in_two_processes_keep_both_effects(pg_url: str) -> None:
    """One process moves the sender timestamps forward, the other stores newer
    received tokens, on the same rows at the same time: the newest token and the
    newest sender timestamp both stay (a read-then-write implementation loses one)."""
    async with await wastore.open_store(pg_url) as c:
        device_id = await c.create_device()
        b = c.backend(device_id)
        children = [Child(pg_url, "tc", device_id, n) for n in range(2)]
        try:
            await start_all(children)
            assert [await ch.result() for ch in children] == [1800, 1800]
        finally:
            for ch in children:
                ch.kill()
        for j in range(60):
            jid = f"4917{j:08d}@s.whatsapp.net"
            assert await b.get_tc_token(jid) == TcToken(b"t30", 30, 30), jid


async def test_second_process_gets_account_in_use_naming_the_holder(pg_url: str) -> None:
    async with await wastore.open_store(pg_url) as c:
        device_id = await c.create_device()
        holder = Child(pg_url, "hold", device_id)
        try:
            assert await holder.line() == "ready"
            with pytest.raises(AccountInUseError) as info:
                await PersistenceManager.open(c.backend(device_id))
            assert info.value.device_id == device_id
            # The holder as PersistenceManager.open names it (default "pid N on HOST").
            assert info.value.holder == f"pid {holder.proc.pid} on {socket.gethostname()}"
            assert f"pid {holder.proc.pid} on" in str(info.value)
            # A clean close releases the lease at once.
            holder.send(f"go {time.time()}")
            holder.send("close")
            assert await holder.result() == "closed"
            pm = await PersistenceManager.open(c.backend(device_id))
            await pm.close()
        finally:
            holder.kill()


async def test_lease_of_a_killed_process_goes_with_its_connection(pg_url: str) -> None:
    async with await wastore.open_store(pg_url) as c:
        device_id = await c.create_device()
        holder = Child(pg_url, "hold", device_id)
        try:
            assert await holder.line() == "ready"
            with pytest.raises(AccountInUseError):
                await PersistenceManager.open(c.backend(device_id))
            os.kill(holder.proc.pid, signal.SIGKILL)
            killed_at = time.monotonic()
            while True:  # no ttl to wait for: the server drops the dead session's locks
                try:
                    pm = await PersistenceManager.open(c.backend(device_id))
                    break
                except AccountInUseError:
                    assert time.monotonic() - killed_at < 10, "the dead holder's lease stayed"
                    await asyncio.sleep(0.05)
            assert time.monotonic() - killed_at < 5
            await pm.process_command(wastore.SetPushName("new holder"))
            await pm.close()
        finally:
            holder.kill()
