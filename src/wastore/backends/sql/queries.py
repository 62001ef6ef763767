"""The SQL statements of the contract, written once for both dialects.

Statements use PostgreSQL's ``$n`` placeholders; for SQLite they become
``?n`` (numbered parameters, which ``sqlite3`` binds from a sequence). The
few spellings that differ come from :data:`_DIALECT`. :class:`Queries` holds
every statement as a typed attribute (a misspelt name is a type error),
rendered once per container, so the hot path only reads an attribute.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields
from typing import Final, Literal

from .checksum import W1, W2, P, term_sql
from .codec import DEVICE_COLUMNS
from .schema import Dialect, check_prefix

_DIALECT: Final[dict[Dialect, dict[str, str]]] = {
    "sqlite": {"greatest": "max", "instr": "instr"},
    "postgres": {"greatest": "GREATEST", "instr": "strpos"},
}

_PLACEHOLDER: Final = re.compile(r"\$(\d+)")

# The device row as it is written and read: its columns, then its checksum.
_DEVICE_ROW: Final = (*DEVICE_COLUMNS, "crc")
_DEVICE_COLS: Final = ", ".join(_DEVICE_ROW)
_DEVICE_PARAMS: Final = ", ".join(f"${i}" for i in range(2, len(_DEVICE_ROW) + 2))
_DEVICE_SET: Final = ", ".join(f"{c} = ${i}" for i, c in enumerate(_DEVICE_ROW, start=2))
# What the message-secret upsert merges (the checksum follows both).
_EXPIRES: Final = (
    "CASE WHEN {p}msg_secrets.expires_at = 0 OR excluded.expires_at = 0 THEN 0 ELSE "
    "{greatest}({p}msg_secrets.expires_at, excluded.expires_at) END"
)
_MESSAGE_TS: Final = "{greatest}({p}msg_secrets.message_ts, excluded.message_ts)"


def _sql(template: str) -> str:
    """A statement field: its template (``{p}`` the table prefix, ``$n`` placeholders,
    ``{greatest}``/``{instr}`` the dialect's spellings), rendered by ``__post_init__``."""
    rendered: str = field(init=False, default=template)
    return rendered


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class Queries:
    """Every statement of the contract, rendered for one dialect and table prefix.

    ``Queries("sqlite", "wastore_").get_session`` is the SQL text.
    """

    dialect: Dialect
    prefix: str

    # -- identities ---------------------------------------------------------
    put_identity: str = _sql(
        "INSERT INTO {p}identities (device_id, address, key, crc) VALUES ($1, $2, $3, $4) ON "
        "CONFLICT (device_id, address) DO UPDATE SET key = excluded.key, crc = excluded.crc"
    )
    load_identity: str = _sql(
        "SELECT key, crc FROM {p}identities WHERE device_id = $1 AND address = $2"
    )
    delete_identity: str = _sql("DELETE FROM {p}identities WHERE device_id = $1 AND address = $2")
    # -- sessions -----------------------------------------------------------
    get_session: str = _sql(
        "SELECT record, crc FROM {p}sessions WHERE device_id = $1 AND address = $2"
    )
    put_session: str = _sql(
        "INSERT INTO {p}sessions (device_id, address, record, crc) VALUES ($1, $2, $3, $4) ON "
        "CONFLICT (device_id, address) DO UPDATE SET record = excluded.record, crc = excluded.crc"
    )
    delete_session: str = _sql("DELETE FROM {p}sessions WHERE device_id = $1 AND address = $2")
    has_session: str = _sql("SELECT 1 FROM {p}sessions WHERE device_id = $1 AND address = $2")
    # A user's addresses are "user@..." and "user:...": two prefix ranges of the
    # primary key ('@' + 1 = 'A', ':' + 1 = ';'), so both lookups use the index.
    has_user_state: str = _sql(
        "SELECT EXISTS (SELECT 1 FROM {p}sessions WHERE device_id = $1 AND ((address >= $2 AND "
        "address < $3) OR (address >= $4 AND address < $5))) OR EXISTS (SELECT 1 FROM "
        "{p}identities WHERE device_id = $1 AND ((address >= $2 AND address < $3) OR (address >= "
        "$4 AND address < $5)))"
    )
    user_session_addresses: str = _sql(
        "SELECT address FROM {p}sessions WHERE device_id = $1 AND ((address >= $2 AND "
        "address < $3) OR (address >= $4 AND address < $5)) ORDER BY address"
    )
    delete_user_sessions: str = _sql(
        "DELETE FROM {p}sessions WHERE device_id = $1 AND ((address >= $2 AND address < $3) OR "
        "(address >= $4 AND address < $5))"
    )
    delete_user_identities: str = _sql(
        "DELETE FROM {p}identities WHERE device_id = $1 AND ((address >= $2 AND address < $3) OR "
        "(address >= $4 AND address < $5))"
    )
    delete_user_sender_keys: str = _sql(
        "DELETE FROM {p}sender_keys WHERE device_id = $1 AND ({instr}(address, $2) > 0 OR "
        "{instr}(address, $3) > 0)"
    )
    # -- pre-keys -----------------------------------------------------------
    store_prekey: str = _sql(
        "INSERT INTO {p}prekeys (device_id, id, record, crc, uploaded) VALUES ($1, $2, $3, $4, $5) "
        "ON CONFLICT (device_id, id) DO UPDATE SET record = excluded.record, uploaded = "
        "excluded.uploaded, crc = excluded.crc"
    )
    load_prekey: str = _sql(
        "SELECT record, uploaded, crc FROM {p}prekeys WHERE device_id = $1 AND id = $2"
    )
    load_unuploaded_prekeys: str = _sql(
        "SELECT id, record, uploaded, crc FROM {p}prekeys WHERE device_id = $1 AND uploaded = "
        "FALSE ORDER BY id LIMIT $2"
    )
    mark_prekey_uploaded: str = _sql(
        f"UPDATE {{p}}prekeys SET uploaded = TRUE, crc = (crc + {W1}) % {P} WHERE device_id = $1 "
        "AND id = $2 AND uploaded = FALSE"
    )
    remove_prekey: str = _sql("DELETE FROM {p}prekeys WHERE device_id = $1 AND id = $2")
    max_prekey_id: str = _sql("SELECT COALESCE(MAX(id), 0) FROM {p}prekeys WHERE device_id = $1")
    count_prekeys: str = _sql(
        "SELECT COUNT(*), COALESCE(SUM(CASE WHEN uploaded THEN 1 ELSE 0 END), 0) FROM {p}prekeys "
        "WHERE device_id = $1"
    )
    # -- signed pre-keys ----------------------------------------------------
    store_signed_prekey: str = _sql(
        "INSERT INTO {p}signed_prekeys (device_id, id, record, crc) VALUES ($1, $2, $3, $4) ON "
        "CONFLICT (device_id, id) DO UPDATE SET record = excluded.record, crc = excluded.crc"
    )
    load_signed_prekey: str = _sql(
        "SELECT record, crc FROM {p}signed_prekeys WHERE device_id = $1 AND id = $2"
    )
    load_all_signed_prekeys: str = _sql(
        "SELECT id, record, crc FROM {p}signed_prekeys WHERE device_id = $1 ORDER BY id"
    )
    remove_signed_prekey: str = _sql(
        "DELETE FROM {p}signed_prekeys WHERE device_id = $1 AND id = $2"
    )
    # -- sender keys --------------------------------------------------------
    put_sender_key: str = _sql(
        "INSERT INTO {p}sender_keys (device_id, address, record, crc) VALUES ($1, $2, $3, $4) ON "
        "CONFLICT (device_id, address) DO UPDATE SET record = excluded.record, crc = excluded.crc"
    )
    get_sender_key: str = _sql(
        "SELECT record, crc FROM {p}sender_keys WHERE device_id = $1 AND address = $2"
    )
    delete_sender_key: str = _sql(
        "DELETE FROM {p}sender_keys WHERE device_id = $1 AND address = $2"
    )
    # -- app-state sync -----------------------------------------------------
    get_sync_key: str = _sql(
        "SELECT key_data, fingerprint, timestamp, crc FROM {p}sync_keys WHERE device_id = $1 AND "
        "key_id = $2"
    )
    set_sync_key: str = _sql(
        "INSERT INTO {p}sync_keys (device_id, key_id, key_data, fingerprint, timestamp, crc) "
        "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (device_id, key_id) DO UPDATE SET key_data = "
        "excluded.key_data, fingerprint = excluded.fingerprint, timestamp = excluded.timestamp, "
        "crc = excluded.crc WHERE {p}sync_keys.timestamp <= excluded.timestamp"
    )
    delete_sync_key: str = _sql("DELETE FROM {p}sync_keys WHERE device_id = $1 AND key_id = $2")
    latest_sync_key_id: str = _sql(
        "SELECT key_id, key_data, fingerprint, timestamp, crc FROM {p}sync_keys WHERE device_id = "
        "$1 ORDER BY timestamp DESC, key_id DESC LIMIT 1"
    )
    get_version: str = _sql(
        "SELECT version, hash, crc FROM {p}app_state_versions WHERE device_id = $1 AND name = $2"
    )
    set_version: str = _sql(
        "INSERT INTO {p}app_state_versions (device_id, name, version, hash, crc) VALUES ($1, $2, "
        "$3, $4, $5) ON CONFLICT (device_id, name) DO UPDATE SET version = excluded.version, hash "
        "= excluded.hash, crc = excluded.crc"
    )
    put_mutation_mac: str = _sql(
        "INSERT INTO {p}app_state_macs (device_id, name, index_mac, version, value_mac, crc) "
        "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (device_id, name, index_mac) DO UPDATE SET "
        "version = excluded.version, value_mac = excluded.value_mac, crc = excluded.crc"
    )
    get_mutation_mac: str = _sql(
        "SELECT version, value_mac, crc FROM {p}app_state_macs WHERE device_id = $1 AND name = $2 "
        "AND index_mac = $3"
    )
    all_mutation_macs: str = _sql(
        "SELECT index_mac, version, value_mac, crc FROM {p}app_state_macs WHERE device_id = $1 AND "
        "name = $2"
    )
    delete_mutation_mac: str = _sql(
        "DELETE FROM {p}app_state_macs WHERE device_id = $1 AND name = $2 AND index_mac = $3"
    )
    clear_mutation_macs: str = _sql(
        "DELETE FROM {p}app_state_macs WHERE device_id = $1 AND name = $2"
    )
    # -- sender-key distribution --------------------------------------------
    get_sender_key_devices: str = _sql(
        "SELECT device_jid, has_key, crc FROM {p}sender_key_devices WHERE device_id = $1 AND "
        "group_jid = $2 ORDER BY device_jid"
    )
    set_sender_key_status: str = _sql(
        "INSERT INTO {p}sender_key_devices (device_id, group_jid, device_jid, has_key, crc) VALUES "
        "($1, $2, $3, $4, $5) ON CONFLICT (device_id, group_jid, device_jid) DO UPDATE SET has_key "
        "= excluded.has_key, crc = excluded.crc"
    )
    clear_sender_key_devices: str = _sql(
        "DELETE FROM {p}sender_key_devices WHERE device_id = $1 AND group_jid = $2"
    )
    delete_sender_key_device_rows: str = _sql(
        "DELETE FROM {p}sender_key_devices WHERE device_id = $1 AND device_jid = $2"
    )
    clear_all_sender_key_devices: str = _sql(
        "DELETE FROM {p}sender_key_devices WHERE device_id = $1"
    )
    # -- LID <-> PN ---------------------------------------------------------
    get_lid_mapping: str = _sql(
        "SELECT lid, phone_number, created_at, updated_at, learning_source, crc FROM "
        "{p}lid_pn_mappings "
        "WHERE device_id = $1 AND lid = $2"
    )
    get_pn_mapping: str = _sql(
        "SELECT lid, phone_number, created_at, updated_at, learning_source, crc FROM "
        "{p}lid_pn_mappings "
        "WHERE device_id = $1 AND phone_number = $2 ORDER BY updated_at DESC, lid DESC LIMIT 1"
    )
    put_lid_mapping: str = _sql(
        "INSERT INTO {p}lid_pn_mappings (device_id, lid, phone_number, created_at, updated_at, "
        "learning_source, crc) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (device_id, lid) DO "
        "UPDATE SET phone_number = excluded.phone_number, updated_at = excluded.updated_at, "
        "learning_source = excluded.learning_source, crc = (excluded.crc - "
        f"{term_sql('excluded.created_at', W1)} + {term_sql('{p}lid_pn_mappings.created_at', W1)} "
        f"+ {P}) % {P}"
    )
    get_all_lid_mappings: str = _sql(
        "SELECT lid, phone_number, created_at, updated_at, learning_source, crc FROM "
        "{p}lid_pn_mappings "
        "WHERE device_id = $1 ORDER BY lid"
    )
    # -- base keys ----------------------------------------------------------
    save_base_key: str = _sql(
        "INSERT INTO {p}base_keys (device_id, address, message_id, key, crc) VALUES ($1, $2, $3, "
        "$4, $5) ON CONFLICT (device_id, address, message_id) DO UPDATE SET key = excluded.key, "
        "crc = excluded.crc"
    )
    get_base_key: str = _sql(
        "SELECT key, crc FROM {p}base_keys WHERE device_id = $1 AND address = $2 AND message_id = "
        "$3"
    )
    delete_base_key: str = _sql(
        "DELETE FROM {p}base_keys WHERE device_id = $1 AND address = $2 AND message_id = $3"
    )
    # -- device registry ----------------------------------------------------
    update_device_list: str = _sql(
        "INSERT INTO {p}device_lists (device_id, user_id, devices, timestamp, phash, raw_id, crc) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (device_id, user_id) DO UPDATE SET "
        "devices = excluded.devices, timestamp = excluded.timestamp, phash = excluded.phash, "
        "raw_id = excluded.raw_id, crc = excluded.crc"
    )
    get_devices: str = _sql(
        "SELECT devices, timestamp, phash, raw_id, crc FROM {p}device_lists WHERE device_id = $1 "
        "AND user_id = $2"
    )
    delete_devices: str = _sql("DELETE FROM {p}device_lists WHERE device_id = $1 AND user_id = $2")
    # -- tc tokens ----------------------------------------------------------
    get_tc_token: str = _sql(
        "SELECT token, token_timestamp, sender_timestamp, crc FROM {p}tc_tokens WHERE device_id = "
        "$1 AND jid = $2"
    )
    put_tc_token: str = _sql(
        "INSERT INTO {p}tc_tokens (device_id, jid, token, token_timestamp, sender_timestamp, crc) "
        "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (device_id, jid) DO UPDATE SET token = "
        "excluded.token, token_timestamp = excluded.token_timestamp, sender_timestamp = "
        "excluded.sender_timestamp, crc = excluded.crc"
    )
    delete_tc_token: str = _sql("DELETE FROM {p}tc_tokens WHERE device_id = $1 AND jid = $2")
    all_tc_token_jids: str = _sql(
        "SELECT jid, token, token_timestamp, sender_timestamp, crc FROM {p}tc_tokens WHERE "
        "device_id = $1 ORDER BY jid"
    )
    delete_expired_tc_tokens: str = _sql(
        "DELETE FROM {p}tc_tokens WHERE device_id = $1 AND (length(token) = 0 OR token_timestamp < "
        "$2) AND (sender_timestamp IS NULL OR sender_timestamp < $3)"
    )
    # One statement each, so that both are atomic against each other and
    # against concurrent writers on either database.
    touch_tc_token_sender: str = _sql(
        "INSERT INTO {p}tc_tokens (device_id, jid, token, token_timestamp, sender_timestamp, crc) "
        "VALUES ($1, $2, $3, 0, $4, $5) ON CONFLICT (device_id, jid) DO UPDATE SET "
        "sender_timestamp = excluded.sender_timestamp, crc = ({p}tc_tokens.crc - "
        f"{term_sql('{p}tc_tokens.sender_timestamp', W1)} + "
        f"{term_sql('excluded.sender_timestamp', W1)} + {P}) % {P} "
        "WHERE {p}tc_tokens.sender_timestamp IS NULL OR "
        "{p}tc_tokens.sender_timestamp < excluded.sender_timestamp"
    )
    store_received_tc_token: str = _sql(
        "INSERT INTO {p}tc_tokens (device_id, jid, token, token_timestamp, sender_timestamp, crc) "
        "VALUES ($1, $2, $3, $4, NULL, $5) ON CONFLICT (device_id, jid) DO UPDATE SET token = "
        "excluded.token, token_timestamp = excluded.token_timestamp, crc = (excluded.crc - "
        f"{term_sql('excluded.sender_timestamp', W1)} + "
        f"{term_sql('{p}tc_tokens.sender_timestamp', W1)} + {P}) % {P} WHERE "
        "length({p}tc_tokens.token) = 0 OR {p}tc_tokens.token_timestamp < excluded.token_timestamp"
    )
    # -- sent messages ------------------------------------------------------
    store_sent_message: str = _sql(
        "INSERT INTO {p}sent_messages (device_id, chat, message_id, payload, created_at, crc) "
        "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (device_id, chat, message_id) DO UPDATE SET "
        "payload = excluded.payload, created_at = excluded.created_at, crc = excluded.crc"
    )
    take_sent_message: str = _sql(
        "DELETE FROM {p}sent_messages WHERE device_id = $1 AND chat = $2 AND message_id = $3 "
        "RETURNING payload, created_at, crc"
    )
    # A take whose caller was cancelled after the delete puts the message back (unless a
    # new one was stored under its id meanwhile).
    restore_sent_message: str = _sql(
        "INSERT INTO {p}sent_messages (device_id, chat, message_id, payload, created_at, crc) "
        "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (device_id, chat, message_id) DO NOTHING"
    )
    delete_expired_sent_messages: str = _sql(
        "DELETE FROM {p}sent_messages WHERE device_id = $1 AND created_at < $2"
    )
    # -- message secrets ----------------------------------------------------
    put_msg_secret: str = _sql(
        "INSERT INTO {p}msg_secrets (device_id, chat, sender, msg_id, secret, expires_at, "
        "message_ts, crc) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (device_id, chat, "
        f"sender, msg_id) DO UPDATE SET secret = excluded.secret, expires_at = {_EXPIRES}, "
        f"message_ts = {_MESSAGE_TS}, crc = (excluded.crc - "
        f"{term_sql('excluded.expires_at', W1)} - {term_sql('excluded.message_ts', W2)} + "
        f"{term_sql(_EXPIRES, W1)} + {term_sql(_MESSAGE_TS, W2)} + {2 * P}) % {P}"
    )
    get_msg_secret: str = _sql(
        "SELECT secret, expires_at, message_ts, crc FROM {p}msg_secrets WHERE device_id = $1 AND "
        "chat = $2 AND sender = $3 AND msg_id = $4"
    )
    delete_expired_msg_secrets: str = _sql(
        "DELETE FROM {p}msg_secrets WHERE device_id = $1 AND expires_at <> 0 AND expires_at < $2"
    )
    # -- pending inbound ----------------------------------------------------
    store_pending_inbound: str = _sql(
        "INSERT INTO {p}pending_inbound (device_id, chat, sender, message_id, payload, created_at, "
        "crc) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (device_id, chat, sender, "
        "message_id) DO UPDATE SET payload = excluded.payload, created_at = excluded.created_at, "
        "crc = excluded.crc"
    )
    get_pending_inbound: str = _sql(
        "SELECT payload, created_at, crc FROM {p}pending_inbound WHERE device_id = $1 AND chat = "
        "$2 AND sender = $3 AND message_id = $4"
    )
    delete_pending_inbound: str = _sql(
        "DELETE FROM {p}pending_inbound WHERE device_id = $1 AND chat = $2 AND sender = $3 AND "
        "message_id = $4"
    )
    delete_expired_pending_inbound: str = _sql(
        "DELETE FROM {p}pending_inbound WHERE device_id = $1 AND created_at < $2"
    )
    # -- group metadata -----------------------------------------------------
    get_group_metadata: str = _sql(
        "SELECT blob, crc FROM {p}group_metadata WHERE device_id = $1 AND group_jid = $2"
    )
    put_group_metadata: str = _sql(
        "INSERT INTO {p}group_metadata (device_id, group_jid, blob, crc) VALUES ($1, $2, $3, $4) "
        "ON CONFLICT (device_id, group_jid) DO UPDATE SET blob = excluded.blob, crc = excluded.crc"
    )
    delete_group_metadata: str = _sql(
        "DELETE FROM {p}group_metadata WHERE device_id = $1 AND group_jid = $2"
    )
    # -- device rows --------------------------------------------------------
    insert_device: str = _sql(
        f"INSERT INTO {{p}}device (id, {_DEVICE_COLS}) VALUES ($1, {_DEVICE_PARAMS})"
    )
    insert_device_if_missing: str = _sql(
        f"INSERT INTO {{p}}device (id, {_DEVICE_COLS}) VALUES ($1, {_DEVICE_PARAMS}) "
        "ON CONFLICT (id) DO NOTHING"
    )
    insert_device_auto: str = _sql(
        f"INSERT INTO {{p}}device ({_DEVICE_COLS}) VALUES "
        f"({', '.join(f'${i}' for i in range(1, len(_DEVICE_ROW) + 1))}) RETURNING id"
    )
    update_device: str = _sql(f"UPDATE {{p}}device SET {_DEVICE_SET} WHERE id = $1")
    load_device: str = _sql(f"SELECT {_DEVICE_COLS} FROM {{p}}device WHERE id = $1")
    device_exists: str = _sql("SELECT 1 FROM {p}device WHERE id = $1")
    list_devices: str = _sql("SELECT id FROM {p}device ORDER BY id")
    first_devices: str = _sql("SELECT id FROM {p}device ORDER BY id LIMIT 11")
    find_device: str = _sql(
        "SELECT id FROM {p}device WHERE pn_user = $1 OR lid_user = $1 ORDER BY id LIMIT 1"
    )
    delete_device: str = _sql("DELETE FROM {p}device WHERE id = $1")

    def __post_init__(self) -> None:
        prefix = check_prefix(self.prefix)
        words = _DIALECT[self.dialect]
        for f in fields(self)[2:]:
            sql = getattr(self, f.name).format(p=prefix, **words)
            if self.dialect == "sqlite":
                sql = to_sqlite(sql)
            object.__setattr__(self, f.name, sql)

    def __repr__(self) -> str:
        return f"Queries({self.dialect!r}, {self.prefix!r})"

    @classmethod
    def statement_names(cls) -> list[str]:
        """The names of the statement fields."""
        return [f.name for f in fields(cls)[2:]]


def to_sqlite(sql: str) -> str:
    """``$n`` placeholders -> ``?n``."""
    return _PLACEHOLDER.sub(r"?\1", sql)


# -- the statements whose form differs per dialect ----------------------------------

BatchMode = Literal["each", "rows", "arrays"]


@dataclass(frozen=True, slots=True)
class Batch:
    """A batch write: one statement over many rows, each ``(*head, *row, *tail)``.

    ``mode`` says how the engine runs it: ``each`` runs the one-row statement
    ``sql`` for every row (``executemany``: rows with one key merge as sequential
    calls would); ``rows`` (SQLite) puts up to 64 rows in one multi-row
    ``INSERT`` of the one-row statement ``sql``; ``arrays`` (PostgreSQL) runs
    ``sql`` once with the head, one array per row column, then the tail.
    """

    sql: str
    mode: BatchMode


@dataclass(frozen=True, slots=True)
class KeyRead:
    """A read by many keys: the rows of ``head`` + one key, for many keys at once.

    SQLite: ``sql`` has an ``IN ({inlist})`` the engine fills with placeholders;
    PostgreSQL: ``sql`` takes the keys as one array parameter after the head.
    """

    sql: str


@dataclass(frozen=True, slots=True)
class DialectQueries:
    """The statements one dialect writes its own way: multi-key reads and batches."""

    get_sessions: KeyRead
    load_prekeys: KeyRead
    get_mutation_macs: KeyRead
    put_identities: Batch
    put_sessions: Batch
    put_sender_keys: Batch
    store_prekeys: Batch
    """Rows ``(id, record)``, tail ``(uploaded,)``."""
    put_mutation_macs: Batch
    """Head ``(device_id, name, version)``, rows ``(index_mac, value_mac)``."""
    set_sender_key_status: Batch
    mark_prekeys_uploaded: Batch
    delete_mutation_macs: Batch
    delete_sender_key_device_rows: Batch
    put_lid_mappings: Batch
    update_device_lists: Batch
    put_msg_secrets: Batch
    after_explicit_device_id: str | None
    """Run after ``insert_device_if_missing`` created a row with a given id (PostgreSQL
    moves its identity sequence past it); None when nothing is needed."""
    lock_accounts: str | None
    """Run first in a transaction that must not interleave with another process's
    creation of accounts (PostgreSQL: a lock of the device table, which also waits for
    every open transaction that wrote a device row, so that ``first_device`` sees an
    account being created; a start-up call, it is not for use inside a transaction that
    wrote a device row); None
    where every write transaction excludes the others (SQLite's ``BEGIN IMMEDIATE``)."""
