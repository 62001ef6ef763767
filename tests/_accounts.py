"""Accounts with a row in every table, for the admin and command-line tests."""

from __future__ import annotations

import dataclasses

import wastore
from wastore import JID
from wastore.testing._support import populate


async def fill(container: wastore.Container, paired: int = 2, unpaired: int = 1) -> list[int]:
    """``paired`` accounts with a row in every table, phone number and LID; then
    ``unpaired`` fresh accounts (keys only)."""
    ids = []
    for n in range(paired):
        device_id = await container.create_device()
        backend = container.backend(device_id)
        await populate(backend, n)
        device = await backend.load()
        assert device is not None
        await backend.save(
            dataclasses.replace(
                device,
                pn=JID.parse(f"1555000{n}:7@s.whatsapp.net"),
                lid=JID.parse(f"9900{n}:7@lid"),
            )
        )
        ids.append(device_id)
    for _ in range(unpaired):
        ids.append(await container.create_device())
    return ids
