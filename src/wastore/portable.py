"""The portable account format: one account as a versioned JSON document.

Used by ``wastore export`` / ``wastore import`` / ``wastore copy`` and by the
PostgreSQL debug snapshot. The document holds every row of every table of the
account (the lease excepted), so an export -> import -> export round trip
gives an identical file, and a copy between SQLite and PostgreSQL is exact.

Format (``format_version`` 1)::

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
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from . import _validate as v
from .backends.sql import codec, schema
from .errors import StoreError, ValidationError

FORMAT: Final = "wastore-account"
FORMAT_VERSION: Final = 1

EXPORTED_TABLES: Final = tuple(t for t in schema.TABLES if t != "leases")
_HIDDEN: Final = frozenset({"device_id"})


def table_columns() -> dict[str, tuple[tuple[str, schema.ColumnKind], ...]]:
    """The columns each exported table carries in the document."""
    cols = schema.columns()
    out: dict[str, tuple[tuple[str, schema.ColumnKind], ...]] = {}
    for table in EXPORTED_TABLES:
        hidden = _HIDDEN | ({"id"} if table == "device" else set())
        out[table] = tuple((c, k) for c, k in cols[table] if c not in hidden)
    return out


COLUMNS: Final = table_columns()

Row = dict[str, Any]


@dataclass
class AccountDump:
    """Every row of one account, as Python values (bytes for blob columns)."""

    tables: dict[str, list[Row]]

    @property
    def device(self) -> Row:
        return self.tables["device"][0]

    def count(self) -> dict[str, int]:
        return {t: len(rows) for t, rows in self.tables.items()}


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


def decode(data: bytes) -> AccountDump:
    """Parse and check a document; raise :class:`ValidationError` saying what is wrong."""
    try:
        doc = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValidationError(
            f"not a wastore account file (invalid JSON at position {getattr(err, 'pos', '?')}): "
            "the file is truncated or damaged"
        ) from None
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
        decoded: list[Row] = []
        for n, row in enumerate(rows):
            where = f"{table} row {n}"
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


def row_problems(tables: Mapping[str, list[Row]]) -> list[str]:
    """Every row that the store could not decode, described (used by import and `check`)."""
    problems: list[str] = []

    def guard(where: str, fn: Any) -> None:
        try:
            fn()
        except (StoreError, TypeError, ValueError, KeyError, IndexError) as err:
            problems.append(f"{where}: {err}")

    for row in tables.get("device", []):

        def device(row: Row = row) -> None:
            dev = codec.row_to_device([row.get(c) for c in codec.DEVICE_COLUMNS], None)
            bad = dev.key_problems()
            if bad:
                raise ValidationError("; ".join(bad))

        guard("device row", device)
    fixed = {
        ("identities", "key"): 32,
        ("app_state_macs", "index_mac"): 32,
        ("app_state_macs", "value_mac"): 32,
        ("msg_secrets", "secret"): 32,
    }
    for (table, col), size in fixed.items():
        for row in tables.get(table, []):
            value = row.get(col)
            if not isinstance(value, bytes) or len(value) != size:
                found = len(value) if isinstance(value, bytes) else type(value).__name__
                problems.append(
                    f"{table} row {_row_label(table, row)}: {col} must be {size} bytes, "
                    f"found {found}"
                )
    for row in tables.get("sync_keys", []):
        guard(
            "sync_keys row",
            lambda row=row: codec.sync_key(
                (row["key_data"], row["fingerprint"], row["timestamp"]), b""
            ),
        )
    for row in tables.get("app_state_versions", []):
        guard(
            f"app_state_versions {row.get('name')!r}",
            lambda row=row: codec.hash_state((row["version"], row["hash"]), row["name"]),
        )
    for row in tables.get("device_lists", []):
        guard(
            f"device_lists {row.get('user_id')!r}",
            lambda row=row: codec.device_list(
                (row["devices"], row["timestamp"], row["phash"], row["raw_id"]), row["user_id"]
            ),
        )
    for row in tables.get("lid_pn_mappings", []):
        guard(
            "lid_pn_mappings row",
            lambda row=row: codec.lid_mapping(
                (
                    row["lid"],
                    row["phone_number"],
                    row["created_at"],
                    row["updated_at"],
                    row["learning_source"],
                )
            ),
        )
    for table in ("prekeys", "signed_prekeys"):
        for row in tables.get(table, []):
            guard(f"{table} row", lambda row=row: v.prekey_id(row["id"]))
    for table in ("sessions", "sender_keys", "prekeys", "signed_prekeys"):
        for row in tables.get(table, []):
            rec = row.get("record")
            if not isinstance(rec, bytes) or not rec:
                problems.append(
                    f"{table} row {_row_label(table, row)} has an empty or missing record"
                )
    return problems


_LABEL_COLUMNS: Final = {
    "identities": ("address",),
    "sessions": ("address",),
    "sender_keys": ("address",),
    "prekeys": ("id",),
    "signed_prekeys": ("id",),
    "app_state_macs": ("name", "index_mac"),
    "msg_secrets": ("chat", "sender", "msg_id"),
}


def _row_label(table: str, row: Row) -> str:
    """The key of a row, short enough for a message (bytes as a hex prefix)."""
    parts = []
    for col in _LABEL_COLUMNS.get(table, ()):
        value = row.get(col)
        parts.append(value[:8].hex() + "…" if isinstance(value, bytes) else repr(value))
    return ", ".join(parts) or "?"
