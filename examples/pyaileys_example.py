"""pyaileys on wastore: two pyaileys clients' Signal state in one SQLite file.

Alice and Bob are two accounts of one store, each opened as pyaileys' auth
state with ``WastoreAuthState.load`` (where pyaileys' default would be
``MultiFileAuthState.load(folder)``). Bob publishes a one-time pre-key; Alice
starts a session from his bundle and sends a pre-key message; Bob answers;
both write to a group. The store is closed and reopened, and the conversation
goes on from what the database holds.

    pip install 'wastore[pyaileys]'
    python examples/pyaileys_example.py [DATABASE]     # default: a temporary file
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path

from pyaileys.auth.creds import Contact
from pyaileys.auth.state import AuthenticationState
from pyaileys.crypto.curve import DefaultCurve25519Provider
from pyaileys.signal.repository import PreKeyBundle, PreKeyBundleKey, SignalRepository
from pyaileys.signal.util import signal_pubkey

import wastore
from wastore.interop.pyaileys import WastoreAuthState

ALICE = "15550000001:1@s.whatsapp.net"
BOB = "15550000002:1@s.whatsapp.net"
GROUP = "120363000000000001@g.us"


def repository(state: WastoreAuthState) -> SignalRepository:
    return SignalRepository(AuthenticationState(creds=state.creds, keys=state.keys))


async def new_account(url: str, jid: str) -> WastoreAuthState:
    """A new account in the store, with the JID pyaileys records when it pairs."""
    async with await wastore.open_store(url) as container:
        device_id = await container.create_device()
    state = await WastoreAuthState.load(url, account=device_id)
    state.creds.me = Contact(id=jid)
    await state.save_creds()
    return state


async def publish_pre_key(bob: WastoreAuthState) -> PreKeyBundle:
    """What pyaileys does when it uploads a pre-key, and the bundle the server hands out."""
    creds = bob.creds
    key_id, pair = creds.next_pre_key_id, DefaultCurve25519Provider().generate_keypair()
    await bob.keys.set({"pre-key": {str(key_id): {"public": pair.public, "private": pair.private}}})
    creds.next_pre_key_id = creds.first_unuploaded_pre_key_id = key_id + 1  # "uploaded"
    await bob.save_creds()
    spk = creds.signed_pre_key
    return PreKeyBundle(
        registration_id=creds.registration_id,
        identity_key=signal_pubkey(creds.signed_identity_key.public),
        signed_pre_key=PreKeyBundleKey(
            key_id=spk.key_id,
            public_key=signal_pubkey(spk.key_pair.public),
            signature=spk.signature,
        ),
        pre_key=PreKeyBundleKey(key_id=key_id, public_key=signal_pubkey(pair.public)),
    )


async def main(database: Path) -> None:
    url = f"sqlite:///{database}"
    alice_state = await new_account(url, ALICE)
    bob_state = await new_account(url, BOB)
    alice, bob = repository(alice_state), repository(bob_state)

    bundle = await publish_pre_key(bob_state)
    await alice.inject_outgoing_session(BOB, bundle)
    kind, ciphertext = await alice.encrypt_message(BOB, data=b"Hello Bob!")
    text = await bob.decrypt_message(ALICE, message_type=kind, ciphertext=ciphertext)
    print(f"Bob decrypted a {kind}: {text.decode()!r}")

    kind, ciphertext = await bob.encrypt_message(ALICE, data=b"Hi Alice!")
    text = await alice.decrypt_message(BOB, message_type=kind, ciphertext=ciphertext)
    print(f"Alice decrypted a {kind}: {text.decode()!r}")

    ciphertext, distribution = await alice.encrypt_group_message(
        group_jid=GROUP, me_jid=ALICE, data=b"Hello group!"
    )
    await bob.process_sender_key_distribution_message(
        GROUP, author_jid=ALICE, distribution_bytes=distribution
    )
    text = await bob.decrypt_group_message(group_jid=GROUP, author_jid=ALICE, ciphertext=ciphertext)
    print(f"Bob decrypted a group message: {text.decode()!r}")
    await alice_state.close()
    await bob_state.close()

    print("-- store closed and reopened: what follows comes from the database --")
    alice_state = await WastoreAuthState.load(url, account=ALICE)  # found by JID
    bob_state = await WastoreAuthState.load(url, account=BOB)
    alice, bob = repository(alice_state), repository(bob_state)
    kind, ciphertext = await alice.encrypt_message(BOB, data=b"Still there after a restart?")
    text = await bob.decrypt_message(ALICE, message_type=kind, ciphertext=ciphertext)
    print(f"Bob decrypted a {kind}: {text.decode()!r}")
    ciphertext, _ = await alice.encrypt_group_message(
        group_jid=GROUP, me_jid=ALICE, data=b"And the group?"
    )
    text = await bob.decrypt_group_message(group_jid=GROUP, author_jid=ALICE, ciphertext=ciphertext)
    print(f"Bob decrypted a group message: {text.decode()!r}")

    backend = bob_state.manager.backend  # the rows every wastore client reads
    where = "15550000001:1@s.whatsapp.net"
    print(f"Bob's session with Alice is stored under {where!r}: {await backend.has_session(where)}")
    total, _ = await backend.count_prekeys()
    print(f"Bob's one-time pre-keys left: {total} (the one Alice used is gone)")
    await alice_state.close()
    await bob_state.close()


if __name__ == "__main__":
    if len(sys.argv) > 1:
        asyncio.run(main(Path(sys.argv[1])))
    else:
        with tempfile.TemporaryDirectory() as folder:
            asyncio.run(main(Path(folder) / "pyaileys-example.db"))
