"""whatsmeow ``sqlstore`` databases (SQLite or PostgreSQL), schema version 15 (compatible with 8).

That is the schema whatsmeow writes today, and neonize (its Python wrapper)
with it. One database may hold several devices (``whatsmeow_device`` rows,
keyed by JID): :func:`read` returns each as an account, or only the one whose
phone number or LID matches ``jid``. A database at another schema version is
refused: a newer one may hold what this reader does not know; an older one is
upgraded by opening it once with whatsmeow or neonize.

==========================================  ==========================================
whatsmeow                                   wastore
==========================================  ==========================================
``whatsmeow_device``: keys (private         the :class:`~wastore.Device`; public keys are
halves), registration id, signed pre-key    derived; ``adv_details``/``adv_account_sig``/
and signature, ``adv_key``, ``adv_*``,      ``adv_account_sig_key``/``adv_device_sig`` are
``platform``, ``business_name``,            ``account`` (a serialized
``push_name``, ``lid``                      ``ADVSignedDeviceIdentity``)
``facebook_uuid``, ``lid_migration_ts``,    ``Device.client_data["whatsmeow"]`` (JSON);
``companion_meta_nonce``                    ``lid_migrated`` = a migration time is set
``whatsmeow_nct_salt``                      ``Device.nct_salt``
``whatsmeow_identity_keys``                 ``identities``
``whatsmeow_pre_keys`` (``uploaded``)       ``prekeys`` and the pre-key watermarks
``whatsmeow_sessions``                      ``sessions`` (libsignal records, copied)
``whatsmeow_sender_keys``                   ``sender_keys`` under ``<chat>::<sender>``
``whatsmeow_app_state_sync_keys``           ``sync_keys``
``whatsmeow_app_state_version``             ``app_state_versions``
``whatsmeow_app_state_mutation_macs``       ``app_state_macs`` (the newest version of
                                            each index MAC)
``whatsmeow_lid_map`` (shared)              ``lid_pn_mappings`` of every account
``whatsmeow_privacy_tokens``                ``tc_tokens``
``whatsmeow_message_secrets``               ``msg_secrets`` (never expiring, as there)
``whatsmeow_retry_buffer`` (format "wa")    ``sent_messages`` (the serialized message)
==========================================  ==========================================

Left out, as wastore has no place for them: ``whatsmeow_contacts`` and
``whatsmeow_chat_settings`` (the phone syncs them again through app state),
``whatsmeow_event_buffer`` (whatsmeow's guard against processing a decrypted
message twice) and retry-buffer rows in whatsmeow's "fb" format.

Signal addresses are whatsmeow's ``user[_domain].device`` (as Baileys 7's):
:func:`wastore.formats.baileys.signal_address` maps them.

A PostgreSQL source is a ``postgresql://`` URL (needs the ``postgres`` extra):
its whatsmeow tables are read in one snapshot into a private in-memory copy,
which is then read exactly as an SQLite database is.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import uuid
from collections import defaultdict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from pathlib import Path
from typing import Any, Final

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from ..device import Device
from ..errors import ValidationError
from ..jid import JID
from ..keys import KeyPair
from ..portable import AccountBuilder, AccountDump
from ..registry import redact_url
from ..values import AppStateSyncKey, HashState, LidPnMapping, MsgSecret, MutationMAC, TcToken
from ._protos import DecodeError, message_class
from .baileys import signal_address

__all__ = ["CLIENT", "SCHEMA_VERSION", "read"]

CLIENT: Final = "whatsmeow"
SCHEMA_VERSION: Final = 15
"""The whatsmeow schema version this reader knows (compatible with 8)."""

ADV = message_class("ADVSignedDeviceIdentity")
RecordStructure = message_class("RecordStructure")
SenderKeyRecord = message_class("SenderKeyRecordStructure")
PreKeyRecord = message_class("PreKeyRecordStructure")


class _Bad(ValidationError):
    pass


def _pair(private: Any, where: str) -> KeyPair:
    if not isinstance(private, bytes) or len(private) != 32:
        raise _Bad(f"{where}: expected a 32-byte private key")
    public = X25519PrivateKey.from_private_bytes(private).public_key().public_bytes_raw()
    return KeyPair(private=private, public=public)


def _check(cls: Any, data: Any, where: str) -> bytes:
    if not isinstance(data, bytes):
        raise _Bad(f"{where}: expected a binary record")
    try:
        cls().ParseFromString(data)
    except DecodeError:
        raise _Bad(f"{where}: the record cannot be decoded as a libsignal record") from None
    return data


def _jid(text: Any, where: str) -> JID:
    try:
        return JID.parse(text)
    except ValidationError as err:
        raise _Bad(f"{where}: {err}") from None


def _rows(db: sqlite3.Connection, query: str, args: Sequence[Any], where: str) -> list[Any]:
    try:
        return list(db.execute(query, args))
    except sqlite3.DatabaseError as err:
        raise _Bad(f"{where}: cannot read the whatsmeow database ({err})") from None


def read(source: Path | str, *, jid: str | None = None) -> list[AccountDump]:
    """The accounts of a whatsmeow database (``jid``: only that one): an SQLite
    file, or a ``postgresql://`` URL.

    Raises:
        ValidationError: not a whatsmeow database, another schema version, or a
            row that cannot be read (the message names table and row); nothing
            is written.
    """
    if isinstance(source, str) and source.partition("://")[0] in ("postgres", "postgresql"):
        conn = _postgres_copy(source)
        path = Path(redact_url(source))
    else:
        path = Path(source)
        if not path.is_file():
            raise _Bad(f"{path}: no whatsmeow database there")
        try:
            conn = sqlite3.connect(f"file:{path.resolve()}?mode=ro", uri=True)
        except sqlite3.Error as err:
            raise _Bad(f"{path}: cannot open the whatsmeow database ({err})") from None
    with closing(conn) as db:
        try:
            version_rows = list(db.execute("SELECT version, compat FROM whatsmeow_version"))
        except sqlite3.DatabaseError:
            raise _Bad(f"{path}: not a whatsmeow database (no whatsmeow_version table)") from None
        if len(version_rows) != 1:
            raise _Bad(f"{path}: whatsmeow_version does not hold one row")
        version, compat = version_rows[0]
        if version != SCHEMA_VERSION:
            newer = isinstance(version, int) and version > SCHEMA_VERSION
            raise _Bad(
                f"{path}: whatsmeow schema version {version} (compatible with {compat}); this "
                f"wastore reads version {SCHEMA_VERSION}"
                + (
                    ": upgrade wastore to import it"
                    if newer
                    else ": open it once with a current whatsmeow or neonize, which upgrades it"
                )
            )
        return _read(db, path.name, jid)


_TABLES: Final = (
    "whatsmeow_version",
    "whatsmeow_device",
    "whatsmeow_lid_map",
    "whatsmeow_nct_salt",
    "whatsmeow_pre_keys",
    "whatsmeow_identity_keys",
    "whatsmeow_sessions",
    "whatsmeow_sender_keys",
    "whatsmeow_app_state_sync_keys",
    "whatsmeow_app_state_version",
    "whatsmeow_app_state_mutation_macs",
    "whatsmeow_privacy_tokens",
    "whatsmeow_message_secrets",
    "whatsmeow_retry_buffer",
)
"""The tables the reader reads (a PostgreSQL source copies these)."""


def _postgres_copy(url: str) -> sqlite3.Connection:
    """The whatsmeow tables of a PostgreSQL database, read in one snapshot into an
    in-memory SQLite database with the same tables and columns."""
    try:
        import asyncpg
    except ImportError as err:
        raise _Bad(
            "reading a whatsmeow PostgreSQL database needs asyncpg: pip install 'wastore[postgres]'"
        ) from err
    where = redact_url(url)

    async def fetch() -> dict[str, tuple[list[str], list[tuple[Any, ...]]]]:
        conn = await asyncpg.connect(url, timeout=30)
        try:
            async with conn.transaction(isolation="repeatable_read", readonly=True):
                out = {}
                for table in _TABLES:
                    exists = await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", table)
                    if not exists:
                        continue
                    stmt = await conn.prepare(f"SELECT * FROM {table}")
                    columns = [a.name for a in stmt.get_attributes()]
                    out[table] = (columns, [tuple(r) for r in await stmt.fetch()])
                return out
        finally:
            await conn.close()

    # Its own event loop on its own thread: the caller may be inside a running loop.
    try:
        with ThreadPoolExecutor(max_workers=1) as pool:
            tables = pool.submit(asyncio.run, fetch()).result()
    except (TimeoutError, OSError, asyncpg.PostgresError) as err:
        raise _Bad(f"{where}: cannot read the whatsmeow database ({type(err).__name__})") from None
    db = sqlite3.connect(":memory:")
    for table, (columns, rows) in tables.items():
        db.execute(f"CREATE TABLE {table} ({', '.join(columns)})")
        marks = ", ".join("?" * len(columns))
        db.executemany(f"INSERT INTO {table} VALUES ({marks})", [_sqlite_row(r) for r in rows])
    return db


def _sqlite_row(row: tuple[Any, ...]) -> tuple[Any, ...]:
    """A PostgreSQL row as whatsmeow's SQLite dialect holds it (booleans as 0/1, UUIDs as text)."""
    return tuple(
        int(v) if isinstance(v, bool) else str(v) if isinstance(v, uuid.UUID) else v for v in row
    )


_DEVICE_COLUMNS: Final = (
    "jid, lid, registration_id, noise_key, identity_key, signed_pre_key, signed_pre_key_id, "
    "signed_pre_key_sig, adv_key, adv_details, adv_account_sig, adv_account_sig_key, "
    "adv_device_sig, platform, business_name, push_name, facebook_uuid, lid_migration_ts, "
    "companion_meta_nonce"
)


def _read(db: sqlite3.Connection, name: str, jid: str | None) -> list[AccountDump]:
    wanted = None if jid is None else _jid(jid, "jid").user
    devices = _rows(db, f"SELECT {_DEVICE_COLUMNS} FROM whatsmeow_device ORDER BY jid", (), name)
    lid_map = _rows(db, "SELECT lid, pn FROM whatsmeow_lid_map ORDER BY lid", (), name)
    out = []
    for row in devices:
        our_jid = row[0]
        where = f"{name} whatsmeow_device {our_jid!r}"
        pn = _jid(our_jid, where)
        lid = _jid(row[1], where) if row[1] else None
        if wanted is not None and wanted not in (pn.user, lid.user if lid else None):
            continue
        out.append(_account(db, name, row, pn, lid, lid_map))
    return out


def _account(
    db: sqlite3.Connection,
    name: str,
    row: Sequence[Any],
    pn: JID,
    lid: JID | None,
    lid_map: list[Any],
) -> AccountDump:
    (our_jid, _, registration_id, noise, identity, spk, spk_id, spk_sig, adv_key, details,
     account_sig, account_sig_key, device_sig, platform, business, push_name, fb_uuid,
     lid_migration_ts, meta_nonce) = row  # fmt: skip
    where = f"{name} whatsmeow_device {our_jid!r}"
    account = ADV(
        details=details,
        accountSignatureKey=account_sig_key,
        accountSignature=account_sig,
        deviceSignature=device_sig,
    ).SerializeToString()
    salt = _rows(db, "SELECT salt FROM whatsmeow_nct_salt WHERE our_jid=?", (our_jid,), name)
    prekeys = _rows(
        db,
        "SELECT key_id, key, uploaded FROM whatsmeow_pre_keys WHERE jid=? ORDER BY key_id",
        (our_jid,),
        name,
    )
    ids = [p[0] for p in prekeys]
    next_id = max(ids, default=0) + 1
    unsent = [p[0] for p in prekeys if not p[2]]
    bookkeeping = {
        "facebook_uuid": None if fb_uuid is None else str(fb_uuid),
        "lid_migration_ts": lid_migration_ts,
        "companion_meta_nonce": meta_nonce,
    }
    try:
        device = Device(
            pn=pn,
            lid=lid,
            registration_id=registration_id,
            noise_key=_pair(noise, f"{where} noise_key"),
            identity_key=_pair(identity, f"{where} identity_key"),
            signed_pre_key=_pair(spk, f"{where} signed_pre_key"),
            signed_pre_key_id=spk_id,
            signed_pre_key_signature=spk_sig,
            adv_secret_key=adv_key,
            account=account,
            platform=platform or None,
            business_name=business or None,
            push_name=push_name or "",
            nct_salt=salt[0][0] if salt else None,
            lid_migrated=bool(lid_migration_ts),
            next_pre_key_id=next_id,
            first_unupload_pre_key_id=min(unsent, default=next_id),
            server_has_prekeys=any(p[2] for p in prekeys),
            client_data={CLIENT: json.dumps(bookkeeping, separators=(",", ":")).encode()},
        )
    except ValidationError as err:
        raise _Bad(f"{where}: {err}") from None
    b = AccountBuilder(device)

    def each(query: str) -> list[Any]:
        return _rows(db, query, (our_jid,), name)

    for their_id, key in each(
        "SELECT their_id, identity FROM whatsmeow_identity_keys WHERE our_jid=?"
    ):
        w = f"{name} whatsmeow_identity_keys {their_id!r}"
        _guard(w, b.put_identity, signal_address(their_id, w), key)
    for key_id, key, uploaded in prekeys:
        w = f"{name} whatsmeow_pre_keys {key_id}"
        pair = _pair(key, w)
        record = PreKeyRecord(id=key_id, publicKey=b"\x05" + pair.public, privateKey=pair.private)
        _guard(w, b.store_prekey, key_id, record.SerializeToString(), bool(uploaded))
    for their_id, session in each(
        "SELECT their_id, session FROM whatsmeow_sessions WHERE our_jid=?"
    ):
        w = f"{name} whatsmeow_sessions {their_id!r}"
        _guard(w, b.put_session, signal_address(their_id, w), _check(RecordStructure, session, w))
    for chat, sender, key in each(
        "SELECT chat_id, sender_id, sender_key FROM whatsmeow_sender_keys WHERE our_jid=?"
    ):
        w = f"{name} whatsmeow_sender_keys {chat!r}/{sender!r}"
        address = f"{_jid(chat, w)}::{signal_address(sender, w)}"
        _guard(w, b.put_sender_key, address, _check(SenderKeyRecord, key, w))
    for key_id, data, timestamp, fingerprint in each(
        "SELECT key_id, key_data, timestamp, fingerprint FROM whatsmeow_app_state_sync_keys "
        "WHERE jid=?"
    ):
        w = f"{name} whatsmeow_app_state_sync_keys"
        key = _guard(
            w, AppStateSyncKey, key_data=data, fingerprint=fingerprint, timestamp=timestamp
        )
        _guard(w, b.set_sync_key, key_id, key)
    for coll, version, hash_ in each(
        "SELECT name, version, hash FROM whatsmeow_app_state_version WHERE jid=?"
    ):
        w = f"{name} whatsmeow_app_state_version {coll!r}"
        _guard(w, b.set_version, coll, _guard(w, HashState, version=version, hash=hash_))
    macs: dict[tuple[str, int], list[MutationMAC]] = defaultdict(list)
    for coll, version, index_mac, value_mac in each(
        "SELECT name, version, index_mac, value_mac FROM whatsmeow_app_state_mutation_macs "
        "WHERE jid=? ORDER BY name, version"
    ):
        w = f"{name} whatsmeow_app_state_mutation_macs {coll!r} v{version}"
        macs[(coll, version)].append(_guard(w, MutationMAC, index_mac, value_mac))
    for (coll, version), items in macs.items():  # oldest first: the newest version wins
        _guard(
            f"{name} whatsmeow_app_state_mutation_macs", b.put_mutation_macs, coll, version, items
        )
    for lid_user, pn_user in lid_map:
        w = f"{name} whatsmeow_lid_map {lid_user!r}"
        _guard(w, b.put_lid_mapping, _guard(w, LidPnMapping, lid_user, pn_user, 0, 0, ""))
    for their_jid, token, timestamp, sender_ts in each(
        "SELECT their_jid, token, timestamp, sender_timestamp FROM whatsmeow_privacy_tokens "
        "WHERE our_jid=?"
    ):
        w = f"{name} whatsmeow_privacy_tokens {their_jid!r}"
        _guard(w, b.put_tc_token, their_jid, _guard(w, TcToken, token, timestamp, sender_ts))
    secrets = []
    for chat, sender, message_id, key in each(
        "SELECT chat_jid, sender_jid, message_id, key FROM whatsmeow_message_secrets "
        "WHERE our_jid=?"
    ):
        w = f"{name} whatsmeow_message_secrets {message_id!r}"
        secrets.append(
            _guard(w, MsgSecret, chat=chat, sender=sender, msg_id=message_id, secret=key)
        )
    _guard(f"{name} whatsmeow_message_secrets", b.put_msg_secrets, secrets)
    for chat, message_id, fmt, plaintext in each(
        "SELECT chat_jid, message_id, format, plaintext FROM whatsmeow_retry_buffer "
        "WHERE our_jid=? ORDER BY timestamp"
    ):
        if fmt == "wa":
            w = f"{name} whatsmeow_retry_buffer {message_id!r}"
            _guard(w, b.store_sent_message, chat, message_id, plaintext)
    return b.build()


def _guard(where: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)``; a ValidationError it raises gets ``where`` in front."""
    try:
        return fn(*args, **kwargs)
    except _Bad:
        raise
    except ValidationError as err:
        raise _Bad(f"{where}: {err}") from None
