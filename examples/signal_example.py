"""Using wastore with a Signal implementation: python-axolotl over an SQLite store.

Alice and Bob are two accounts in one database. Bob publishes one-time
pre-keys; Alice builds a session from his pre-key bundle and sends a pre-key
message; Bob answers. Then the store is closed and reopened, and the
conversation goes on from what the database holds.

    pip install 'wastore[axolotl]'
    python examples/signal_example.py [DATABASE]     # default: a temporary file
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from axolotl.protocol.ciphertextmessage import CiphertextMessage
from axolotl.protocol.prekeywhispermessage import PreKeyWhisperMessage
from axolotl.protocol.whispermessage import WhisperMessage
from axolotl.sessionbuilder import SessionBuilder
from axolotl.sessioncipher import SessionCipher

from wastore import JID
from wastore.interop.axolotl import AxolotlStore, SyncContainer, axolotl_address

ALICE = JID.parse("15550000001@s.whatsapp.net")
BOB = JID.parse("15550000002@s.whatsapp.net")
PREKEY_TYPE = CiphertextMessage.PREKEY_TYPE


def cipher(store: AxolotlStore, peer: JID) -> SessionCipher:
    # python-axolotl names a peer (name, device id); wastore's helper gives the name
    # WhatsApp clients use: the full signal address "user[:device]@server", device id 0.
    address = axolotl_address(peer)
    return SessionCipher(store, store, store, store, address.getName(), address.getDeviceId())


def deliver(store: AxolotlStore, sender: JID, message: bytes, kind: int) -> str:
    """Decrypt what ``sender`` sent; the first messages of a session are pre-key messages."""
    if kind == PREKEY_TYPE:
        plaintext = cipher(store, sender).decryptPkmsg(PreKeyWhisperMessage(serialized=message))
    else:
        plaintext = cipher(store, sender).decryptMsg(WhisperMessage(serialized=message))
    return bytes(plaintext).decode()


def name_of(kind: int) -> str:
    return "pre-key message" if kind == PREKEY_TYPE else "message"


def main(database: Path) -> None:
    url = f"sqlite:///{database}"

    # SyncContainer runs the store on an event-loop thread of its own, so that
    # python-axolotl's synchronous calls can wait for it from this thread.
    with SyncContainer.open(url) as container:
        alice = container.account(container.create_device())
        bob = container.account(container.create_device())
        ids = alice.device_id, bob.device_id

        # Bob makes one-time pre-keys and "uploads" them (a real client sends them to
        # the server between these two calls).
        keys = bob.store.generate_pre_keys(5)
        bob.store.mark_pre_keys_uploaded([k.getId() for k in keys])

        # Alice gets Bob's pre-key bundle (identity key, signed pre-key, one one-time
        # pre-key: what the server hands out) and builds a session from it.
        bundle = bob.store.pre_key_bundle(keys[0].getId())
        a = alice.store
        SessionBuilder(a, a, a, a, axolotl_address(BOB).getName(), 0).processPreKeyBundle(bundle)

        hello = cipher(alice.store, BOB).encrypt(b"Hello Bob!")
        alice.flush()  # the ratchet step is durable before the message leaves
        wire, kind = hello.serialize(), hello.getType()  # what goes to the server

        text = deliver(bob.store, ALICE, wire, kind)
        bob.flush()  # session, Alice's identity and the used pre-key: one commit
        print(f"Bob decrypted a {name_of(kind)}: {text!r}")

        reply = cipher(bob.store, ALICE).encrypt(b"Hi Alice!")
        bob.flush()
        text = deliver(alice.store, BOB, reply.serialize(), reply.getType())
        alice.flush()
        print(f"Alice decrypted a {name_of(reply.getType())}: {text!r}")

    print("-- store closed and reopened: what follows comes from the database --")
    with SyncContainer.open(url) as container:
        alice, bob = (container.account(i) for i in ids)
        message = cipher(alice.store, BOB).encrypt(b"Still there after a restart?")
        alice.flush()
        text = deliver(bob.store, ALICE, message.serialize(), message.getType())
        bob.flush()
        print(f"Bob decrypted a {name_of(message.getType())}: {text!r}")

        used = keys[0].getId()
        total, _ = bob.run(bob.manager.backend.count_prekeys())
        state = "still there" if bob.store.containsPreKey(used) else "gone"
        print(f"Bob's one-time pre-keys: {total} left; #{used}, the one Alice used, is {state}")
        where = ALICE.signal_address()  # the row wastore keeps, as every WhatsApp client
        stored = bob.run(bob.manager.backend.has_session(where))
        print(f"Bob's session with Alice is stored under {where!r}: {stored}")


if __name__ == "__main__":
    if len(sys.argv) > 1:
        main(Path(sys.argv[1]))
    else:
        with tempfile.TemporaryDirectory() as folder:
            main(Path(folder) / "signal-example.db")
