"""A real pywhats client on wastore, against pywhats' fake WhatsApp server.

Each test runs on SQLite and on PostgreSQL. The conversation is 1:1 both ways
(each change of direction is a Diffie-Hellman ratchet step, so a lost step of
session state fails the next message) and a group (sender keys both ways).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import warnings
from collections.abc import Callable
from contextvars import ContextVar
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import wastore
from wastore import AccountInUseError, BackendUnavailableError, ConfigError, ValidationError
from wastore.formats import import_from
from wastore.interop.bridge import SyncContainer
from wastore.interop.pywhats import SignalStores, WastoreClient
from wastore.testing.pywhats_peer import ConversationPeer

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from pywhats.events import JID as PwJID
    from pywhats.proto import Message as MessageProto
    from pywhats.signal.experimental import PreKeyBundle
    from pywhats.store import DeviceStore, save_device_store

    import pywhats

HERE = Path(__file__).resolve().parent
PEER = PwJID(user="15559990000", server="s.whatsapp.net", device=1)
PEER_CHAT = "15559990000@s.whatsapp.net"  # the stanza is addressed to the user
GROUP = PwJID(user="120363000000000000", server="g.us")
OWN_LID = "111111111111111.0.1@lid"  # what pywhats makes of the fake server's <success lid>


async def wait_for(pred: Callable[[], bool], timeout: float = 10.0) -> None:
    async def poll() -> None:
        while not pred():
            await asyncio.sleep(0.005)

    await asyncio.wait_for(poll(), timeout)


class Talk:
    """A client connected to a fake server, and the peer it talks to."""

    def __init__(self, client: Any, server: Any, peer: ConversationPeer) -> None:
        self.client = client
        self.server = server
        self.peer = peer
        self.got: list[Any] = []
        self.errors: list[tuple[str, str]] = []
        connected = asyncio.Event()
        self.connected = connected

        @client.on("message")
        async def _message(m: Any) -> None:
            self.got.append(m)

        @client.on("decrypt_error")
        async def _error(msg_id: str, reason: str) -> None:
            self.errors.append((msg_id, reason))

        @client.on("connected")
        async def _connected() -> None:
            connected.set()

    async def connect(self) -> None:
        await self.client.connect()
        await asyncio.wait_for(self.connected.wait(), 10)
        # Logged in: the activator has stored the LID of <success> (a device save) and
        # uploaded the first one-time pre-keys (stored before they are sent).
        await wait_for(
            lambda: self.client.device.lid is not None and bool(self.server.prekey_uploads)
        )

    async def inbound(self, text: str) -> None:
        before = len(self.got)
        await self.peer.send_text(text, client_device=self.client.device)
        await wait_for(lambda: len(self.got) > before or bool(self.errors))
        assert not self.errors, self.errors
        assert self.got[-1].text == text

    async def outbound(self, text: str) -> None:
        await self.client.send_text(PEER, text)
        assert await self.peer.wait_read(1) == [(PEER_CHAT, text)]

    async def group(self, text: str) -> None:
        before = len(self.got)
        await self.peer.send_group_text(GROUP, f"{text} (in)")
        await wait_for(lambda: len(self.got) > before or bool(self.errors))
        assert not self.errors, self.errors
        assert (self.got[-1].chat.server, self.got[-1].text) == ("g.us", f"{text} (in)")
        await self.client.send_group_text(GROUP, f"{text} (out)", [PEER])
        assert await self.peer.wait_read(1) == [(str(GROUP), f"{text} (out)")]

    async def converse(self, tag: str, rounds: int = 3) -> None:
        for i in range(rounds):
            await self.inbound(f"{tag} {i} from the peer")
            await self.outbound(f"{tag} {i} from the client")
        await self.group(tag)


def _inspect(url: str, device_id: int) -> tuple[SyncContainer, SignalStores]:
    c = SyncContainer.open(url)
    return c, SignalStores(c, device_id, lease=False)


async def test_a_conversation_goes_on_after_a_restart(fake: ModuleType, store_url: str) -> None:
    sp = fake.SignalPeer(jid=PEER)
    async with fake.FakeWhatsAppServer(peer=sp) as server:
        client = WastoreClient(store_url, ws_url=server.url)  # an empty store: a new account
        client._device = fake.factories.paired_device()  # credentials, as pywhats' tests do
        talk = Talk(client, server, ConversationPeer(server, sp))
        await talk.connect()
        await talk.converse("before")
        device_id, credentials = client.device_id, client.device.to_json()
        assert client.device.lid == OWN_LID
        await client.close()

    # A new client — a new process would do the same — opens the account from the database.
    async with fake.FakeWhatsAppServer(peer=sp) as server:
        client = WastoreClient(store_url, ws_url=server.url)  # the store's only account
        assert client.device_id == device_id
        assert client.device.to_json() == credentials  # pywhats' credentials, exactly
        talk.peer.attach(server)
        talk = Talk(client, server, talk.peer)
        await talk.connect()
        await talk.converse("after")
        await client.close()

    c, stores = _inspect(store_url, device_id)
    try:
        device = c.run(c.container.backend(device_id).load())
        assert device is not None
        assert str(device.pn) == "15551230000:3@s.whatsapp.net"
        assert str(device.lid) == "111111111111111:1@lid"
        assert c.find_device("111111111111111@lid") == device_id
        assert stores.sessions.load("15559990000:1@s.whatsapp.net") is not None
        assert stores.identities.load("15559990000:1@s.whatsapp.net") == sp.identity.public
        assert stores.sender_keys.load(str(GROUP), "15559990000:1@s.whatsapp.net") is not None
        assert stores.sender_keys.load(str(GROUP), "15551230000:3@s.whatsapp.net") is not None
        assert stores.prekeys.max_id() >= 50  # uploaded at login
    finally:
        c.close()


async def test_the_lid_pywhats_learns_at_login_is_mapped_and_round_trips(
    fake: ModuleType, store_url: str
) -> None:
    async with fake.FakeWhatsAppServer() as server:
        client = WastoreClient(store_url, ws_url=server.url)
        client._device = fake.factories.paired_device()
        talk = Talk(client, server, ConversationPeer(server, fake.SignalPeer(jid=PEER)))
        await talk.connect()
        # pywhats reads the <success lid="111111111111111.0:1@lid"> attribute as user
        # "111111111111111.0", device 1, and writes it in its user.device form.
        assert client.device.lid == OWN_LID
        device_id = client.device_id
        await client.close()
    with pytest.raises(ValidationError):
        wastore.JID.parse(OWN_LID)  # wastore's parser rightly refuses pywhats' form
    c = SyncContainer.open(store_url)
    try:
        device = c.run(c.container.backend(device_id).load())
        assert device is not None
        assert device.lid == wastore.JID(user="111111111111111", server="lid", agent=0, device=1)
    finally:
        c.close()
    again = WastoreClient(store_url)
    try:
        assert again.device.lid == OWN_LID  # pywhats' own string, exactly
    finally:
        await again.close()


async def test_the_account_lease_is_held_while_open_and_released_on_disconnect(
    fake: ModuleType, store_url: str
) -> None:
    async with fake.FakeWhatsAppServer() as server:
        client = WastoreClient(store_url, ws_url=server.url)
        client._device = fake.factories.paired_device()
        with pytest.raises(AccountInUseError):
            SignalStores(store_url, client.device_id)
        talk = Talk(client, server, ConversationPeer(server, fake.SignalPeer(jid=PEER)))
        await talk.connect()
        with pytest.raises(AccountInUseError):
            SignalStores(store_url, client.device_id)
        await client.disconnect()
        with SignalStores(store_url, client.device_id) as stores:  # released: it opens
            assert stores.prekeys.max_id() >= 50
        # connect() takes the account again.
        talk.connected.clear()
        await talk.connect()
        with pytest.raises(AccountInUseError):
            SignalStores(store_url, client.device_id)
        await client.close()
    with SignalStores(store_url, client.device_id):
        pass


async def test_no_frame_leaves_before_the_state_it_reveals_is_committed(
    fake: ModuleType, store_url: str
) -> None:
    """The client's Signal writes are buffered on pywhats' thread; before any frame goes
    to the server (a message's ciphertext, a receipt) they are committed: every write
    buffered when the frame was handed to the transport is committed when it leaves,
    and the database holds the session the frame reveals. (Writes that other tasks of
    pywhats' loop make meanwhile, e.g. a group message decrypted while a receipt is
    being sent, belong to later frames and their own barrier.)"""
    sp = fake.SignalPeer(jid=PEER)
    async with fake.FakeWhatsAppServer(peer=sp) as server:
        client = WastoreClient(store_url, ws_url=server.url)
        client._device = fake.factories.paired_device()
        talk = Talk(client, server, ConversationPeer(server, sp))
        await talk.connect()
        await talk.converse("warm-up", rounds=1)  # sessions exist, caches hold them
        stores = client._signal_store
        assert isinstance(stores, SignalStores)
        cache = stores.sync_signal.cache
        manager = client.manager
        assert cache is not None
        barrier = client._transport  # the flushing transport
        barrier_send = barrier.send
        raw = barrier._transport
        real_send = raw.send
        sid = "15559990000:1@s.whatsapp.net"
        at_barrier: ContextVar[tuple[dict[Any, Any], bool, bytes | None]] = ContextVar("at")
        left_uncommitted: list[list[Any]] = []

        async def watched_barrier(data: bytes) -> None:
            # What the frame can reveal: everything buffered when it was handed over.
            at_barrier.set((dict(cache._dirty), manager.is_dirty, cache.peek(0, sid)[1]))
            await barrier_send(data)

        async def watched_send(data: bytes) -> None:
            before, device_dirty, session = at_barrier.get()
            left = [key for key, entry in before.items() if cache._dirty.get(key) is entry]
            if device_dirty and manager.is_dirty:
                left.append("the device")
            left_uncommitted.append(left)
            committed = await asyncio.to_thread(
                client.container.run, client.manager.backend.get_session(sid)
            )
            # The database holds that session, or a newer one written since (compared
            # here, so that a failure prints no key material).
            held = committed in (session, cache.peek(0, sid)[1])
            assert held, "a frame left before the session it reveals was committed"
            await real_send(data)

        barrier.send = watched_barrier
        raw.send = watched_send
        writes_before = cache.flushes
        await talk.converse("watched", rounds=3)
        assert left_uncommitted and not any(left_uncommitted), left_uncommitted
        assert cache.flushes > writes_before  # the barrier did the committing
        barrier.send, raw.send = barrier_send, real_send
        await client.close()


async def test_an_atomic_block_with_a_fault_in_the_middle_leaves_nothing(
    fake: ModuleType, store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pywhats' receiver stores a pre-key message's session, the peer's identity and
    the one-time pre-key removal in one atomic block; a failure in its middle
    (the identity write) must leave none of them, so the redelivery decrypts."""
    sp = fake.SignalPeer(jid=PEER)
    async with fake.FakeWhatsAppServer(peer=sp) as server:
        client = WastoreClient(store_url, ws_url=server.url)
        client._device = fake.factories.paired_device()
        talk = Talk(client, server, ConversationPeer(server, sp))
        await talk.connect()
        await wait_for(lambda: bool(server.prekey_uploads))
        c, stores = _inspect(store_url, client.device_id)
        try:
            opk = stores.prekeys.load(7)
            assert opk is not None
            device = client.device
            bundle = PreKeyBundle(
                identity_key=device.identity_public,
                signed_pre_key_id=device.signed_pre_key_id,
                signed_pre_key_public=device.signed_pre_key_public,
                signed_pre_key_signature=device.signed_pre_key_signature,
                one_time_pre_key_id=7,
                one_time_pre_key_public=opk.public,
            )
            wire = sp.encrypt_proto_to(
                client_identity_public=device.identity_public,
                client_bundle=bundle,
                proto=MessageProto(conversation="first, with a one-time pre-key"),
            )
            node = fake.server.Node(
                tag="message",
                attrs={"id": "pkmsg-1", "from": PEER, "type": "text", "t": "1783000000"},
                content=[
                    fake.server.Node(tag="enc", attrs={"v": "2", "type": "pkmsg"}, content=wire)
                ],
            )
            backend_type = type(client.manager.backend)
            real_put_identity = backend_type.put_identity
            real_put_identities = backend_type.put_identities_batch
            calls: list[str] = []

            async def failing_put_identity(self: Any, address: str, key: bytes) -> None:
                calls.append(address)
                raise BackendUnavailableError("injected fault: the identity write failed")

            async def failing_put_identities(self: Any, items: Any) -> None:
                calls.extend(address for address, _ in items)
                raise BackendUnavailableError("injected fault: the identity write failed")

            # The client's SignalCache writes the block's identity into its commit (a
            # batch); without a cache it would be a single write: both fail.
            monkeypatch.setattr(backend_type, "put_identity", failing_put_identity)
            monkeypatch.setattr(backend_type, "put_identities_batch", failing_put_identities)
            await server.deliver(node)
            await wait_for(lambda: bool(talk.errors))
            assert calls == ["15559990000:1@s.whatsapp.net"]
            assert "injected fault" in talk.errors[0][1]
            # The OPK removal and the session came before the failing write, in the block:
            # none of it is stored.
            sid = "15559990000:1@s.whatsapp.net"
            assert stores.prekeys.load(7) == opk
            assert stores.sessions.load(sid) is None
            assert stores.identities.load(sid) is None

            monkeypatch.setattr(backend_type, "put_identity", real_put_identity)
            monkeypatch.setattr(backend_type, "put_identities_batch", real_put_identities)
            talk.errors.clear()
            await server.deliver(node)  # the same message again, as the server redelivers it
            await wait_for(lambda: bool(talk.got) or bool(talk.errors))
            assert not talk.errors
            assert talk.got[-1].text == "first, with a one-time pre-key"
            assert stores.prekeys.load(7) is None
            assert stores.sessions.load(sid) is not None
            assert stores.identities.load(sid) == sp.identity.public
            talk.peer._client_identity = device.identity_public
            await talk.outbound("the session is whole")
        finally:
            c.close()
        await client.close()


async def test_import_a_real_pywhats_session_and_go_on(
    fake: ModuleType, store_url: str, tmp_path: Path
) -> None:
    """pywhats itself (its own files) talks to the peer; the session is imported into
    wastore; a WastoreClient goes on with the same conversation."""
    session_path = str(tmp_path / "acct.session")
    save_device_store(fake.factories.paired_device(), session_path)
    sp = fake.SignalPeer(jid=PEER)
    async with fake.FakeWhatsAppServer(peer=sp) as server:
        own = pywhats.Client(session_path=session_path, ws_url=server.url)
        talk = Talk(own, server, ConversationPeer(server, sp))
        await talk.connect()
        await talk.converse("on pywhats' own store")
        await own.disconnect()
    assert Path(f"{session_path}.signal.db").exists()
    credentials = DeviceStore.load(session_path).to_json()

    c = SyncContainer.open(store_url)
    try:
        [result] = c.run(import_from(c.container, session_path, "pywhats"))
        device_id = result.device_id
        assert device_id is not None
        assert result.counts["sessions"] >= 2 and result.counts["sender_keys"] == 2
        assert result.counts["prekeys"] >= 50
    finally:
        c.close()

    async with fake.FakeWhatsAppServer(peer=sp) as server:
        client = WastoreClient(store_url, account=device_id, ws_url=server.url)
        assert client.device.to_json() == credentials  # no pairing again
        talk.peer.attach(server)
        talk = Talk(client, server, talk.peer)
        await talk.connect()
        await talk.converse("on wastore")
        await client.close()


def _echo_child(ws_url: str, store: str, device_id: int) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, str(HERE / "_echo_client.py"), ws_url, store, str(device_id)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


async def _started(child: subprocess.Popen[str]) -> None:
    assert child.stdout is not None
    line = await asyncio.wait_for(asyncio.to_thread(child.stdout.readline), 60)
    if line.strip() != "connected":
        raise AssertionError(f"the client did not start: {child.stderr.read()}")  # type: ignore[union-attr]


def _kill(child: subprocess.Popen[str]) -> None:
    if child.poll() is None:
        os.kill(child.pid, signal.SIGKILL)
    child.wait(30)
    for f in (child.stdout, child.stderr):
        if f is not None:
            f.close()


def _in_step(stores: SignalStores, peer: ConversationPeer) -> None:
    """The client's stored session is exactly the peer's view of it: no step lost.

    Called when the peer has read every answer: the client's sending chain is the
    peer's receiving chain (same key, as many messages), and the client received
    every message of the peer's previous sending chain, with no key skipped.
    """
    client = stores.sessions.load("15559990000:1@s.whatsapp.net")
    theirs = peer.signal_peer._ratchet
    assert client is not None
    assert (client.dhs_pub, client.ns) == (theirs.dhr, theirs.nr)
    assert client.nr == theirs.pn
    assert client.mkskipped == {}


def _answers(texts: list[str]) -> list[str]:
    return [f"{kind}: {text}" for text in texts for kind in ("echo", "again")]


async def _exchange(peer: ConversationPeer, device: Any, tag: str, late: list[str]) -> None:
    """Two messages from the peer, four answers from the client: every one decrypts.

    Answers to messages of before a crash (``late``) may come first, in order.
    """
    texts = [f"{tag} a", f"{tag} b"]
    for text in texts:
        await peer.send_text(text, client_device=device)
    got: list[str] = []
    while got[-4:] != _answers(texts):
        got += [text for _, text in await peer.wait_read(1, limit=30)]
        assert len(got) <= len(late) + 4, got
    early = got[:-4]
    assert early == [text for text in late if text in early]


@pytest.mark.slow
async def test_sigkill_mid_conversation_loses_no_ratchet_step(
    fake: ModuleType, store_url: str, tmp_path: Path
) -> None:
    """A client process is SIGKILLed while it decrypts, stores and answers messages
    (three times, at different moments); each time a new process opens the account,
    gets the messages it gave no receipt for again (as from WhatsApp's offline
    queue), and the conversation goes on both ways with the stored session in step."""
    device = fake.factories.paired_device()
    session_path = tmp_path / "acct.session"
    save_device_store(device, session_path)
    c = SyncContainer.open(store_url)
    try:
        [imported] = c.run(import_from(c.container, session_path, "pywhats"))
        device_id = imported.device_id
        assert device_id is not None
        stores = SignalStores(c, device_id, lease=False)
        sp = fake.SignalPeer(jid=PEER)
        peer: ConversationPeer | None = None
        unanswered: list[str] = []  # ids of the messages cut off by the kill, no receipt
        late: list[str] = []  # answers still owed for them
        for run, delay in enumerate([0.0, 0.01, 0.05, None]):
            async with fake.FakeWhatsAppServer(peer=sp) as server:
                if peer is None:
                    peer = ConversationPeer(server, sp)
                else:
                    peer.attach(server)
                child = _echo_child(server.url, store_url, device_id)
                try:
                    await _started(child)
                    for msg_id in unanswered:
                        await peer.redeliver(msg_id)
                    for i in range(2):
                        await _exchange(peer, device, f"run {run} exchange {i}", late)
                        _in_step(stores, peer)
                        late = []
                    if delay is not None:
                        # Two more, and the process dies while it handles them.
                        cut = [f"run {run} cut a", f"run {run} cut b"]
                        ids = [await peer.send_text(t, client_device=device) for t in cut]
                        await asyncio.sleep(delay)
                finally:
                    _kill(child)
                if delay is not None:
                    # Whatever answers reached the peer before the kill decrypt, in order.
                    got = [text for _, text in peer.read()]
                    assert got == _answers(cut)[: len(got)]
                    receipts = peer.receipts()
                    unanswered = [i for i in ids if i not in receipts]
                    late = _answers(cut)[len(got) :]
    finally:
        c.close()


async def test_client_arguments(fake: ModuleType, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'args.db'}"
    with pytest.raises(ValidationError, match="wastore import"):
        WastoreClient(url, session_path="acct.session")
    async with await wastore.open_store(url) as container:
        with pytest.raises(ValidationError, match="SyncContainer"):
            WastoreClient(container)
    c = SyncContainer.open(url)
    try:
        first = c.create_device()
        second = c.create_device()
        with pytest.raises(ConfigError, match=f"{first}.*{second}"):
            WastoreClient(c)
        with pytest.raises(wastore.DeviceNotFoundError):
            WastoreClient(c, account=999)
        client = WastoreClient(c, account=second)
        assert client.device_id == second
        assert client.device.jid is None  # a new account: pywhats would pair it
        with pytest.raises(AccountInUseError):
            WastoreClient(c, account=second)
        await client.close()
        assert not c.closed  # a shared store stays open
        client = WastoreClient(c, account=second)  # the lease was released
    finally:
        c.close()  # closes what is still open on it
    assert client.manager is None
