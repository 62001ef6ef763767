"""Row checksums: a record changed behind the store's back is never read as data.

Records are opaque and SQLite has no page checksums, so a damaged byte in a
session would be served as a different session. Every row of every account
table (and the device row) carries a ``crc`` column, written by every write
path and checked by every read path, ``wastore check`` and the export; the
portable format leaves it out and an import computes it again.

The checksum of a row is, modulo the prime :data:`P` (2^31 - 1):

- CRC-32 of the row's columns, in :data:`SPEC` order, started from a value
  made of the account id (a row moved to another account does not check) and
  the columns' lengths (so that no two rows encode alike), plus
- for the few integer columns that a statement merges in SQL (a pre-key's
  ``uploaded``, a LID mapping's first ``created_at``, a tc token's
  ``sender_timestamp``, a message secret's ``expires_at`` and ``message_ts``),
  ``(value mod P) * weight mod P``: a linear term that the merging statement
  updates in SQL (:func:`term_sql`) without knowing the rest of the row.

CRC-32 is computed in Python: it is the same on both databases, needs nothing
from the server and costs less than a function called back from SQLite. The
standard library's ``zlib.crc32`` takes about 400 ns for a 1,200-byte session;
with the ``speedups`` extra, zlib-ng's gives the same values in about 80 ns. It detects
every change of up to 32 consecutive bits of a row, so every single flipped
byte; a random change goes unseen with a chance of 1 in 2^31. It is a check
against damage, not against an attacker who can write the file (who could
compute it too).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

try:  # the same CRC-32 as zlib's (same values), four to five times faster: wastore[speedups]
    from zlib_ng.zlib_ng import crc32
except ImportError:  # pragma: no cover - the standard library's
    from zlib import crc32

from ...errors import CorruptRecordError

P: Final = 2_147_483_647
"""The checksum's modulus (a prime: every term of a merged integer depends on all its bits)."""
NULL_INT: Final = -4_611_686_018_427_387_843
"""What an absent merged integer counts as."""
W1: Final = 1_000_003
W2: Final = 8_388_593

_M32: Final = 0xFFFFFFFF
_K: Final = 1_000_003

# table -> (columns hashed by CRC-32, in this order; merged integer columns and weights)
SPEC: Final[dict[str, tuple[tuple[str, ...], tuple[tuple[str, int], ...]]]] = {
    "identities": (("address", "key"), ()),
    "sessions": (("address", "record"), ()),
    "prekeys": (("id", "record"), (("uploaded", W1),)),
    "signed_prekeys": (("id", "record"), ()),
    "sender_keys": (("address", "record"), ()),
    "sync_keys": (("key_id", "key_data", "fingerprint", "timestamp"), ()),
    "app_state_versions": (("name", "version", "hash"), ()),
    "app_state_macs": (("name", "index_mac", "version", "value_mac"), ()),
    "sender_key_devices": (("group_jid", "device_jid", "has_key"), ()),
    "lid_pn_mappings": (
        ("lid", "phone_number", "updated_at", "learning_source"),
        (("created_at", W1),),
    ),
    "base_keys": (("address", "message_id", "key"), ()),
    "device_lists": (("user_id", "devices", "timestamp", "phash", "raw_id"), ()),
    "tc_tokens": (("jid", "token", "token_timestamp"), (("sender_timestamp", W1),)),
    "sent_messages": (("chat", "message_id", "payload", "created_at"), ()),
    "msg_secrets": (
        ("chat", "sender", "msg_id", "secret"),
        (("expires_at", W1), ("message_ts", W2)),
    ),
    "pending_inbound": (("chat", "sender", "message_id", "payload", "created_at"), ()),
    "group_metadata": (("group_jid", "blob"), ()),
}
"""Every checksummed account table. The device row's columns are
:data:`~wastore.backends.sql.codec.DEVICE_COLUMNS` (see :func:`device`)."""

KEYS: Final[dict[str, tuple[str, ...]]] = {
    "identities": ("address",),
    "sessions": ("address",),
    "prekeys": ("id",),
    "signed_prekeys": ("id",),
    "sender_keys": ("address",),
    "sync_keys": ("key_id",),
    "app_state_versions": ("name",),
    "app_state_macs": ("name", "index_mac"),
    "sender_key_devices": ("group_jid", "device_jid"),
    "lid_pn_mappings": ("lid",),
    "base_keys": ("address", "message_id"),
    "device_lists": ("user_id",),
    "tc_tokens": ("jid",),
    "sent_messages": ("chat", "message_id"),
    "msg_secrets": ("chat", "sender", "msg_id"),
    "pending_inbound": ("chat", "sender", "message_id"),
    "group_metadata": ("group_jid",),
}
"""The primary key of each table within its account."""


def _enc(value: Any) -> bytes | None:
    t = type(value)
    if t is bytes:
        return value  # type: ignore[no-any-return]
    if t is str:
        return value.encode("utf-8", "surrogatepass")  # type: ignore[no-any-return]
    if t is int or t is bool:
        return b"%d" % value
    if value is None:
        return None
    if isinstance(value, bytearray | memoryview):
        return bytes(value)
    # A float, or what a damaged row may hold: its checksum cannot match.
    return repr(value).encode()


def crc(start: int, values: Sequence[Any]) -> int:
    """CRC-32 of ``values`` modulo :data:`P`; the CRC starts from ``start`` and every
    value's length (so that no two rows encode alike: ``("ab", b"c")`` is not
    ``("a", b"bc")``, and None is not empty)."""
    parts = [_enc(v) for v in values]
    seed = start
    for p in parts:
        seed = seed * _K + (0 if p is None else len(p) + 1)
    c = seed & _M32
    for p in parts:
        if p:
            c = crc32(p, c)
    return c % P


def term(value: Any, weight: int) -> int:
    """The term of a merged integer column (booleans count as 0 and 1)."""
    x = NULL_INT if value is None else int(value)
    return (x % P) * weight % P


def term_sql(expr: str, weight: int) -> str:
    """:func:`term` in SQL (both dialects: ``%`` truncates there, hence the ``+ P``)."""
    return f"((((COALESCE({expr}, {NULL_INT}) % {P}) + {P}) % {P}) * {weight} % {P})"


def bool_sql(expr: str) -> str:
    """A boolean column as 0 or 1 in SQL (SQLite stores integers, PostgreSQL booleans)."""
    return f"(CASE WHEN {expr} THEN 1 ELSE 0 END)"


# -- the hot paths: two columns, (address or id, record) -------------------------------


def key_blob(device_id: int, key: str, blob: bytes) -> int:
    """:func:`crc` of ``(key, blob)`` for a text key: sessions, identities, sender keys,
    group metadata (what ``crc(device_id, (key, blob))`` gives, without the loop)."""
    k = key.encode()  # text read back or validated: never a lone surrogate
    seed = ((device_id * _K + len(k) + 1) * _K + len(blob) + 1) & _M32
    return crc32(blob, crc32(k, seed)) % P


def id_blob(device_id: int, key: int, blob: bytes) -> int:
    """:func:`crc` of ``(id, blob)`` for an integer key (pre-keys, signed pre-keys)."""
    k = b"%d" % key
    seed = ((device_id * _K + len(k) + 1) * _K + len(blob) + 1) & _M32
    return crc32(blob, crc32(k, seed)) % P


# -- whole rows ------------------------------------------------------------------------


def of_row(table: str, device_id: int, row: Mapping[str, Any]) -> int:
    """The checksum of a row given as ``{column: value}`` (export, import, check)."""
    if table == "device":
        from .codec import DEVICE_COLUMNS

        return crc(0, [row.get(c) for c in DEVICE_COLUMNS])
    cols, terms = SPEC[table]
    c = crc(device_id, [row[n] for n in cols])
    for name, weight in terms:
        c = (c + term(row[name], weight)) % P
    return c


def device(values: Sequence[Any]) -> int:
    """The checksum of a device row: the values of ``DEVICE_COLUMNS`` (the row's id is
    its key and is left out: a device row is written before its id is known)."""
    return crc(0, values)


def corrupt(table: str, key: object) -> CorruptRecordError:
    """The error for a row whose checksum does not match."""
    shown = key.hex() if isinstance(key, bytes) else repr(key)
    if len(shown) > 80:
        shown = shown[:77] + "..."
    return CorruptRecordError(
        f"the {table} row {shown} does not match its checksum: it was damaged or changed "
        "outside wastore; restore a backup or a snapshot (`wastore check` lists every such row)"
    )


def check(table: str, key: object, stored: Any, computed: int) -> None:
    """Raise :class:`CorruptRecordError` unless ``stored`` is ``computed``."""
    if stored != computed or type(stored) is not int:
        raise corrupt(table, key)


async def backfill(conn: Any, prefix: str) -> None:
    """Compute the checksum of every row that has none (the upgrade to schema 6).

    Args:
        conn: a :class:`~wastore.backends.sql.migrate.SchemaConn` inside the step's
            transaction.
        prefix: the table prefix.
    """
    from .codec import DEVICE_COLUMNS

    cols = ", ".join(DEVICE_COLUMNS)
    for row in await conn.fetch(f"SELECT id, {cols} FROM {prefix}device WHERE crc IS NULL"):
        await conn.execute(
            f"UPDATE {prefix}device SET crc = $1 WHERE id = $2", (device(list(row[1:])), row[0])
        )
    for table, (hashed, terms) in SPEC.items():
        names = [*hashed, *(n for n, _ in terms)]
        keys = KEYS[table]
        rows = await conn.fetch(
            f"SELECT device_id, {', '.join(names)} FROM {prefix}{table} WHERE crc IS NULL"
        )
        where = " AND ".join(f"{k} = ${i}" for i, k in enumerate(keys, start=3))
        sql = f"UPDATE {prefix}{table} SET crc = $1 WHERE device_id = $2 AND {where}"
        for row in rows:
            values = dict(zip(names, row[1:], strict=True))
            value = of_row(table, row[0], values)
            await conn.execute(sql, (value, row[0], *(values[k] for k in keys)))
