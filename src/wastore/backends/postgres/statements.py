"""PostgreSQL's own forms of multi-key reads and batch writes.

Batches and multi-key reads are one statement (measured on a 2-core machine,
server on the same host; see ``benchmarks/pg_quick.py`` and ``docs/postgres.md``):

- **Reads** join the table to ``unnest($n::type[])``: one round trip for any
  number of keys, no parameter limit. (``= ANY($n)`` was measured first: its
  generic plan on a table not yet analyzed filters every row of the account
  against the array, 150 ms instead of 3 ms for 1,000 MACs among 10,000.)
- **Batch writes** of one kind of key are one ``INSERT ... SELECT FROM
  unnest(...) ON CONFLICT DO UPDATE``, chosen over ``executemany`` of the
  one-row upsert and over ``COPY`` into a temporary table plus one upsert: 500
  mutation MACs took 3.2-4.8 ms with ``unnest`` against 5.6-7.9 ms with
  ``executemany``; 1,024 sessions of 1,200 bytes took 16-19 ms with all three
  (the server's work dominates), ``unnest`` never slower; ``COPY`` needs a
  temporary table and a transaction, and won nowhere.
- Batches whose duplicates must merge as sequential calls would (LID
  mappings, message secrets, device lists) run ``executemany`` of the shared
  statement: one round trip, one implicit transaction.

Batch keys are sorted (by the caller), so concurrent batches lock rows in the
same order and cannot deadlock each other.
"""

from __future__ import annotations

from typing import Final

from ..sql.checksum import W1, P
from ..sql.queries import Batch, DialectQueries, KeyRead, Queries

# Templates ({p}: the table prefix); the raw-asyncpg benchmark runs them too.
STATEMENTS: Final[dict[str, str]] = {
    # Multi-key reads join the table to unnest(keys) rather than test "= ANY(keys)":
    # the generic plan of "= ANY" on a table not yet analyzed filters every row of
    # the account against the whole array (150 ms for 1,000 MACs among 10,000
    # instead of 3 ms); the join is looked up key by key in the index in any case.
    "get_sessions": "SELECT s.address, s.record, s.crc FROM unnest($2::text[]) AS k(a) "
    "JOIN {p}sessions s ON s.device_id = $1 AND s.address = k.a",
    "load_prekeys": "SELECT p.id, p.record, p.uploaded, p.crc FROM unnest($2::bigint[]) AS k(i) "
    "JOIN {p}prekeys p ON p.device_id = $1 AND p.id = k.i",
    "get_mutation_macs": "SELECT m.index_mac, m.version, m.value_mac, m.crc "
    "FROM unnest($3::bytea[]) AS k(i) "
    "JOIN {p}app_state_macs m ON m.device_id = $1 AND m.name = $2 AND m.index_mac = k.i",
    "mark_prekeys_uploaded": f"UPDATE {{p}}prekeys p SET uploaded = TRUE, crc = (p.crc + {W1}) "
    f"% {P} "
    "FROM unnest($2::bigint[]) AS k(i) "
    "WHERE p.device_id = $1 AND p.id = k.i AND p.uploaded = FALSE",
    "delete_mutation_macs": "DELETE FROM {p}app_state_macs m USING unnest($3::bytea[]) AS k(i) "
    "WHERE m.device_id = $1 AND m.name = $2 AND m.index_mac = k.i",
    "delete_sender_key_device_rows": "DELETE FROM {p}sender_key_devices d "
    "USING unnest($2::text[]) AS k(j) WHERE d.device_id = $1 AND d.device_jid = k.j",
    # Batch writes: one INSERT ... SELECT FROM unnest(...) (keys unique and sorted).
    "put_sessions": "INSERT INTO {p}sessions (device_id, address, record, crc) "
    "SELECT $1, a, r, c FROM unnest($2::text[], $3::bytea[], $4::bigint[]) AS t(a, r, c) "
    "ON CONFLICT (device_id, address) DO UPDATE SET record = excluded.record, crc = excluded.crc",
    "put_identities": "INSERT INTO {p}identities (device_id, address, key, crc) "
    "SELECT $1, a, k, c FROM unnest($2::text[], $3::bytea[], $4::bigint[]) AS t(a, k, c) "
    "ON CONFLICT (device_id, address) DO UPDATE SET key = excluded.key, crc = excluded.crc",
    "put_sender_keys": "INSERT INTO {p}sender_keys (device_id, address, record, crc) "
    "SELECT $1, a, r, c FROM unnest($2::text[], $3::bytea[], $4::bigint[]) AS t(a, r, c) "
    "ON CONFLICT (device_id, address) DO UPDATE SET record = excluded.record, crc = excluded.crc",
    "store_prekeys": "INSERT INTO {p}prekeys (device_id, id, record, crc, uploaded) "
    "SELECT $1, i, r, c, $5 FROM unnest($2::bigint[], $3::bytea[], $4::bigint[]) AS t(i, r, c) "
    "ON CONFLICT (device_id, id) DO UPDATE SET record = excluded.record, "
    "uploaded = excluded.uploaded, crc = excluded.crc",
    "put_mutation_macs": "INSERT INTO {p}app_state_macs (device_id, name, index_mac, version, "
    "value_mac, crc) SELECT $1, $2, i, $3, m, c FROM unnest($4::bytea[], $5::bytea[], "
    "$6::bigint[]) AS t(i, m, c) ON CONFLICT (device_id, name, index_mac) DO UPDATE SET "
    "version = excluded.version, value_mac = excluded.value_mac, crc = excluded.crc",
    "set_sender_key_status": "INSERT INTO {p}sender_key_devices (device_id, group_jid, "
    "device_jid, has_key, crc) SELECT $1, $2, d, h, c FROM unnest($3::text[], $4::boolean[], "
    "$5::bigint[]) AS t(d, h, c) ON CONFLICT (device_id, group_jid, device_jid) DO UPDATE SET "
    "has_key = excluded.has_key, crc = excluded.crc",
    # An id given to backend(id).create() does not advance the identity
    # sequence: move it past that id so create_device() does not collide.
    "bump_device_ids": "SELECT setval(s, "
    "GREATEST($1::bigint, COALESCE(pg_sequence_last_value(s), 1))) "
    "FROM CAST(pg_get_serial_sequence('{p}device', 'id') AS regclass) AS s",
}


def dialect_queries(q: Queries) -> DialectQueries:
    """PostgreSQL's statement set for ``q``'s table prefix."""
    s = {name: sql.format(p=q.prefix) for name, sql in STATEMENTS.items()}

    def arrays(name: str) -> Batch:
        return Batch(s[name], "arrays")

    def each(sql: str) -> Batch:
        return Batch(sql, "each")

    return DialectQueries(
        get_sessions=KeyRead(s["get_sessions"]),
        load_prekeys=KeyRead(s["load_prekeys"]),
        get_mutation_macs=KeyRead(s["get_mutation_macs"]),
        put_identities=arrays("put_identities"),
        put_sessions=arrays("put_sessions"),
        put_sender_keys=arrays("put_sender_keys"),
        store_prekeys=arrays("store_prekeys"),
        put_mutation_macs=arrays("put_mutation_macs"),
        set_sender_key_status=arrays("set_sender_key_status"),
        mark_prekeys_uploaded=arrays("mark_prekeys_uploaded"),
        delete_mutation_macs=arrays("delete_mutation_macs"),
        delete_sender_key_device_rows=arrays("delete_sender_key_device_rows"),
        put_lid_mappings=each(q.put_lid_mapping),
        update_device_lists=each(q.update_device_list),
        put_msg_secrets=each(q.put_msg_secret),
        after_explicit_device_id=s["bump_device_ids"],
        # Self-conflicting, and it waits for every open transaction that wrote a device row
        # (table locks cannot tell an insert from an update): first_device() then sees an
        # account another task is creating (READ COMMITTED would not), and two first
        # starts cannot both create one. It waits behind device saves, which are short.
        lock_accounts=f"LOCK TABLE {q.prefix}device IN SHARE ROW EXCLUSIVE MODE",
    )
