"""SQLite's own forms of multi-key reads and batch writes (chosen by measurement,
see ``benchmarks/sqlite_designs.py`` and ``docs/sqlite.md``).

- **Multi-key reads** run an ``IN (...)`` list whose size is a power of two
  (:func:`padded_chunks`): a handful of cached statements serve every list
  length, and none goes near SQLite's parameter limit.
- **Batch upserts** put up to :data:`ROWS_PER_STATEMENT` rows in one
  multi-row ``INSERT`` (:func:`multi_row_sql`, :func:`row_chunks`): the B-tree
  is walked in key order, and a worker thread needs the GIL once per
  statement instead of once per row.
- Batches whose rows must merge as sequential calls would, and keyed updates
  and deletes, run the one-row statement for every row (``executemany``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Final, TypeVar

from ..sql.queries import Batch, DialectQueries, KeyRead, Queries

T = TypeVar("T")

# Multi-key reads: the IN list is filled in by render_in_list().
GET_SESSIONS_IN: Final = (
    "SELECT address, record, crc FROM {p}sessions WHERE device_id = ? AND address IN ({inlist})"
)
LOAD_PREKEYS_IN: Final = (
    "SELECT id, record, uploaded, crc FROM {p}prekeys WHERE device_id = ? AND id IN ({inlist})"
)
GET_MACS_IN: Final = (
    "SELECT index_mac, version, value_mac, crc FROM {p}app_state_macs "
    "WHERE device_id = ? AND name = ? AND index_mac IN ({inlist})"
)
# The batch upsert of MACs with the constant columns first (head, then the row),
# as Engine.batch passes them.
_PUT_MACS: Final = (
    "INSERT INTO {p}app_state_macs (device_id, name, version, index_mac, value_mac, crc) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (device_id, name, index_mac) DO UPDATE "
    "SET version = excluded.version, value_mac = excluded.value_mac, crc = excluded.crc"
)
_IN_SIZES: Final = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)


def render_in_list(template: str, prefix: str, size: int) -> str:
    """``template`` with the table prefix and ``size`` placeholders in its IN list."""
    return template.format(p=prefix, inlist=",".join("?" * size))


ROWS_PER_STATEMENT: Final = 64
"""Most rows one multi-row upsert statement carries (192-320 parameters)."""
_VALUES: Final = re.compile(r"VALUES \((\?\d+(?:, \?\d+)*)\)")


def multi_row_sql(sql: str, rows: int) -> str:
    """The one-row ``INSERT ... VALUES (?1, ?2, ...) ...`` statement ``sql`` with ``rows``
    rows of anonymous placeholders in its VALUES list (the rest is unchanged)."""
    m = _VALUES.search(sql)
    if m is None or "?" in sql[m.end() :]:
        raise ValueError(f"not a one-row INSERT with placeholders only in VALUES: {sql!r}")
    one = "(" + ",".join("?" * (m.group(1).count("?"))) + ")"
    return sql[: m.start()] + "VALUES " + ",".join([one] * rows) + sql[m.end() :]


def row_chunks(n: int) -> list[tuple[int, int]]:
    """``(start, size)`` chunks covering ``n`` rows: full chunks of
    :data:`ROWS_PER_STATEMENT`, the rest in powers of two (so that seven statement
    shapes serve every batch size and no row is written twice)."""
    out = []
    start = 0
    while n - start >= ROWS_PER_STATEMENT:
        out.append((start, ROWS_PER_STATEMENT))
        start += ROWS_PER_STATEMENT
    size = ROWS_PER_STATEMENT // 2
    while start < n:
        if n - start >= size:
            out.append((start, size))
            start += size
        size //= 2
    return out


def padded_chunks(keys: Sequence[T]) -> list[tuple[int, list[T]]]:
    """``keys`` cut into IN-list chunks whose sizes are powers of two (at most 512),
    the last one padded by repeating its last key."""
    out: list[tuple[int, list[T]]] = []
    i, n = 0, len(keys)
    while i < n:
        left = n - i
        size = next((s for s in _IN_SIZES if s >= left), _IN_SIZES[-1])
        chunk = list(keys[i : i + size])
        if len(chunk) < size:
            chunk.extend([chunk[-1]] * (size - len(chunk)))
        out.append((size, chunk))
        i += size
    return out


def dialect_queries(q: Queries) -> DialectQueries:
    """SQLite's statement set for ``q``'s table prefix."""
    p = q.prefix

    def keys(template: str) -> KeyRead:
        return KeyRead(template.replace("{p}", p))

    def rows(sql: str) -> Batch:
        return Batch(sql, "rows")

    def each(sql: str) -> Batch:
        return Batch(sql, "each")

    return DialectQueries(
        get_sessions=keys(GET_SESSIONS_IN),
        load_prekeys=keys(LOAD_PREKEYS_IN),
        get_mutation_macs=keys(GET_MACS_IN),
        put_identities=rows(q.put_identity),
        put_sessions=rows(q.put_session),
        put_sender_keys=rows(q.put_sender_key),
        store_prekeys=rows(q.store_prekey),
        put_mutation_macs=rows(_PUT_MACS.format(p=p)),
        set_sender_key_status=each(q.set_sender_key_status),
        mark_prekeys_uploaded=each(q.mark_prekey_uploaded),
        delete_mutation_macs=each(q.delete_mutation_mac),
        delete_sender_key_device_rows=each(q.delete_sender_key_device_rows),
        put_lid_mappings=each(q.put_lid_mapping),
        update_device_lists=each(q.update_device_list),
        put_msg_secrets=each(q.put_msg_secret),
        # AUTOINCREMENT moves past an id given explicitly by itself
        after_explicit_device_id=None,
        lock_accounts=None,
    )
