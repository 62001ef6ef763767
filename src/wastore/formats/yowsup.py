"""yowsup 3.x accounts: its ``LiteAxolotlStore`` database and profile config.

yowsup keeps an account in a profile folder: ``axolotl.db`` (SQLite, written by
``LiteAxolotlStore``, python-axolotl's records) and ``config.json`` (yowsup's
profile config). :func:`read` takes the folder or the database file (then a
``config.json`` beside it is read too, when there is one).

======================================  ============================================
yowsup                                  wastore
======================================  ============================================
``identities`` row ``recipient_id -1``  ``Device.identity_key``, ``registration_id``
other ``identities`` rows               ``identities`` (the 32-byte key)
``signed_prekeys``                      the newest is the Device's signed pre-key
                                        (id, key pair, signature, time); the others
                                        ``signed_prekeys``
``prekeys`` (``sent_to_server``)        ``prekeys`` (``uploaded``), and the Device's
                                        pre-key watermarks
``sessions`` (recipient, device)        ``sessions`` under the phone-number JID
``sender_keys`` (group, sender)         ``sender_keys`` under ``<group>::<sender>``
``config.json``: ``phone``,             ``Device.pn``, ``push_name``, ``noise_key``,
``pushname``, ``client_static_keypair``,  ``edge_routing_info``; the whole config (it
``edge_routing_info``                   holds yowsup's login password) in
                                        ``Device.client_data["yowsup"]``
======================================  ============================================

yowsup names peers by phone number (``recipient_id``) and talks to the one
device Signal then knew per number, libsignal's device id 1 (its sessions are
stored with ``device_id`` 1): that is the phone, WhatsApp device 0, so device
ids 0 and 1 both map to ``<number>@s.whatsapp.net``. A group id with ``@`` is a
group JID; one without is the user part of a ``g.us`` JID. The records are
python-axolotl's, the same bytes wastore keeps: they are copied after a check
that they decode.

Not in yowsup, so made new: the ADV secret key (yowsup registers as a primary
device and has none) and, without a ``config.json``, the noise key.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any, Final

from ..device import ADV_SECRET_LEN, Device
from ..errors import ValidationError
from ..jid import DEFAULT_USER_SERVER, GROUP_SERVER, JID
from ..keys import KeyPair
from ..portable import AccountBuilder, AccountDump
from ._protos import DecodeError, message_class

__all__ = ["CLIENT", "DB_NAME", "read"]

CLIENT: Final = "yowsup"
DB_NAME: Final = "axolotl.db"
CONFIG_NAME: Final = "config.json"
_OWN: Final = -1

RecordStructure = message_class("RecordStructure")
SenderKeyRecord = message_class("SenderKeyRecordStructure")
PreKeyRecord = message_class("PreKeyRecordStructure")
SignedPreKeyRecord = message_class("SignedPreKeyRecordStructure")


class _Bad(ValidationError):
    pass


def _parse(cls: Any, data: Any, where: str) -> Any:
    if not isinstance(data, bytes):
        raise _Bad(f"{where}: expected a binary record, found {type(data).__name__}")
    msg = cls()
    try:
        msg.ParseFromString(data)
    except DecodeError:
        raise _Bad(f"{where}: the record cannot be decoded (not a python-axolotl record)") from None
    return msg


def _public(key: Any, where: str) -> bytes:
    if not isinstance(key, bytes) or len(key) not in (32, 33):
        raise _Bad(f"{where}: expected a 33-byte public key")
    if len(key) == 33:
        if key[0] != 5:
            raise _Bad(f"{where}: not a Curve25519 (0x05) public key")
        return key[1:]
    return bytes(key)


def _user(recipient: Any, where: str) -> JID:
    """The JID of a yowsup recipient id (a phone number, sometimes a JID)."""
    text = str(recipient) if isinstance(recipient, int) else recipient
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    if not isinstance(text, str) or not text:
        raise _Bad(f"{where}: recipient id {recipient!r:.40} is not a phone number")
    try:
        if "@" in text:
            return JID.parse(text)
        return JID(user=text, server=DEFAULT_USER_SERVER)
    except ValidationError as err:
        raise _Bad(f"{where}: recipient id {text[:40]!r}: {err}") from None


def _address(recipient: Any, device_id: Any, where: str) -> str:
    jid = _user(recipient, where)
    if type(device_id) is not int or device_id < 0:
        raise _Bad(f"{where}: device id {device_id!r:.20} is not a number")
    device = 0 if device_id in (0, 1) else device_id
    try:
        return JID(user=jid.user, server=jid.server, device=jid.device or device).signal_address()
    except ValidationError as err:
        raise _Bad(f"{where}: {err}") from None


def _group(group_id: Any, where: str) -> str:
    text = group_id.decode() if isinstance(group_id, bytes) else group_id
    if not isinstance(text, str) or not text:
        raise _Bad(f"{where}: group id {group_id!r:.40} is not a group")
    try:
        return str(JID.parse(text) if "@" in text else JID(user=text, server=GROUP_SERVER))
    except ValidationError as err:
        raise _Bad(f"{where}: {err}") from None


def _locate(source: Path) -> tuple[Path, Path | None]:
    if source.is_dir():
        db = source / DB_NAME
        config = source / CONFIG_NAME
    else:
        db = source
        config = source.parent / CONFIG_NAME
    if not db.is_file():
        raise _Bad(f"{source}: no yowsup database ({DB_NAME}) there")
    return db, (config if config.is_file() else None)


def _config(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    try:
        data = json.loads(path.read_bytes())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise _Bad(f"{path}: not a readable yowsup config ({err.__class__.__name__})") from None
    if not isinstance(data, dict):
        raise _Bad(f"{path}: not a yowsup config (not a JSON object)")
    return data


def _config_b64(config: dict[str, Any], key: str) -> bytes | None:
    value = config.get(key)
    if value is None:
        return None
    try:
        return base64.b64decode(str(value), validate=True)
    except binascii.Error:
        raise _Bad(f"{CONFIG_NAME}: {key} is not base64") from None


def _noise_key(config: dict[str, Any]) -> KeyPair:
    raw = _config_b64(config, "client_static_keypair")
    if raw is None:
        return KeyPair.generate()
    if len(raw) != 64:
        raise _Bad(f"{CONFIG_NAME}: client_static_keypair is not 64 bytes")
    pair = KeyPair(private=raw[:32], public=raw[32:])  # yowsup writes private ‖ public
    if not pair.is_consistent():
        raise _Bad(f"{CONFIG_NAME}: client_static_keypair's public key does not match")
    return pair


def _rows(db: sqlite3.Connection, query: str, where: str) -> list[tuple[Any, ...]]:
    try:
        return list(db.execute(query))
    except sqlite3.DatabaseError as err:
        raise _Bad(f"{where}: cannot read the yowsup database ({err})") from None


def read(source: Path, *, jid: str | None = None) -> list[AccountDump]:
    """The account of a yowsup profile folder or ``axolotl.db``.

    Args:
        source: the profile folder, or the database file.
        jid: the account's phone-number JID when no ``config.json`` names it; when
            the config names another number, nothing is returned.

    Raises:
        ValidationError: the database or config cannot be read, or a row is
            malformed (the message names the table and row); nothing is written.
    """
    db_path, config_path = _locate(Path(source))
    config = _config(config_path)
    uri = f"file:{db_path.resolve()}?mode=ro"
    try:
        conn = sqlite3.connect(uri, uri=True)
    except sqlite3.Error as err:
        raise _Bad(f"{db_path}: cannot open the yowsup database ({err})") from None
    with closing(conn) as db:
        db.text_factory = bytes
        return _read(db, db_path, config, jid)


def _text(value: Any) -> Any:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def _read(
    db: sqlite3.Connection, db_path: Path, config: dict[str, Any], jid: str | None
) -> list[AccountDump]:
    name = db_path.name
    own = _rows(
        db,
        f"SELECT registration_id, public_key, private_key FROM identities "
        f"WHERE recipient_id = {_OWN}",
        f"{name} identities",
    )
    if not own:
        raise _Bad(f"{name}: no own identity (identities row recipient_id -1)")
    registration_id, public, private = own[0]
    where = f"{name} identities row recipient_id -1"
    if not isinstance(private, bytes) or len(private) != 32:
        raise _Bad(f"{where}: the private key is not 32 bytes")
    identity = KeyPair(private=private, public=_public(public, where))
    if not identity.is_consistent():
        raise _Bad(f"{where}: the public key does not match the private key")

    signed = []
    for pid, record in _rows(
        db, "SELECT prekey_id, record FROM signed_prekeys ORDER BY _id", f"{name} signed_prekeys"
    ):
        msg = _parse(SignedPreKeyRecord, record, f"{name} signed_prekeys row {pid}")
        signed.append((pid, record, msg))
    if not signed:
        raise _Bad(f"{name}: no signed pre-key (table signed_prekeys is empty)")
    current_id, _, current = signed[-1]  # yowsup's latest is the last stored
    spk = KeyPair(
        private=current.privateKey,
        public=_public(current.publicKey, f"{name} signed_prekeys row {current_id}"),
    )

    prekeys = []
    for pid, sent, record in _rows(
        db, "SELECT prekey_id, sent_to_server, record FROM prekeys ORDER BY prekey_id", name
    ):
        _parse(PreKeyRecord, record, f"{name} prekeys row {pid}")
        prekeys.append((pid, bool(sent), record))
    ids = [p[0] for p in prekeys]
    next_id = max(ids, default=0) + 1
    unsent = [p[0] for p in prekeys if not p[1]]

    phone = config.get("phone")
    if phone is not None:
        number = _user(str(phone), f"{CONFIG_NAME} phone")
        if jid is not None and _user(jid, "jid").user != number.user:
            return []
        pn: JID | None = number
    elif jid is not None:
        pn = _user(jid, "jid")
    else:
        pn = None
    routing = _config_b64(config, "edge_routing_info")
    try:
        device = Device(
            noise_key=_noise_key(config),
            identity_key=identity,
            signed_pre_key=spk,
            signed_pre_key_id=current_id,
            signed_pre_key_signature=current.signature,
            last_signed_pre_key_rotation_ms=current.timestamp,
            registration_id=registration_id,
            adv_secret_key=secrets.token_bytes(ADV_SECRET_LEN),
            pn=pn,
            push_name=_text(config.get("pushname")) or "",
            edge_routing_info=routing,
            next_pre_key_id=next_id,
            first_unupload_pre_key_id=min(unsent, default=next_id),
            server_has_prekeys=any(p[1] for p in prekeys),
            client_data=(
                {CLIENT: json.dumps(config, separators=(",", ":")).encode()} if config else {}
            ),
        )
    except ValidationError as err:
        raise _Bad(f"{name}: the account's own keys: {err}") from None

    b = AccountBuilder(device)
    for pid, record, _ in signed[:-1]:
        b.store_signed_prekey(pid, record)
    for pid, sent, record in prekeys:
        b.store_prekey(pid, record, sent)
    for recipient, key in _rows(
        db,
        f"SELECT recipient_id, public_key FROM identities WHERE recipient_id != {_OWN}",
        name,
    ):
        where = f"{name} identities row {_text(recipient)!r}"
        b.put_identity(_address(_text(recipient), 0, where), _public(key, where))
    for recipient, device_id, record in _rows(
        db, "SELECT recipient_id, device_id, record FROM sessions", name
    ):
        where = f"{name} sessions row {_text(recipient)!r}"
        _parse(RecordStructure, record, where)
        b.put_session(_address(_text(recipient), device_id, where), record)
    for group_id, sender_id, record in _rows(
        db, "SELECT group_id, sender_id, record FROM sender_keys", name
    ):
        where = f"{name} sender_keys row {_text(group_id)!r}/{_text(sender_id)!r}"
        _parse(SenderKeyRecord, record, where)
        address = _address(_text(sender_id), 0, where)
        b.put_sender_key(f"{_group(_text(group_id), where)}::{address}", record)
    return [b.build()]
