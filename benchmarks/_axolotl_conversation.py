"""W6's conversation: two python-axolotl parties, any store behind each.

This module imports python-axolotl only (not wastore), so that the yowsup
peer (``_yowsup_child.py``, in a virtualenv of its own) runs the very same
conversation on its ``LiteAxolotlStore`` as the harness runs on wastore and on
``InMemoryAxolotlStore``.

One operation is one message: the sender encrypts and flushes (the barrier
before the ciphertext goes on the wire), the receiver decrypts and flushes
(the barrier before it acknowledges). The direction alternates every message,
so every message is a Diffie-Hellman ratchet step on both sides.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

Flush = Callable[[], None]

ALICE = "15550000001@s.whatsapp.net"
BOB = "15550000002@s.whatsapp.net"


def _axolotl(module: str, name: str) -> Any:
    return getattr(importlib.import_module(f"axolotl.{module}"), name)


def nothing() -> None:
    """The flush of a store that commits every call (or keeps nothing)."""


def own_bundle(store: Any) -> Any:
    """Give a store that keeps its signed pre-keys itself (``InMemoryAxolotlStore``,
    yowsup's ``LiteAxolotlStore``) a signed pre-key and a one-time pre-key, and
    return the bundle a server would hand out for it."""
    key_helper = _axolotl("util.keyhelper", "KeyHelper")
    bundle_cls = _axolotl("state.prekeybundle", "PreKeyBundle")
    identity = store.getIdentityKeyPair()
    signed = key_helper.generateSignedPreKey(identity, 1)
    store.storeSignedPreKey(1, signed)
    [one_time] = key_helper.generatePreKeys(1, 1)
    store.storePreKey(one_time.getId(), one_time)
    return bundle_cls(
        store.getLocalRegistrationId(),
        0,
        one_time.getId(),
        one_time.getKeyPair().getPublicKey(),
        1,
        signed.getKeyPair().getPublicKey(),
        signed.getSignature(),
        identity.getPublicKey(),
    )


class Conversation:
    """Alice (store ``a``) and Bob (store ``b``): a session from Bob's bundle, a first
    message each way (the pre-key message and the reply), then :meth:`run`."""

    def __init__(
        self, a: Any, b: Any, bob_bundle: Any, flush_a: Flush = nothing, flush_b: Flush = nothing
    ) -> None:
        session_builder = _axolotl("sessionbuilder", "SessionBuilder")
        cipher = _axolotl("sessioncipher", "SessionCipher")
        self._prekey_type = _axolotl("protocol.ciphertextmessage", "CiphertextMessage").PREKEY_TYPE
        self._prekey_message = _axolotl("protocol.prekeywhispermessage", "PreKeyWhisperMessage")
        self._message = _axolotl("protocol.whispermessage", "WhisperMessage")
        session_builder(a, a, a, a, BOB, 0).processPreKeyBundle(bob_bundle)
        flush_a()
        self._sides = (
            (cipher(a, a, a, a, BOB, 0), flush_a, cipher(b, b, b, b, ALICE, 0), flush_b),
            (cipher(b, b, b, b, ALICE, 0), flush_b, cipher(a, a, a, a, BOB, 0), flush_a),
        )
        self.messages = 0
        self.run(2)

    def run(self, messages: int) -> None:
        """``messages`` messages, alternating directions; each one checked."""
        for _ in range(messages):
            n = self.messages
            self.messages += 1
            sender, sender_flush, receiver, receiver_flush = self._sides[n % 2]
            text = b"message %d of the benchmark conversation" % n
            message = sender.encrypt(text)
            sender_flush()  # durable before it goes on the wire
            wire = message.serialize()
            if message.getType() == self._prekey_type:
                got = receiver.decryptPkmsg(self._prekey_message(serialized=wire))
            else:
                got = receiver.decryptMsg(self._message(serialized=wire))
            receiver_flush()  # durable before it is acknowledged
            if bytes(got) != text:
                raise AssertionError(f"message {n} decrypted to {got!r}")
