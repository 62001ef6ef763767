"""The per-account methods both SQL backends share.

Most of the contract is "validate the arguments, run one statement, decode the
row": written once here over four primitives that each backend implements
its own way (:class:`~wastore.backends.sqlite.SqliteBackend` inline on the
event loop, :class:`~wastore.backends.postgres.PostgresBackend` on a pooled
connection with retries). What differs between the databases — batches,
multi-key reads, counts, leases, the device row, snapshots — stays in the
backends.
"""

from __future__ import annotations

from typing import Any

from ... import _validate as v
from ...device import Device
from ...values import (
    AppStateSyncKey,
    DeviceListRecord,
    HashState,
    LidPnMapping,
    MsgSecret,
    TcToken,
)
from .._common import now_s
from . import codec
from .queries import Queries


class SqlAccount:
    """One account's view of an SQL store: the methods both dialects share.

    Subclasses set ``_id`` and ``_q``, implement the primitives and ``transaction()``.
    """

    __slots__ = ()

    _id: int
    _q: Queries

    # -- primitives, per backend ----------------------------------------------
    async def _write(self, sql: str, args: Any, idempotent: bool = True) -> int:
        """Run one write statement (committed on return, or part of the task's
        transaction); return the affected row count. ``idempotent`` says whether
        running it twice would be harmless (a backend may retry it then)."""
        raise NotImplementedError

    async def _row(self, sql: str, args: Any) -> Any:
        """The row of a query that returns at most one, or None."""
        raise NotImplementedError

    async def _rows(self, sql: str, args: Any) -> list[Any]:
        """Every row of a query with a small result."""
        raise NotImplementedError

    async def _blob(self, sql: str, key: Any, table: str) -> bytes | None:
        """The opaque record of ``(self._id, key)``, None when absent; corrupt if not bytes."""
        raise NotImplementedError

    # -- shared methods ----------------------------------------------------
    @property
    def device_id(self) -> int:
        return self._id

    async def put_identity(self, address: str, key: bytes) -> None:
        await self._write(
            self._q.put_identity, (self._id, v.address(address), v.fixed(key, "identity key", 32))
        )

    async def delete_identity(self, address: str) -> None:
        await self._write(self._q.delete_identity, (self._id, v.address(address)))

    async def get_session(self, address: str) -> bytes | None:
        return await self._blob(self._q.get_session, v.address(address), "sessions")

    async def put_session(self, address: str, record: bytes) -> None:
        await self._write(
            self._q.put_session, (self._id, v.address(address), v.blob(record, "session record"))
        )

    async def delete_session(self, address: str) -> None:
        await self._write(self._q.delete_session, (self._id, v.address(address)))

    @staticmethod
    def _user_ranges(user: str) -> tuple[str, str, str, str]:
        return user + "@", user + "A", user + ":", user + ";"

    async def store_prekey(self, id: int, record: bytes, uploaded: bool) -> None:
        await self._write(
            self._q.store_prekey,
            (
                self._id,
                v.prekey_id(id),
                v.blob(record, "pre-key record"),
                v.boolean(uploaded, "uploaded"),
            ),
        )

    async def load_prekey(self, id: int) -> bytes | None:
        return await self._blob(self._q.load_prekey, v.prekey_id(id), "prekeys")

    async def remove_prekey(self, id: int) -> None:
        await self._write(self._q.remove_prekey, (self._id, v.prekey_id(id)))

    async def count_prekeys(self) -> tuple[int, int]:
        row = await self._row(self._q.count_prekeys, (self._id,))
        return int(row[0]), int(row[1])

    async def store_signed_prekey(self, id: int, record: bytes) -> None:
        await self._write(
            self._q.store_signed_prekey,
            (
                self._id,
                v.prekey_id(id, "signed pre-key id"),
                v.blob(record, "signed pre-key record"),
            ),
        )

    async def load_signed_prekey(self, id: int) -> bytes | None:
        return await self._blob(
            self._q.load_signed_prekey, v.prekey_id(id, "signed pre-key id"), "signed_prekeys"
        )

    async def load_all_signed_prekeys(self) -> list[tuple[int, bytes]]:
        rows = await self._rows(self._q.load_all_signed_prekeys, (self._id,))
        return [(i, codec.blob(r, "signed_prekeys", i)) for i, r in rows]

    async def remove_signed_prekey(self, id: int) -> None:
        await self._write(
            self._q.remove_signed_prekey, (self._id, v.prekey_id(id, "signed pre-key id"))
        )

    async def put_sender_key(self, address: str, record: bytes) -> None:
        await self._write(
            self._q.put_sender_key,
            (
                self._id,
                v.address(address, "sender key address"),
                v.blob(record, "sender key record"),
            ),
        )

    async def get_sender_key(self, address: str) -> bytes | None:
        return await self._blob(
            self._q.get_sender_key, v.address(address, "sender key address"), "sender_keys"
        )

    async def delete_sender_key(self, address: str) -> None:
        await self._write(
            self._q.delete_sender_key, (self._id, v.address(address, "sender key address"))
        )

    async def get_sync_key(self, key_id: bytes) -> AppStateSyncKey | None:
        key_id = v.sync_key_id(key_id)
        row = await self._row(self._q.get_sync_key, (self._id, key_id))
        return None if row is None else codec.sync_key(row, key_id)

    async def set_sync_key(self, key_id: bytes, key: AppStateSyncKey) -> None:
        key_id = v.sync_key_id(key_id)
        v.instance(key, AppStateSyncKey, "key")
        await self._write(
            self._q.set_sync_key, (self._id, key_id, key.key_data, key.fingerprint, key.timestamp)
        )

    async def delete_sync_key(self, key_id: bytes) -> None:
        await self._write(self._q.delete_sync_key, (self._id, v.sync_key_id(key_id)))

    async def set_version(self, name: str, state: HashState) -> None:
        name = v.collection_name(name)
        v.instance(state, HashState, "state")
        await self._write(self._q.set_version, (self._id, name, state.version, state.hash))

    async def clear_mutation_macs(self, name: str) -> None:
        await self._write(self._q.clear_mutation_macs, (self._id, v.collection_name(name)))

    async def get_sender_key_devices(self, group: str) -> list[tuple[str, bool]]:
        rows = await self._rows(
            self._q.get_sender_key_devices, (self._id, v.address(group, "group"))
        )
        return [(d, bool(h)) for d, h in rows]

    async def clear_sender_key_devices(self, group: str) -> None:
        await self._write(self._q.clear_sender_key_devices, (self._id, v.address(group, "group")))

    async def clear_all_sender_key_devices(self) -> None:
        await self._write(self._q.clear_all_sender_key_devices, (self._id,))

    async def get_lid_mapping(self, lid: str) -> LidPnMapping | None:
        lid = v.text(lid, "lid", max_len=128, allow_empty=False)
        row = await self._row(self._q.get_lid_mapping, (self._id, lid))
        return None if row is None else codec.lid_mapping(row)

    async def get_pn_mapping(self, phone: str) -> LidPnMapping | None:
        phone = v.text(phone, "phone", max_len=128, allow_empty=False)
        row = await self._row(self._q.get_pn_mapping, (self._id, phone))
        return None if row is None else codec.lid_mapping(row)

    async def save_base_key(self, address: str, message_id: str, key: bytes) -> None:
        await self._write(
            self._q.save_base_key,
            (self._id, v.address(address), v.message_id(message_id), v.base_key(key)),
        )

    async def delete_base_key(self, address: str, message_id: str) -> None:
        await self._write(
            self._q.delete_base_key, (self._id, v.address(address), v.message_id(message_id))
        )

    def _device_list_row(self, r: DeviceListRecord) -> tuple[Any, ...]:
        return (self._id, r.user, codec.encode_devices(r.devices), r.timestamp, r.phash, r.raw_id)

    async def update_device_list(self, record: DeviceListRecord) -> None:
        r = v.instance(record, DeviceListRecord, "record")
        await self._write(self._q.update_device_list, self._device_list_row(r))

    async def get_devices(self, user: str) -> DeviceListRecord | None:
        user = v.user(user)
        row = await self._row(self._q.get_devices, (self._id, user))
        return None if row is None else codec.device_list(row, user)

    async def delete_devices(self, user: str) -> None:
        await self._write(self._q.delete_devices, (self._id, v.user(user)))

    async def get_tc_token(self, jid: str) -> TcToken | None:
        jid = v.address(jid, "jid")
        row = await self._row(self._q.get_tc_token, (self._id, jid))
        return None if row is None else codec.tc_token(row, jid)

    async def put_tc_token(self, jid: str, entry: TcToken) -> None:
        jid = v.address(jid, "jid")
        e = v.instance(entry, TcToken, "entry")
        await self._write(
            self._q.put_tc_token, (self._id, jid, e.token, e.token_timestamp, e.sender_timestamp)
        )

    async def delete_tc_token(self, jid: str) -> None:
        await self._write(self._q.delete_tc_token, (self._id, v.address(jid, "jid")))

    async def touch_tc_token_sender_timestamp(self, jid: str, ts: int) -> None:
        await self._write(
            self._q.touch_tc_token_sender,
            (self._id, v.address(jid, "jid"), b"", v.integer(ts, "ts")),
        )

    async def store_received_tc_token(self, jid: str, token: bytes, ts: int) -> None:
        await self._write(
            self._q.store_received_tc_token,
            (
                self._id,
                v.address(jid, "jid"),
                v.blob(token, "tc token", max_len=4096),
                v.integer(ts, "ts"),
            ),
        )

    async def store_sent_message(self, chat: str, message_id: str, payload: bytes) -> None:
        await self._write(
            self._q.store_sent_message,
            (
                self._id,
                v.address(chat, "chat"),
                v.message_id(message_id),
                v.blob(payload, "payload"),
                now_s(),
            ),
        )

    async def get_msg_secret(self, chat: str, sender: str, msg_id: str) -> MsgSecret | None:
        chat, sender, msg_id = v.pending_key(chat, sender, msg_id)
        row = await self._row(self._q.get_msg_secret, (self._id, chat, sender, msg_id))
        return None if row is None else codec.msg_secret(row, chat, sender, msg_id)

    async def store_pending_inbound(
        self, chat: str, sender: str, message_id: str, payload: bytes
    ) -> None:
        key = v.pending_key(chat, sender, message_id)
        await self._write(
            self._q.store_pending_inbound, (self._id, *key, v.blob(payload, "payload"), now_s())
        )

    async def delete_pending_inbound(self, chat: str, sender: str, message_id: str) -> None:
        await self._write(
            self._q.delete_pending_inbound, (self._id, *v.pending_key(chat, sender, message_id))
        )

    async def get_group_metadata(self, group: str) -> bytes | None:
        return await self._blob(
            self._q.get_group_metadata, v.address(group, "group"), "group_metadata"
        )

    async def put_group_metadata(self, group: str, blob: bytes) -> None:
        await self._write(
            self._q.put_group_metadata,
            (self._id, v.address(group, "group"), v.blob(blob, "group metadata")),
        )

    async def delete_group_metadata(self, group: str) -> None:
        await self._write(self._q.delete_group_metadata, (self._id, v.address(group, "group")))

    async def load(self) -> Device | None:
        row = await self._row(self._q.load_device, (self._id,))
        return None if row is None else codec.row_to_device(row, self._id)
