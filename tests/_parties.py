"""python-axolotl accounts over wastore for the account-moving tests (``Party``)."""

from __future__ import annotations

import base64
from typing import Any

import wastore
from wastore import JID
from wastore.interop.axolotl import SyncAccount, SyncContainer, axolotl_address, sender_key_name

# python-axolotl after wastore.interop.axolotl, which imports it quietly
from axolotl.ecc.djbec import DjbECPublicKey  # isort: skip
from axolotl.groups.groupcipher import GroupCipher  # isort: skip
from axolotl.groups.groupsessionbuilder import GroupSessionBuilder  # isort: skip
from axolotl.identitykey import IdentityKey  # isort: skip
from axolotl.protocol.prekeywhispermessage import PreKeyWhisperMessage  # isort: skip
from axolotl.protocol.senderkeydistributionmessage import (  # isort: skip
    SenderKeyDistributionMessage,
)
from axolotl.protocol.whispermessage import WhisperMessage  # isort: skip
from axolotl.sessionbuilder import SessionBuilder  # isort: skip
from axolotl.sessioncipher import SessionCipher  # isort: skip
from axolotl.state.prekeybundle import PreKeyBundle  # isort: skip


def b64(data: bytes) -> str:
    return base64.b64encode(bytes(data)).decode("ascii")


def unb64(text: str) -> bytes:
    return base64.b64decode(text)


def say(*parts: object) -> None:
    """One line of the conversation's transcript (shown with ``pytest -s``)."""
    print("  ", *parts)


class Party:
    """A python-axolotl account over wastore (a peer, or the imported Baileys account)."""

    def __init__(self, account: SyncAccount) -> None:
        self.account = account
        self.store = account.store

    def cipher(self, jid: str) -> SessionCipher:
        a = axolotl_address(jid)
        s = self.store
        return SessionCipher(s, s, s, s, a.getName(), a.getDeviceId())

    def send(self, jid: str, text: bytes) -> tuple[str, bytes]:
        message = self.cipher(jid).encrypt(text)
        self.store.flush()
        return ("pkmsg" if message.getType() == 3 else "msg"), bytes(message.serialize())

    def receive(self, jid: str, wire: tuple[str, bytes]) -> bytes:
        c = self.cipher(jid)
        if wire[0] == "pkmsg":
            plaintext = c.decryptPkmsg(PreKeyWhisperMessage(serialized=wire[1]))
        else:
            plaintext = c.decryptMsg(WhisperMessage(serialized=wire[1]))
        self.store.flush()
        return bytes(plaintext)

    def start_session(self, jid: str, bundle: dict[str, Any]) -> None:
        spk = bundle["signedPreKey"]
        pre = bundle["preKey"] if "preKey" in bundle else bundle["preKeys"][0]
        b = PreKeyBundle(
            bundle["registrationId"],
            0,
            pre["id"],
            DjbECPublicKey(unb64(pre["public"])[1:]),
            spk["id"],
            DjbECPublicKey(unb64(spk["public"])[1:]),
            unb64(spk["signature"]),
            IdentityKey(DjbECPublicKey(unb64(bundle["identity"])[1:])),
        )
        a = axolotl_address(jid)
        s = self.store
        SessionBuilder(s, s, s, s, a.getName(), a.getDeviceId()).processPreKeyBundle(b)
        s.flush()

    def bundle(self) -> dict[str, Any]:
        [record] = self.store.generate_pre_keys(1)
        self.store.mark_pre_keys_uploaded([record.getId()])
        d = self.account.device()
        return {
            "registrationId": d.registration_id,
            "identity": b64(b"\x05" + d.identity_key.public),
            "signedPreKey": {
                "id": d.signed_pre_key_id,
                "public": b64(b"\x05" + d.signed_pre_key.public),
                "signature": b64(d.signed_pre_key_signature),
            },
            "preKey": {
                "id": record.getId(),
                "public": b64(record.getKeyPair().getPublicKey().serialize()),
            },
        }

    def group_distribution(self, group: str, me: str) -> bytes:
        skdm = GroupSessionBuilder(self.store).create(sender_key_name(group, me))
        self.store.flush()
        return bytes(skdm.serialize())

    def group_process(self, group: str, author: str, skdm: bytes) -> None:
        GroupSessionBuilder(self.store).process(
            sender_key_name(group, author), SenderKeyDistributionMessage(serialized=skdm)
        )
        self.store.flush()

    def group_send(self, group: str, me: str, text: bytes) -> bytes:
        data = GroupCipher(self.store, sender_key_name(group, me)).encrypt(text)
        self.store.flush()
        return bytes(data)

    def group_receive(self, group: str, author: str, data: bytes) -> bytes:
        plaintext = GroupCipher(self.store, sender_key_name(group, author)).decrypt(data)
        self.store.flush()
        return bytes(plaintext)


def new_party(container: SyncContainer, jid: str) -> Party:
    account = container.account(container.create_device())
    parsed = JID.parse(jid)
    cmd = wastore.SetLid(parsed) if parsed.server == "lid" else wastore.SetId(parsed)
    account.run(account.manager.process_command(cmd))
    account.flush()
    return Party(account)


def pad(text: bytes) -> bytes:
    """yowsup's random padding: n bytes of value n (1..255); here always 3."""
    return text + b"\x03" * 3


def unpad(data: bytes) -> bytes:
    return data[: -data[-1]]
