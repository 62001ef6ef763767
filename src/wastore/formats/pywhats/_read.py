"""Reading a pywhats session (its device JSON and ``.signal.db``) into one account.

What each table becomes is in the package's docstring; the device JSON goes
through :func:`~wastore.formats.pywhats.mapping.device_from_pywhats`.
"""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import sqlite3
import time
from collections.abc import Iterator
from typing import Any

from ...errors import ValidationError
from ...jid import as_jid
from ...portable import AccountBuilder, AccountDump
from ...values import AppStateSyncKey, HashState, LidPnMapping, MutationMAC
from .mapping import (
    LEARNING_SOURCE,
    SIGNAL_DB_SUFFIX,
    device_from_pywhats,
    encode_prekey_record,
    sender_key_address,
    session_address,
)


def signal_db_path(session_path: str | os.PathLike[str]) -> pathlib.Path:
    """Where pywhats keeps the Signal database of a session: ``{session_path}.signal.db``."""
    return pathlib.Path(f"{os.fspath(session_path)}{SIGNAL_DB_SUFFIX}")


class _Rows:
    """The tables of a pywhats ``.signal.db``, opened read-only."""

    def __init__(self, path: pathlib.Path) -> None:
        self.path = path
        uri = f"{path.resolve().as_uri()}?mode=ro"
        try:
            self.conn = sqlite3.connect(uri, uri=True)
            self.tables = {
                name
                for (name,) in self.conn.execute(
                    "SELECT name FROM sqlite_master WHERE type='table'"
                )
            }
        except sqlite3.Error as err:
            raise ValidationError(f"{path}: not a readable SQLite database ({err})") from None

    def rows(self, table: str, columns: str) -> Iterator[tuple[int, tuple[Any, ...]]]:
        if table not in self.tables:  # an older pywhats: the table does not exist yet
            return
        try:
            cursor = self.conn.execute(f"SELECT rowid, {columns} FROM {table} ORDER BY rowid")
            for row in cursor:
                yield row[0], row[1:]
        except sqlite3.Error as err:
            raise ValidationError(f"{self.path}: table {table} cannot be read ({err})") from None

    def close(self) -> None:
        self.conn.close()


@contextlib.contextmanager
def _at(where: str) -> Iterator[None]:
    """Name the file and row in the ValidationError raised while reading it."""
    try:
        yield
    except ValidationError as err:
        message = str(err)
        if message.startswith(where):
            raise
        raise ValidationError(f"{where}: {message}") from None


def _text(value: object, where: str, what: str) -> str:
    if not isinstance(value, str):
        raise ValidationError(f"{where}: {what} must be text, not {type(value).__name__}")
    return value


def _blob(value: object, where: str, what: str) -> bytes:
    if not isinstance(value, bytes):
        raise ValidationError(f"{where}: {what} must be a blob, not {type(value).__name__}")
    return value


def _json_record(value: object, where: str) -> bytes:
    text = _text(value, where, "state")
    try:
        state = json.loads(text)
    except ValueError as err:
        raise ValidationError(f"{where}: state is not JSON ({err})") from None
    if not isinstance(state, dict):
        raise ValidationError(f"{where}: state is not a JSON object")
    return text.encode("utf-8")


def _session_record(value: object, where: str) -> bytes:
    record = _json_record(value, where)
    state = json.loads(record)
    if state.get("schema") != 1 or not {"dhs_priv", "dhs_pub", "rk"} <= state.keys():
        raise ValidationError(f"{where}: state is not a pywhats ratchet session (schema 1)")
    return record


def _put_unique(seen: dict[str, str], address: str, where: str) -> None:
    if address in seen:
        raise ValidationError(f"{where} maps to the signal address {address!r} of {seen[address]}")
    seen[address] = where


def _integer(value: object, where: str, what: str) -> int:
    if type(value) is not int:
        raise ValidationError(f"{where}: {what} must be an integer, not {type(value).__name__}")
    return value


def _read_signal_db(b: AccountBuilder, db: _Rows) -> None:
    name = str(db.path)
    now = int(time.time())
    seen: dict[str, str] = {}
    for rowid, (sid, state) in db.rows("sessions", "session_id, state"):
        where = f"{name}: sessions row {rowid}"
        with _at(where):
            address = session_address(_text(sid, where, "session_id"))
            _put_unique(seen, address, where)
            b.put_session(address, _session_record(state, where))
    seen.clear()
    for rowid, (sid, key) in db.rows("identities", "session_id, identity"):
        where = f"{name}: identities row {rowid}"
        with _at(where):
            address = session_address(_text(sid, where, "session_id"))
            _put_unique(seen, address, where)
            b.put_identity(address, _blob(key, where, "identity"))
    for rowid, (pn, lid) in db.rows("lid_map", "pn_user, lid_user"):
        where = f"{name}: lid_map row {rowid}"
        with _at(where):
            b.put_lid_mapping(
                LidPnMapping(
                    lid=_text(lid, where, "lid_user"),
                    phone_number=_text(pn, where, "pn_user"),
                    created_at=now,
                    updated_at=now,
                    learning_source=LEARNING_SOURCE,
                )
            )
    for rowid, (key_id, private, public) in db.rows("prekeys", "key_id, private, public"):
        where = f"{name}: prekeys row {rowid}"
        with _at(where):
            key_id = _integer(key_id, where, "key_id")
            record = encode_prekey_record(
                key_id, _blob(private, where, "private"), _blob(public, where, "public")
            )
            b.store_prekey(key_id, record, True)
    for rowid, row in db.rows("app_state_sync_keys", "key_id, key_data, fingerprint, timestamp"):
        where = f"{name}: app_state_sync_keys row {rowid}"
        key_id, key_data, fingerprint, timestamp = row
        with _at(where):
            b.set_sync_key(
                _blob(key_id, where, "key_id"),
                AppStateSyncKey(
                    key_data=_blob(key_data, where, "key_data"),
                    fingerprint=_blob(fingerprint, where, "fingerprint"),
                    timestamp=_integer(timestamp, where, "timestamp"),
                ),
            )
    for rowid, (coll, version, hash_) in db.rows("app_state_version", "name, version, hash"):
        where = f"{name}: app_state_version row {rowid}"
        with _at(where):
            b.set_version(
                _text(coll, where, "name"),
                HashState(
                    version=_integer(version, where, "version"), hash=_blob(hash_, where, "hash")
                ),
            )
    # pywhats keeps a MAC per (collection, version, index MAC) and reads the newest
    # version; wastore keeps one per (collection, index MAC): the newest is taken.
    newest: dict[tuple[str, bytes], tuple[int, MutationMAC]] = {}
    for rowid, row in db.rows("app_state_mutation_macs", "name, version, index_mac, value_mac"):
        where = f"{name}: app_state_mutation_macs row {rowid}"
        coll, version, index_mac, value_mac = row
        with _at(where):
            version = _integer(version, where, "version")
            mac = MutationMAC(
                index_mac=_blob(index_mac, where, "index_mac"),
                value_mac=_blob(value_mac, where, "value_mac"),
            )
            key = (_text(coll, where, "name"), mac.index_mac)
            if key not in newest or version >= newest[key][0]:
                newest[key] = (version, mac)
    batches: dict[tuple[str, int], list[MutationMAC]] = {}
    for (coll, _), (version, mac) in sorted(newest.items()):
        batches.setdefault((coll, version), []).append(mac)
    for (coll, version), macs in sorted(batches.items(), key=lambda item: item[0]):
        with _at(f"{name}: app_state_mutation_macs of {coll!r} version {version}"):
            b.put_mutation_macs(coll, version, macs)
    seen.clear()
    for rowid, (group, sender, state) in db.rows("sender_keys", "group_id, sender_id, state"):
        where = f"{name}: sender_keys row {rowid}"
        with _at(where):
            address = sender_key_address(
                _text(group, where, "group_id"), _text(sender, where, "sender_id")
            )
            _put_unique(seen, address, where)
            b.put_sender_key(address, _json_record(state, where))


def read(source: pathlib.Path, *, jid: str | None = None) -> list[AccountDump]:
    """Read the pywhats session at ``source`` (the session path) as one account.

    ``source`` is the device JSON pywhats keeps at its ``session_path``; the
    Signal database beside it, ``{source}.signal.db``, is read when it exists
    (a session that never connected has none). Nothing is written, and pywhats
    need not be installed.

    Args:
        source: the session path.
        jid: when given, the session's phone-number or LID JID must be this
            user's (a check: a pywhats session holds one account).

    Returns:
        One :class:`~wastore.portable.AccountDump`.

    Raises:
        ValidationError: a file is missing or unreadable, or a field or row is
            wrong; the one-line message names the file and the field or row.
    """
    path = pathlib.Path(source)
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise ValidationError(
            f"{path}: cannot read the pywhats session ({err.strerror or err})"
        ) from None
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as err:
        raise ValidationError(f"{path}: not a pywhats device JSON file ({err})") from None
    with _at(str(path)):
        device = device_from_pywhats(data)
    if jid is not None:
        wanted = as_jid(jid, "jid")
        own = {j.user for j in (device.pn, device.lid) if j is not None}
        if wanted.user not in own:
            raise ValidationError(
                f"{path}: the session is {device.pn or device.lid or 'not paired'}, not {wanted}"
            )
    builder = AccountBuilder(device)
    db_path = signal_db_path(path)
    if db_path.exists():
        db = _Rows(db_path)
        try:
            _read_signal_db(builder, db)
        finally:
            db.close()
    return [builder.build()]
