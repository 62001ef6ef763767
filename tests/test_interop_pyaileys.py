"""wastore.interop.pyaileys: pyaileys' Signal repository on wastore accounts, for real.

Every test runs on SQLite and on PostgreSQL. Two pyaileys peers (Alice and Bob)
are two accounts of one store; their conversations use pyaileys' own
cryptography (``SignalRepository``), and the store is closed and reopened
between steps so that each step works from what the database holds.
"""

from __future__ import annotations

import base64
import copy
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from pyaileys.auth.creds import AccountSettings, Contact
from pyaileys.auth.utils import init_auth_creds

import wastore
from _pyaileys import ALICE, BOB, CURVE, GROUP, Peer, handshake
from wastore import JID, AccountInUseError, ValidationError
from wastore.interop.pyaileys import (
    CLIENT,
    FAMILIES,
    WastoreAuthState,
    pyaileys_address,
    sender_key_address,
    signal_address,
)

from pg_server import pg_server, pg_url  # noqa: F401  # isort: skip

CHILDREN = Path(__file__).parent / "children"
ALICE_ADDR = JID.parse(ALICE).signal_address()  # the rows every wastore client reads
BOB_ADDR = JID.parse(BOB).signal_address()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'pyaileys.db'}"
    url: str = request.getfixturevalue("pg_url")
    return url


class World:
    """Alice and Bob: two accounts of one store, each a WastoreAuthState and a pyaileys
    SignalRepository. ``restart()`` closes everything and opens it again."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.ids: dict[str, int] = {}
        self.states: list[WastoreAuthState] = []
        self.alice: Peer
        self.bob: Peer

    async def start(self) -> None:
        peers = []
        for jid in (ALICE, BOB):
            if jid in self.ids:
                state = await WastoreAuthState.load(self.url, account=jid)
                assert state.device_id == self.ids[jid]
                peer = Peer.of(jid, state)
            else:
                container = await wastore.open_store(self.url)
                try:
                    device_id = await container.create_device()
                finally:
                    await container.close()
                state = await WastoreAuthState.load(self.url, account=device_id)
                peer = Peer.of(jid, state)
                await peer.claim()
                self.ids[jid] = device_id
            self.states.append(state)
            peers.append(peer)
        self.alice, self.bob = peers

    async def stop(self) -> None:
        for state in self.states:
            await state.close()
        self.states.clear()

    async def restart(self) -> None:
        await self.stop()
        await self.start()


@pytest_asyncio.fixture
async def world(store_url: str) -> AsyncIterator[World]:
    w = World(store_url)
    await w.start()
    try:
        yield w
    finally:
        await w.stop()


# -- addresses ---------------------------------------------------------------------------


def test_pyaileys_addresses_map_to_the_signal_addresses_of_every_client() -> None:
    assert signal_address("15551234567.0") == "15551234567@s.whatsapp.net"
    assert signal_address("15551234567.3") == "15551234567:3@s.whatsapp.net"
    assert signal_address("98765_1.2") == "98765:2@lid"
    assert signal_address("98765_128.0") == "98765@hosted"
    assert signal_address("98765_129.4") == "98765:4@hosted.lid"
    for address in ("15551234567.3", "98765_1.2", "98765_129.4", "1.0"):
        assert pyaileys_address(signal_address(address)) == address
    assert (
        sender_key_address("123-456@g.us::15551234567::3")
        == "123-456@g.us::15551234567:3@s.whatsapp.net"
    )
    # what pyaileys itself computes for a JID
    from pyaileys.signal.address import jid_to_signal_address
    from pyaileys.signal.group import jid_to_sender_key_name

    for jid in (ALICE, "98765:2@lid", "42@s.whatsapp.net", "777:9@hosted.lid"):
        assert signal_address(str(jid_to_signal_address(jid))) == JID.parse(jid).signal_address()
    name = jid_to_sender_key_name(GROUP, "98765:2@lid").serialize()
    assert sender_key_address(name) == f"{GROUP}::98765:2@lid"
    for bad in ("15551234567", "1.03", "1_0.0", "1_5.0", "a.b.c", "x.70000", "1.-1", ""):
        with pytest.raises(ValidationError):
            signal_address(bad)
    for bad in ("g@g.us::1", "::1::0", "g@g.us::1::x"):
        with pytest.raises(ValidationError):
            sender_key_address(bad)


# -- conversations ---------------------------------------------------------------------------


async def test_two_pyaileys_peers_converse_and_resume_after_reopening(world: World) -> None:
    alice, bob = world.alice, world.bob
    await handshake(alice, bob)

    # the rows, where every wastore client reads them
    a, b = alice.state.manager.backend, bob.state.manager.backend
    assert await a.has_session(BOB_ADDR) and await b.has_session(ALICE_ADDR)
    assert await a.load_identity(BOB_ADDR) == bob.creds.signed_identity_key.public
    assert await b.load_identity(ALICE_ADDR) == alice.creds.signed_identity_key.public
    assert await b.count_prekeys() == (0, 0)  # the one pre-key Alice used is gone
    assert await a.get_sender_key(f"{GROUP}::{ALICE_ADDR}") is not None  # Alice's own
    assert await b.get_sender_key(f"{GROUP}::{ALICE_ADDR}") is not None  # as Bob received it
    await alice.state.keys.set({"sender-key-memory": {GROUP: {BOB: True}}})

    await world.restart()
    alice, bob = world.alice, world.bob
    assert await bob.receive(alice, await alice.send(bob, "still there?")) == "still there?"
    assert await alice.receive(bob, await bob.send(alice, "yes")) == "yes"
    assert await bob.receive(alice, await alice.send(bob, "good")) == "good"
    # group messages go on without a new distribution message
    ct, _ = await alice.send_group("group after restart")
    assert await bob.receive_group(alice, ct) == "group after restart"
    ct, _ = await bob.send_group("and from Bob")
    assert await alice.receive_group(bob, ct) == "and from Bob"
    got = await alice.state.keys.get("sender-key-memory", [GROUP])
    assert got == {GROUP: {BOB: True}}


async def test_prekeys_are_flagged_uploaded_from_the_watermark(world: World) -> None:
    bob = world.bob
    backend = bob.state.manager.backend
    keys = await bob.upload_prekeys(5)
    assert [i for i, _ in keys] == [1, 2, 3, 4, 5]
    assert await backend.count_prekeys() == (5, 5)
    device = bob.state.manager.get_device_snapshot()
    assert (device.next_pre_key_id, device.first_unupload_pre_key_id) == (6, 6)
    assert device.server_has_prekeys

    # keys stored before the watermark moves are not on the server yet: until save_creds()
    creds = bob.creds
    await bob.state.keys.set(
        {"pre-key": {"6": {"public": keys[0][1].public, "private": keys[0][1].private}}}
    )
    assert await backend.count_prekeys() == (6, 5)
    creds.next_pre_key_id = creds.first_unuploaded_pre_key_id = 7
    await world.restart()  # the watermark was not saved: still 5 uploaded
    assert await world.bob.state.manager.backend.count_prekeys() == (6, 5)
    world.bob.creds.next_pre_key_id = world.bob.creds.first_unuploaded_pre_key_id = 7
    await world.bob.state.save_creds()
    assert await world.bob.state.manager.backend.count_prekeys() == (6, 6)

    # the record is libsignal's PreKeyRecordStructure, which python-axolotl reads
    from axolotl.state.prekeyrecord import PreKeyRecord

    data = await world.bob.state.manager.backend.load_prekey(2)
    assert data is not None
    record = PreKeyRecord(serialized=data)
    assert record.getId() == 2
    assert record.getKeyPair().getPublicKey().serialize() == b"\x05" + keys[1][1].public


# -- credentials ------------------------------------------------------------------------------


def _full_creds() -> Any:
    creds = init_auth_creds()
    creds.me = Contact(id="15551234567:12@s.whatsapp.net", name="Example", lid="98765:12@lid")
    creds.account = b"\x0a\x03adv-signed-device-identity"
    creds.signal_identities = [
        {"identifier": {"name": "98765:12@lid", "deviceId": 0}, "identifierKey": b"\x05" * 33}
    ]
    creds.my_app_state_key_id = base64.b64encode(b"\x00\x00\x01\x02").decode()
    creds.first_unuploaded_pre_key_id = 31
    creds.next_pre_key_id = 31
    creds.last_account_sync_timestamp = 1_700_000_123
    creds.platform = "smba"
    creds.processed_history_messages = [{"key": {"id": "3EB0AA"}, "messageTimestamp": 17}]
    creds.account_sync_counter = 4
    creds.account_settings = AccountSettings(
        unarchive_chats=True,
        default_disappearing_mode={"ephemeralExpiration": 86400, "ephemeralSettingTimestamp": 5},
    )
    creds.registered = True
    creds.pairing_code = "ABCD1234"
    creds.last_prop_hash = "2Hx9tq"
    creds.routing_info = b"\x08\x02\x08\x05"
    creds.additional_data = {"nested": [1, 2, {"bytes": b"\x00\xff"}]}
    creds.signed_pre_key.timestamp_s = 1_700_000_000
    return creds


async def _save_then_load(url: str, creds: Any) -> tuple[Any, wastore.Device]:
    state = await WastoreAuthState.load(url)
    device_id = state.device_id
    state.creds = creds
    await state.save_creds()
    await state.close()
    again = await WastoreAuthState.load(url, account=device_id)
    try:
        return again.creds, again.manager.get_device_snapshot()
    finally:
        await again.close()


async def test_creds_round_trip_exactly_through_typed_device_fields(store_url: str) -> None:
    creds = _full_creds()
    loaded, device = await _save_then_load(store_url, creds)
    assert loaded == creds

    # what WhatsApp defines is in typed Device fields, where every tool sees it
    assert device.pn == JID.parse("15551234567:12@s.whatsapp.net")
    assert device.lid == JID.parse("98765:12@lid")
    assert device.push_name == "Example"
    assert device.noise_key.private == creds.noise_key.private
    assert device.identity_key.public == creds.signed_identity_key.public
    assert device.signed_pre_key.public == creds.signed_pre_key.key_pair.public
    assert device.signed_pre_key_signature == creds.signed_pre_key.signature
    assert device.last_signed_pre_key_rotation_ms == 1_700_000_000_000
    assert device.registration_id == creds.registration_id
    assert device.adv_secret_key == base64.b64decode(creds.adv_secret_key)
    assert device.pairing_ephemeral_key is not None
    assert device.pairing_ephemeral_key.private == creds.pairing_ephemeral_key_pair.private
    assert device.account == creds.account
    assert device.app_state_key_id == b"\x00\x00\x01\x02"
    assert (device.next_pre_key_id, device.first_unupload_pre_key_id) == (31, 31)
    assert device.last_account_sync_timestamp == 1_700_000_123
    assert device.platform == "smba"
    assert device.unarchive_chats is True
    assert device.default_disappearing_expiration == 86400
    assert device.default_disappearing_timestamp == 5
    assert device.registered is True
    assert device.pairing_code == "ABCD1234"
    assert device.props_hash == "2Hx9tq"
    assert device.edge_routing_info == b"\x08\x02\x08\x05"
    assert device.key_problems() == []
    # pyaileys' own bookkeeping, and nothing that has a typed field, is in client_data
    book = wastore.interop.pyaileys._bufferjson.loads(device.client_data[CLIENT])
    assert set(book) == {
        "processed_history_messages",
        "account_sync_counter",
        "additional_data",
        "signal_identities",
    }
    assert book["account_sync_counter"] == 4


async def test_creds_that_typed_fields_cannot_hold_still_round_trip(store_url: str) -> None:
    creds = init_auth_creds()
    creds.me = Contact(id="15551234567@s.whatsapp.net", name="", lid=None)  # "" is not None
    creds.account_settings = AccountSettings(default_disappearing_mode={"mode": "odd"})
    creds.signed_pre_key.timestamp_s = 0
    creds.platform = "p" * 100  # longer than a Device holds
    loaded, device = await _save_then_load(store_url, creds)
    assert loaded == creds
    assert device.pn == JID.parse("15551234567@s.whatsapp.net")
    assert device.platform is None
    book = wastore.interop.pyaileys._bufferjson.loads(device.client_data[CLIENT])
    assert set(book["exact"]) == {"me", "account_settings", "signed_pre_key", "platform"}


async def test_bad_creds_are_refused_and_nothing_is_saved(store_url: str) -> None:
    state = await WastoreAuthState.load(store_url)
    try:
        before = state.manager.get_device_snapshot()
        good = copy.deepcopy(state.creds)
        state.creds.noise_key.public = b"short"
        with pytest.raises(ValidationError, match="noise_key"):
            await state.save_creds()
        state.creds = good
        state.creds.processed_history_messages = [object()]
        with pytest.raises(ValidationError, match="bookkeeping"):
            await state.save_creds()
        assert state.manager.get_device_snapshot() == before
    finally:
        await state.close()


async def test_a_new_account_gets_creds_pyaileys_can_use(store_url: str) -> None:
    """The credentials of a device wastore created work in pyaileys' handshake."""
    async with await WastoreAuthState.load(store_url) as state:
        creds = state.creds
        spk = creds.signed_pre_key
        assert CURVE.verify(
            b"\x05" + creds.signed_identity_key.public,
            b"\x05" + spk.key_pair.public,
            spk.signature,
        )
        assert creds.me is None and creds.registered is False
        assert creds.pairing_ephemeral_key_pair is not None
        first = creds
    async with await WastoreAuthState.load(store_url) as state:
        assert state.creds == first  # the pairing key pair generated once, saved


async def test_unreadable_stored_state_is_an_error_not_missing(store_url: str) -> None:
    async with await wastore.open_store(store_url) as container:
        device_id = await container.create_device()
        pm = await wastore.PersistenceManager.open(container.backend(device_id))
        await pm.modify_device(lambda d: setattr(d, "client_data", {CLIENT: b"{not json"}))
        await pm.close()
        with pytest.raises(wastore.CorruptRecordError, match="client_data"):
            await WastoreAuthState.load(container, account=device_id)
        await container.backend(device_id).store_prekey(5, b"\xff\x01", False)
        pm = await wastore.PersistenceManager.open(container.backend(device_id))
        await pm.modify_device(lambda d: setattr(d, "client_data", {}))
        await pm.close()
        async with await WastoreAuthState.load(container, account=device_id) as state:
            with pytest.raises(wastore.CorruptRecordError, match="pre-key 5"):
                await state.keys.get("pre-key", ["5"])


async def test_one_account_is_served_by_one_state_at_a_time(world: World) -> None:
    with pytest.raises(AccountInUseError):
        await WastoreAuthState.load(world.url, account=ALICE)


# -- key families ---------------------------------------------------------------------------


async def test_every_key_family_round_trips(world: World) -> None:
    keys = world.alice.state.keys
    sync_key = _sync_key_data(b"\x11" * 32, 1_700_000_000_000)
    index = base64.b64encode(b"\x01" * 32).decode()
    index2 = base64.b64encode(b"\x02" * 32).decode()
    values: dict[str, dict[str, Any]] = {
        "session": {"15559999999.4": b"\x0a\x02\x08\x03"},
        "identity-key": {"15559999999.4": b"\x05" + b"\x22" * 32},
        "pre-key": {"9": {"public": b"\x33" * 32, "private": b"\x44" * 32}},
        "sender-key": {f"{GROUP}::15559999999::4": b"\x0a\x02\x08\x01"},
        "sender-key-memory": {GROUP: {"15559999999:4@s.whatsapp.net": True, BOB: False}},
        "app-state-sync-key": {"AAABAg==": sync_key},
        "app-state-sync-version": {
            "regular_high": {
                "version": 7,
                "hash": b"\x55" * 128,
                "indexValueMap": {index: b"\x66" * 32, index2: b"\x77" * 32},
            },
        },
        "tctoken": {"15559999999@s.whatsapp.net": {"token": b"tok", "timestamp": "1700000000"}},
    }
    assert set(values) == set(FAMILIES)
    await keys.set(values)
    await world.restart()
    keys = world.alice.state.keys
    backend = world.alice.state.manager.backend
    missing = {
        "session": "15550000404.0",
        "identity-key": "15550000404.0",
        "pre-key": "12",
        "sender-key": f"{GROUP}::15550000404::0",
        "sender-key-memory": "120363000000000404@g.us",
        "app-state-sync-key": "BAQE",
        "app-state-sync-version": "regular_low",
        "tctoken": "15550000404@s.whatsapp.net",
    }
    for family, items in values.items():
        got = await keys.get(family, [*items, missing[family]])
        assert got.pop(missing[family]) is None, family
        assert got == items, family

    # typed rows, under the addresses every client uses
    addr = "15559999999:4@s.whatsapp.net"
    assert await backend.get_session(addr) == b"\x0a\x02\x08\x03"
    assert await backend.load_identity(addr) == b"\x22" * 32
    assert await backend.get_sender_key(f"{GROUP}::{addr}") == b"\x0a\x02\x08\x01"
    assert await backend.get_sender_key_devices(GROUP) == [(BOB, False), (addr, True)]
    stored_key = await backend.get_sync_key(b"\x00\x00\x01\x02")
    assert stored_key is not None and stored_key.key_data == b"\x11" * 32
    assert stored_key.timestamp == 1_700_000_000_000
    state = await backend.get_version("regular_high")
    assert (state.version, state.hash) == (7, b"\x55" * 128)
    assert await backend.get_all_mutation_macs("regular_high") == {
        b"\x01" * 32: b"\x66" * 32,
        b"\x02" * 32: b"\x77" * 32,
    }
    token = await backend.get_tc_token("15559999999@s.whatsapp.net")
    assert token is not None and (token.token, token.token_timestamp) == (b"tok", 1_700_000_000)

    # the whole index -> value map is replaced: one MAC changes, one goes, one comes
    index3 = base64.b64encode(b"\x03" * 32).decode()
    new_map = {index: b"\x88" * 32, index3: b"\x99" * 32}
    await keys.set(
        {
            "app-state-sync-version": {
                "regular_high": {"version": 8, "hash": b"\xaa" * 128, "indexValueMap": new_map}
            }
        }
    )
    got = await keys.get("app-state-sync-version", ["regular_high"])
    assert got["regular_high"]["indexValueMap"] == new_map
    assert got["regular_high"]["version"] == 8

    # None deletes, in every family
    await keys.set({family: dict.fromkeys(items) for family, items in values.items()})
    for family, items in values.items():
        assert set((await keys.get(family, list(items))).values()) == {None}, family
    assert await backend.get_all_mutation_macs("regular_high") == {}


def _sync_key_data(key: bytes, timestamp: int) -> bytes:
    from pyaileys.proto import WAProto_pb2 as proto

    data = proto.Message.AppStateSyncKeyData()
    data.keyData = key
    data.fingerprint.rawId = 7
    data.fingerprint.currentIndex = 2
    data.fingerprint.deviceIndexes.extend([0, 2])
    data.timestamp = timestamp
    out: bytes = data.SerializeToString()
    return out


async def test_a_set_is_one_transaction_and_bad_values_write_nothing(world: World) -> None:
    keys = world.alice.state.keys
    backend = world.alice.state.manager.backend
    good = {"session": {"15559999999.0": b"\x0a\x00"}}
    bad_values: list[dict[str, Any]] = [
        {**good, "lid-mapping": {"1": "2"}},  # a family pyaileys does not use
        {**good, "session": {"15559999999.0": b"x", "abc": {"some": "value"}}},
        {**good, "identity-key": {"15559999999.0": b"\x05" * 10}},
        {**good, "pre-key": {"01": {"public": b"\x01" * 32, "private": b"\x02" * 32}}},
        {**good, "pre-key": {"1": {"public": b"\x01" * 31, "private": b"\x02" * 32}}},
        {**good, "app-state-sync-key": {"not base64!": b"\x0a\x20" + b"\x00" * 32}},
        {**good, "app-state-sync-version": {"regular": {"version": 1, "hash": b"\x00"}}},
        {**good, "tctoken": {"1@s.whatsapp.net": {"token": b"t", "timestamp": 5}}},
        {**good, "sender-key-memory": {GROUP: {BOB: "yes"}}},
    ]
    for data in bad_values:
        with pytest.raises(ValidationError):
            await keys.set(data)
        assert not await backend.has_session("15559999999@s.whatsapp.net")
    with pytest.raises(ValidationError):
        await keys.get("lid-mapping", ["1"])

    # a failure inside the transaction leaves nothing behind either
    await keys.set({"session": {"15559999999.1": b"\x0a\x01"}})
    with pytest.raises(wastore.StoreError):
        await keys.set(
            {
                "session": {"15559999999.1": None, "15559999999.2": b"\x0a\x02"},
                "identity-key": {"15559999999.2": b"\x05" + b"\x01" * 32},
                # a sync key with 31 bytes of key data is refused by the store itself
                "app-state-sync-key": {"AQ==": b"\x0a\x1f" + b"\x00" * 31},
            }
        )
    assert await backend.has_session("15559999999:1@s.whatsapp.net")
    assert not await backend.has_session("15559999999:2@s.whatsapp.net")
    assert await backend.load_identity("15559999999:2@s.whatsapp.net") is None


async def test_clear_removes_every_key_but_not_the_creds(world: World) -> None:
    alice, bob = world.alice, world.bob
    await handshake(alice, bob)
    await alice.state.keys.set(
        {
            "app-state-sync-key": {"AAABAg==": _sync_key_data(b"\x11" * 32, 5)},
            "tctoken": {"1@s.whatsapp.net": {"token": b"t", "timestamp": None}},
            "sender-key-memory": {GROUP: {BOB: True}},
        }
    )
    await alice.upload_prekeys(3)
    creds = alice.creds
    await alice.state.keys.clear()
    backend = alice.state.manager.backend
    assert not await backend.has_session(BOB_ADDR)
    assert await backend.load_identity(BOB_ADDR) is None
    assert await backend.count_prekeys() == (0, 0)
    assert await backend.get_sender_key(f"{GROUP}::{ALICE_ADDR}") is None
    assert await backend.get_sync_key(b"\x00\x00\x01\x02") is None
    assert await backend.get_tc_token("1@s.whatsapp.net") is None
    assert await backend.get_sender_key_devices(GROUP) == []
    await world.restart()
    assert world.alice.creds == creds


# -- one database, two clients: pyaileys and python-axolotl ---------------------------------
from wastore.interop.axolotl import (  # noqa: E402  # isort: skip
    SyncAccount,
    SyncContainer,
    axolotl_address,
    sender_key_name,
)
from axolotl.groups.groupcipher import GroupCipher  # noqa: E402  # isort: skip
from axolotl.groups.groupsessionbuilder import GroupSessionBuilder  # noqa: E402  # isort: skip
from axolotl.protocol.ciphertextmessage import CiphertextMessage  # noqa: E402  # isort: skip
from axolotl.protocol.prekeywhispermessage import PreKeyWhisperMessage  # noqa: E402  # isort: skip
from axolotl.protocol.senderkeydistributionmessage import (  # noqa: E402  # isort: skip
    SenderKeyDistributionMessage,
)
from axolotl.protocol.whispermessage import WhisperMessage  # noqa: E402  # isort: skip
from axolotl.sessionbuilder import SessionBuilder  # noqa: E402  # isort: skip
from axolotl.sessioncipher import SessionCipher  # noqa: E402  # isort: skip


class AxolotlPeer:
    """The same account driven by python-axolotl (through wastore.interop.axolotl): the
    calls mirror :class:`Peer`, so a conversation can switch implementations."""

    def __init__(self, jid: str, account: SyncAccount) -> None:
        self.jid = jid
        self.account = account
        self.store = account.store

    def _cipher(self, peer: str) -> SessionCipher:
        s = self.store
        return SessionCipher(s, s, s, s, axolotl_address(peer).getName(), 0)

    async def send(self, to: Any, text: str) -> tuple[str, bytes]:
        message = self._cipher(to.jid).encrypt(text.encode())
        self.account.flush()
        kind = "pkmsg" if message.getType() == CiphertextMessage.PREKEY_TYPE else "msg"
        return kind, message.serialize()

    async def receive(self, sender: Any, wire: tuple[str, bytes]) -> str:
        kind, data = wire
        cipher = self._cipher(sender.jid)
        if kind == "pkmsg":
            plaintext = cipher.decryptPkmsg(PreKeyWhisperMessage(serialized=data))
        else:
            plaintext = cipher.decryptMsg(WhisperMessage(serialized=data))
        self.account.flush()
        return bytes(plaintext).decode()

    async def send_group(self, text: str) -> tuple[bytes, bytes]:
        name = sender_key_name(GROUP, self.jid)
        distribution = GroupSessionBuilder(self.store).create(name).serialize()
        ciphertext = GroupCipher(self.store, name).encrypt(text.encode())
        self.account.flush()
        return bytes(ciphertext), bytes(distribution)

    async def receive_group(
        self, sender: Any, ciphertext: bytes, distribution: bytes | None = None
    ) -> str:
        name = sender_key_name(GROUP, sender.jid)
        if distribution is not None:
            message = SenderKeyDistributionMessage(serialized=distribution)
            GroupSessionBuilder(self.store).process(name, message)
        plaintext = GroupCipher(self.store, name).decrypt(ciphertext)
        self.account.flush()
        return bytes(plaintext).decode()


async def _talk(alice: Any, bob: Any, tag: str) -> None:
    """Both directions, 1:1 and group, with the keys the accounts already hold."""
    assert await bob.receive(alice, await alice.send(bob, f"{tag}: A->B")) == f"{tag}: A->B"
    assert await alice.receive(bob, await bob.send(alice, f"{tag}: B->A")) == f"{tag}: B->A"
    assert await bob.receive(alice, await alice.send(bob, f"{tag}: A->B 2")) == f"{tag}: A->B 2"
    ct, _ = await alice.send_group(f"{tag}: A->group")
    assert await bob.receive_group(alice, ct) == f"{tag}: A->group"
    ct, _ = await bob.send_group(f"{tag}: B->group")
    assert await alice.receive_group(bob, ct) == f"{tag}: B->group"


async def test_pyaileys_sessions_and_sender_keys_are_continued_by_python_axolotl(
    world: World,
) -> None:
    await handshake(world.alice, world.bob)  # sessions and both sender keys, by pyaileys
    await _talk(world.alice, world.bob, "pyaileys")
    await world.stop()
    ids = world.ids

    # Bob's account is driven by python-axolotl while Alice stays on pyaileys; then the
    # other way round; then both on python-axolotl. One database all along.
    for axolotl_side in ("bob", "alice", "both"):
        with SyncContainer.open(world.url) as container:
            jids = {"alice": ALICE, "bob": BOB}
            drivers: dict[str, Any] = {}
            states = []
            for who, jid in jids.items():
                if axolotl_side in (who, "both"):
                    drivers[who] = AxolotlPeer(jid, container.account(ids[jid]))
                else:
                    state = await WastoreAuthState.load(world.url, account=ids[jid])
                    states.append(state)
                    drivers[who] = Peer.of(jid, state)
            try:
                await _talk(drivers["alice"], drivers["bob"], f"axolotl={axolotl_side}")
            finally:
                for state in states:
                    await state.close()

    await world.start()  # and pyaileys continues what python-axolotl left
    await _talk(world.alice, world.bob, "pyaileys again")


async def test_python_axolotl_sessions_are_continued_by_pyaileys(store_url: str) -> None:
    ids: dict[str, int] = {}
    with SyncContainer.open(store_url) as container:
        accounts = {}
        for jid in (ALICE, BOB):
            account = container.account(container.create_device())
            account.run(account.manager.process_command(wastore.SetId(JID.parse(jid))))
            account.flush()
            ids[jid] = account.device_id
            accounts[jid] = account
        bob_store = accounts[BOB].store
        pre_keys = bob_store.generate_pre_keys(3)
        bob_store.mark_pre_keys_uploaded([k.getId() for k in pre_keys])
        a = accounts[ALICE].store
        builder = SessionBuilder(a, a, a, a, axolotl_address(BOB).getName(), 0)
        builder.processPreKeyBundle(bob_store.pre_key_bundle(pre_keys[0].getId()))
        accounts[ALICE].flush()
        alice, bob = AxolotlPeer(ALICE, accounts[ALICE]), AxolotlPeer(BOB, accounts[BOB])
        wire = await alice.send(bob, "from axolotl")
        assert wire[0] == "pkmsg"
        assert await bob.receive(alice, wire) == "from axolotl"
        ct, dist = await alice.send_group("axolotl group")
        assert await bob.receive_group(alice, ct, dist) == "axolotl group"
        ct, dist = await bob.send_group("axolotl group from Bob")
        assert await alice.receive_group(bob, ct, dist) == "axolotl group from Bob"

    states = [await WastoreAuthState.load(store_url, account=jid) for jid in (ALICE, BOB)]
    try:
        alice_p, bob_p = Peer.of(ALICE, states[0]), Peer.of(BOB, states[1])
        assert [s.device_id for s in states] == [ids[ALICE], ids[BOB]]
        # pyaileys sees what python-axolotl wrote: the pre-keys, and the Device as creds
        assert bob_p.creds.first_unuploaded_pre_key_id == 4
        assert bob_p.creds.me is not None and bob_p.creds.me.id == BOB
        assert await bob_p.state.manager.backend.count_prekeys() == (2, 2)
        # Alice's session still wraps as pre-key messages (Bob has not answered yet)
        wire = await alice_p.send(bob_p, "pyaileys continues")
        assert wire[0] == "pkmsg"
        assert await bob_p.receive(alice_p, wire) == "pyaileys continues"
        await _talk(alice_p, bob_p, "pyaileys after axolotl")
    finally:
        for state in states:
            await state.close()


# -- a crash between a decryption and its writes ---------------------------------------------


def _crash_child(url: str, bob_id: int, wire: tuple[str, bytes], mode: str) -> str:
    child = subprocess.run(
        [
            sys.executable,
            str(CHILDREN / "pyaileys_crash_child.py"),
            url,
            str(bob_id),
            ALICE,
            wire[0],
            wire[1].hex(),
            mode,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr[-3000:]
    return child.stdout


@pytest.mark.slow
async def test_a_message_whose_decryption_was_killed_decrypts_when_redelivered(
    world: World,
) -> None:
    alice, bob = world.alice, world.bob
    (pre_key,) = await bob.upload_prekeys(1)
    await alice.repo.inject_outgoing_session(bob.jid, bob.bundle(pre_key))
    first = await alice.send(bob, "first")
    bob_id = world.ids[BOB]
    await world.stop()

    def rows() -> Any:
        async def read() -> tuple[bool, bool, tuple[int, int]]:
            async with await wastore.open_store(world.url) as c:
                b = c.backend(bob_id)
                return (
                    await b.has_session(ALICE_ADDR),
                    await b.load_identity(ALICE_ADDR) is not None,
                    await b.count_prekeys(),
                )

        return read()

    # killed before the first write of the decryption: nothing of it is stored
    out = _crash_child(world.url, bob_id, first, "set-1")
    assert "killed before set 1: ['identity-key']" in out
    assert await rows() == (False, False, (1, 1))
    # killed after pyaileys stored the identity, before the session: no session yet
    out = _crash_child(world.url, bob_id, first, "set-2")
    assert "killed before set 2: ['session']" in out
    assert await rows() == (False, True, (1, 1))
    # inside state.transaction() (the identity is known now: two sets, session and
    # pre-key): killed before the pre-key removal, or after the decryption returned —
    # the block commits nothing
    for mode, said in (
        ("txn-set-2", "killed before set 2: ['pre-key']"),
        ("txn-set-0", "inside the transaction after 2 sets"),
    ):
        out = _crash_child(world.url, bob_id, first, mode)
        assert said in out
        assert await rows() == (False, True, (1, 1))

    await world.start()
    alice, bob = world.alice, world.bob
    assert await bob.receive(alice, first) == "first"  # the redelivered message
    assert await bob.receive(alice, await alice.send(bob, "second")) == "second"
    assert await alice.receive(bob, await bob.send(alice, "reply")) == "reply"
    third = await alice.send(bob, "third")
    assert third[0] == "msg"
    await world.stop()

    out = _crash_child(world.url, bob_id, third, "txn-set-0")
    assert "inside the transaction after 1 sets" in out
    # acknowledged (decrypted and stored), then killed before save_creds()
    out = _crash_child(world.url, bob_id, third, "creds")
    assert "decrypted third" in out and "killed before save_creds" in out

    await world.start()
    alice, bob = world.alice, world.bob
    # the new pre-keys are stored but, the watermark unsaved, not flagged as on the server
    assert await bob.state.manager.backend.count_prekeys() == (3, 0)
    assert bob.creds.first_unuploaded_pre_key_id == 2
    # nothing acknowledged is lost: the conversation goes on from the stored ratchet
    for n in range(3):
        assert await bob.receive(alice, await alice.send(bob, f"on {n}")) == f"on {n}"
        assert await alice.receive(bob, await bob.send(alice, f"back {n}")) == f"back {n}"
