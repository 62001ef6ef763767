"""``WastoreKeyStore``: pyaileys' ``SignalKeyStore`` over one wastore account.

Every key family pyaileys 0.1.5 reads or writes maps to wastore's typed rows
(:data:`FAMILIES`); nothing is kept as an opaque blob per key. A family
pyaileys does not use is refused with :class:`~wastore.ValidationError`.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Final

from ... import _validate as v
from ...contract import Backend, PortableContainer
from ...errors import StoreError, ValidationError
from ...jid import JID
from ...keys import DJB_TYPE, KEY_LEN
from ...manager import PersistenceManager
from ...values import HASH_STATE_LEN, MAC_LEN, AppStateSyncKey, HashState, MutationMAC, TcToken
from ._addresses import (
    pyaileys_address,
    pyaileys_sender_key_name,
    sender_key_address,
    signal_address,
)
from ._records import (
    decode_prekey,
    decode_sync_key_data,
    encode_prekey,
    encode_sync_key_data,
    normalize_sender_key_record,
)

FAMILIES: Final = {
    "session": "sessions (libsignal RecordStructure) under the signal address",
    "identity-key": "identities: the 32-byte key (pyaileys' 33-byte form without 0x05)",
    "pre-key": "prekeys: libsignal PreKeyRecordStructure, uploaded below "
    "first_unuploaded_pre_key_id",
    "sender-key": "sender_keys (libsignal SenderKeyRecordStructure) under group::address",
    "sender-key-memory": "sender_key_devices: (group, device JID, has key)",
    "app-state-sync-key": "sync_keys: key data, fingerprint and timestamp",
    "app-state-sync-version": "app_state_versions (version, LTHash) and app_state_macs "
    "(the index -> value MAC map)",
    "tctoken": "tc_tokens: token and its timestamp",
}
"""The key families pyaileys uses, and where each is stored."""


def _family(key_type: object) -> str:
    if type(key_type) is not str or key_type not in FAMILIES:
        raise ValidationError(
            f"unknown pyaileys key family {key_type!r:.60}: wastore stores "
            f"{', '.join(FAMILIES)} (every family pyaileys 0.1.5 uses)"
        )
    return key_type


def _ids(ids: object) -> list[str]:
    out = list(v.sequence(ids, "ids"))
    for i in out:
        if type(i) is not str:
            raise ValidationError(f"a key id must be a str, not {type(i).__name__}")
    return out


def _key_bytes(value: object, what: str) -> bytes:
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    raise ValidationError(f"{what} must be bytes, not {type(value).__name__}")


def _prekey_id(key: str) -> int:
    if not (key.isascii() and key.isdigit()) or str(int(key)) != key:
        raise ValidationError(f"pre-key id {key!r:.40} is not a decimal number")
    return v.prekey_id(int(key))


def _b64_id(key: str, what: str) -> bytes:
    try:
        raw = base64.b64decode(key, validate=True)
    except (binascii.Error, ValueError):
        raise ValidationError(f"{what} {key!r:.80} is not base64") from None
    if not raw or base64.b64encode(raw).decode("ascii") != key:
        raise ValidationError(f"{what} {key!r:.80} is not canonical base64")
    return v.sync_key_id(raw)


def _jid_text(key: str, what: str) -> str:
    JID.parse(key)
    return v.address(key, what)


def _identity_key(value: object, where: str) -> bytes:
    key = _key_bytes(value, f"identity-key {where}")
    if len(key) == KEY_LEN + 1 and key[:1] == DJB_TYPE:
        return key[1:]
    if len(key) == KEY_LEN:
        return key
    raise ValidationError(
        f"identity-key {where} must be 33 bytes (0x05 and the key) or 32, got {len(key)}"
    )


def _record(value: object, what: str) -> bytes | None:
    """A record to store, or None for "delete" (pyaileys treats an empty record as none)."""
    data = _key_bytes(value, what)
    return data or None


class WastoreKeyStore:
    """pyaileys' ``SignalKeyStore`` (``get`` / ``set`` / ``clear``) over one account.

    Build it with :meth:`WastoreAuthState.load`, which owns the account's
    :class:`~wastore.PersistenceManager`. Every :meth:`set` is one transaction,
    committed before it returns. Reads and writes go to the backend directly
    (no write-back cache): a value pyaileys wrote is on disk when ``set``
    returns, as with ``MultiFileAuthState``.
    """

    def __init__(self, manager: PersistenceManager, container: object | None = None) -> None:
        self._pm = manager
        self._container = container

    @property
    def backend(self) -> Backend:
        return self._pm.backend

    def __repr__(self) -> str:
        return f"WastoreKeyStore(device_id={self._pm.device_id})"

    # -- get -------------------------------------------------------------------------
    async def get(self, key_type: str, ids: list[str]) -> dict[str, Any]:
        """The value of every id of ``key_type``; None for each id that has none.

        Raises:
            ValidationError: an unknown family or an id pyaileys never writes.
            CorruptRecordError: a stored value cannot be decoded.
        """
        family = _family(key_type)
        wanted = _ids(ids)
        if not wanted:
            return {}
        getter = _GETTERS[family]
        return await getter(self.backend, wanted)

    # -- set -------------------------------------------------------------------------
    async def set(self, data: Mapping[str, Mapping[str, Any | None]]) -> None:
        """Store (or, for None, delete) every value of ``data`` — in one transaction.

        Everything is checked first: a bad family, id or value raises
        :class:`~wastore.ValidationError` and nothing is written.
        """
        parsed = parse(data)
        first_unuploaded = self._pm.get_device_snapshot().first_unupload_pre_key_id
        backend = self.backend
        single = _single_write(parsed, first_unuploaded)
        if single is not None:  # one backend call: atomic by itself (most of pyaileys' sets)
            await single(backend)
            return
        async with backend.transaction():
            await write(backend, parsed, first_unuploaded)

    # -- clear -----------------------------------------------------------------------
    async def clear(self) -> None:
        """Delete every value of every family (the credentials stay), in one transaction.

        wastore's contract reads by key, not by listing, so this reads the
        account's rows through the container's export (``PortableContainer``).

        Raises:
            StoreError: the store cannot list an account's rows.
        """
        container = self._container
        if not isinstance(container, PortableContainer):
            raise StoreError(
                "clear() lists the account's rows through the store's export, which this "
                "store does not offer"
            )
        dump = await container.export_account(self._pm.device_id)
        tables = dump.tables
        backend = self.backend
        async with backend.transaction():
            for row in tables.get("sessions", []):
                await backend.delete_session(row["address"])
            for row in tables.get("identities", []):
                await backend.delete_identity(row["address"])
            for row in tables.get("prekeys", []):
                await backend.remove_prekey(row["id"])
            for row in tables.get("sender_keys", []):
                await backend.delete_sender_key(row["address"])
            for row in tables.get("sync_keys", []):
                await backend.delete_sync_key(row["key_id"])
            for row in tables.get("app_state_versions", []):
                await backend.set_version(row["name"], HashState())
                await backend.clear_mutation_macs(row["name"])
            for name in {row["name"] for row in tables.get("app_state_macs", [])}:
                await backend.clear_mutation_macs(name)
            for row in tables.get("tc_tokens", []):
                await backend.delete_tc_token(row["jid"])
            await backend.clear_all_sender_key_devices()


# -- getters, one per family -------------------------------------------------------------
async def _get_sessions(backend: Backend, ids: list[str]) -> dict[str, Any]:
    if len(ids) == 1:  # what pyaileys asks for: one session per message
        return {ids[0]: await backend.get_session(signal_address(ids[0]))}
    addresses = {i: signal_address(i) for i in ids}
    found = await backend.get_sessions(list(dict.fromkeys(addresses.values())))
    return {i: found.get(a) for i, a in addresses.items()}


async def _get_identities(backend: Backend, ids: list[str]) -> dict[str, Any]:
    addresses = {i: signal_address(i) for i in ids}
    out: dict[str, Any] = {}
    for i, a in addresses.items():
        key = await backend.load_identity(a)
        out[i] = None if key is None else DJB_TYPE + key
    return out


async def _get_prekeys(backend: Backend, ids: list[str]) -> dict[str, Any]:
    wanted = {i: _prekey_id(i) for i in ids}
    found = await backend.load_prekeys_batch(list(dict.fromkeys(wanted.values())))
    out: dict[str, Any] = {}
    for i, n in wanted.items():
        data = found.get(n)
        if data is None:
            out[i] = None
        else:
            public, private = decode_prekey(data, n)
            out[i] = {"public": public, "private": private}
    return out


async def _get_sender_keys(backend: Backend, ids: list[str]) -> dict[str, Any]:
    addresses = {i: sender_key_address(i) for i in ids}
    return {i: await backend.get_sender_key(a) for i, a in addresses.items()}


async def _get_sender_key_memory(backend: Backend, ids: list[str]) -> dict[str, Any]:
    groups = {i: _jid_text(i, "group") for i in ids}
    out: dict[str, Any] = {}
    for i, g in groups.items():
        rows = await backend.get_sender_key_devices(g)
        out[i] = {jid: has_key for jid, has_key in rows} if rows else None
    return out


async def _get_sync_keys(backend: Backend, ids: list[str]) -> dict[str, Any]:
    wanted = {i: _b64_id(i, "app-state sync key id") for i in ids}
    out: dict[str, Any] = {}
    for i, key_id in wanted.items():
        key = await backend.get_sync_key(key_id)
        out[i] = None if key is None else encode_sync_key_data(key)
    return out


async def _get_versions(backend: Backend, ids: list[str]) -> dict[str, Any]:
    names = {i: v.collection_name(i) for i in ids}
    out: dict[str, Any] = {}
    for i, name in names.items():
        state = await backend.get_version(name)
        macs = await backend.get_all_mutation_macs(name)
        if state.version == 0 and state.hash == bytes(HASH_STATE_LEN) and not macs:
            out[i] = None  # what pyaileys' HashState.from_store(None) reads as a fresh state
            continue
        out[i] = {
            "version": state.version,
            "hash": state.hash,
            "indexValueMap": {
                base64.b64encode(index).decode("ascii"): value for index, value in macs.items()
            },
        }
    return out


def _timestamp_text(ts: int) -> str | None:
    return None if ts == 0 else str(ts)


async def _get_tc_tokens(backend: Backend, ids: list[str]) -> dict[str, Any]:
    jids = {i: _jid_text(i, "tctoken jid") for i in ids}
    out: dict[str, Any] = {}
    for i, jid in jids.items():
        entry = await backend.get_tc_token(jid)
        out[i] = (
            None
            if entry is None
            else {"token": entry.token, "timestamp": _timestamp_text(entry.token_timestamp)}
        )
    return out


_GETTERS: Final[dict[str, Callable[[Backend, list[str]], Awaitable[dict[str, Any]]]]] = {
    "session": _get_sessions,
    "identity-key": _get_identities,
    "pre-key": _get_prekeys,
    "sender-key": _get_sender_keys,
    "sender-key-memory": _get_sender_key_memory,
    "app-state-sync-key": _get_sync_keys,
    "app-state-sync-version": _get_versions,
    "tctoken": _get_tc_tokens,
}


# -- set: every value is parsed (and validated) first, then written -------------------------
class Parsed:
    """The values of one ``set()`` call, parsed into wastore's types, per family."""

    __slots__ = (
        "collections",
        "identities",
        "memories",
        "prekeys",
        "sender_keys",
        "sessions",
        "sync_keys",
        "tc_tokens",
    )

    def __init__(self) -> None:
        self.sessions: dict[str, bytes | None] = {}
        self.identities: dict[str, bytes | None] = {}
        self.prekeys: dict[int, tuple[bytes, bytes] | None] = {}
        self.sender_keys: dict[str, bytes | None] = {}
        self.memories: dict[str, list[tuple[str, bool]] | None] = {}
        self.sync_keys: dict[bytes, AppStateSyncKey | None] = {}
        self.collections: dict[str, tuple[HashState, list[MutationMAC]] | None] = {}
        self.tc_tokens: dict[str, tuple[bytes, int] | None] = {}


def parse(data: Mapping[str, Mapping[str, Any | None]]) -> Parsed:
    """Parse the argument of ``set()``.

    Raises:
        ValidationError: an unknown family, or an id or value pyaileys never writes,
            naming it.
    """
    if not isinstance(data, Mapping):
        raise ValidationError(f"set() takes a mapping of families, not {type(data).__name__}")
    out = Parsed()
    for key_type, items in data.items():
        family = _family(key_type)
        if not isinstance(items, Mapping):
            raise ValidationError(f"set({family!r}): the values must be a mapping of ids")
        for key, value in items.items():
            if type(key) is not str:
                raise ValidationError(
                    f"set({family!r}): a key id must be a str, not {type(key).__name__}"
                )
            parse_item(out, family, key, value)
    return out


def parse_item(out: Parsed, family: str, key: str, value: Any) -> None:
    """Parse one value of ``family`` under pyaileys' id ``key`` into ``out``."""
    where = f"{family} {key!r:.80}"
    if family == "session":
        out.sessions[signal_address(key)] = (
            None if value is None else _record(value, f"{where} record")
        )
    elif family == "identity-key":
        out.identities[signal_address(key)] = (
            None if value is None else _identity_key(value, f"{key!r:.60}")
        )
    elif family == "pre-key":
        out.prekeys[_prekey_id(key)] = None if value is None else _prekey_pair(value, where)
    elif family == "sender-key":
        address = sender_key_address(key)
        record = None if value is None else _record(value, f"{where} record")
        out.sender_keys[address] = (
            None if record is None else normalize_sender_key_record(record, where)
        )
    elif family == "sender-key-memory":
        out.memories[_jid_text(key, "sender-key-memory group")] = (
            None if value is None else _memory(value, where)
        )
    elif family == "app-state-sync-key":
        key_id = _b64_id(key, "app-state sync key id")
        out.sync_keys[key_id] = (
            None if value is None else decode_sync_key_data(_key_bytes(value, where), where)
        )
    elif family == "app-state-sync-version":
        out.collections[v.collection_name(key)] = (
            None if value is None else _hash_state_parts(where, value)
        )
    else:  # tctoken
        out.tc_tokens[_jid_text(key, "tctoken jid")] = (
            None if value is None else _tc_token(value, where)
        )


def _prekey_pair(value: object, where: str) -> tuple[bytes, bytes]:
    if not isinstance(value, Mapping) or set(value) != {"public", "private"}:
        raise ValidationError(f"{where} must be {{'public': 32 bytes, 'private': 32 bytes}}")
    public = _key_bytes(value["public"], f"{where} public key")
    if len(public) == KEY_LEN + 1 and public[:1] == DJB_TYPE:
        public = public[1:]
    public = v.fixed(public, f"{where} public key", KEY_LEN)
    private = v.fixed(
        _key_bytes(value["private"], f"{where} private key"), f"{where} private key", KEY_LEN
    )
    return public, private


def _memory(value: object, where: str) -> list[tuple[str, bool]]:
    if not isinstance(value, Mapping):
        raise ValidationError(f"{where} must map device JIDs to bools, not {type(value).__name__}")
    rows: list[tuple[str, bool]] = []
    for jid, has_key in value.items():
        if type(jid) is not str or type(has_key) is not bool:
            raise ValidationError(f"{where} must map device JIDs (str) to bools")
        rows.append((_jid_text(jid, f"{where} device"), has_key))
    return rows


def _hash_state_parts(where: str, value: object) -> tuple[HashState, list[MutationMAC]]:
    if not isinstance(value, Mapping) or not set(value) <= {"version", "hash", "indexValueMap"}:
        raise ValidationError(f"{where} must be {{'version', 'hash', 'indexValueMap'}}")
    index_map = value.get("indexValueMap", {})
    if not isinstance(index_map, Mapping):
        raise ValidationError(f"{where}: indexValueMap must be a mapping")
    try:
        state = HashState(
            version=value.get("version", 0),
            hash=_key_bytes(value.get("hash", bytes(HASH_STATE_LEN)), f"{where} hash"),
        )
    except ValidationError as err:
        raise ValidationError(f"{where}: {err}") from None
    macs: list[MutationMAC] = []
    for index_b64, value_mac in index_map.items():
        if type(index_b64) is not str:
            raise ValidationError(f"{where}: an index MAC must be a base64 str")
        try:
            index = base64.b64decode(index_b64, validate=True)
        except (binascii.Error, ValueError):
            raise ValidationError(f"{where}: index MAC {index_b64!r:.60} is not base64") from None
        if len(index) != MAC_LEN or base64.b64encode(index).decode("ascii") != index_b64:
            raise ValidationError(
                f"{where}: index MAC {index_b64!r:.60} is not the canonical base64 of 32 bytes"
            )
        macs.append(MutationMAC(index_mac=index, value_mac=_key_bytes(value_mac, f"{where} MAC")))
    return state, macs


def _tc_token(value: object, where: str) -> tuple[bytes, int]:
    if not isinstance(value, Mapping) or set(value) != {"token", "timestamp"}:
        raise ValidationError(f"{where} must be {{'token': bytes, 'timestamp': str | None}}")
    stamp = value["timestamp"]
    if stamp is None:
        ts = 0
    elif type(stamp) is str and stamp.isascii() and stamp.isdigit() and str(int(stamp)) == stamp:
        ts = v.timestamp(int(stamp), f"{where} timestamp")
        if ts == 0:
            raise ValidationError(f"{where}: a timestamp of 0 cannot be told from None")
    else:
        raise ValidationError(f"{where}: the timestamp must be decimal text (or None)")
    token = _key_bytes(value["token"], f"{where} token")
    TcToken(token=token, token_timestamp=ts)  # the store's own checks, before any write
    return token, ts


def _single_write(p: Parsed, first_unuploaded: int) -> Callable[[Backend], Awaitable[None]] | None:
    """The one backend call that applies ``p``, when a single call does."""
    one = (p.sessions, p.identities, p.prekeys, p.sender_keys)
    if (
        sum(len(family) for family in one) != 1
        or p.memories
        or p.sync_keys
        or p.collections
        or p.tc_tokens
    ):
        return None
    if p.sessions:
        ((address, record),) = p.sessions.items()
        if record is None:
            return lambda b: b.delete_session(address)
        session = record
        return lambda b: b.put_session(address, session)
    if p.identities:
        ((address, key),) = p.identities.items()
        if key is None:
            return lambda b: b.delete_identity(address)
        return lambda b: b.put_identity(address, key)
    if p.sender_keys:
        ((address, record),) = p.sender_keys.items()
        if record is None:
            return lambda b: b.delete_sender_key(address)
        sender_key = record
        return lambda b: b.put_sender_key(address, sender_key)
    ((key_id, pair),) = p.prekeys.items()
    if pair is None:
        return lambda b: b.remove_prekey(key_id)
    record = encode_prekey(key_id, *pair)
    return lambda b: b.store_prekey(key_id, record, key_id < first_unuploaded)


async def write(backend: Backend, p: Parsed, first_unuploaded: int) -> None:
    """Apply parsed values to the account (inside the caller's transaction)."""
    puts = [(a, r) for a, r in p.sessions.items() if r is not None]
    if puts:
        await backend.put_sessions_batch(puts)
    for a in [a for a, r in p.sessions.items() if r is None]:
        await backend.delete_session(a)
    keys = [(a, k) for a, k in p.identities.items() if k is not None]
    if keys:
        await backend.put_identities_batch(keys)
    for a in [a for a, k in p.identities.items() if k is None]:
        await backend.delete_identity(a)
    if p.prekeys:
        # pyaileys advances first_unuploaded_pre_key_id past the keys it uploads: the
        # keys below it (as last saved) are on the server, the others not yet.
        for flag in (True, False):
            batch = [
                (i, encode_prekey(i, *pair))
                for i, pair in p.prekeys.items()
                if pair is not None and (i < first_unuploaded) is flag
            ]
            if batch:
                await backend.store_prekeys_batch(batch, flag)
        for i in [i for i, pair in p.prekeys.items() if pair is None]:
            await backend.remove_prekey(i)
    records = [(a, r) for a, r in p.sender_keys.items() if r is not None]
    if records:
        await backend.put_sender_keys_batch(records)
    for a in [a for a, r in p.sender_keys.items() if r is None]:
        await backend.delete_sender_key(a)
    for group, rows in p.memories.items():
        # pyaileys hands over the group's whole map: it replaces what is stored
        await backend.clear_sender_key_devices(group)
        if rows:
            await backend.set_sender_key_status(group, rows)
    for key_id, sync_key in p.sync_keys.items():
        # A key given again replaces the stored one (set() semantics), even with an
        # older timestamp, which set_sync_key alone would keep.
        await backend.delete_sync_key(key_id)
        if sync_key is not None:
            await backend.set_sync_key(key_id, sync_key)
    for name, parts in p.collections.items():
        if parts is None:
            await backend.set_version(name, HashState())
            await backend.clear_mutation_macs(name)
        else:
            await _replace_collection(backend, name, *parts)
    for jid, token in p.tc_tokens.items():
        if token is None:
            await backend.delete_tc_token(jid)
            continue
        stored = await backend.get_tc_token(jid)
        sender_ts = None if stored is None else stored.sender_timestamp
        await backend.put_tc_token(jid, TcToken(token[0], token[1], sender_ts))


async def _replace_collection(
    backend: Backend, name: str, state: HashState, macs: Sequence[MutationMAC]
) -> None:
    # pyaileys hands over the whole index -> value map each time; write the difference.
    stored = await backend.get_all_mutation_macs(name)
    wanted = {m.index_mac: m.value_mac for m in macs}
    gone = [index for index in stored if index not in wanted]
    changed = [m for m in macs if stored.get(m.index_mac) != m.value_mac]
    if gone:
        await backend.delete_mutation_macs(name, gone)
    if changed:
        await backend.put_mutation_macs(name, state.version, changed)
    await backend.set_version(name, state)


__all__ = ["FAMILIES", "WastoreKeyStore", "pyaileys_address", "pyaileys_sender_key_name"]
