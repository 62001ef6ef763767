"""Helpers of the pyaileys tests: two pyaileys peers over wastore, as pyaileys drives them.

Kept apart from the test modules so that the crash child process and the
benchmark can use the same steps (``sys.path`` must hold the ``tests`` folder).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pyaileys.auth.creds import Contact, KeyPair
from pyaileys.auth.state import AuthenticationState
from pyaileys.crypto.curve import DefaultCurve25519Provider
from pyaileys.signal.repository import (
    PreKeyBundle,
    PreKeyBundleKey,
    SignalRepository,
)
from pyaileys.signal.util import signal_pubkey

ALICE = "15550000001:3@s.whatsapp.net"
BOB = "15550000002:7@s.whatsapp.net"
GROUP = "120363000000000001@g.us"

CURVE = DefaultCurve25519Provider()


@dataclass
class Peer:
    """One pyaileys client's Signal side: its auth state (creds + keys) and repository."""

    jid: str
    state: Any  # WastoreAuthState or pyaileys' MultiFileAuthState
    repo: SignalRepository

    @classmethod
    def of(cls, jid: str, state: Any) -> Peer:
        auth = AuthenticationState(creds=state.creds, keys=state.keys)
        return cls(jid, state, SignalRepository(auth))

    @property
    def creds(self) -> Any:
        return self.state.creds

    async def claim(self) -> None:
        """Record the device JID in the credentials, as pyaileys does at pairing."""
        self.creds.me = Contact(id=self.jid, name=self.jid.split(":")[0][-4:])
        self.creds.registered = True
        await self.state.save_creds()

    async def upload_prekeys(self, count: int) -> list[tuple[int, KeyPair]]:
        """What pyaileys' ``WASocket._upload_prekeys`` does: generate, store, advance the
        counters (the server now has the keys), save the credentials."""
        creds = self.creds
        start = int(creds.next_pre_key_id)
        keys = [(i, CURVE.generate_keypair()) for i in range(start, start + count)]
        await self.state.keys.set(
            {"pre-key": {str(i): {"public": k.public, "private": k.private} for i, k in keys}}
        )
        creds.next_pre_key_id = start + count
        creds.first_unuploaded_pre_key_id = max(creds.first_unuploaded_pre_key_id, start + count)
        await self.state.save_creds()
        return keys

    def bundle(self, pre_key: tuple[int, KeyPair] | None) -> PreKeyBundle:
        """The pre-key bundle the server hands out for this device."""
        c = self.creds
        return PreKeyBundle(
            registration_id=c.registration_id,
            identity_key=signal_pubkey(c.signed_identity_key.public),
            signed_pre_key=PreKeyBundleKey(
                key_id=c.signed_pre_key.key_id,
                public_key=signal_pubkey(c.signed_pre_key.key_pair.public),
                signature=c.signed_pre_key.signature,
            ),
            pre_key=None
            if pre_key is None
            else PreKeyBundleKey(key_id=pre_key[0], public_key=signal_pubkey(pre_key[1].public)),
        )

    async def send(self, to: Peer, text: str) -> tuple[str, bytes]:
        return await self.repo.encrypt_message(to.jid, data=text.encode())

    async def receive(self, sender: Peer, wire: tuple[str, bytes]) -> str:
        kind, ciphertext = wire
        out = await self.repo.decrypt_message(sender.jid, message_type=kind, ciphertext=ciphertext)
        return out.decode()

    async def send_group(self, text: str) -> tuple[bytes, bytes]:
        """``(ciphertext, sender-key distribution message)``."""
        return await self.repo.encrypt_group_message(
            group_jid=GROUP, me_jid=self.jid, data=text.encode()
        )

    async def receive_group(
        self, sender: Peer, ciphertext: bytes, distribution: bytes | None = None
    ) -> str:
        if distribution is not None:
            await self.repo.process_sender_key_distribution_message(
                GROUP, author_jid=sender.jid, distribution_bytes=distribution
            )
        out = await self.repo.decrypt_group_message(
            group_jid=GROUP, author_jid=sender.jid, ciphertext=ciphertext
        )
        return out.decode()


async def handshake(alice: Peer, bob: Peer) -> None:
    """Alice starts a session from Bob's bundle (with a one-time pre-key); a pre-key
    message, a reply; then each sends a group message the other reads."""
    (pre_key,) = await bob.upload_prekeys(1)
    await alice.repo.inject_outgoing_session(bob.jid, bob.bundle(pre_key))
    wire = await alice.send(bob, "hello Bob")
    assert wire[0] == "pkmsg"
    assert await bob.receive(alice, wire) == "hello Bob"
    reply = await bob.send(alice, "hi Alice")
    assert reply[0] == "msg"
    assert await alice.receive(bob, reply) == "hi Alice"
    ct, dist = await alice.send_group("hello group")
    assert await bob.receive_group(alice, ct, dist) == "hello group"
    ct, dist = await bob.send_group("Bob to the group")
    assert await alice.receive_group(bob, ct, dist) == "Bob to the group"
