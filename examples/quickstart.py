"""Quickstart: one account in an SQLite file, reopened on every start.

pip install wastore
python examples/quickstart.py      # first run: a new account
python examples/quickstart.py      # second run: the same account, one more start
"""

import asyncio
import sys

import wastore


async def main(path: str = "wa.db") -> None:
    async with await wastore.open_store(path) as container:  # a path or a URL
        device_id = await container.first_device()  # the only account; created on first run
        backend = container.backend(device_id)
        async with await wastore.PersistenceManager.open(backend) as pm:
            pm.run_background_saver(interval=30.0)
            device = pm.get_device_snapshot()
            if not device.push_name:  # first run: a fresh, unpaired account
                await pm.process_command(wastore.SetPushName("my bot"))
            await pm.process_command(wastore.IncrementLoginCounter())
            starts = pm.get_device_snapshot().login_counter
            print(f"account {device_id} ({pm.get_device_snapshot().push_name}), start #{starts}")
            await backend.put_session("15551234567@s.whatsapp.net", b"<session record>")


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:]))
