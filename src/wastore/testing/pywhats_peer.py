"""The other side of a conversation with a pywhats client, over pywhats' fake server.

pywhats' fake server (see :mod:`wastore.testing.pywhats_sdist`) has a Signal
peer that encrypts to the client on one ratchet and decrypts the client's
first message on another. A conversation needs one ratchet used both ways —
every change of direction is a Diffie-Hellman ratchet step, so a client that
loses one step of its session state is caught at once — and a group.
:class:`ConversationPeer` adds that on top of the fake server's peer, with
pywhats' own Signal primitives:

- :meth:`ConversationPeer.send_text` encrypts a 1:1 text to the client (the
  first one a ``pkmsg`` against the client's published keys) and delivers it;
- :meth:`ConversationPeer.send_group_text` sends a group message (a sender-key
  distribution message over the 1:1 session the first time, then ``skmsg``);
- :meth:`ConversationPeer.read` decrypts every message the client sent the
  peer since the last call (1:1 and group), in order.

It is test and benchmark tooling: it needs pywhats and the fake server.
"""

from __future__ import annotations

import asyncio
import itertools
import time
import warnings
from typing import Any

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from pywhats.binary import Node
    from pywhats.events import JID as PwJID
    from pywhats.messaging.padding import pad_random_max16, unpad_random_max16
    from pywhats.proto import Message as MessageProto
    from pywhats.signal.experimental import (
        PreKeyBundle,
        SignalMessage,
        ratchet_decrypt,
        ratchet_encrypt,
    )
    from pywhats.signal.experimental.sender_key import (
        SenderKeyState,
        build_distribution_message,
        create_sender_key_state,
        group_decrypt,
        group_encrypt,
        process_distribution_message,
    )

_ids = itertools.count(1)


class ConversationPeer:
    """A WhatsApp user talking to a pywhats client through a fake server.

    Args:
        server: the running ``FakeWhatsAppServer`` (its ``peer`` should be
            ``signal_peer``, so that it answers the client's key queries).
        signal_peer: the fake server's ``SignalPeer`` this peer talks as.
    """

    def __init__(self, server: Any, signal_peer: Any) -> None:
        self.server = server
        self.signal_peer = signal_peer
        self.jid: PwJID = signal_peer.jid
        self._client_identity: bytes | None = None
        self._seen = 0
        self._group_state: dict[str, SenderKeyState] = {}
        self._sent_skdm: set[str] = set()
        self._their_group_keys: dict[str, SenderKeyState] = {}
        self.delivered: dict[str, Node] = {}
        """The stanzas delivered to the client, by message id (to deliver them again)."""

    def attach(self, server: Any) -> None:
        """Talk through another server (the client reconnected elsewhere)."""
        self.server = server
        self._seen = 0

    @property
    def has_session(self) -> bool:
        return self.signal_peer._ratchet is not None

    def _node_id(self, kind: str) -> str:
        return f"{kind}-{next(_ids)}-{int(time.time() * 1000) % 100000}"

    def _encrypt(self, proto: MessageProto) -> bytes:
        assert self._client_identity is not None
        assert self.has_session
        peer = self.signal_peer
        plaintext = pad_random_max16(proto.SerializeToString())
        ad = peer.identity.public + self._client_identity
        header, ciphertext, mac_key = ratchet_encrypt(peer._ratchet, plaintext, ad)
        return bytes(
            SignalMessage(header=header, ciphertext=ciphertext).encode(
                peer.identity.public, self._client_identity, mac_key
            )
        )

    def _decrypt(self, ciphertext: bytes) -> MessageProto:
        assert self._client_identity is not None
        assert self.has_session
        peer, client = self.signal_peer, self._client_identity
        inner = SignalMessage.decode(ciphertext)
        plaintext = ratchet_decrypt(
            peer._ratchet,
            inner.header,
            inner.ciphertext,
            client + peer.identity.public,
            verify_mac=lambda mac_key: inner.verify_mac(client, peer.identity.public, mac_key),
        )
        proto = MessageProto()
        proto.ParseFromString(unpad_random_max16(plaintext))
        return proto

    async def send_text(self, text: str, *, client_device: Any) -> str:
        """Encrypt ``text`` to the client and deliver it; return the message id."""
        if not self.has_session:
            self._client_identity = client_device.identity_public
            proto = MessageProto(conversation=text)
            ciphertext = self.signal_peer.encrypt_proto_to(
                client_identity_public=client_device.identity_public,
                client_bundle=PreKeyBundle(
                    identity_key=client_device.identity_public,
                    signed_pre_key_id=client_device.signed_pre_key_id,
                    signed_pre_key_public=client_device.signed_pre_key_public,
                    signed_pre_key_signature=client_device.signed_pre_key_signature,
                ),
                proto=proto,
            )
            return await self._deliver("pkmsg", ciphertext)
        return await self._deliver("msg", self._encrypt(MessageProto(conversation=text)))

    async def _deliver(self, kind: str, ciphertext: bytes) -> str:
        msg_id = self._node_id(kind)
        node = Node(
            tag="message",
            attrs={"id": msg_id, "from": self.jid, "type": "text", "t": str(int(time.time()))},
            content=[Node(tag="enc", attrs={"v": "2", "type": kind}, content=ciphertext)],
        )
        self.delivered[msg_id] = node
        await self.server.deliver(node)
        return msg_id

    async def redeliver(self, msg_id: str) -> None:
        """Deliver a message again, as the server does with one it has no receipt for."""
        await self.server.deliver(self.delivered[msg_id])

    async def send_group_text(self, group: PwJID, text: str) -> str:
        """Send ``text`` to ``group`` as this peer (the 1:1 session must exist)."""
        key = str(group)
        state = self._group_state.get(key)
        if state is None:
            state = create_sender_key_state(key_id=7)
        content: list[Node] = []
        if key not in self._sent_skdm:
            skdm = MessageProto()
            skdm.sender_key_distribution_message.group_id = key
            skdm.sender_key_distribution_message.axolotl_sender_key_distribution_message = (
                build_distribution_message(state)
            )
            content.append(
                Node(tag="enc", attrs={"v": "2", "type": "msg"}, content=self._encrypt(skdm))
            )
            self._sent_skdm.add(key)
        body = pad_random_max16(MessageProto(conversation=text).SerializeToString())
        skmsg, self._group_state[key] = group_encrypt(state, body)
        content.append(Node(tag="enc", attrs={"v": "2", "type": "skmsg"}, content=skmsg))
        msg_id = self._node_id("group")
        await self.server.deliver(
            Node(
                tag="message",
                attrs={
                    "id": msg_id,
                    "from": group,
                    "participant": self.jid,
                    "type": "text",
                    "t": str(int(time.time())),
                },
                content=content,
            )
        )
        return msg_id

    def _mine(self, stanza: Node) -> tuple[Node, bool] | None:
        """The ``<enc>`` addressed to this peer, and whether to this peer's own device.

        The fake server's usync answers with the bare user, so the client also
        addresses the user's device 0 (a session of its own, which it starts
        with a ``pkmsg``; the fake peer answers it on its responder ratchet).
        """
        participants = stanza.get_child("participants")
        if participants is None:
            enc = stanza.get_child("enc")
            return None if enc is None else (enc, True)
        for to in participants.get_children("to"):
            jid = to.get_attr("jid")
            if isinstance(jid, PwJID) and jid.user == self.jid.user:
                enc = to.get_child("enc")
                if enc is not None:
                    return enc, jid.device == self.jid.device
        return None

    def _open(self, enc: Node, own_device: bool) -> MessageProto:
        kind, ciphertext = enc.get_str("type"), enc.content_bytes()
        if own_device and kind == "msg":
            return self._decrypt(ciphertext)
        peer = self.signal_peer
        if kind == "pkmsg":
            plaintext = peer.decrypt_pkmsg(ciphertext, client_identity_public=b"")
        else:
            plaintext = peer.decrypt_followup(ciphertext, client_identity_public=b"")
        proto = MessageProto()
        proto.ParseFromString(plaintext)
        return proto

    def read(self) -> list[tuple[str, str]]:
        """Decrypt the client's messages to this peer since the last call: ``(chat, text)``.

        Raises:
            Exception: a message does not decrypt (pywhats' Signal error).
        """
        received = self.server.received
        out: list[tuple[str, str]] = []
        while self._seen < len(received):
            stanza = received[self._seen]
            self._seen += 1
            if stanza.tag != "message":
                continue
            to = stanza.attrs.get("to")
            group = isinstance(to, PwJID) and to.server == "g.us"
            mine = self._mine(stanza)
            if mine is not None:
                proto = self._open(*mine)
                if proto.HasField("sender_key_distribution_message"):
                    dist = proto.sender_key_distribution_message
                    state = process_distribution_message(
                        bytes(dist.axolotl_sender_key_distribution_message)
                    )
                    self._their_group_keys[dist.group_id] = state
                elif not group:
                    out.append((str(to), proto.conversation))
            if group:
                skmsg = next(e for e in stanza.get_children("enc") if e.get_str("type") == "skmsg")
                state = self._their_group_keys[str(to)]
                plaintext, self._their_group_keys[str(to)] = group_decrypt(
                    state, skmsg.content_bytes()
                )
                proto = MessageProto()
                proto.ParseFromString(unpad_random_max16(plaintext))
                out.append((str(to), proto.conversation))
        return out

    def receipts(self) -> set[str]:
        """Ids of the messages the client has answered with a receipt (delivery or retry)."""
        return {n.get_str("id") for n in self.server.received if n.tag == "receipt"}

    async def wait_read(self, count: int, limit: float = 10.0) -> list[tuple[str, str]]:
        """Wait until ``count`` messages from the client have been read; return them."""
        got: list[tuple[str, str]] = []
        deadline = time.monotonic() + limit
        while len(got) < count:
            got += self.read()
            if len(got) >= count:
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"the client sent {len(got)} of {count} messages in time")
            await asyncio.sleep(0.002)
        return got
