"""The portable account format: one account as a versioned JSON document.

Used by ``wastore export`` / ``wastore import`` / ``wastore copy`` and by the
PostgreSQL debug snapshot. The document holds every row of every table of the
account (the lease excepted), so an export -> import -> export round trip
gives an identical file, and a copy between SQLite and PostgreSQL is exact.

Format (``format_version`` 2; version 1 files, written before the device table
gained the columns of schema version 4, are read with those columns at their
defaults)::

    {
      "format": "wastore-account",
      "format_version": 1,
      "schema_version": 3,
      "tables": {
        "device": [{"pn": "1555...:7@s.whatsapp.net", "noise_key_private": "<base64>", ...}],
        "sessions": [{"address": "1555...@s.whatsapp.net", "record": "<base64>"}],
        ...
      },
      "sha256": "<hex digest of the canonical JSON of 'tables'>"
    }

Rows carry every column of their table except ``device_id`` (and ``id`` of the
device row): the importing database assigns the account a new id. Column
values are JSON numbers, strings, booleans or null; ``blob`` columns are
standard base64. Rows are sorted, keys are sorted, so the encoding is
deterministic. :func:`decode` rejects — before anything is written — a
truncated or tampered document (digest), a format from a newer wastore, an
unknown table or column, a value of the wrong type, a key of the wrong length,
a key pair whose public half does not match its private half, and any row
that the store itself could not decode.

The file holds private keys: it is written with mode 0600 and must be kept as
secret as the database.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import json
import os
import stat
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

from . import _validate as v
from .backends._common import merge_msg_secret, now_s
from .backends.sql import codec, schema
from .device import Device
from .errors import StoreError, ValidationError
from .values import (
    AccountDump,
    AppStateSyncKey,
    DeviceListRecord,
    HashState,
    LidPnMapping,
    MsgSecret,
    MutationMAC,
    Row,
    TcToken,
)

__all__ = [
    "COLUMNS",
    "EXPORTED_TABLES",
    "FORMAT",
    "FORMAT_VERSION",
    "MAX_FILE_BYTES",
    "AccountBuilder",
    "AccountDump",
    "Row",
    "check",
    "check_row",
    "decode",
    "encode",
    "read_file",
    "row_problems",
    "table_columns",
]

FORMAT: Final = "wastore-account"
FORMAT_VERSION: Final = 2

EXPORTED_TABLES: Final = tuple(t for t in schema.TABLES if t != "leases")
_HIDDEN: Final = frozenset({"device_id", "crc"})
"""Columns the document leaves out: the account id (the importing database gives the
account its own) and the row checksum (computed again on import)."""


def table_columns() -> dict[str, tuple[tuple[str, schema.ColumnKind], ...]]:
    """The columns each exported table carries in the document."""
    cols = schema.columns()
    out: dict[str, tuple[tuple[str, schema.ColumnKind], ...]] = {}
    for table in EXPORTED_TABLES:
        hidden = _HIDDEN | ({"id"} if table == "device" else set())
        out[table] = tuple((c, k) for c, k in cols[table] if c not in hidden)
    return out


COLUMNS: Final = table_columns()
_ADDED_LATER: Final = {
    t: {c: d for c, d in cols.items() if c not in _HIDDEN}
    for t, cols in schema.added_columns().items()
}
"""Columns a document may lack (it was written before they existed): their defaults."""


def _encode_value(value: Any, kind: schema.ColumnKind) -> Any:
    if value is None:
        return None
    if kind == "blob":
        return base64.b64encode(value).decode("ascii")
    if kind == "bool":
        return bool(value)
    return value


def _canonical(tables: Mapping[str, Any]) -> bytes:
    return json.dumps(tables, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def encode(dump: AccountDump) -> bytes:
    """The JSON document of ``dump`` (deterministic: same rows, same bytes)."""
    tables: dict[str, list[dict[str, Any]]] = {}
    for table in EXPORTED_TABLES:
        kinds = dict(COLUMNS[table])
        rows = [
            {c: _encode_value(row.get(c), kinds[c]) for c in kinds}
            for row in dump.tables.get(table, [])
        ]
        rows.sort(key=lambda r: json.dumps(r, sort_keys=True))
        tables[table] = rows
    doc = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "schema_version": schema.LATEST,
        "tables": tables,
        "sha256": hashlib.sha256(_canonical(tables)).hexdigest(),
    }
    return json.dumps(doc, indent=1, sort_keys=True, ensure_ascii=True).encode() + b"\n"


class _Reject(ValidationError):
    pass


def _decode_value(value: Any, kind: schema.ColumnKind, where: str) -> Any:
    if value is None:
        return None
    if kind == "blob":
        if not isinstance(value, str):
            raise _Reject(f"{where}: expected base64 text")
        try:
            return base64.b64decode(value.encode("ascii"), validate=True)
        except (binascii.Error, UnicodeEncodeError):
            raise _Reject(f"{where}: invalid base64") from None
    if kind == "int":
        if type(value) is not int:
            raise _Reject(f"{where}: expected an integer")
        if not v.MIN_I64 <= value <= v.MAX_I64:
            raise _Reject(f"{where}: the integer does not fit in 64 bits")
        return value
    if kind == "bool":
        if type(value) is not bool:
            raise _Reject(f"{where}: expected true or false")
        return value
    if kind == "real":
        if type(value) not in (int, float):
            raise _Reject(f"{where}: expected a number")
        return float(value)
    if not isinstance(value, str):
        raise _Reject(f"{where}: expected a string")
    return value


MAX_FILE_BYTES: Final = 256 * 1024 * 1024
"""The largest account file :func:`read_file` reads (an account with a thousand
sessions and every app-state MAC of a busy account takes a few megabytes)."""


def read_file(path: str | os.PathLike[str], *, max_bytes: int = MAX_FILE_BYTES) -> bytes:
    """The bytes of an account file: a regular file of at most ``max_bytes``.

    A FIFO, a device (``/dev/zero``) or a folder is refused before anything is
    read, and a file is never read past the limit, so a hostile path can neither
    hang the reader nor exhaust its memory.

    Raises:
        ValidationError: not a regular file, too large, or unreadable (the message
            names the path and the reason).
    """
    name = os.fspath(path)
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as err:
        raise ValidationError(f"{name}: cannot open the file: {err.strerror}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ValidationError(f"{name}: not a regular file (a folder, device or pipe)")
        if st.st_size > max_bytes:
            raise ValidationError(
                f"{name}: the file is {st.st_size:,} bytes, more than the {max_bytes:,} an "
                "account file may have"
            )
        chunks = []
        total = 0
        while chunk := os.read(fd, 1 << 20):
            total += len(chunk)
            if total > max_bytes:  # it grew while being read
                raise ValidationError(f"{name}: the file is larger than {max_bytes:,} bytes")
            chunks.append(chunk)
        return b"".join(chunks)
    except OSError as err:
        raise ValidationError(f"{name}: cannot read the file: {err.strerror}") from None
    finally:
        os.close(fd)


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object whose keys are all different (json keeps the last of two silently)."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValidationError(f"the account file repeats the key {key!r} in one object")
        out[key] = value
    return out


def decode(data: bytes) -> AccountDump:
    """Parse and check a document; raise :class:`ValidationError` saying what is wrong."""
    try:
        doc = json.loads(data, object_pairs_hook=_unique_keys)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValidationError(
            f"not a wastore account file (invalid JSON at position {getattr(err, 'pos', '?')}): "
            "the file is truncated or damaged"
        ) from None
    except ValidationError:
        raise
    except RecursionError:
        raise ValidationError(
            "not a wastore account file: its JSON is nested far deeper than the format's"
        ) from None
    except ValueError as err:  # a number of thousands of digits, ...
        raise ValidationError(f"not a wastore account file: {err}") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ValidationError("not a wastore account file (no 'format': 'wastore-account')")
    version = doc.get("format_version")
    if type(version) is not int or version < 1:
        raise ValidationError("the account file has no valid format_version")
    if version > FORMAT_VERSION:
        raise ValidationError(
            f"the account file has format version {version}; this wastore reads up to "
            f"{FORMAT_VERSION}: upgrade wastore to import it"
        )
    tables = doc.get("tables")
    if not isinstance(tables, dict):
        raise ValidationError("the account file has no 'tables' object")
    digest = doc.get("sha256")
    if not isinstance(digest, str) or hashlib.sha256(_canonical(tables)).hexdigest() != digest:
        raise ValidationError(
            "the account file's checksum does not match its content: it was modified or damaged"
        )
    unknown = set(tables) - set(EXPORTED_TABLES)
    if unknown:
        raise ValidationError(f"the account file has unknown tables: {', '.join(sorted(unknown))}")
    out: dict[str, list[Row]] = {}
    for table in EXPORTED_TABLES:
        rows = tables.get(table, [])
        if not isinstance(rows, list):
            raise ValidationError(f"table {table!r} is not a list")
        kinds = dict(COLUMNS[table])
        optional = _ADDED_LATER.get(table, {}) if version < FORMAT_VERSION else {}
        decoded: list[Row] = []
        for n, row in enumerate(rows):
            where = f"{table} row {n}"
            if isinstance(row, dict) and optional:
                row = {**{c: d for c, d in optional.items() if c not in row}, **row}
            if not isinstance(row, dict) or set(row) != set(kinds):
                raise ValidationError(f"{where}: columns do not match table {table!r}")
            decoded.append({c: _decode_value(row[c], kinds[c], f"{where}, {c}") for c in kinds})
        out[table] = decoded
    dump = AccountDump(out)
    check(dump)
    return dump


def check(dump: AccountDump) -> None:
    """Check every row the way the store decodes it; raise ValidationError on the first problem."""
    devices = dump.tables.get("device", [])
    if len(devices) != 1:
        raise ValidationError(f"an account file holds exactly one device row, found {len(devices)}")
    problems = list(row_problems(dump.tables))
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise ValidationError(f"the account file is not valid: {problems[0]}{more}")


def _device_row(row: Row) -> None:
    dev = codec.row_to_device([row.get(c) for c in codec.DEVICE_COLUMNS], None)
    bad = dev.key_problems()
    if bad:
        raise ValidationError("; ".join(bad))
    for jid, user, what in (
        (dev.pn, row.get("pn_user"), "pn"),
        (dev.lid, row.get("lid_user"), "lid"),
    ):
        if (None if jid is None else jid.user) != user:
            raise ValidationError(f"{what}_user does not match {what}")
    v.timestamp(row.get("saved_at_ms"), "saved_at_ms")


def _pending_row(row: Row) -> None:
    v.pending_key(row["chat"], row["sender"], row["message_id"])
    v.blob(row["payload"], "payload")
    v.timestamp(row["created_at"], "created_at")


# Per table: the columns of its key within the account, and a check that runs the
# validators the API runs on the same values (raising ValidationError or
# CorruptRecordError). Used for every row of an imported file, every row that
# `wastore check` reads from a store, and every row an AccountBuilder makes.
_RULES: Final[dict[str, tuple[tuple[str, ...], Callable[[Row], object]]]] = {
    "device": ((), _device_row),
    "identities": (
        ("address",),
        lambda r: (v.address(r["address"]), v.fixed(r["key"], "identity key", 32)),
    ),
    "sessions": (
        ("address",),
        lambda r: (v.address(r["address"]), v.blob(r["record"], "session record")),
    ),
    "prekeys": (
        ("id",),
        lambda r: (
            v.prekey_id(r["id"]),
            v.blob(r["record"], "pre-key record"),
            v.boolean(r["uploaded"], "uploaded"),
        ),
    ),
    "signed_prekeys": (
        ("id",),
        lambda r: (
            v.prekey_id(r["id"], "signed pre-key id"),
            v.blob(r["record"], "signed pre-key record"),
        ),
    ),
    "sender_keys": (
        ("address",),
        lambda r: (
            v.address(r["address"], "sender key address"),
            v.blob(r["record"], "sender key record"),
        ),
    ),
    "sync_keys": (
        ("key_id",),
        lambda r: (
            v.sync_key_id(r["key_id"]),
            AppStateSyncKey(r["key_data"], r["fingerprint"], r["timestamp"]),
        ),
    ),
    "app_state_versions": (
        ("name",),
        lambda r: (v.collection_name(r["name"]), HashState(r["version"], r["hash"])),
    ),
    "app_state_macs": (
        ("name", "index_mac"),
        lambda r: (
            v.collection_name(r["name"]),
            v.integer(r["version"], "version", 0),
            MutationMAC(r["index_mac"], r["value_mac"]),
        ),
    ),
    "sender_key_devices": (
        ("group_jid", "device_jid"),
        lambda r: (
            v.address(r["group_jid"], "group"),
            v.address(r["device_jid"], "device jid"),
            v.boolean(r["has_key"], "has_key"),
        ),
    ),
    "lid_pn_mappings": (
        ("lid",),
        lambda r: LidPnMapping(
            r["lid"], r["phone_number"], r["created_at"], r["updated_at"], r["learning_source"]
        ),
    ),
    "base_keys": (
        ("address", "message_id"),
        lambda r: (v.address(r["address"]), v.message_id(r["message_id"]), v.base_key(r["key"])),
    ),
    "device_lists": (
        ("user_id",),
        lambda r: (
            v.user(r["user_id"]),
            codec.device_list(
                (r["devices"], r["timestamp"], r["phash"], r["raw_id"]), r["user_id"]
            ),
        ),
    ),
    "tc_tokens": (
        ("jid",),
        lambda r: (
            v.address(r["jid"], "jid"),
            TcToken(r["token"], r["token_timestamp"], r["sender_timestamp"]),
        ),
    ),
    "sent_messages": (
        ("chat", "message_id"),
        lambda r: (
            v.address(r["chat"], "chat"),
            v.message_id(r["message_id"]),
            v.blob(r["payload"], "payload"),
            v.timestamp(r["created_at"], "created_at"),
        ),
    ),
    "msg_secrets": (("chat", "sender", "msg_id"), lambda r: MsgSecret(**r)),
    "pending_inbound": (("chat", "sender", "message_id"), _pending_row),
    "group_metadata": (
        ("group_jid",),
        lambda r: (v.address(r["group_jid"], "group"), v.blob(r["blob"], "group metadata")),
    ),
}


def check_row(table: str, row: Row) -> None:
    """Check one row of ``table`` as the API checks the same values.

    Raises:
        ValidationError: a value the API would refuse (the message names the column,
            never a key's bytes).
        CorruptRecordError: the device row does not decode.
    """
    try:
        _RULES[table][1](row)
    except (TypeError, KeyError) as err:  # a value of a wrong type reached a value class
        raise ValidationError(f"a value is missing or of the wrong type ({err})") from None


def row_problems(tables: Mapping[str, list[Row]]) -> list[str]:
    """Every row that the API would refuse or the store could not decode, and every key
    that appears twice, described (used by import and by ``wastore check``)."""
    problems: list[str] = []
    for table, rows in tables.items():
        key_columns = _RULES[table][0]
        seen: set[tuple[Any, ...]] = set()
        for n, row in enumerate(rows):
            label = _row_label(table, row)
            try:
                check_row(table, row)
            except StoreError as err:
                where = "device row" if table == "device" else f"{table} row {label}"
                problems.append(f"{where}: {err}")
            if key_columns:
                key = tuple(row.get(c) for c in key_columns)
                if key in seen:
                    problems.append(f"{table} row {n}: the key {label} appears twice")
                seen.add(key)
    return problems


_LABEL_COLUMNS: Final = {t: cols for t, (cols, _) in _RULES.items()}


def _row_label(table: str, row: Row) -> str:
    """The key of a row, short enough for a message (bytes as a hex prefix)."""
    parts = []
    for col in _LABEL_COLUMNS.get(table, ()):
        value = row.get(col)
        if isinstance(value, bytes):
            parts.append(value[:8].hex() + "…")
        else:
            text = repr(value)
            parts.append(text if len(text) <= 80 else text[:77] + "…")
    return ", ".join(parts) or "?"


class AccountBuilder:
    """Builds one account's :class:`AccountDump` from typed values (for importers).

    Readers of other stores' formats use it instead of writing rows by hand: each
    method takes the arguments of the Backend write method of the same name and
    checks them with the same validators (a bad value raises
    :class:`ValidationError` at the call, naming it). A later call for the same
    key replaces the earlier one, as the backend's upsert would, with the
    backend's merge rules (a newer sync key wins, a LID mapping keeps its first
    ``created_at``, message secrets merge). :meth:`build` returns what
    ``Container.import_account()`` writes in one transaction.

    Args:
        device: the account's device (its keys and settings).
        created_at: Unix seconds stamped on sent messages and pending inbound
            messages (the backends stamp "now" when they store them).
    """

    def __init__(self, device: Device, *, created_at: int | None = None) -> None:
        self._device = v.instance(device, Device, "device")
        device.validate()
        self._now = v.timestamp(created_at, "created_at") if created_at is not None else now_s()
        self._rows: dict[str, dict[Any, Row]] = {t: {} for t in EXPORTED_TABLES if t != "device"}

    def _put(self, table: str, key: Any, row: Row) -> None:
        check_row(table, row)  # what an import checks, so build() cannot fail on this row
        rows = self._rows[table]
        rows.pop(key, None)  # a replaced row moves to the end, as a newer write
        rows[key] = row

    # -- Signal --------------------------------------------------------------
    def put_identity(self, address: str, key: bytes) -> None:
        address = v.address(address)
        self._put(
            "identities", address, {"address": address, "key": v.fixed(key, "identity key", 32)}
        )

    def put_session(self, address: str, record: bytes) -> None:
        address = v.address(address)
        record = v.blob(record, "session record")
        self._put("sessions", address, {"address": address, "record": record})

    def store_prekey(self, id: int, record: bytes, uploaded: bool) -> None:
        pid = v.prekey_id(id)
        row = {
            "id": pid,
            "record": v.blob(record, "pre-key record"),
            "uploaded": v.boolean(uploaded, "uploaded"),
        }
        self._put("prekeys", pid, row)

    def store_signed_prekey(self, id: int, record: bytes) -> None:
        pid = v.prekey_id(id, "signed pre-key id")
        self._put(
            "signed_prekeys", pid, {"id": pid, "record": v.blob(record, "signed pre-key record")}
        )

    def put_sender_key(self, address: str, record: bytes) -> None:
        address = v.address(address, "sender key address")
        record = v.blob(record, "sender key record")
        self._put("sender_keys", address, {"address": address, "record": record})

    # -- app-state sync ------------------------------------------------------
    def set_sync_key(self, key_id: bytes, key: AppStateSyncKey) -> None:
        key_id = v.sync_key_id(key_id)
        k = v.instance(key, AppStateSyncKey, "key")
        old = self._rows["sync_keys"].get(key_id)
        if old is not None and old["timestamp"] > k.timestamp:
            return  # an existing key with a newer timestamp is kept
        row = {
            "key_id": key_id,
            "key_data": k.key_data,
            "fingerprint": k.fingerprint,
            "timestamp": k.timestamp,
        }
        self._put("sync_keys", key_id, row)

    def set_version(self, name: str, state: HashState) -> None:
        name = v.collection_name(name)
        st = v.instance(state, HashState, "state")
        row = {"name": name, "version": st.version, "hash": st.hash}
        self._put("app_state_versions", name, row)

    def put_mutation_macs(self, name: str, version: int, macs: Sequence[MutationMAC]) -> None:
        name = v.collection_name(name)
        version = v.integer(version, "version", 0)
        for m in v.instances(macs, MutationMAC, "macs"):
            row = {
                "name": name,
                "index_mac": m.index_mac,
                "version": version,
                "value_mac": m.value_mac,
            }
            self._put("app_state_macs", (name, m.index_mac), row)

    # -- protocol bookkeeping ------------------------------------------------
    def set_sender_key_status(self, group: str, items: Sequence[tuple[str, bool]]) -> None:
        group = v.address(group, "group")
        for item in v.sequence(items, "items"):
            d, has = v.pair(item, "items")
            device_jid = v.address(d, "device jid")
            row = {
                "group_jid": group,
                "device_jid": device_jid,
                "has_key": v.boolean(has, "has_key"),
            }
            self._put("sender_key_devices", (group, device_jid), row)

    def put_lid_mapping(self, entry: LidPnMapping) -> None:
        e = v.instance(entry, LidPnMapping, "entry")
        old = self._rows["lid_pn_mappings"].get(e.lid)
        row = {
            "lid": e.lid,
            "phone_number": e.phone_number,
            "created_at": e.created_at if old is None else old["created_at"],
            "updated_at": e.updated_at,
            "learning_source": e.learning_source,
        }
        self._put("lid_pn_mappings", e.lid, row)

    def save_base_key(self, address: str, message_id: str, key: bytes) -> None:
        address, message_id = v.address(address), v.message_id(message_id)
        row = {"address": address, "message_id": message_id, "key": v.base_key(key)}
        self._put("base_keys", (address, message_id), row)

    def update_device_list(self, record: DeviceListRecord) -> None:
        r = v.instance(record, DeviceListRecord, "record")
        row = {
            "user_id": r.user,
            "devices": codec.encode_devices(r.devices),
            "timestamp": r.timestamp,
            "phash": r.phash,
            "raw_id": r.raw_id,
        }
        self._put("device_lists", r.user, row)

    def put_tc_token(self, jid: str, entry: TcToken) -> None:
        jid = v.address(jid, "jid")
        e = v.instance(entry, TcToken, "entry")
        row = {
            "jid": jid,
            "token": e.token,
            "token_timestamp": e.token_timestamp,
            "sender_timestamp": e.sender_timestamp,
        }
        self._put("tc_tokens", jid, row)

    def store_sent_message(self, chat: str, message_id: str, payload: bytes) -> None:
        chat, message_id = v.address(chat, "chat"), v.message_id(message_id)
        row = {
            "chat": chat,
            "message_id": message_id,
            "payload": v.blob(payload, "payload"),
            "created_at": self._now,
        }
        self._put("sent_messages", (chat, message_id), row)

    def put_msg_secrets(self, secrets: Sequence[MsgSecret]) -> int:
        items = v.instances(secrets, MsgSecret, "secrets")
        for s in items:
            key = (s.chat, s.sender, s.msg_id)
            old = self._rows["msg_secrets"].get(key)
            if old is not None:
                s = merge_msg_secret(MsgSecret(**old), s)
            self._put("msg_secrets", key, dataclasses.asdict(s))
        return len(items)

    def store_pending_inbound(
        self, chat: str, sender: str, message_id: str, payload: bytes
    ) -> None:
        key = v.pending_key(chat, sender, message_id)
        row = {
            "chat": key[0],
            "sender": key[1],
            "message_id": key[2],
            "payload": v.blob(payload, "payload"),
            "created_at": self._now,
        }
        self._put("pending_inbound", key, row)

    def put_group_metadata(self, group: str, blob: bytes) -> None:
        group = v.address(group, "group")
        row = {"group_jid": group, "blob": v.blob(blob, "group metadata")}
        self._put("group_metadata", group, row)

    # -- result --------------------------------------------------------------
    def build(self) -> AccountDump:
        """The account as a dump, checked as an imported file would be."""
        device = dict(zip(codec.DEVICE_COLUMNS, codec.device_to_row(self._device, 0), strict=True))
        tables: dict[str, list[Row]] = {"device": [device]}
        for table, rows in self._rows.items():
            tables[table] = list(rows.values())
        dump = AccountDump(tables)
        check(dump)
        return dump
