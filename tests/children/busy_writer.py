"""Child process of the concurrency test: serves its own account in a shared file.

Writes as fast as it can for the given number of seconds (single puts, batches
and transactions), then prints how many of each it committed as JSON. Any
exception makes it exit non-zero with the traceback on stderr.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

import wastore


async def main(path: str, name: str, seconds: float) -> None:
    container = await wastore.open_store(f"sqlite:///{path}", busy_timeout=10.0)
    device_id = await container.create_device()
    backend = container.backend(device_id)
    pm = await wastore.PersistenceManager.open(backend)
    pm.run_background_saver(interval=0.05)
    singles = batches = txns = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        await backend.put_session(f"s{singles}@s.whatsapp.net", f"{name}{singles}".encode())
        singles += 1
        if singles % 10 == 0:
            await backend.put_sessions_batch(
                [
                    (f"b{batches}-{k}@s.whatsapp.net", f"{name}b{batches}".encode())
                    for k in range(50)
                ]
            )
            batches += 1
            async with backend.transaction():
                await backend.put_sender_key(f"g{txns}@g.us::1@s.whatsapp.net", name.encode())
                await backend.store_sent_message("c@g.us", f"m{txns}", name.encode())
            txns += 1
            await pm.process_command(wastore.SetPushName(f"{name}-{txns}"))
    await pm.close()
    await container.close()
    print(
        json.dumps({"device_id": device_id, "singles": singles, "batches": batches, "txns": txns})
    )


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], float(sys.argv[3])))
