"""Shared pieces of the contract suite: fixtures, key pools, ``populate`` and ``state_summary``.

Every check goes through the public :class:`~wastore.Backend` API only, so the
suite runs unchanged over any implementation.

The *pools* below are the keys the suite writes and reads back. A test that
must prove "nothing was written" seeds data under these keys, performs a
rejected call whose valid arguments are drawn from the same pools, and compares
:func:`state_summary` before and after: whatever a faulty backend could have
written half-way lies under a key the summary reads.
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
from collections.abc import Awaitable, Callable
from typing import Any, Final, NoReturn

import pytest
import pytest_asyncio

from ..contract import Backend, Container
from ..errors import DeviceNotFoundError
from ..values import (
    AppStateSyncKey,
    DeviceInfo,
    DeviceListRecord,
    HashState,
    LidPnMapping,
    MsgSecret,
    MutationMAC,
    TcToken,
)

# -- key pools ---------------------------------------------------------------
ADDRESSES: Final = ("111@s.whatsapp.net", "222:3@lid")
"""Signal addresses (also used as chats, senders, device JIDs and tc-token JIDs)."""
SENDER_KEY_ADDRESSES: Final = ("120363@g.us::111:2@s.whatsapp.net", "120363@g.us::222@lid")
GROUPS: Final = ("120363@g.us", "120999@g.us")
USERS: Final = ("111", "222")
LIDS: Final = ("555", "556")
PHONES: Final = ("111", "112")
MESSAGE_IDS: Final = ("3EB0C0FFEE",)
PREKEY_IDS: Final = (1, 2, 3)
SIGNED_PREKEY_IDS: Final = (1, 2)
SYNC_KEY_IDS: Final = (b"\x00\x00\x00\x01", b"\x00\x00\x00\x02")
COLLECTIONS: Final = ("regular", "critical_block")
INDEX_MACS: Final = (b"\x11" * 32, b"\x22" * 32)
BASE_KEYS: Final = (b"\x05" + b"\x01" * 32, b"\x02" * 32)  # 33 and 32 bytes

FAR_PAST: Final = 1_000_000
"""A Unix time long before any row a test stores (January 1970)."""


def far_future() -> int:
    """A Unix time ten years from now: after any row a test stores."""
    return int(time.time()) + 10 * 365 * 86_400


def key32(*parts: object) -> bytes:
    """A deterministic 32-byte value (identity keys, MACs, secrets, sync key data)."""
    return hashlib.sha256(repr(parts).encode()).digest()


def hash128(*parts: object) -> bytes:
    """A deterministic 128-byte value (an LTHash)."""
    seed = repr(parts).encode()
    return hashlib.sha512(seed + b"/0").digest() + hashlib.sha512(seed + b"/1").digest()


def record(*parts: object) -> bytes:
    """A deterministic, non-empty opaque record."""
    return b"rec:" + repr(parts).encode()


class Abort(Exception):
    """Raised by a test to abort a transaction."""


async def in_aborted_transaction(backend: Backend, body: Callable[[], Awaitable[Any]]) -> NoReturn:
    """Run ``body`` inside ``backend.transaction()``, then raise :class:`Abort` from inside it."""
    async with backend.transaction():
        await body()
        raise Abort


# -- populate / summarise ----------------------------------------------------
async def populate(backend: Backend, variant: int = 0) -> None:
    """Write one value of every kind of data, under the pool keys.

    Two variants write different values under the same keys, so a value that
    leaks from one account into another is visible.
    """
    tag = f"v{variant}"
    device = await backend.load()
    assert device is not None, "load() found no device row for a created account"
    await backend.save(dataclasses.replace(device, push_name=f"push {tag}"))

    await backend.put_identity(ADDRESSES[0], key32(tag, "identity", 0))
    await backend.put_identities_batch([(ADDRESSES[1], key32(tag, "identity", 1))])
    await backend.put_session(ADDRESSES[0], record(tag, "session", 0))
    await backend.put_sessions_batch([(ADDRESSES[1], record(tag, "session", 1))])
    await backend.store_prekey(PREKEY_IDS[0], record(tag, "prekey", 1), True)
    await backend.store_prekeys_batch(
        [(PREKEY_IDS[1], record(tag, "prekey", 2)), (PREKEY_IDS[2], record(tag, "prekey", 3))],
        False,
    )
    await backend.store_signed_prekey(SIGNED_PREKEY_IDS[0], record(tag, "signed prekey"))
    await backend.put_sender_key(SENDER_KEY_ADDRESSES[0], record(tag, "sender key", 0))
    await backend.put_sender_keys_batch([(SENDER_KEY_ADDRESSES[1], record(tag, "sender key", 1))])

    await backend.set_sync_key(
        SYNC_KEY_IDS[0],
        AppStateSyncKey(
            key_data=key32(tag, "sync key"), fingerprint=tag.encode(), timestamp=100 + variant
        ),
    )
    await backend.set_version(
        COLLECTIONS[0], HashState(version=7 + variant, hash=hash128(tag, "version"))
    )
    await backend.put_mutation_macs(
        COLLECTIONS[0],
        7 + variant,
        [MutationMAC(index_mac=INDEX_MACS[0], value_mac=key32(tag, "value mac"))],
    )

    await backend.set_sender_key_status(GROUPS[0], [(ADDRESSES[variant % 2], True)])
    await backend.put_lid_mapping(
        LidPnMapping(
            lid=LIDS[0],
            phone_number=PHONES[0],
            created_at=100,
            updated_at=100 + variant,
            learning_source=tag,
        )
    )
    await backend.save_base_key(ADDRESSES[0], MESSAGE_IDS[0], BASE_KEYS[variant % 2])
    await backend.update_device_list(
        DeviceListRecord(
            user=USERS[0],
            devices=(DeviceInfo(device_id=0), DeviceInfo(device_id=2 + variant, key_index=1)),
            timestamp=100 + variant,
        )
    )
    await backend.put_tc_token(
        ADDRESSES[0], TcToken(token=tag.encode(), token_timestamp=100, sender_timestamp=None)
    )
    await backend.store_sent_message(ADDRESSES[0], MESSAGE_IDS[0], record(tag, "sent"))
    await backend.put_msg_secrets(
        [
            MsgSecret(
                chat=ADDRESSES[0],
                sender=ADDRESSES[1],
                msg_id=MESSAGE_IDS[0],
                secret=key32(tag, "secret"),
                expires_at=2_000_000_000,
                message_ts=100,
            )
        ]
    )
    await backend.store_pending_inbound(
        ADDRESSES[1], ADDRESSES[0], MESSAGE_IDS[0], record(tag, "pending")
    )
    await backend.put_group_metadata(GROUPS[0], record(tag, "group metadata"))


async def _peek_sent_message(backend: Backend, chat: str, message_id: str) -> bytes | None:
    # take_sent_message is the only read of sent messages: put back what it took.
    try:
        payload = await backend.take_sent_message(chat, message_id)
    except DeviceNotFoundError:  # take is a write; on a missing account it may raise
        return None
    if payload is not None:
        await backend.store_sent_message(chat, message_id, payload)
    return payload


async def state_summary(backend: Backend, *, device: bool = True) -> dict[str, Any]:
    """Everything the public API shows of the pool keys, as one comparable dict."""
    b = backend
    s: dict[str, Any] = {}
    if device:
        s["device"] = await b.load()
    s["identities"] = {a: await b.load_identity(a) for a in ADDRESSES}
    s["sessions"] = await b.get_sessions(list(ADDRESSES))
    s["prekeys"] = await b.load_prekeys_batch(list(PREKEY_IDS))
    s["unuploaded_prekeys"] = await b.load_unuploaded_prekeys(len(PREKEY_IDS) + 5)
    s["prekey_counts"] = await b.count_prekeys()
    s["max_prekey_id"] = await b.get_max_prekey_id()
    s["signed_prekeys"] = await b.load_all_signed_prekeys()
    s["sender_keys"] = {a: await b.get_sender_key(a) for a in SENDER_KEY_ADDRESSES}
    s["sync_keys"] = {k: await b.get_sync_key(k) for k in SYNC_KEY_IDS}
    s["latest_sync_key_id"] = await b.get_latest_sync_key_id()
    s["versions"] = {n: await b.get_version(n) for n in COLLECTIONS}
    s["mutation_macs"] = {n: await b.get_mutation_macs(n, list(INDEX_MACS)) for n in COLLECTIONS}
    s["sender_key_devices"] = {g: await b.get_sender_key_devices(g) for g in GROUPS}
    s["lid_mappings"] = sorted(await b.get_all_lid_mappings(), key=lambda m: m.lid)
    s["pn_mappings"] = {p: await b.get_pn_mapping(p) for p in PHONES}
    s["base_keys"] = {
        (a, m, k.hex()): await b.has_same_base_key(a, m, k)
        for a in ADDRESSES
        for m in MESSAGE_IDS
        for k in BASE_KEYS
    }
    s["device_lists"] = {u: await b.get_devices(u) for u in USERS}
    s["tc_tokens"] = {j: await b.get_tc_token(j) for j in ADDRESSES}
    s["tc_token_jids"] = sorted(await b.get_all_tc_token_jids())
    s["sent_messages"] = {
        (c, m): await _peek_sent_message(b, c, m) for c in ADDRESSES for m in MESSAGE_IDS
    }
    s["msg_secrets"] = {
        (c, snd, m): await b.get_msg_secret(c, snd, m)
        for c in ADDRESSES
        for snd in ADDRESSES
        for m in MESSAGE_IDS
    }
    s["pending_inbound"] = {
        (c, snd, m): await b.get_pending_inbound(c, snd, m)
        for c in ADDRESSES
        for snd in ADDRESSES
        for m in MESSAGE_IDS
    }
    s["group_metadata"] = {g: await b.get_group_metadata(g) for g in GROUPS}
    return s


# -- fixtures ----------------------------------------------------------------
class ContractFixtures:
    """The fixtures of the suite; a subclass provides ``container``."""

    @pytest.fixture
    def container(self) -> Container:
        pytest.fail(
            f"{type(self).__name__} must define a `container` fixture that yields a "
            "wastore.Container (see the wastore.testing module docstring)",
            pytrace=False,
        )

    @pytest_asyncio.fixture
    async def backend(self, container: Container) -> Backend:
        """A fresh account of the container under test."""
        return container.backend(await container.create_device())

    @pytest_asyncio.fixture
    async def other_backend(self, container: Container) -> Backend:
        """A second fresh account of the same container (for isolation tests)."""
        return container.backend(await container.create_device())
