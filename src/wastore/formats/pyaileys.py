"""Read a pyaileys ``MultiFileAuthState`` folder into a wastore account.

pyaileys keeps an account as ``creds.json`` (its ``AuthenticationCreds``) plus
one JSON file per key, ``{family}-{id}.json`` (``/`` in the id written as
``__``, ``:`` as ``-``), every file in Buffer-JSON (bytes as
``{"type": "Buffer", "data": "<base64>"}``). These are pyaileys' own encodings
— its Signal records are libsignal protobufs already, its pre-keys are key
pairs, its app-state versions carry the whole index -> value MAC map — not the
libsignal-node JSON of a Baileys folder (:mod:`wastore.formats.baileys`).

Everything maps as :class:`wastore.interop.pyaileys.WastoreAuthState` stores
it, so the imported account is the one pyaileys would have built on wastore:
the client resumes on it without pairing again. A file that cannot be read —
bad JSON, an unknown family, a value pyaileys never writes — raises
:class:`~wastore.ValidationError` naming the file; nothing is written (this
module only reads; ``Container.import_account`` writes the result in one
transaction). pyaileys itself is not needed: ``creds.json`` is read as
pyaileys' loader reads it (fields it does not find take pyaileys' defaults).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

from ..device import Device
from ..errors import StoreError, ValidationError
from ..interop.pyaileys import _bufferjson as bufferjson
from ..interop.pyaileys._creds import apply_creds
from ..interop.pyaileys._keystore import FAMILIES, Parsed, parse_item
from ..interop.pyaileys._records import encode_prekey
from ..jid import JID
from ..portable import AccountBuilder, AccountDump
from ..values import TcToken

__all__ = ["read"]

CREDS: Final = "creds.json"
# Longest first: "sender-key-memory-..." is not a "sender-key-..." file.
_PREFIXES: Final = sorted(FAMILIES, key=len, reverse=True)


def _load(path: Path) -> Any:
    try:
        text = path.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise ValidationError(f"{path}: cannot read the file ({err})") from None
    try:
        return bufferjson.loads(text)
    except ValueError as err:
        raise ValidationError(f"{path}: not pyaileys' JSON ({err})") from None


def _key_of(family: str, stem: str, path: Path) -> str:
    """The key id pyaileys wrote as the file name ``stem`` (its ``_fix_filename``
    turned ``/`` into ``__`` and ``:`` into ``-``)."""
    if family == "sender-key":
        # "{group}::{user}::{device}": the separators became "--"; a group id may hold "-"
        parts = stem.rsplit("--", 2)
        if len(parts) != 3:
            raise ValidationError(f"{path}: not a sender-key file name (group--user--device)")
        return "::".join(parts)
    if family == "app-state-sync-key":
        return stem.replace("__", "/")  # base64 ids; base64 has no "_"
    return stem


def _device(creds: dict[str, Any], path: Path) -> Device:
    device = Device.new()
    try:
        apply_creds(device, creds)
    except StoreError as err:
        raise ValidationError(f"{path}: {err}") from None
    return device


def read(source: Path, *, jid: str | None = None) -> list[AccountDump]:
    """The account of a pyaileys ``MultiFileAuthState`` folder.

    Args:
        source: the folder (``creds.json`` and the key files).
        jid: when given, the folder's account must have this phone-number or
            LID JID (user part compared).

    Raises:
        ValidationError: the folder or one of its files cannot be read (the message
            names the file), or the account is not ``jid``.
    """
    folder = Path(source)
    creds_path = folder / CREDS
    if not folder.is_dir():
        raise ValidationError(f"{folder}: not a folder (a pyaileys MultiFileAuthState folder)")
    if not creds_path.is_file():
        raise ValidationError(f"{creds_path}: missing (not a pyaileys MultiFileAuthState folder)")
    creds = _load(creds_path)
    if not isinstance(creds, dict):
        raise ValidationError(f"{creds_path}: the credentials are not a JSON object")
    device = _device(creds, creds_path)
    if jid is not None:
        wanted = JID.parse(jid).user
        if wanted not in {j.user for j in (device.pn, device.lid) if j is not None}:
            raise ValidationError(f"{folder}: the account of this folder is not {jid}")

    parsed = Parsed()
    for path in sorted(folder.iterdir()):
        name = path.name
        if name == CREDS or not name.endswith(".json") or name.startswith("."):
            continue  # pyaileys writes and reads only *.json files
        stem = name[: -len(".json")]
        family = next((f for f in _PREFIXES if stem.startswith(f + "-")), None)
        if family is None:
            raise ValidationError(
                f"{path}: not a file of a key family pyaileys writes ({', '.join(FAMILIES)})"
            )
        key = _key_of(family, stem[len(family) + 1 :], path)
        value = _load(path)
        if value is None:
            continue  # a key stored as null is a key that is not there
        try:
            parse_item(parsed, family, key, value)
        except StoreError as err:
            raise ValidationError(f"{path}: {err}") from None

    builder = AccountBuilder(device)
    try:
        _build(builder, parsed, device.first_unupload_pre_key_id)
        return [builder.build()]
    except StoreError as err:
        raise ValidationError(f"{folder}: {err}") from None


def _build(b: AccountBuilder, p: Parsed, first_unuploaded: int) -> None:
    for address, record in p.sessions.items():
        if record is not None:
            b.put_session(address, record)
    for address, key in p.identities.items():
        if key is not None:
            b.put_identity(address, key)
    for key_id, pair in p.prekeys.items():
        if pair is not None:
            b.store_prekey(key_id, encode_prekey(key_id, *pair), key_id < first_unuploaded)
    for address, record in p.sender_keys.items():
        if record is not None:
            b.put_sender_key(address, record)
    for group, rows in p.memories.items():
        if rows:
            b.set_sender_key_status(group, rows)
    for sync_key_id, sync_key in p.sync_keys.items():
        if sync_key is not None:
            b.set_sync_key(sync_key_id, sync_key)
    for name, parts in p.collections.items():
        if parts is not None:
            state, macs = parts
            b.set_version(name, state)
            if macs:
                b.put_mutation_macs(name, state.version, macs)
    for jid, token in p.tc_tokens.items():
        if token is not None:
            b.put_tc_token(jid, TcToken(token=token[0], token_timestamp=token[1]))
