"""A short tour of wastore on the embedded SQLite default (``wastore demo``)."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.table import Table

import wastore


async def run(path: Path) -> None:
    console = Console()
    async with await wastore.open_store(f"sqlite:///{path}") as container:
        ids = await container.devices()
        if not ids:
            ids = [await container.create_device(), await container.create_device()]
            console.print(f"created two accounts in [bold]{path}[/]")
        else:
            console.print(f"continuing with the accounts stored in [bold]{path}[/]")
        table = Table(title="accounts")
        for col in ("id", "push name", "logins", "sessions", "pre-keys (total/uploaded)"):
            table.add_column(col)
        for n, device_id in enumerate(ids[:2]):
            backend = container.backend(device_id)
            async with await wastore.PersistenceManager.open(backend) as pm:
                await pm.process_commands(
                    [wastore.SetPushName(f"demo-{n}"), wastore.IncrementLoginCounter()]
                )
                logins = pm.get_device_snapshot().login_counter
                await backend.put_session(f"{1000 + logins}@s.whatsapp.net", b"session record")
                total, _ = await backend.count_prekeys()
                await backend.store_prekeys_batch(
                    [(total + k, b"pre-key record") for k in range(1, 11)], uploaded=False
                )
                await backend.mark_prekeys_uploaded(list(range(total + 1, total + 6)))
                sessions = await backend.get_sessions(
                    [f"{1000 + i}@s.whatsapp.net" for i in range(1, logins + 1)]
                )
                prekeys = await backend.count_prekeys()
                table.add_row(
                    str(device_id),
                    pm.get_device_snapshot().push_name,
                    str(logins),
                    str(len(sessions)),
                    f"{prekeys[0]}/{prekeys[1]}",
                )
        console.print(table)
