"""Child process of the crash test: writes forever and acknowledges each commit.

Each round ``i`` writes, in this order, and prints one line after each commit:

- a batch of 20 sessions ``b{i}-{k}@s.whatsapp.net`` (record = round number)   -> ``ack sessions i``
- a batch of 10 pre-keys ``10i+1 .. 10i+10``                                     -> ``ack prekeys i``
- the pre-key watermarks via process_command, saved with flush()              -> ``ack device i``
- a transaction with one sender key and one pending inbound message         -> ``ack txn i``

The parent kills it with SIGKILL at a random moment and checks what survived.
"""

from __future__ import annotations

import asyncio
import sys

import wastore


async def main(path: str) -> None:
    container = await wastore.open_store(f"sqlite:///{path}")
    ids = await container.devices()
    device_id = ids[0] if ids else await container.create_device()
    backend = container.backend(device_id)
    pm = await wastore.PersistenceManager.open(backend, lease_ttl=1.0)
    i = pm.get_device_snapshot().login_counter
    out = sys.stdout
    while True:
        tag = str(i).encode()
        await backend.put_sessions_batch(
            [(f"b{i}-{k}@s.whatsapp.net", tag * 60) for k in range(20)]
        )
        print(f"ack sessions {i}", file=out, flush=True)
        await backend.store_prekeys_batch([(10 * i + k, tag * 30) for k in range(1, 11)], False)
        print(f"ack prekeys {i}", file=out, flush=True)
        await pm.process_commands(
            [
                wastore.SetPreKeyWatermarks(10 * i + 11, 10 * i + 1),
                wastore.IncrementLoginCounter(),
            ]
        )
        await pm.flush()
        print(f"ack device {i}", file=out, flush=True)
        async with backend.transaction():
            await backend.put_sender_key(f"g{i}@g.us::1@s.whatsapp.net", tag)
            await backend.store_pending_inbound(
                "c@s.whatsapp.net", "1@s.whatsapp.net", f"m{i}", tag
            )
        print(f"ack txn {i}", file=out, flush=True)
        i += 1


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
