"""Child process of the lease tests: opens an account, says so, and waits.

Args: database path, device id, lease ttl, and "close" (close cleanly after
'ready' is acknowledged on stdin) or "hold" (hold until killed).
"""

from __future__ import annotations

import asyncio
import os
import sys

import wastore


async def main(path: str, device_id: int, ttl: float, mode: str) -> None:
    container = await wastore.open_store(f"sqlite:///{path}")
    pm = await wastore.PersistenceManager.open(container.backend(device_id), lease_ttl=ttl)
    print(f"ready {os.getpid()}", flush=True)
    if mode == "close":
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        await pm.close()
        await container.close()
        print("closed", flush=True)
        return
    while True:
        await asyncio.sleep(3600)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]))
