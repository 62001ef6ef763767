"""Rows <-> values, shared by the SQL backends.

Decoding is strict: a value of the wrong type or length raises
:class:`CorruptRecordError` naming the table and key, never "missing".
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping, Sequence
from typing import Any, Final

from ...device import Device
from ...errors import CorruptRecordError, StoreError
from ...jid import JID
from ...keys import KeyPair
from ...values import (
    AppStateSyncKey,
    DeviceInfo,
    DeviceListRecord,
    HashState,
    LidPnMapping,
    MsgSecret,
    TcToken,
)

DEVICE_COLUMNS: Final = (
    "pn",
    "lid",
    "pn_user",
    "lid_user",
    "registration_id",
    "noise_key_private",
    "noise_key_public",
    "identity_key_private",
    "identity_key_public",
    "signed_pre_key_private",
    "signed_pre_key_public",
    "signed_pre_key_id",
    "signed_pre_key_signature",
    "adv_secret_key",
    "account",
    "push_name",
    "app_version_primary",
    "app_version_secondary",
    "app_version_tertiary",
    "app_version_last_fetched_ms",
    "props_hash",
    "next_pre_key_id",
    "first_unupload_pre_key_id",
    "server_has_prekeys",
    "edge_routing_info",
    "nct_salt",
    "server_cert_chain",
    "login_counter",
    "lid_migrated",
    "read_receipts_disabled",
    "last_signed_pre_key_rotation_ms",
    "platform",
    "business_name",
    "registered",
    "pairing_code",
    "pairing_ephemeral_key_private",
    "pairing_ephemeral_key_public",
    "app_state_key_id",
    "last_account_sync_timestamp",
    "unarchive_chats",
    "default_disappearing_expiration",
    "default_disappearing_timestamp",
    "client_data",
    "saved_at_ms",
)


def device_to_row(d: Device, saved_at_ms: int) -> tuple[Any, ...]:
    """The values of :data:`DEVICE_COLUMNS` for ``d`` (booleans as Python bools)."""
    return (
        None if d.pn is None else str(d.pn),
        None if d.lid is None else str(d.lid),
        None if d.pn is None else d.pn.user,
        None if d.lid is None else d.lid.user,
        d.registration_id,
        d.noise_key.private,
        d.noise_key.public,
        d.identity_key.private,
        d.identity_key.public,
        d.signed_pre_key.private,
        d.signed_pre_key.public,
        d.signed_pre_key_id,
        d.signed_pre_key_signature,
        d.adv_secret_key,
        d.account,
        d.push_name,
        d.app_version[0],
        d.app_version[1],
        d.app_version[2],
        d.app_version_last_fetched_ms,
        d.props_hash,
        d.next_pre_key_id,
        d.first_unupload_pre_key_id,
        d.server_has_prekeys,
        d.edge_routing_info,
        d.nct_salt,
        d.server_cert_chain,
        d.login_counter,
        d.lid_migrated,
        d.read_receipts_disabled,
        d.last_signed_pre_key_rotation_ms,
        d.platform,
        d.business_name,
        d.registered,
        d.pairing_code,
        None if d.pairing_ephemeral_key is None else d.pairing_ephemeral_key.private,
        None if d.pairing_ephemeral_key is None else d.pairing_ephemeral_key.public,
        d.app_state_key_id,
        d.last_account_sync_timestamp,
        d.unarchive_chats,
        d.default_disappearing_expiration,
        d.default_disappearing_timestamp,
        encode_client_data(d.client_data),
        saved_at_ms,
    )


def device_row(d: Device, saved_at_ms: int) -> tuple[Any, ...]:
    """The device row as it is written: :func:`device_to_row`, then its checksum."""
    from .checksum import device

    row = device_to_row(d, saved_at_ms)
    return (*row, device(row))


def encode_client_data(entries: Mapping[str, bytes]) -> str | None:
    """``Device.client_data`` as compact JSON ``{"client": "<base64>"}`` (None when empty)."""
    if not entries:
        return None
    return json.dumps(
        {k: base64.b64encode(entries[k]).decode("ascii") for k in sorted(entries)},
        separators=(",", ":"),
    )


def decode_client_data(value: Any) -> dict[str, bytes]:
    if value is None:
        return {}
    if type(value) is not str:
        raise TypeError(f"client_data: expected JSON text, found {type(value).__name__}")
    try:
        raw = json.loads(value)
    except json.JSONDecodeError:
        raise ValueError("client_data is not valid JSON") from None
    if not isinstance(raw, dict) or not all(isinstance(x, str) for x in raw.values()):
        raise ValueError("client_data is not an object of base64 strings")
    try:
        return {k: base64.b64decode(x.encode("ascii"), validate=True) for k, x in raw.items()}
    except (binascii.Error, UnicodeEncodeError):
        raise ValueError("client_data holds invalid base64") from None


def _bool(value: Any, what: str) -> bool:
    if value is True or value is False:
        return value
    if type(value) is int and value in (0, 1):
        return bool(value)
    raise CorruptRecordError(f"{what}: expected a boolean, found {type(value).__name__}")


def _bytes(value: Any) -> bytes:
    # asyncpg returns bytes; sqlite3 returns bytes for BLOB. Anything else is corrupt.
    if type(value) is bytes:
        return value
    raise TypeError(f"expected bytes, found {type(value).__name__}")


def _opt_bytes(value: Any) -> bytes | None:
    return None if value is None else _bytes(value)


def _opt_key_pair(private: Any, public: Any) -> KeyPair | None:
    if private is None and public is None:
        return None
    return KeyPair(private=_bytes(private), public=_bytes(public))


def _opt_jid(value: Any) -> JID | None:
    if value is None:
        return None
    if type(value) is not str:
        raise TypeError(f"expected a JID string, found {type(value).__name__}")
    return JID.parse(value)


def row_to_device(row: Sequence[Any], device_id: int | None) -> Device:
    """Decode a row of :data:`DEVICE_COLUMNS` (``saved_at_ms`` may be left off)."""
    what = "the device row" if device_id is None else f"device row of account {device_id}"
    try:
        r = row
        return Device(
            pn=_opt_jid(r[0]),
            lid=_opt_jid(r[1]),
            registration_id=r[4],
            noise_key=KeyPair(private=_bytes(r[5]), public=_bytes(r[6])),
            identity_key=KeyPair(private=_bytes(r[7]), public=_bytes(r[8])),
            signed_pre_key=KeyPair(private=_bytes(r[9]), public=_bytes(r[10])),
            signed_pre_key_id=r[11],
            signed_pre_key_signature=_bytes(r[12]),
            adv_secret_key=_bytes(r[13]),
            account=_opt_bytes(r[14]),
            push_name=r[15],
            app_version=(r[16], r[17], r[18]),
            app_version_last_fetched_ms=r[19],
            props_hash=r[20],
            next_pre_key_id=r[21],
            first_unupload_pre_key_id=r[22],
            server_has_prekeys=_bool(r[23], what),
            edge_routing_info=_opt_bytes(r[24]),
            nct_salt=_opt_bytes(r[25]),
            server_cert_chain=_opt_bytes(r[26]),
            login_counter=r[27],
            lid_migrated=_bool(r[28], what),
            read_receipts_disabled=_bool(r[29], what),
            last_signed_pre_key_rotation_ms=r[30],
            platform=r[31],
            business_name=r[32],
            registered=_bool(r[33], what),
            pairing_code=r[34],
            pairing_ephemeral_key=_opt_key_pair(r[35], r[36]),
            app_state_key_id=_opt_bytes(r[37]),
            last_account_sync_timestamp=r[38],
            unarchive_chats=_bool(r[39], what),
            default_disappearing_expiration=r[40],
            default_disappearing_timestamp=r[41],
            client_data=decode_client_data(r[42]),
        )
    except CorruptRecordError:
        raise
    except (StoreError, TypeError, ValueError, IndexError) as err:
        # The cause is described, not chained: a validation message could name a
        # field of a secret, never its value, but a TypeError of a driver might.
        raise CorruptRecordError(f"{what} cannot be decoded: {_safe(err)}") from None


def _safe(err: BaseException) -> str:
    text = str(err)
    return text if len(text) <= 200 else text[:200] + "…"


def blob_or_none(value: Any, table: str, key: object) -> bytes | None:
    """A stored opaque record: bytes, or None when the row is absent."""
    if value is None or type(value) is bytes:
        return value
    raise CorruptRecordError(
        f"{table} row {key!r} holds a {type(value).__name__} where bytes were stored"
    )


def blob(value: Any, table: str, key: object) -> bytes:
    if type(value) is bytes:
        return value
    raise blob_error(value, table, key)


def blob_error(value: Any, table: str, key: object) -> CorruptRecordError:
    """The error for a record that is not bytes."""
    return CorruptRecordError(
        f"{table} row {key!r} holds a {type(value).__name__} where bytes were stored"
    )


def identity_key(value: Any, address: str) -> bytes | None:
    if value is None:
        return None
    if type(value) is bytes and len(value) == 32:
        return value
    size = len(value) if isinstance(value, bytes | str) else "?"
    raise CorruptRecordError(
        f"identity key of {address!r} is corrupt (expected 32 bytes, found "
        f"{type(value).__name__} of length {size})"
    )


def sync_key(row: Sequence[Any], key_id: bytes) -> AppStateSyncKey:
    try:
        return AppStateSyncKey(
            key_data=_bytes(row[0]), fingerprint=_bytes(row[1]), timestamp=row[2]
        )
    except (StoreError, TypeError, ValueError) as err:
        raise CorruptRecordError(
            f"sync key {key_id.hex()} cannot be decoded: {_safe(err)}"
        ) from None


def hash_state(row: Sequence[Any] | None, name: str) -> HashState:
    if row is None:
        return HashState()
    try:
        return HashState(version=row[0], hash=_bytes(row[1]))
    except (StoreError, TypeError, ValueError) as err:
        raise CorruptRecordError(
            f"app-state version of collection {name!r} cannot be decoded: {_safe(err)}"
        ) from None


def lid_mapping(row: Sequence[Any]) -> LidPnMapping:
    try:
        return LidPnMapping(
            lid=row[0],
            phone_number=row[1],
            created_at=row[2],
            updated_at=row[3],
            learning_source=row[4],
        )
    except (StoreError, TypeError, ValueError) as err:
        raise CorruptRecordError(
            f"LID mapping {row[0]!r} cannot be decoded: {_safe(err)}"
        ) from None


def encode_devices(devices: Sequence[DeviceInfo]) -> str:
    """Device list entries as compact JSON: ``[[device_id, key_index, is_hosted], ...]``."""
    return json.dumps(
        [[d.device_id, d.key_index, 1 if d.is_hosted else 0] for d in devices],
        separators=(",", ":"),
    )


def device_list(row: Sequence[Any], user: str) -> DeviceListRecord:
    try:
        entries = json.loads(row[0])
        if not isinstance(entries, list):
            raise TypeError("device entries are not a list")
        devices = tuple(
            DeviceInfo(device_id=e[0], key_index=e[1], is_hosted=bool(e[2])) for e in entries
        )
        return DeviceListRecord(
            user=user, devices=devices, timestamp=row[1], phash=row[2], raw_id=row[3]
        )
    except (StoreError, TypeError, ValueError, IndexError, KeyError) as err:
        raise CorruptRecordError(
            f"device list of user {user!r} cannot be decoded: {_safe(err)}"
        ) from None


def tc_token(row: Sequence[Any], jid: str) -> TcToken:
    try:
        return TcToken(token=_bytes(row[0]), token_timestamp=row[1], sender_timestamp=row[2])
    except (StoreError, TypeError, ValueError) as err:
        raise CorruptRecordError(f"tc token of {jid!r} cannot be decoded: {_safe(err)}") from None


def msg_secret(row: Sequence[Any], chat: str, sender: str, msg_id: str) -> MsgSecret:
    try:
        return MsgSecret(
            chat=chat,
            sender=sender,
            msg_id=msg_id,
            secret=_bytes(row[0]),
            expires_at=row[1],
            message_ts=row[2],
        )
    except (StoreError, TypeError, ValueError) as err:
        raise CorruptRecordError(
            f"message secret of {msg_id!r} cannot be decoded: {_safe(err)}"
        ) from None
