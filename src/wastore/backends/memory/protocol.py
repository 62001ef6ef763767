"""The ProtocolStore methods of a MemoryBackend: sender-key distribution, LID and
phone-number mappings, base keys, device lists, tc tokens, sent messages,
message secrets, pending inbound messages and group metadata."""

from __future__ import annotations

from collections.abc import Sequence

from ... import _validate as v
from ...values import DeviceListRecord, LidPnMapping, MsgSecret, TcToken
from .._common import merge_msg_secret, now_s
from .base import AccountBase
from .journal import _del, _del_where, _set


class ProtocolMethods(AccountBase):
    """:class:`~wastore.ProtocolStore` over the account's dicts."""

    __slots__ = ()

    # -- ProtocolStore: sender-key distribution ----------------------------
    async def get_sender_key_devices(self, group: str) -> list[tuple[str, bool]]:
        group = v.address(group, "group")
        rows = (await self._read()).sender_key_devices
        return sorted((d, has) for (g, d), has in rows.items() if g == group)

    async def set_sender_key_status(self, group: str, items: Sequence[tuple[str, bool]]) -> None:
        group = v.address(group, "group")
        checked = v.key_statuses(items)
        acct, j = await self._write()
        for d, has in checked.items():
            _set(j, acct.sender_key_devices, (group, d), has)

    async def clear_sender_key_devices(self, group: str) -> None:
        group = v.address(group, "group")
        acct, j = await self._write()
        _del_where(j, acct.sender_key_devices, lambda k, _: k[0] == group)

    async def delete_sender_key_device_rows(self, device_jids: Sequence[str]) -> None:
        doomed = set(v.address_list(device_jids, "device jids"))
        acct, j = await self._write()
        _del_where(j, acct.sender_key_devices, lambda k, _: k[1] in doomed)

    async def clear_all_sender_key_devices(self) -> None:
        acct, j = await self._write()
        _del_where(j, acct.sender_key_devices, lambda k, _: True)

    # -- LID <-> PN --------------------------------------------------------
    async def get_lid_mapping(self, lid: str) -> LidPnMapping | None:
        lid = v.text(lid, "lid", max_len=128, allow_empty=False)
        return (await self._read()).lid_map.get(lid)

    async def get_pn_mapping(self, phone: str) -> LidPnMapping | None:
        phone = v.text(phone, "phone", max_len=128, allow_empty=False)
        found = [e for e in (await self._read()).lid_map.values() if e.phone_number == phone]
        if not found:
            return None
        return max(found, key=lambda e: (e.updated_at, e.lid))

    async def put_lid_mapping(self, entry: LidPnMapping) -> None:
        await self.put_lid_mappings([entry])

    async def put_lid_mappings(self, entries: Sequence[LidPnMapping]) -> None:
        items = v.instances(entries, LidPnMapping, "entries")
        acct, j = await self._write()
        for e in items:
            old = acct.lid_map.get(e.lid)
            if old is not None and old.created_at != e.created_at:
                e = LidPnMapping(
                    lid=e.lid,
                    phone_number=e.phone_number,
                    created_at=old.created_at,
                    updated_at=e.updated_at,
                    learning_source=e.learning_source,
                )
            _set(j, acct.lid_map, e.lid, e)

    async def get_all_lid_mappings(self) -> list[LidPnMapping]:
        return [e for _, e in sorted((await self._read()).lid_map.items())]

    # -- base keys ---------------------------------------------------------
    async def save_base_key(self, address: str, message_id: str, key: bytes) -> None:
        address = v.address(address)
        message_id = v.message_id(message_id)
        key = v.base_key(key)
        acct, j = await self._write()
        _set(j, acct.base_keys, (address, message_id), key)

    async def has_same_base_key(self, address: str, message_id: str, key: bytes) -> bool:
        address = v.address(address)
        message_id = v.message_id(message_id)
        key = v.base_key(key)
        return (await self._read()).base_keys.get((address, message_id)) == key

    async def delete_base_key(self, address: str, message_id: str) -> None:
        address = v.address(address)
        message_id = v.message_id(message_id)
        acct, j = await self._write()
        _del(j, acct.base_keys, (address, message_id))

    # -- device registry ---------------------------------------------------
    async def update_device_list(self, record: DeviceListRecord) -> None:
        await self.update_device_lists([record])

    async def update_device_lists(self, records: Sequence[DeviceListRecord]) -> None:
        items = v.instances(records, DeviceListRecord, "records")
        acct, j = await self._write()
        for r in items:
            _set(j, acct.device_lists, r.user, r)

    async def get_devices(self, user: str) -> DeviceListRecord | None:
        user = v.user(user)
        return (await self._read()).device_lists.get(user)

    async def delete_devices(self, user: str) -> None:
        user = v.user(user)
        acct, j = await self._write()
        _del(j, acct.device_lists, user)

    # -- tc tokens ---------------------------------------------------------
    async def get_tc_token(self, jid: str) -> TcToken | None:
        jid = v.address(jid, "jid")
        return (await self._read()).tc_tokens.get(jid)

    async def put_tc_token(self, jid: str, entry: TcToken) -> None:
        jid = v.address(jid, "jid")
        v.instance(entry, TcToken, "entry")
        acct, j = await self._write()
        _set(j, acct.tc_tokens, jid, entry)

    async def delete_tc_token(self, jid: str) -> None:
        jid = v.address(jid, "jid")
        acct, j = await self._write()
        _del(j, acct.tc_tokens, jid)

    async def get_all_tc_token_jids(self) -> list[str]:
        return sorted((await self._read()).tc_tokens)

    async def delete_expired_tc_tokens(self, token_cutoff: int, sender_cutoff: int) -> int:
        token_cutoff = v.integer(token_cutoff, "token_cutoff")
        sender_cutoff = v.integer(sender_cutoff, "sender_cutoff")
        acct, j = await self._write()

        def expired(_: str, t: TcToken) -> bool:
            token_old = not t.token or t.token_timestamp < token_cutoff
            sender_old = t.sender_timestamp is None or t.sender_timestamp < sender_cutoff
            return token_old and sender_old

        return _del_where(j, acct.tc_tokens, expired)

    async def touch_tc_token_sender_timestamp(self, jid: str, ts: int) -> None:
        jid = v.address(jid, "jid")
        ts = v.integer(ts, "ts")
        acct, j = await self._write()
        old = acct.tc_tokens.get(jid)
        if old is None:
            _set(j, acct.tc_tokens, jid, TcToken(token=b"", token_timestamp=0, sender_timestamp=ts))
        elif old.sender_timestamp is None or old.sender_timestamp < ts:
            _set(
                j,
                acct.tc_tokens,
                jid,
                TcToken(token=old.token, token_timestamp=old.token_timestamp, sender_timestamp=ts),
            )

    async def store_received_tc_token(self, jid: str, token: bytes, ts: int) -> None:
        jid = v.address(jid, "jid")
        token = v.blob(token, "tc token", max_len=4096)
        ts = v.integer(ts, "ts")
        acct, j = await self._write()
        old = acct.tc_tokens.get(jid)
        if old is None:
            _set(j, acct.tc_tokens, jid, TcToken(token=token, token_timestamp=ts))
        elif not old.token or old.token_timestamp < ts:
            _set(
                j,
                acct.tc_tokens,
                jid,
                TcToken(token=token, token_timestamp=ts, sender_timestamp=old.sender_timestamp),
            )

    # -- sent messages -----------------------------------------------------
    async def store_sent_message(self, chat: str, message_id: str, payload: bytes) -> None:
        chat = v.address(chat, "chat")
        message_id = v.message_id(message_id)
        payload = v.blob(payload, "payload")
        acct, j = await self._write()
        _set(j, acct.sent_messages, (chat, message_id), (payload, now_s()))

    async def take_sent_message(self, chat: str, message_id: str) -> bytes | None:
        chat = v.address(chat, "chat")
        message_id = v.message_id(message_id)
        acct, j = await self._write()
        entry = acct.sent_messages.get((chat, message_id))
        if entry is None:
            return None
        _del(j, acct.sent_messages, (chat, message_id))
        return entry[0]

    async def delete_expired_sent_messages(self, cutoff: int) -> int:
        cutoff = v.integer(cutoff, "cutoff")
        acct, j = await self._write()
        return _del_where(j, acct.sent_messages, lambda _, e: e[1] < cutoff)

    # -- message secrets ---------------------------------------------------
    async def put_msg_secrets(self, secrets: Sequence[MsgSecret]) -> int:
        items = v.instances(secrets, MsgSecret, "secrets")
        acct, j = await self._write()
        for s in items:
            key = (s.chat, s.sender, s.msg_id)
            old = acct.msg_secrets.get(key)
            _set(j, acct.msg_secrets, key, s if old is None else merge_msg_secret(old, s))
        return len(items)

    async def get_msg_secret(self, chat: str, sender: str, msg_id: str) -> MsgSecret | None:
        chat = v.address(chat, "chat")
        sender = v.address(sender, "sender")
        msg_id = v.text(msg_id, "msg_id", max_len=256, allow_empty=False)
        return (await self._read()).msg_secrets.get((chat, sender, msg_id))

    async def delete_expired_msg_secrets(self, cutoff: int) -> int:
        cutoff = v.integer(cutoff, "cutoff")
        acct, j = await self._write()
        return _del_where(
            j, acct.msg_secrets, lambda _, s: s.expires_at != 0 and s.expires_at < cutoff
        )

    # -- pending inbound ---------------------------------------------------
    async def store_pending_inbound(
        self, chat: str, sender: str, message_id: str, payload: bytes
    ) -> None:
        key = v.pending_key(chat, sender, message_id)
        payload = v.blob(payload, "payload")
        acct, j = await self._write()
        _set(j, acct.pending_inbound, key, (payload, now_s()))

    async def get_pending_inbound(self, chat: str, sender: str, message_id: str) -> bytes | None:
        key = v.pending_key(chat, sender, message_id)
        entry = (await self._read()).pending_inbound.get(key)
        return None if entry is None else entry[0]

    async def delete_pending_inbound(self, chat: str, sender: str, message_id: str) -> None:
        key = v.pending_key(chat, sender, message_id)
        acct, j = await self._write()
        _del(j, acct.pending_inbound, key)

    async def delete_expired_pending_inbound(self, cutoff: int) -> int:
        cutoff = v.integer(cutoff, "cutoff")
        acct, j = await self._write()
        return _del_where(j, acct.pending_inbound, lambda _, e: e[1] < cutoff)

    # -- group metadata ----------------------------------------------------
    async def get_group_metadata(self, group: str) -> bytes | None:
        group = v.address(group, "group")
        return (await self._read()).group_metadata.get(group)

    async def put_group_metadata(self, group: str, blob: bytes) -> None:
        group = v.address(group, "group")
        blob = v.blob(blob, "group metadata")
        acct, j = await self._write()
        _set(j, acct.group_metadata, group, blob)

    async def delete_group_metadata(self, group: str) -> None:
        group = v.address(group, "group")
        acct, j = await self._write()
        _del(j, acct.group_metadata, group)
