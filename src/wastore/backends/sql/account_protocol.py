"""The ProtocolStore methods of the SQL account: sender-key distribution, LID and
phone-number mappings, base keys, device lists, tc tokens, sent messages,
message secrets, pending inbound messages and group metadata."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from operator import itemgetter
from typing import Any, TypeVar

from ... import _validate as v
from ...values import DeviceListRecord, LidPnMapping, MsgSecret, TcToken
from .. import _txn
from .._common import now_s
from . import checksum as ck
from . import codec
from .account_base import AccountBase

T = TypeVar("T")


class ProtocolMethods(AccountBase):
    """:class:`~wastore.ProtocolStore` over the store's engine."""

    __slots__ = ()

    # -- sender-key distribution -------------------------------------------
    async def get_sender_key_devices(self, group: str) -> list[tuple[str, bool]]:
        group = v.address(group, "group")
        rows = await self._e.rows(self._q.get_sender_key_devices, (self._id, group))
        for d, h, c in rows:
            self._row("sender_key_devices", (group, d), (group, d, h), c)
        return [(d, bool(h)) for d, h, _ in rows]

    async def set_sender_key_status(self, group: str, items: Sequence[tuple[str, bool]]) -> None:
        group = v.address(group, "group")
        checked = v.key_statuses(items)
        crc = ck.crc
        i = self._id
        rows = [(d, h, crc(i, (group, d, h))) for d, h in sorted(checked.items())]
        await self._batch(self._dq.set_sender_key_status, (i, group), rows)

    async def clear_sender_key_devices(self, group: str) -> None:
        await self._write(self._q.clear_sender_key_devices, (self._id, v.address(group, "group")))

    async def delete_sender_key_device_rows(self, device_jids: Sequence[str]) -> None:
        wanted = sorted(set(v.address_list(device_jids, "device jids")))
        await self._batch(
            self._dq.delete_sender_key_device_rows, (self._id,), [(d,) for d in wanted]
        )

    async def clear_all_sender_key_devices(self) -> None:
        await self._write(self._q.clear_all_sender_key_devices, (self._id,))

    # -- LID <-> PN --------------------------------------------------------
    async def get_lid_mapping(self, lid: str) -> LidPnMapping | None:
        lid = v.text(lid, "lid", max_len=128, allow_empty=False)
        row = await self._e.one(self._q.get_lid_mapping, (self._id, lid))
        return None if row is None else self._lid(row)

    async def get_pn_mapping(self, phone: str) -> LidPnMapping | None:
        phone = v.text(phone, "phone", max_len=128, allow_empty=False)
        row = await self._e.one(self._q.get_pn_mapping, (self._id, phone))
        return None if row is None else self._lid(row)

    def _lid(self, row: Sequence[Any]) -> LidPnMapping:
        mapping = codec.lid_mapping(row)
        lid, phone, created, updated, source, stored = row
        self._row("lid_pn_mappings", lid, (lid, phone, updated, source, created), stored)
        return mapping

    def _lid_row(self, e: LidPnMapping) -> tuple[Any, ...]:
        c = self._crc(
            "lid_pn_mappings",
            (e.lid, e.phone_number, e.updated_at, e.learning_source, e.created_at),
        )
        return (e.lid, e.phone_number, e.created_at, e.updated_at, e.learning_source, c)

    async def put_lid_mapping(self, entry: LidPnMapping) -> None:
        e = v.instance(entry, LidPnMapping, "entry")
        await self._write(self._q.put_lid_mapping, (self._id, *self._lid_row(e)))

    async def put_lid_mappings(self, entries: Sequence[LidPnMapping]) -> None:
        items = v.instances(entries, LidPnMapping, "entries")
        # one by one: duplicates must merge as sequential puts do (the first created_at)
        rows = sorted(map(self._lid_row, items), key=itemgetter(0))
        await self._batch(self._dq.put_lid_mappings, (self._id,), rows)

    async def get_all_lid_mappings(self) -> list[LidPnMapping]:
        rows = await self._e.rows(self._q.get_all_lid_mappings, (self._id,), expect=None)
        return [self._lid(r) for r in rows]

    # -- base keys ---------------------------------------------------------
    async def save_base_key(self, address: str, message_id: str, key: bytes) -> None:
        values = (v.address(address), v.message_id(message_id), v.base_key(key))
        await self._write(
            self._q.save_base_key, (self._id, *values, self._crc("base_keys", values))
        )

    async def has_same_base_key(self, address: str, message_id: str, key: bytes) -> bool:
        address, message_id, key = v.address(address), v.message_id(message_id), v.base_key(key)
        row = await self._e.one(self._q.get_base_key, (self._id, address, message_id))
        if row is None:
            return False
        stored = codec.blob(row[0], "base_keys", (address, message_id))
        self._row("base_keys", (address, message_id), (address, message_id, stored), row[1])
        return stored == key

    async def delete_base_key(self, address: str, message_id: str) -> None:
        await self._write(
            self._q.delete_base_key, (self._id, v.address(address), v.message_id(message_id))
        )

    # -- device registry ---------------------------------------------------
    def _device_list_row(self, r: DeviceListRecord) -> tuple[Any, ...]:
        values = (r.user, codec.encode_devices(r.devices), r.timestamp, r.phash, r.raw_id)
        return (*values, self._crc("device_lists", values))

    async def update_device_list(self, record: DeviceListRecord) -> None:
        r = v.instance(record, DeviceListRecord, "record")
        await self._write(self._q.update_device_list, (self._id, *self._device_list_row(r)))

    async def update_device_lists(self, records: Sequence[DeviceListRecord]) -> None:
        items = v.instances(records, DeviceListRecord, "records")
        rows = sorted(map(self._device_list_row, items), key=itemgetter(0))  # stable
        await self._batch(self._dq.update_device_lists, (self._id,), rows)

    async def get_devices(self, user: str) -> DeviceListRecord | None:
        user = v.user(user)
        row = await self._e.one(self._q.get_devices, (self._id, user))
        if row is None:
            return None
        record = codec.device_list(row, user)
        self._row("device_lists", user, (user, *row[:4]), row[4])
        return record

    async def delete_devices(self, user: str) -> None:
        await self._write(self._q.delete_devices, (self._id, v.user(user)))

    # -- tc tokens ---------------------------------------------------------
    async def get_tc_token(self, jid: str) -> TcToken | None:
        jid = v.address(jid, "jid")
        row = await self._e.one(self._q.get_tc_token, (self._id, jid))
        if row is None:
            return None
        token = codec.tc_token(row, jid)
        self._row("tc_tokens", jid, (jid, *row[:3]), row[3])
        return token

    async def put_tc_token(self, jid: str, entry: TcToken) -> None:
        jid = v.address(jid, "jid")
        e = v.instance(entry, TcToken, "entry")
        values = (jid, e.token, e.token_timestamp, e.sender_timestamp)
        await self._write(self._q.put_tc_token, (self._id, *values, self._crc("tc_tokens", values)))

    async def delete_tc_token(self, jid: str) -> None:
        await self._write(self._q.delete_tc_token, (self._id, v.address(jid, "jid")))

    async def get_all_tc_token_jids(self) -> list[str]:
        rows = await self._e.rows(self._q.all_tc_token_jids, (self._id,), expect=None)
        for r in rows:
            self._row("tc_tokens", r[0], r[:4], r[4])
        return [r[0] for r in rows]

    async def delete_expired_tc_tokens(self, token_cutoff: int, sender_cutoff: int) -> int:
        return await self._write(
            self._q.delete_expired_tc_tokens,
            (
                self._id,
                v.integer(token_cutoff, "token_cutoff"),
                v.integer(sender_cutoff, "sender_cutoff"),
            ),
            idempotent=False,
        )

    async def touch_tc_token_sender_timestamp(self, jid: str, ts: int) -> None:
        jid, ts = v.address(jid, "jid"), v.integer(ts, "ts")
        # The checksum of the placeholder row; an existing row's is updated in SQL.
        c = self._crc("tc_tokens", (jid, b"", 0, ts))
        await self._write(self._q.touch_tc_token_sender, (self._id, jid, b"", ts, c))

    async def store_received_tc_token(self, jid: str, token: bytes, ts: int) -> None:
        jid = v.address(jid, "jid")
        token = v.blob(token, "tc token", max_len=4096)
        ts = v.integer(ts, "ts")
        c = self._crc("tc_tokens", (jid, token, ts, None))
        await self._write(self._q.store_received_tc_token, (self._id, jid, token, ts, c))

    # -- sent messages -----------------------------------------------------
    async def store_sent_message(self, chat: str, message_id: str, payload: bytes) -> None:
        values = (
            v.address(chat, "chat"),
            v.message_id(message_id),
            v.blob(payload, "payload"),
            now_s(),
        )
        await self._write(
            self._q.store_sent_message, (self._id, *values, self._crc("sent_messages", values))
        )

    async def take_sent_message(self, chat: str, message_id: str) -> bytes | None:
        """Atomic read-and-delete (DELETE ... RETURNING: of concurrent takers only the one
        whose delete removes the row gets it).

        A caller cancelled while the take runs never loses the message: the take runs
        to its end, and if it removed the row the message is put back before the
        cancellation goes on (inside a transaction, the rollback keeps it).
        """
        chat, message_id = v.address(chat, "chat"), v.message_id(message_id)
        key = (self._id, chat, message_id)
        if _txn.current(self._e) is not None:
            row = await self._take(key)
        else:
            row = await self._take_shielded(key)
        if row is None:
            return None
        payload = codec.blob(row[0], "sent_messages", (chat, message_id))
        self._row("sent_messages", (chat, message_id), (chat, message_id, *row[:2]), row[2])
        return payload

    async def _take(self, key: tuple[int, str, str]) -> Any:
        leases = self._leases
        epoch = leases.fence(self._id) if leases.held else None
        if epoch is None:
            return await self._e.write_returning(self._q.take_sent_message, key, account=self._id)
        row = await self._e.write_returning(
            leases.fenced[self._q.take_sent_message], (*key, epoch), account=self._id
        )
        if row is None:
            await leases.verify(self._id, epoch)
        return row

    async def _take_shielded(self, key: tuple[int, str, str]) -> Any:
        task = asyncio.ensure_future(self._take(key))
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            # The caller gave up: let the take finish, and put back what it took.
            with contextlib.suppress(BaseException):
                row = await _settled(task)
                if row is not None:
                    await _settled(
                        asyncio.ensure_future(
                            self._write(
                                self._q.restore_sent_message, (*key, row[0], row[1], row[2])
                            )
                        )
                    )
            raise

    async def delete_expired_sent_messages(self, cutoff: int) -> int:
        return await self._write(
            self._q.delete_expired_sent_messages,
            (self._id, v.integer(cutoff, "cutoff")),
            idempotent=False,
        )

    # -- message secrets ---------------------------------------------------
    async def put_msg_secrets(self, secrets: Sequence[MsgSecret]) -> int:
        items = v.instances(secrets, MsgSecret, "secrets")
        rows = sorted(
            (
                (*r, self._crc("msg_secrets", r))
                for r in (
                    (s.chat, s.sender, s.msg_id, s.secret, s.expires_at, s.message_ts)
                    for s in items
                )
            ),
            key=itemgetter(0, 1, 2),  # stable: duplicates keep their order and merge in it
        )
        await self._batch(self._dq.put_msg_secrets, (self._id,), rows)
        return len(items)

    async def get_msg_secret(self, chat: str, sender: str, msg_id: str) -> MsgSecret | None:
        chat, sender, msg_id = v.pending_key(chat, sender, msg_id)
        row = await self._e.one(self._q.get_msg_secret, (self._id, chat, sender, msg_id))
        if row is None:
            return None
        key = (chat, sender, msg_id)
        secret = codec.msg_secret(row, chat, sender, msg_id)
        self._row("msg_secrets", key, (*key, *row[:3]), row[3])
        return secret

    async def delete_expired_msg_secrets(self, cutoff: int) -> int:
        return await self._write(
            self._q.delete_expired_msg_secrets,
            (self._id, v.integer(cutoff, "cutoff")),
            idempotent=False,
        )

    # -- pending inbound ---------------------------------------------------
    async def store_pending_inbound(
        self, chat: str, sender: str, message_id: str, payload: bytes
    ) -> None:
        key = v.pending_key(chat, sender, message_id)
        values = (*key, v.blob(payload, "payload"), now_s())
        await self._write(
            self._q.store_pending_inbound,
            (self._id, *values, self._crc("pending_inbound", values)),
        )

    async def get_pending_inbound(self, chat: str, sender: str, message_id: str) -> bytes | None:
        key = v.pending_key(chat, sender, message_id)
        row = await self._e.one(self._q.get_pending_inbound, (self._id, *key))
        if row is None:
            return None
        payload = codec.blob(row[0], "pending_inbound", key)
        self._row("pending_inbound", key, (*key, *row[:2]), row[2])
        return payload

    async def delete_pending_inbound(self, chat: str, sender: str, message_id: str) -> None:
        await self._write(
            self._q.delete_pending_inbound, (self._id, *v.pending_key(chat, sender, message_id))
        )

    async def delete_expired_pending_inbound(self, cutoff: int) -> int:
        return await self._write(
            self._q.delete_expired_pending_inbound,
            (self._id, v.integer(cutoff, "cutoff")),
            idempotent=False,
        )

    # -- group metadata ----------------------------------------------------
    async def get_group_metadata(self, group: str) -> bytes | None:
        return await self._blob(
            self._q.get_group_metadata, v.address(group, "group"), "group_metadata"
        )

    async def put_group_metadata(self, group: str, blob: bytes) -> None:
        group, blob = v.address(group, "group"), v.blob(blob, "group metadata")
        await self._write(
            self._q.put_group_metadata, (self._id, group, blob, ck.key_blob(self._id, group, blob))
        )

    async def delete_group_metadata(self, group: str) -> None:
        await self._write(self._q.delete_group_metadata, (self._id, v.address(group, "group")))


async def _settled(fut: asyncio.Future[T]) -> T:
    """Await ``fut`` to its end even if this task is cancelled meanwhile (then re-raise
    the cancellation once it is done)."""
    cancelled = False
    while True:
        try:
            result = await asyncio.shield(fut)
        except asyncio.CancelledError:
            if fut.done():
                raise
            cancelled = True
            continue
        if cancelled:
            raise asyncio.CancelledError
        return result
