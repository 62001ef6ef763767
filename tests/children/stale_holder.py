"""Child process of the lease-fencing tests (SQLite or PostgreSQL URL).

Args: store URL, device id, mode, lease ttl.

- ``stale``: open the account (lease, SignalCache), print ``ready``, then wait for
  a line on stdin. The test stops this process (SIGSTOP) past its lease ttl,
  lets another holder take the account over, sends the line and resumes it:
  every write it then tries must be refused before anything is written. Prints
  one JSON object: each attempt -> the exception's class name, or "written".
- ``hold``: open the account, print ``ready``, close it when a line arrives.
- ``try``: try to open the account once; print ``in use: <holder>`` or ``opened``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import sys
from collections.abc import Awaitable, Callable

import wastore

A, B, C, D = (f"4917{i:08d}@s.whatsapp.net" for i in range(4))


async def attempt(fn: Callable[[], Awaitable[object]]) -> str:
    try:
        await fn()
    except Exception as err:
        return type(err).__name__
    return "written"


async def stale(pm: wastore.PersistenceManager) -> dict[str, str]:
    b = pm.backend
    cache = pm.signal_cache
    assert cache is not None
    out: dict[str, str] = {}

    async def through_cache() -> None:
        await cache.put_session(A, b"stale through the cache")
        await cache.flush()

    out["cache flush"] = await attempt(through_cache)
    out["put_session"] = await attempt(lambda: b.put_session(B, b"stale direct"))
    out["batch"] = await attempt(lambda: b.put_sessions_batch([(D, b"stale batch")]))

    async def in_transaction() -> None:
        async with b.transaction():
            await b.put_session(C, b"stale in a transaction")

    out["transaction"] = await attempt(in_transaction)
    device = pm.get_device_snapshot()
    out["device save"] = await attempt(
        lambda: b.save(dataclasses.replace(device, push_name="stale"))
    )
    out["take_sent_message"] = await attempt(lambda: b.take_sent_message(A, "MSG"))
    return out


async def main(url: str, device_id: int, mode: str, ttl: float) -> None:
    container = await wastore.open_store(url)
    loop = asyncio.get_running_loop()
    try:
        if mode == "try":
            try:
                pm = await wastore.PersistenceManager.open(container.backend(device_id))
            except wastore.AccountInUseError as err:
                print(f"in use: {err.holder}", flush=True)
                return
            await pm.close()
            print("opened", flush=True)
            return
        pm = await wastore.PersistenceManager.open(
            container.backend(device_id), lease_ttl=ttl, signal_cache=mode == "stale"
        )
        print("ready", flush=True)
        await loop.run_in_executor(None, sys.stdin.readline)
        if mode == "stale":
            print(json.dumps(await stale(pm)), flush=True)
            with contextlib.suppress(wastore.AccountInUseError):
                await pm.close()  # its final flush is refused too
        else:
            await pm.close()
            print("closed", flush=True)
    finally:
        await container.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), sys.argv[3], float(sys.argv[4])))
