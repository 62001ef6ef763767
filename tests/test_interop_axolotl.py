"""wastore.interop.axolotl with real cryptography: python-axolotl sessions, groups, crashes.

Two accounts (Alice and Bob) live in one database. Every test runs on SQLite
and on PostgreSQL, and between steps the container is closed and reopened
(``World.restart``), so each step works from what the database holds.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

import wastore
from wastore import (
    JID,
    BackendUnavailableError,
    CorruptRecordError,
    PersistenceManager,
    StoreError,
    ValidationError,
)
from wastore.interop.axolotl import (
    AxolotlStore,
    EventLoopThread,
    LoopBridge,
    SyncAccount,
    SyncContainer,
    WrongThreadError,
    axolotl_address,
    sender_key_name,
)

# python-axolotl after wastore.interop.axolotl, which imports it quietly (see _compat)
from axolotl.duplicatemessagexception import DuplicateMessageException  # isort: skip
from axolotl.ecc.curve import Curve  # isort: skip
from axolotl.groups.groupcipher import GroupCipher  # isort: skip
from axolotl.groups.groupsessionbuilder import GroupSessionBuilder  # isort: skip
from axolotl.invalidkeyidexception import InvalidKeyIdException  # isort: skip
from axolotl.protocol.ciphertextmessage import CiphertextMessage  # isort: skip
from axolotl.protocol.prekeywhispermessage import PreKeyWhisperMessage  # isort: skip
from axolotl.protocol.senderkeydistributionmessage import (  # isort: skip
    SenderKeyDistributionMessage,
)
from axolotl.protocol.senderkeymessage import SenderKeyMessage  # isort: skip
from axolotl.protocol.whispermessage import WhisperMessage  # isort: skip
from axolotl.sessionbuilder import SessionBuilder  # isort: skip
from axolotl.sessioncipher import SessionCipher  # isort: skip
from axolotl.untrustedidentityexception import UntrustedIdentityException  # isort: skip
from axolotl.util.keyhelper import KeyHelper  # isort: skip
from pg_server import pg_server, pg_url  # noqa: F401  # isort: skip

pytestmark = pytest.mark.filterwarnings(
    # python-axolotl logs with the deprecated Logger.warn when a pre-key message comes twice
    "ignore:The 'warn' method is deprecated:DeprecationWarning"
)

ALICE = JID.parse("15550000001@s.whatsapp.net")
BOB = JID.parse("15550000002@s.whatsapp.net")
GROUP = "120363000000000001@g.us"
PREKEY = CiphertextMessage.PREKEY_TYPE
WHISPER = CiphertextMessage.WHISPER_TYPE
CHILDREN = Path(__file__).parent / "children"

Wire = tuple[int, bytes]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'axolotl.db'}"
    url: str = request.getfixturevalue("pg_url")
    return url


class World:
    """Alice and Bob in one database, each with an AxolotlStore; ``restart()`` closes the
    container (flushing both accounts) and opens everything again."""

    def __init__(self, url: str, *, cache: bool = True) -> None:
        self.url = url
        self.cache = cache
        self.container: SyncContainer | None = None
        self.accounts: dict[JID, SyncAccount] = {}
        self.restarts = 0

    def start(self) -> None:
        self.container = c = SyncContainer.open(self.url)
        for jid in (ALICE, BOB):
            device_id = c.find_device(jid)
            if device_id is None:
                device_id = c.create_device()
                account = c.account(device_id, signal_cache=self.cache)
                account.run(account.manager.process_command(wastore.SetId(jid)))
                account.flush()
            else:
                account = c.account(device_id, signal_cache=self.cache)
            self.accounts[jid] = account

    def stop(self) -> None:
        if self.container is not None:
            self.container.close()
            self.container = None

    def restart(self) -> None:
        self.stop()
        self.start()
        self.restarts += 1

    # -- access -------------------------------------------------------------
    def store(self, jid: JID) -> AxolotlStore:
        return self.accounts[jid].store

    def device(self, jid: JID) -> wastore.Device:
        return self.accounts[jid].device()

    def db(self, jid: JID, fn: Callable[[wastore.Backend], Coroutine[Any, Any, Any]]) -> Any:
        """Ask the backend itself (not the cache): what is committed."""
        account = self.accounts[jid]
        return account.run(fn(account.manager.backend))

    # -- pairwise -------------------------------------------------------------
    def cipher(self, owner: JID, peer: JID) -> SessionCipher:
        s = self.store(owner)
        address = axolotl_address(peer)
        return SessionCipher(s, s, s, s, address.getName(), address.getDeviceId())

    def connect(self, sender: JID, recipient: JID, pre_key_id: int | None) -> None:
        """``sender`` builds a session from ``recipient``'s bundle (as the server hands it out)."""
        s = self.store(sender)
        address = axolotl_address(recipient)
        bundle = self.store(recipient).pre_key_bundle(pre_key_id)
        SessionBuilder(s, s, s, s, address.getName(), 0).processPreKeyBundle(bundle)
        s.flush()

    def send(self, sender: JID, recipient: JID, payload: bytes) -> Wire:
        message = self.cipher(sender, recipient).encrypt(payload)
        self.store(sender).flush()  # durable before it goes on the wire
        return message.getType(), message.serialize()

    def receive(self, recipient: JID, sender: JID, wire: Wire) -> bytes:
        kind, data = wire
        c = self.cipher(recipient, sender)
        if kind == PREKEY:
            plaintext = c.decryptPkmsg(PreKeyWhisperMessage(serialized=data))
        else:
            plaintext = c.decryptMsg(WhisperMessage(serialized=data))
        self.store(recipient).flush()  # durable before the message is acknowledged
        return bytes(plaintext)

    def pair(self) -> None:
        """Bob publishes pre-keys, Alice starts a session, Bob answers (restarting between)."""
        keys = [r.getId() for r in self.store(BOB).generate_pre_keys(3)]
        self.store(BOB).mark_pre_keys_uploaded(keys)
        self.restart()
        self.connect(ALICE, BOB, keys[0])
        self.restart()
        wire = self.send(ALICE, BOB, b"hello Bob")
        self.restart()
        assert self.receive(BOB, ALICE, wire) == b"hello Bob"
        self.restart()
        wire = self.send(BOB, ALICE, b"hello Alice")
        self.restart()
        assert self.receive(ALICE, BOB, wire) == b"hello Alice"
        self.restart()

    # -- groups ---------------------------------------------------------------
    def distribute(self, sender: JID, recipient: JID) -> None:
        """``sender`` sends its sender key for GROUP to ``recipient`` over their session."""
        name = sender_key_name(GROUP, sender)
        skdm = GroupSessionBuilder(self.store(sender)).create(name)
        self.store(sender).flush()
        wire = self.send(sender, recipient, skdm.serialize())
        self.restart()
        received = SenderKeyDistributionMessage(serialized=self.receive(recipient, sender, wire))
        GroupSessionBuilder(self.store(recipient)).process(name, received)
        self.store(recipient).flush()

    def group_send(self, sender: JID, payload: bytes) -> bytes:
        data: bytes = GroupCipher(self.store(sender), sender_key_name(GROUP, sender)).encrypt(
            payload
        )
        self.store(sender).flush()
        return data

    def group_receive(self, recipient: JID, sender: JID, data: bytes) -> bytes:
        plaintext = GroupCipher(self.store(recipient), sender_key_name(GROUP, sender)).decrypt(data)
        self.store(recipient).flush()
        return bytes(plaintext)


@pytest.fixture
def world(store_url: str) -> Iterator[World]:
    w = World(store_url)
    w.start()
    try:
        yield w
    finally:
        w.stop()


# ---------------------------------------------------------------------------
# direct conversations


@pytest.mark.parametrize("cache", [True, False], ids=["cache", "no-cache"])
def test_direct_conversation_with_a_restart_between_every_step(store_url: str, cache: bool) -> None:
    w = World(store_url, cache=cache)
    w.start()
    try:
        bob_keys = [r.getId() for r in w.store(BOB).generate_pre_keys(5)]
        w.store(BOB).mark_pre_keys_uploaded(bob_keys)
        w.restart()
        used = bob_keys[1]
        w.connect(ALICE, BOB, used)  # Alice got Bob's bundle with one-time pre-key `used`
        w.restart()
        first = w.send(ALICE, BOB, b"hello Bob")
        assert first[0] == PREKEY
        w.restart()
        assert w.receive(BOB, ALICE, first) == b"hello Bob"
        w.restart()

        # The one-time pre-key is gone for good; the others stay.
        bob = w.store(BOB)
        assert not bob.containsPreKey(used)
        with pytest.raises(InvalidKeyIdException):
            bob.loadPreKey(used)
        assert all(bob.containsPreKey(i) for i in bob_keys if i != used)
        assert w.db(BOB, lambda b: b.count_prekeys()) == (4, 4)
        assert w.db(BOB, lambda b: b.load_prekey(used)) is None

        # Sessions and identities sit under the peers' signal addresses; the identities are
        # the peers' Device keys (32 bytes, no type byte).
        assert w.db(ALICE, lambda b: b.has_session(BOB.signal_address()))
        assert w.db(BOB, lambda b: b.has_session(ALICE.signal_address()))
        alice_identity = w.device(ALICE).identity_key.public
        bob_identity = w.device(BOB).identity_key.public
        assert w.db(BOB, lambda b: b.load_identity(ALICE.signal_address())) == alice_identity
        assert w.db(ALICE, lambda b: b.load_identity(BOB.signal_address())) == bob_identity

        # Alice has not heard back yet, so she still sends pre-key messages.
        second = w.send(ALICE, BOB, b"are you there?")
        assert second[0] == PREKEY
        w.restart()
        assert w.receive(BOB, ALICE, second) == b"are you there?"
        w.restart()
        reply = w.send(BOB, ALICE, b"hi Alice")
        assert reply[0] == WHISPER
        w.restart()
        assert w.receive(ALICE, BOB, reply) == b"hi Alice"
        w.restart()

        # From now on: normal messages both ways, the ratchet state always from the database.
        for n in range(3):
            sender, recipient = (ALICE, BOB) if n % 2 == 0 else (BOB, ALICE)
            text = f"message {n} from {sender.user}".encode()
            wire = w.send(sender, recipient, text)
            assert wire[0] == WHISPER
            w.restart()
            assert w.receive(recipient, sender, wire) == text
            w.restart()
        assert w.db(BOB, lambda b: b.count_prekeys()) == (4, 4)  # still only one used
        assert w.restarts >= 14
    finally:
        w.stop()


def test_messages_delivered_out_of_order(world: World) -> None:
    w = world
    w.pair()
    wires = []
    for n in range(5):
        wires.append(w.send(ALICE, BOB, f"m{n}".encode()))
        w.restart()
    for n in (3, 0, 4, 2, 1):
        assert w.receive(BOB, ALICE, wires[n]) == f"m{n}".encode()
        w.restart()
    # The used message keys are gone from the stored session: a replay is a duplicate.
    with pytest.raises(DuplicateMessageException):
        w.receive(BOB, ALICE, wires[3])
    # Both directions at once, delivered late, across a ratchet step.
    late_from_bob = w.send(BOB, ALICE, b"late")
    w.restart()
    from_alice = w.send(ALICE, BOB, b"crossing")
    w.restart()
    assert w.receive(BOB, ALICE, from_alice) == b"crossing"
    w.restart()
    newer_from_bob = w.send(BOB, ALICE, b"newer")
    w.restart()
    assert w.receive(ALICE, BOB, newer_from_bob) == b"newer"
    w.restart()
    assert w.receive(ALICE, BOB, late_from_bob) == b"late"


# ---------------------------------------------------------------------------
# groups


def test_group_conversation_with_sender_keys(world: World) -> None:
    w = world
    w.pair()
    w.distribute(ALICE, BOB)
    w.restart()
    sent = []
    for n in range(4):
        sent.append(w.group_send(ALICE, f"group {n}".encode()))
        w.restart()
    for n in (2, 0, 3, 1):  # out of order
        assert w.group_receive(BOB, ALICE, sent[n]) == f"group {n}".encode()
        w.restart()
    with pytest.raises(DuplicateMessageException):
        w.group_receive(BOB, ALICE, sent[2])
    w.restart()

    w.distribute(BOB, ALICE)
    w.restart()
    answer = w.group_send(BOB, b"hello group")
    w.restart()
    assert w.group_receive(ALICE, BOB, answer) == b"hello group"
    w.restart()

    # Alice's chain continued from the database: her next message is iteration 4.
    assert SenderKeyMessage(serialized=w.group_send(ALICE, b"again")).getIteration() == 4
    # Sender keys are stored under "{group}::{sender signal address}" on both sides.
    for owner in (ALICE, BOB):
        for sender in (ALICE, BOB):
            address = f"{GROUP}::{sender.signal_address()}"
            assert w.db(owner, lambda b, a=address: b.get_sender_key(a)) is not None


# ---------------------------------------------------------------------------
# keys, identities, pre-keys, signed pre-keys


def test_the_bundle_and_key_pair_are_the_device_keys(world: World) -> None:
    bob = world.store(BOB)
    device = world.device(BOB)
    [record] = bob.generate_pre_keys(1)
    bundle = bob.pre_key_bundle(record.getId())
    assert bundle.getRegistrationId() == device.registration_id == bob.getLocalRegistrationId()
    assert bundle.getIdentityKey().serialize() == b"\x05" + device.identity_key.public
    assert bundle.getSignedPreKeyId() == device.signed_pre_key_id
    assert bundle.getSignedPreKey().serialize() == b"\x05" + device.signed_pre_key.public
    assert bundle.getPreKey().serialize() == record.getKeyPair().getPublicKey().serialize()
    # python-axolotl's own curve code verifies wastore's XEdDSA signature
    assert Curve.verifySignature(
        bundle.getIdentityKey().getPublicKey(),
        bundle.getSignedPreKey().serialize(),
        bundle.getSignedPreKeySignature(),
    )
    pair = bob.getIdentityKeyPair()
    assert pair.getPublicKey().getPublicKey().getPublicKey() == device.identity_key.public
    # the private key is the device's (clamped: same X25519 agreements)
    other = X25519PrivateKey.generate()
    other_public = other.public_key().public_bytes_raw()
    from axolotl.ecc.djbec import DjbECPublicKey

    agreed = Curve.calculateAgreement(DjbECPublicKey(other_public), pair.getPrivateKey())
    assert agreed == other.exchange(X25519PublicKey.from_public_bytes(device.identity_key.public))
    assert bob.pre_key_bundle().getPreKey() is None


def test_identities_are_trusted_on_first_use(world: World) -> None:
    w = world
    alice = w.store(ALICE)
    bob_name = axolotl_address(BOB).getName()
    bob_key = w.store(BOB).getIdentityKeyPair().getPublicKey()
    impostor = KeyHelper.generateIdentityKeyPair().getPublicKey()
    assert alice.isTrustedIdentity(bob_name, impostor)  # nothing known yet
    alice.saveIdentity(bob_name, impostor)
    alice.flush()
    w.restart()
    alice = w.store(ALICE)
    assert alice.isTrustedIdentity(bob_name, impostor)
    assert not alice.isTrustedIdentity(bob_name, bob_key)
    [record] = w.store(BOB).generate_pre_keys(1)
    with pytest.raises(UntrustedIdentityException):
        w.connect(ALICE, BOB, record.getId())
    alice.forget_identity(bob_name)  # accept the new key, as WhatsApp clients do
    alice.flush()
    w.restart()
    w.connect(ALICE, BOB, record.getId())
    stored = w.db(ALICE, lambda b: b.load_identity(BOB.signal_address()))
    assert stored == w.device(BOB).identity_key.public


def test_pre_key_store(world: World) -> None:
    w = world
    bob = w.store(BOB)
    with pytest.raises(InvalidKeyIdException):
        bob.loadPreKey(4242)
    assert not bob.containsPreKey(4242)
    assert [r.getId() for r in bob.generate_pre_keys(3)] == [1, 2, 3]
    w.restart()
    bob = w.store(BOB)
    assert [r.getId() for r in bob.generate_pre_keys(2)] == [4, 5]  # the watermark persisted
    assert w.device(BOB).next_pre_key_id == 6
    assert [r.getId() for r in bob.pre_keys_to_upload()] == [1, 2, 3, 4, 5]
    bob.mark_pre_keys_uploaded([1, 2, 3])
    w.restart()
    bob = w.store(BOB)
    device = w.device(BOB)
    assert (device.first_unupload_pre_key_id, device.server_has_prekeys) == (4, True)
    assert [r.getId() for r in bob.pre_keys_to_upload()] == [4, 5]
    assert w.db(BOB, lambda b: b.count_prekeys()) == (5, 3)

    [mine] = KeyHelper.generatePreKeys(100, 1)
    bob.storePreKey(100, mine)
    with pytest.raises(ValidationError):
        bob.storePreKey(101, mine)
    bob.flush()
    w.restart()
    bob = w.store(BOB)
    assert bob.loadPreKey(100).serialize() == mine.serialize()
    bob.removePreKey(100)
    bob.removePreKey(100)  # absent: nothing happens
    assert not bob.containsPreKey(100)


def test_signed_pre_keys_come_from_the_device_and_rotate(world: World) -> None:
    w = world
    bob = w.store(BOB)
    device = w.device(BOB)
    old_id = device.signed_pre_key_id
    current = bob.loadSignedPreKey(old_id)
    assert current.getKeyPair().getPublicKey().getPublicKey() == device.signed_pre_key.public
    assert current.getSignature() == device.signed_pre_key_signature
    assert bob.containsSignedPreKey(old_id)
    assert not bob.containsSignedPreKey(old_id + 50)
    with pytest.raises(InvalidKeyIdException):
        bob.loadSignedPreKey(old_id + 50)

    # A pre-key message built on the old signed pre-key is in flight while Bob rotates.
    [record] = bob.generate_pre_keys(1)
    w.connect(ALICE, BOB, record.getId())
    in_flight = w.send(ALICE, BOB, b"sent before the rotation")
    w.restart()
    new_id = w.store(BOB).rotate_signed_pre_key()
    assert new_id == old_id + 1
    w.restart()
    bob = w.store(BOB)
    device = w.device(BOB)
    assert device.signed_pre_key_id == new_id
    assert device.key_problems() == []
    assert [r.getId() for r in bob.loadSignedPreKeys()] == [new_id, old_id]
    assert w.receive(BOB, ALICE, in_flight) == b"sent before the rotation"
    w.restart()

    bob = w.store(BOB)
    with pytest.raises(ValidationError):
        bob.removeSignedPreKey(new_id)
    foreign = KeyHelper.generateSignedPreKey(bob.getIdentityKeyPair(), new_id)
    with pytest.raises(ValidationError):
        bob.storeSignedPreKey(new_id, foreign)
    bob.removeSignedPreKey(old_id)
    assert not bob.containsSignedPreKey(old_id)
    archived = KeyHelper.generateSignedPreKey(bob.getIdentityKeyPair(), 9)
    bob.storeSignedPreKey(9, archived)
    assert bob.loadSignedPreKey(9).serialize() == archived.serialize()


# ---------------------------------------------------------------------------
# sessions by device, corrupt records


def test_sub_device_sessions_and_delete_all(world: World) -> None:
    w = world
    w.pair()
    alice = w.store(ALICE)
    record = alice.loadSession(axolotl_address(BOB).getName(), 0)
    for device in (0, 2, 7):
        alice.storeSession("15550000009", device, record)
    alice.storeSession("15550000010", 1, record)
    alice.storeSession("15550000009@lid", 3, record)  # the same user on another server
    # Buffered in the cache, not committed: the answer includes them all the same
    # (the database's range query with the buffered writes over it; no flush).
    assert alice.getSubDeviceSessions("15550000009") == [0, 2, 7]
    assert alice.getSubDeviceSessions("15550000009@lid") == [3]
    assert w.db(ALICE, lambda b: b.get_session_addresses("15550000009")) == []
    alice.flush()
    assert w.db(ALICE, lambda b: b.get_session_addresses("15550000009")) == [
        "15550000009:2@s.whatsapp.net",
        "15550000009:3@lid",
        "15550000009:7@s.whatsapp.net",
        "15550000009@s.whatsapp.net",
    ]
    w.restart()
    alice = w.store(ALICE)
    assert alice.getSubDeviceSessions("15550000009") == [0, 2, 7]
    assert alice.getSubDeviceSessions("15550000009@s.whatsapp.net") == [0, 2, 7]
    assert alice.getSubDeviceSessions("15550000009:2@s.whatsapp.net") == [0]
    assert alice.getSubDeviceSessions("15550000009:3@s.whatsapp.net") == []
    # "user:7@server" with device 0 and ("user", 7) are the same row
    assert alice.containsSession("15550000009:7@s.whatsapp.net", 0)
    assert w.db(ALICE, lambda b: b.has_session("15550000009:7@s.whatsapp.net"))
    alice.deleteSession("15550000009", 2)
    assert alice.getSubDeviceSessions("15550000009") == [0, 7]
    alice.deleteAllSessions("15550000009")
    assert alice.getSubDeviceSessions("15550000009") == []
    w.restart()
    alice = w.store(ALICE)
    assert alice.getSubDeviceSessions("15550000009") == []
    assert alice.getSubDeviceSessions("15550000009@lid") == [3]  # another server: kept
    assert alice.getSubDeviceSessions("15550000010") == [1]
    assert alice.containsSession(axolotl_address(BOB).getName(), 0)


def test_an_unreadable_record_is_an_error_not_a_missing_one(world: World) -> None:
    w = world
    garbage = b"\x0a\xff"  # a length-delimited field whose length runs past the end
    w.db(ALICE, lambda b: b.put_session(BOB.signal_address(), garbage))
    w.db(ALICE, lambda b: b.put_sender_key(f"{GROUP}::{BOB.signal_address()}", garbage))
    w.db(ALICE, lambda b: b.store_prekey(77, garbage, False))
    w.restart()
    alice = w.store(ALICE)
    with pytest.raises(CorruptRecordError):
        alice.loadSession(BOB.signal_address(), 0)
    with pytest.raises(CorruptRecordError):
        alice.loadSenderKey(sender_key_name(GROUP, BOB))
    with pytest.raises(CorruptRecordError):
        alice.loadPreKey(77)
    with pytest.raises(CorruptRecordError):
        w.cipher(ALICE, BOB).encrypt(b"never sent")
    assert w.db(ALICE, lambda b: b.get_session(BOB.signal_address())) == garbage  # left alone


def test_bad_names_are_rejected_before_anything_is_stored(world: World) -> None:
    alice = world.store(ALICE)
    with pytest.raises(ValidationError):
        alice.loadSession("not a jid!", 0)
    with pytest.raises(ValidationError):
        alice.containsSession("15550000009:3@s.whatsapp.net", 4)  # names another device
    with pytest.raises(ValidationError):
        alice.loadSenderKey("group::15550000001::0")  # a str, not a SenderKeyName
    with pytest.raises(ValidationError):
        alice.saveIdentity("15550000009", b"\x05" + bytes(32))  # not an IdentityKey


# ---------------------------------------------------------------------------
# the sync/async bridge


async def test_the_asyncio_application_model(store_url: str) -> None:
    """An asyncio app runs the accounts on its own loop and python-axolotl in worker threads."""
    async with await wastore.open_store(store_url) as container:
        ids = [await container.create_device(), await container.create_device()]
        pms = [await PersistenceManager.open(container.backend(i), signal_cache=True) for i in ids]
        alice, bob = (AxolotlStore(pm) for pm in pms)
        [record] = await asyncio.to_thread(bob.generate_pre_keys, 1)
        bob_address = axolotl_address(BOB)
        alice_address = axolotl_address(ALICE)
        bundle = await bob.run_in_thread(bob.pre_key_bundle, record.getId())
        builder = SessionBuilder(alice, alice, alice, alice, bob_address.getName(), 0)
        await asyncio.to_thread(builder.processPreKeyBundle, bundle)
        to_bob = SessionCipher(alice, alice, alice, alice, bob_address.getName(), 0)
        wire = await asyncio.to_thread(to_bob.encrypt, b"from a worker thread")
        await pms[0].flush()
        from_alice = SessionCipher(bob, bob, bob, bob, alice_address.getName(), 0)
        message = PreKeyWhisperMessage(serialized=wire.serialize())
        plaintext = await asyncio.to_thread(from_alice.decryptPkmsg, message)
        assert plaintext == b"from a worker thread"
        # On the loop's own thread a blocking call would deadlock: it is refused at once.
        with pytest.raises(WrongThreadError):
            bob.containsPreKey(record.getId())
        for pm in pms:
            await pm.close()
    async with await wastore.open_store(store_url) as container:
        backend = container.backend(ids[1])
        assert await backend.load_prekey(record.getId()) is None
        assert await backend.has_session(ALICE.signal_address())


def test_a_store_call_from_its_own_loop_thread_or_after_close_fails_fast(
    store_url: str,
) -> None:
    c = SyncContainer.open(store_url)
    account = c.account(c.create_device())

    async def on_the_loop() -> bool:
        return bool(account.store.containsSession("15550000001", 0))

    started = time.monotonic()
    with pytest.raises(WrongThreadError):
        c.run(on_the_loop())
    assert account.store.containsSession("15550000001", 0) is False  # fine from here
    c.close()
    c.close()  # twice is fine
    with pytest.raises(StoreError, match=r"not running|closed"):
        account.store.containsSession("15550000001", 0)
    assert time.monotonic() - started < 10


def test_calls_from_many_threads_at_once(world: World) -> None:
    alice = world.store(ALICE)
    keys = [KeyHelper.generateIdentityKeyPair().getPublicKey() for _ in range(8)]
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            name = f"1555000010{n}"
            for _ in range(20):
                assert alice.isTrustedIdentity(name, keys[n])
                alice.saveIdentity(name, keys[n])
                assert not alice.containsSession(name, 0)
        except BaseException as err:
            errors.append(err)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    alice.flush()
    world.restart()
    for n in range(8):
        stored = world.db(ALICE, lambda b, n=n: b.load_identity(f"1555000010{n}@s.whatsapp.net"))
        assert stored == keys[n].getPublicKey().getPublicKey()


def test_a_message_costs_one_round_trip_per_flush(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through the SignalCache, python-axolotl's session reads and writes are served on
    its own thread: the only round trips to the store's loop are the two flushes (the
    barriers after encrypting and after decrypting), and each commits."""
    w = world
    w.pair()
    for sender, recipient in ((ALICE, BOB), (BOB, ALICE)):  # load the sessions (cold caches)
        assert w.receive(recipient, sender, w.send(sender, recipient, b"warm")) == b"warm"
    hops: list[str] = []
    real = LoopBridge.call

    def call(bridge: LoopBridge, coro: Any) -> Any:
        hops.append(coro.__qualname__)
        return real(bridge, coro)

    monkeypatch.setattr(LoopBridge, "call", call)
    for n in range(6):
        sender, recipient = (ALICE, BOB) if n % 2 == 0 else (BOB, ALICE)
        wire = w.send(sender, recipient, b"message %d" % n)
        assert w.receive(recipient, sender, wire) == b"message %d" % n
    assert hops == ["SyncSignal._flush"] * 12
    monkeypatch.undo()
    # Each flush committed: the database holds what the cache does.
    for owner, peer in ((ALICE, BOB), (BOB, ALICE)):
        address = peer.signal_address()
        cached = w.accounts[owner].run(w.accounts[owner].manager.signal.get_session(address))
        assert w.db(owner, lambda b, a=address: b.get_session(a)) == cached


def test_the_bridge_times_out_and_cancels() -> None:
    thread = EventLoopThread()
    try:
        bridge = LoopBridge(thread.loop, timeout=0.2)
        cancelled = threading.Event()

        async def slow() -> None:
            try:
                await asyncio.sleep(30)
            except asyncio.CancelledError:
                cancelled.set()
                raise

        started = time.monotonic()
        with pytest.raises(BackendUnavailableError, match=r"did not finish within 0\.2s"):
            bridge.call(slow())
        assert time.monotonic() - started < 5
        assert cancelled.wait(5)

        async def own_timeout() -> None:
            raise TimeoutError("the coroutine's own")

        with pytest.raises(TimeoutError, match="the coroutine's own"):
            bridge.call(own_timeout())

        async def stop_from_inside() -> None:
            thread.stop()

        with pytest.raises(WrongThreadError):
            bridge.call(stop_from_inside())
    finally:
        thread.stop()
    assert not thread.running
    with pytest.raises(StoreError, match="closed"):
        bridge.call(asyncio.sleep(0))


# ---------------------------------------------------------------------------
# a real crash (SIGKILL) between decrypting and flushing


def _spawn_child(*args: object) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(CHILDREN / "axolotl_crash_child.py"), *map(str, args)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.slow
@pytest.mark.parametrize("flushed", [False, True], ids=["killed-before-flush", "after-flush"])
def test_sigkill_between_decrypt_and_flush(store_url: str, flushed: bool) -> None:
    w = World(store_url)
    w.start()
    try:
        [record] = w.store(BOB).generate_pre_keys(1)
        pre_key_id = record.getId()
        w.connect(ALICE, BOB, pre_key_id)
        wire = w.send(ALICE, BOB, b"survives a crash")
        assert wire[0] == PREKEY
        bob_id = w.accounts[BOB].device_id
    finally:
        w.stop()

    # A child process decrypts the message through the SignalCache, says so, and is killed.
    child = _spawn_child(store_url, bob_id, wire[1].hex(), "flush" if flushed else "no-flush")
    try:
        assert child.stdout is not None
        line = child.stdout.readline().strip()
        if not line:
            raise AssertionError(f"the child said nothing: {child.stderr.read()}")  # type: ignore[union-attr]
        assert line == "decrypted survives a crash"
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
        assert child.returncode == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        for f in (child.stdin, child.stdout, child.stderr):
            if f is not None:
                f.close()

    w.start()  # "after restart": everything from the database
    try:
        if flushed:
            # The flush committed the session and the pre-key removal together.
            assert w.db(BOB, lambda b: b.load_prekey(pre_key_id)) is None
            assert w.db(BOB, lambda b: b.has_session(ALICE.signal_address()))
            with pytest.raises(DuplicateMessageException):
                w.receive(BOB, ALICE, wire)  # already decrypted, and that is durable
        else:
            # Nothing of the decryption was committed: the pre-key is still there...
            assert w.db(BOB, lambda b: b.load_prekey(pre_key_id)) is not None
            assert not w.db(BOB, lambda b: b.has_session(ALICE.signal_address()))
            assert w.db(BOB, lambda b: b.load_identity(ALICE.signal_address())) is None
            # ...so the redelivered message decrypts, and now the pre-key goes.
            assert w.receive(BOB, ALICE, wire) == b"survives a crash"
            w.restart()
            assert w.db(BOB, lambda b: b.load_prekey(pre_key_id)) is None
        reply = w.send(BOB, ALICE, b"got it")
        w.restart()
        assert w.receive(ALICE, BOB, reply) == b"got it"
    finally:
        w.stop()
