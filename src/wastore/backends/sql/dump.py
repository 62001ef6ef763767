"""Statements, row conversion and row checks for exporting and importing one account.

Both SQL backends use these, so an account moves between SQLite and
PostgreSQL through the same columns in the same order (see
:mod:`wastore.portable` for the document format). :func:`row_problems`
decodes every row the way the store does, so an import refuses what the
store could not read back.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from ... import _validate as v
from ...errors import CorruptRecordError, StoreError, ValidationError
from ...values import AccountDump, Row
from . import codec, schema
from .queries import to_sqlite
from .schema import Dialect, check_prefix

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


def select_sql(table: str, dialect: Dialect, prefix: str) -> str:
    """All exported columns of one account's rows of ``table``."""
    p = check_prefix(prefix)
    cols = ", ".join(c for c, _ in COLUMNS[table])
    key = "id" if table == "device" else "device_id"
    sql = f"SELECT {cols} FROM {p}{table} WHERE {key} = $1"
    return to_sqlite(sql) if dialect == "sqlite" else sql


def insert_sql(table: str, dialect: Dialect, prefix: str) -> str:
    """Insert one row of ``table``; ``$1`` is the account id (the device row returns its new id)."""
    p = check_prefix(prefix)
    names = [c for c, _ in COLUMNS[table]]
    if table == "device":
        params = ", ".join(f"${i}" for i in range(1, len(names) + 1))
        sql = f"INSERT INTO {p}device ({', '.join(names)}) VALUES ({params}) RETURNING id"
    else:
        params = ", ".join(f"${i}" for i in range(1, len(names) + 2))
        sql = f"INSERT INTO {p}{table} (device_id, {', '.join(names)}) VALUES ({params})"
    return to_sqlite(sql) if dialect == "sqlite" else sql


_PY_TYPES: dict[str, tuple[type, ...]] = {
    "int": (int,),
    "text": (str,),
    "real": (float, int),
}


def to_rows(table: str, records: Sequence[Sequence[Any]]) -> list[Row]:
    """Database rows -> dump rows (booleans normalised, bytes-like -> bytes).

    Raises:
        CorruptRecordError: a value of the wrong type for its column (an export
            never carries a value the store could not read back).
    """
    cols = COLUMNS[table]
    out: list[Row] = []
    for n, rec in enumerate(records):
        row: Row = {}
        for (name, kind), value in zip(cols, rec, strict=True):
            if value is not None:
                value = _column_value(table, n, name, kind, value)
            row[name] = value
        out.append(row)
    return out


def _column_value(table: str, n: int, name: str, kind: str, value: Any) -> Any:
    if kind == "bool":
        if value is True or value is False or (type(value) is int and value in (0, 1)):
            return bool(value)
    elif kind == "blob":
        if isinstance(value, bytes):
            return value
        if isinstance(value, bytearray | memoryview):
            return bytes(value)
    elif isinstance(value, _PY_TYPES[kind]) and not isinstance(value, bool):
        return value
    raise CorruptRecordError(
        f"{table} row {n}, column {name}: a {type(value).__name__} is stored where "
        f"the schema has {kind}"
    )


def to_params(table: str, row: Row, device_id: int | None) -> tuple[Any, ...]:
    """A dump row -> insert parameters (the device row takes no account id)."""
    values = tuple(row[c] for c, _ in COLUMNS[table])
    return values if device_id is None else (device_id, *values)


def account_users(account: AccountDump) -> list[str]:
    """The phone-number and LID users that identify the account of a dump."""
    dev = account.device
    return [u for u in (dev.get("pn_user"), dev.get("lid_user")) if u]


def refuse_existing(existing: set[int], replace: bool) -> None:
    """Raise unless ``replace`` when the account of an import is already in the store."""
    if existing and not replace:
        ids = ", ".join(str(i) for i in sorted(existing))
        raise ValidationError(
            f"this account is already in the database as device id {ids}; "
            "import with replace to overwrite it"
        )


def table_rows(
    account: AccountDump, dialect: Dialect, prefix: str, device_id: int
) -> list[tuple[str, list[tuple[Any, ...]]]]:
    """``(insert statement, parameter rows)`` of every non-empty table but the device row."""
    out = []
    for t in EXPORTED_TABLES[1:]:
        rows = account.tables.get(t, [])
        if rows:
            out.append((insert_sql(t, dialect, prefix), [to_params(t, r, device_id) for r in rows]))
    return out


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


__all__ = [
    "COLUMNS",
    "EXPORTED_TABLES",
    "account_users",
    "check",
    "insert_sql",
    "refuse_existing",
    "row_problems",
    "select_sql",
    "table_columns",
    "table_rows",
    "to_params",
    "to_rows",
]
