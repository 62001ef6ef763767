"""Child process of the pyaileys crash tests: decrypt a message as Bob, and die by SIGKILL.

Usage: pyaileys_crash_child.py STORE_URL BOB_DEVICE_ID ALICE_JID KIND CIPHERTEXT_HEX MODE

MODE is one of:

- ``set-N``: SIGKILL this process just before the N-th ``keys.set()`` of the
  decryption (after pyaileys decrypted in memory, before that write);
- ``txn-set-N``: the same, with the decryption inside ``state.transaction()``;
  ``txn-set-0`` kills after the decryption returned, before the block commits
  (the plaintext is saved with ``store_pending_inbound`` in the block);
- ``creds``: decrypt (printing ``decrypted <text>``: the message is acknowledged),
  then do what pyaileys does to upload pre-keys — store them, advance the
  counters — and die before ``save_creds()``.

It prints one line before it dies, so the parent knows where it was.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Mapping
from typing import Any

os.environ.setdefault("PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION", "python")

from pyaileys.auth.state import AuthenticationState
from pyaileys.crypto.curve import DefaultCurve25519Provider
from pyaileys.signal.repository import SignalRepository

from wastore.interop.pyaileys import WastoreAuthState


def die(message: str) -> None:
    print(message, flush=True)
    os.kill(os.getpid(), signal.SIGKILL)


class KillSwitch:
    """The account's key store, dying just before its ``kill_at``-th ``set()``."""

    def __init__(self, keys: Any, kill_at: int) -> None:
        self.keys = keys
        self.kill_at = kill_at
        self.sets = 0

    async def get(self, key_type: str, ids: list[str]) -> dict[str, Any]:
        result: dict[str, Any] = await self.keys.get(key_type, ids)
        return result

    async def set(self, data: Mapping[str, Mapping[str, Any]]) -> None:
        self.sets += 1
        if self.sets == self.kill_at:
            die(f"killed before set {self.sets}: {sorted(data)}")
        await self.keys.set(data)

    async def clear(self) -> None:
        await self.keys.clear()


async def main(url: str, bob_id: int, alice: str, kind: str, ciphertext: bytes, mode: str) -> None:
    state = await WastoreAuthState.load(url, account=bob_id)
    if mode == "creds":
        repo = SignalRepository(AuthenticationState(creds=state.creds, keys=state.keys))
        text = await repo.decrypt_message(alice, message_type=kind, ciphertext=ciphertext)
        print(f"decrypted {text.decode()}", flush=True)
        creds = state.creds
        start = creds.next_pre_key_id
        pairs = {
            str(i): DefaultCurve25519Provider().generate_keypair() for i in range(start, start + 3)
        }
        await state.keys.set(
            {"pre-key": {i: {"public": k.public, "private": k.private} for i, k in pairs.items()}}
        )
        creds.next_pre_key_id = creds.first_unuploaded_pre_key_id = start + 3
        die("killed before save_creds")
    in_txn = mode.startswith("txn-")
    kill_at = int(mode.rpartition("-")[2])
    keys = KillSwitch(state.keys, kill_at)
    repo = SignalRepository(AuthenticationState(creds=state.creds, keys=keys))
    if not in_txn:
        await repo.decrypt_message(alice, message_type=kind, ciphertext=ciphertext)
    else:
        async with state.transaction():
            text = await repo.decrypt_message(alice, message_type=kind, ciphertext=ciphertext)
            await state.manager.backend.store_pending_inbound(alice, alice, "m", text)
            die(f"killed inside the transaction after {keys.sets} sets")
    die(f"decrypted with {keys.sets} sets, never killed")


if __name__ == "__main__":
    url, bob_id, alice, kind, hex_text, mode = sys.argv[1:7]
    asyncio.run(main(url, int(bob_id), alice, kind, bytes.fromhex(hex_text), mode))
