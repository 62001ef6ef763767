"""Statements and row conversion for exporting and importing one account.

Both SQL backends use these, so an account moves between SQLite and
PostgreSQL through the same columns in the same order (see
:mod:`wastore.portable` for the document format).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ...errors import CorruptRecordError, ValidationError
from ...portable import COLUMNS, EXPORTED_TABLES
from ...values import AccountDump, Row
from .queries import to_sqlite
from .schema import Dialect, check_prefix


def select_sql(table: str, dialect: Dialect, prefix: str) -> str:
    """All exported columns of one account's rows of ``table``."""
    p = check_prefix(prefix)
    cols = ", ".join(c for c, _ in COLUMNS[table])
    key = "id" if table == "device" else "device_id"
    sql = f"SELECT {cols} FROM {p}{table} WHERE {key} = $1"
    return to_sqlite(sql) if dialect == "sqlite" else sql


def insert_sql(table: str, dialect: Dialect, prefix: str, *, with_id: bool = False) -> str:
    """Insert one row of ``table``; ``$1`` is the account id (the device row returns its
    new id, or, ``with_id``, takes the id as ``$1`` and returns it)."""
    p = check_prefix(prefix)
    names = [c for c, _ in COLUMNS[table]]
    if table == "device" and with_id:
        params = ", ".join(f"${i}" for i in range(1, len(names) + 2))
        sql = f"INSERT INTO {p}device (id, {', '.join(names)}) VALUES ({params}) RETURNING id"
    elif table == "device":
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


def match_sql(prefix: str, users: int) -> str:
    """The device rows an account might be: ``$1`` its identity key, ``$2``... its
    phone-number and LID users. Rows ``(id, identity_key_public, pn, lid)``, by id;
    written with ``$n`` placeholders (render with :func:`to_sqlite` for SQLite)."""
    p = check_prefix(prefix)
    conds = ["identity_key_public = $1"]
    for n in range(2, users + 2):
        conds.append(f"pn_user = ${n} OR lid_user = ${n}")
    where = " OR ".join(conds)
    return f"SELECT id, identity_key_public, pn, lid FROM {p}device WHERE {where} ORDER BY id"


def match_params(account: AccountDump) -> tuple[Any, ...]:
    """The parameters of :func:`match_sql` for ``account``."""
    return (account.device.get("identity_key_public"), *account_users(account))


@dataclass(frozen=True)
class Matches:
    """The device rows of a store that an imported account meets.

    ``same``: the ids of this very account — the same identity key (its phone
    number or LID may have changed). ``others``: ``(id, pn, lid)`` of accounts
    that have the account's phone-number or LID user but another identity key:
    different accounts (the phone was linked again), never to be replaced by it.
    """

    same: tuple[int, ...]
    others: tuple[tuple[int, str | None, str | None], ...]


def matches(rows: Sequence[Sequence[Any]], account: AccountDump) -> Matches:
    """Sort the rows of :func:`match_sql` into :class:`Matches`."""
    key = account.device.get("identity_key_public")
    same: list[int] = []
    others: list[tuple[int, str | None, str | None]] = []
    for row in rows:
        found = row[1]
        if isinstance(found, bytearray | memoryview):
            found = bytes(found)
        if key is not None and found == key:
            same.append(int(row[0]))
        else:
            others.append((int(row[0]), _jid(row[2]), _jid(row[3])))
    return Matches(tuple(same), tuple(others))


def _jid(value: Any) -> str | None:
    return None if value is None else str(value)


def another_account(
    others: Sequence[tuple[int, str | None, str | None]], option: str = "replace"
) -> str:
    """Why an import meeting ``others`` (see :class:`Matches`) is refused (``option``:
    what the caller calls replacing)."""
    shown = "; ".join(
        f"device id {i} ({', '.join(x for x in (pn, lid) if x) or 'not paired'})"
        for i, pn, lid in others
    )
    return (
        f"{shown} has this account's phone number or LID but another identity key: it is "
        f"a different account (the phone was linked again?), and {option} never overwrites "
        "a different account"
    )


def refuse(found: Matches, replace: bool) -> None:
    """Raise when the import of an account that meets ``found`` must not go on: another
    account has its phone number or LID (always), or the account itself is there and
    ``replace`` is false."""
    if found.others:
        raise ValidationError(
            f"{another_account(found.others)}; nothing was imported (delete that account "
            "first if it is no longer wanted)"
        )
    if found.same and not replace:
        ids = ", ".join(str(i) for i in found.same)
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


__all__ = [
    "EXPORTED_TABLES",
    "Matches",
    "account_users",
    "another_account",
    "insert_sql",
    "match_params",
    "match_sql",
    "matches",
    "refuse",
    "select_sql",
    "table_rows",
    "to_params",
    "to_rows",
]
