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
from typing import Any, Final

from .backends.sql import schema
from .backends.sql.dump import COLUMNS, EXPORTED_TABLES, check, row_problems, table_columns
from .errors import ValidationError
from .values import AccountDump, Row

__all__ = [
    "COLUMNS",
    "EXPORTED_TABLES",
    "FORMAT",
    "FORMAT_VERSION",
    "AccountDump",
    "Row",
    "check",
    "decode",
    "encode",
    "row_problems",
    "table_columns",
]

FORMAT: Final = "wastore-account"
FORMAT_VERSION: Final = 1


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
