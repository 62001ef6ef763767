"""Contract tests of :class:`wastore.DeviceStore` and :class:`wastore.Container`."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable

import pytest

from ..contract import (
    AppSyncStore,
    Backend,
    Container,
    DeviceStore,
    KeptLeaseStore,
    LeaseStore,
    ProtocolStore,
    SignalStore,
)
from ..device import Device
from ..errors import AccountInUseError, ConfigError, DeviceNotFoundError, ValidationError
from ..jid import JID
from ..keys import KeyPair
from ..values import (
    AppStateSyncKey,
    DeviceListRecord,
    HashState,
    LidPnMapping,
    MsgSecret,
    MutationMAC,
    TcToken,
)
from ._support import (
    ADDRESSES,
    COLLECTIONS,
    PREKEY_IDS,
    far_future,
    key32,
    populate,
    record,
    state_summary,
)

_LEASE_METHODS = ("acquire_lease", "renew_lease", "release_lease")


def _every_field_changed(device: Device) -> Device:
    """``device`` with a non-default value in every field."""
    identity = KeyPair.generate()
    signed = KeyPair.generate()
    return dataclasses.replace(
        device,
        noise_key=KeyPair.generate(),
        identity_key=identity,
        signed_pre_key=signed,
        signed_pre_key_id=77,
        signed_pre_key_signature=identity.sign(b"\x05" + signed.public),
        adv_secret_key=bytes(range(32)),
        registration_id=(1 << 31) - 1,
        pn=JID.parse("4917012345678:4@s.whatsapp.net"),
        lid=JID.parse("81234567890123:4@lid"),
        account=b"\x00\x0a\x1a\xff account \x00",
        push_name="Zoë 🤖 ' \" ;--",
        app_version=(2, 3000, 1_017_531_287),
        app_version_last_fetched_ms=1_700_000_000_123,
        props_hash="props-hash-1",
        next_pre_key_id=812,
        first_unupload_pre_key_id=801,
        server_has_prekeys=True,
        edge_routing_info=b"\x08\x02\x08\x05",
        nct_salt=bytes(range(16)),
        server_cert_chain=b"\x00chain\xff",
        login_counter=5,
        lid_migrated=True,
        read_receipts_disabled=True,
        last_signed_pre_key_rotation_ms=1_700_000_000_999,
        platform="smba",
        business_name="Zoë's Bakery ✓",
        registered=True,
        pairing_code="ABCD1234",
        pairing_ephemeral_key=KeyPair.generate(),
        app_state_key_id=b"\x00\x00\x00\x01\xab",
        last_account_sync_timestamp=1_700_000_123,
        unarchive_chats=True,
        default_disappearing_expiration=604_800,
        default_disappearing_timestamp=1_700_000_456,
        client_data={
            "baileys": b'{"accountSyncCounter":3}',
            "pywhats": b"",
            "x.y-z_1": b"\x00\xff",
        },
    )


class DeviceStoreContract:
    """The device row of one account and debug snapshots."""

    async def test_backend_device_id_is_the_account_id(
        self, container: Container, backend: Backend
    ) -> None:
        assert backend.device_id in await container.devices()
        assert container.backend(backend.device_id).device_id == backend.device_id

    async def test_created_account_exists_and_has_a_device(self, backend: Backend) -> None:
        assert await backend.exists() is True
        device = await backend.load()
        assert isinstance(device, Device)
        assert len(device.identity_key.public) == 32

    async def test_create_is_idempotent_and_returns_the_id(self, backend: Backend) -> None:
        before = await backend.load()
        assert await backend.create() == backend.device_id
        assert await backend.create() == backend.device_id
        assert await backend.exists() is True
        assert await backend.load() == before  # the keys are not regenerated

    async def test_load_round_trips_every_device_field(self, backend: Backend) -> None:
        device = await backend.load()
        assert device is not None
        changed = _every_field_changed(device)
        await backend.save(changed)
        loaded = await backend.load()
        assert loaded == changed
        assert loaded is not None
        for f in dataclasses.fields(Device):
            if f.compare:
                assert getattr(loaded, f.name) == getattr(changed, f.name), f.name
                assert type(getattr(loaded, f.name)) is type(getattr(changed, f.name)), f.name

    async def test_save_replaces_and_clears_optional_fields(self, backend: Backend) -> None:
        device = await backend.load()
        assert device is not None
        await backend.save(_every_field_changed(device))
        cleared = dataclasses.replace(
            device,
            pn=None,
            lid=None,
            account=None,
            props_hash=None,
            edge_routing_info=None,
            nct_salt=None,
            server_cert_chain=None,
            push_name="",
            platform=None,
            business_name=None,
            registered=False,
            pairing_code=None,
            pairing_ephemeral_key=None,
            app_state_key_id=None,
            last_account_sync_timestamp=None,
            unarchive_chats=False,
            default_disappearing_expiration=None,
            default_disappearing_timestamp=None,
            client_data={},
        )
        await backend.save(cleared)
        assert await backend.load() == cleared
        renamed = dataclasses.replace(cleared, push_name="again", account=b"")
        await backend.save(renamed)
        assert await backend.load() == renamed

    async def test_lease_excludes_a_second_holder_until_released_or_expired(
        self, backend: Backend
    ) -> None:
        # LeaseStore is optional: a backend has all three methods or none of them.
        present = [callable(getattr(backend, n, None)) for n in _LEASE_METHODS]
        assert all(present) or not any(present), "implement all of LeaseStore or none of it"
        if not isinstance(backend, LeaseStore):
            return
        first = await backend.acquire_lease("holder one", 30.0)
        assert isinstance(first, str)
        with pytest.raises(AccountInUseError) as caught:
            await backend.acquire_lease("holder two", 30.0)
        assert caught.value.holder == "holder one"
        assert await backend.renew_lease(first, 30.0) is True
        assert await backend.renew_lease("not the token", 30.0) is False
        await backend.release_lease(first)
        second = await backend.acquire_lease("holder two", 0.05)
        assert second != first
        assert await backend.renew_lease(first, 30.0) is False
        await backend.release_lease(first)  # not the holder: changes nothing
        with pytest.raises(AccountInUseError):
            await backend.acquire_lease("holder three", 30.0)
        await asyncio.sleep(0.1)
        if isinstance(backend, KeptLeaseStore):
            # The store renews its leases itself: holder two keeps it until released.
            assert backend.lease_held(second)
            assert not backend.lease_held(first)
            with pytest.raises(AccountInUseError):
                await backend.acquire_lease("holder three", 30.0)
            await backend.release_lease(second)
            assert not backend.lease_held(second)
        # (else the lease of holder two expired: nobody renewed it)
        third = await backend.acquire_lease("holder three", 30.0)
        assert await backend.renew_lease(second, 30.0) is False
        assert await backend.renew_lease(third, 30.0) is True
        await backend.release_lease(third)

    async def test_snapshot_db_returns_a_str_for_any_name(self, backend: Backend) -> None:
        await populate(backend)
        names = ["nightly", "../../etc/x", "a/b", "", ".", "..", "a\\b:c*?", "ü ñ", "x" * 300]
        for name in names:
            assert isinstance(await backend.snapshot_db(name), str), name
        assert isinstance(await backend.snapshot_db("with-extra", b"\x00extra bytes"), str)


class ContainerContract:
    """Accounts of one container: listing, lookup, isolation and deletion."""

    async def test_container_and_backend_satisfy_the_protocols(
        self, container: Container, backend: Backend
    ) -> None:
        assert isinstance(container, Container)
        for protocol in (SignalStore, AppSyncStore, ProtocolStore, DeviceStore, Backend):
            assert isinstance(backend, protocol), f"not a {protocol.__name__}"

    async def test_container_is_an_async_context_manager_closed_idempotently(
        self, container: Container
    ) -> None:
        async with container as entered:
            assert entered is container
            device_id = await entered.create_device()
            assert device_id in await entered.devices()
        await container.close()  # closing a closed container is a no-op

    async def test_create_device_returns_distinct_ids_listed_ascending(
        self, container: Container
    ) -> None:
        ids = [await container.create_device() for _ in range(3)]
        assert len(set(ids)) == 3
        listed = await container.devices()
        assert listed == sorted(listed)
        assert set(ids) <= set(listed)
        for device_id in ids:
            assert await container.backend(device_id).exists() is True

    async def test_find_device_by_phone_number_and_by_lid(
        self, container: Container, backend: Backend, other_backend: Backend
    ) -> None:
        assert await container.find_device(JID.parse("123@s.whatsapp.net")) is None
        d = await backend.load()
        assert d is not None
        await backend.save(
            dataclasses.replace(
                d, pn=JID.parse("123:4@s.whatsapp.net"), lid=JID.parse("98765:4@lid")
            )
        )
        other = await other_backend.load()
        assert other is not None
        await other_backend.save(dataclasses.replace(other, pn=JID.parse("456@s.whatsapp.net")))
        me = backend.device_id
        assert await container.find_device(JID.parse("123@s.whatsapp.net")) == me
        assert await container.find_device(JID.parse("123:9@s.whatsapp.net")) == me
        assert await container.find_device("123@s.whatsapp.net") == me
        assert await container.find_device(JID.parse("98765@lid")) == me
        assert await container.find_device("98765:1@lid") == me
        assert await container.find_device("456@s.whatsapp.net") == other_backend.device_id
        assert await container.find_device("12@s.whatsapp.net") is None
        assert await container.find_device("1234@s.whatsapp.net") is None

    async def test_first_device_creates_the_only_account_then_returns_it(
        self, container: Container
    ) -> None:
        for existing in await container.devices():
            await container.delete_device(existing)
        first = await container.first_device()
        assert await container.devices() == [first]
        assert await container.backend(first).load() is not None  # a real account, with keys
        assert await container.first_device() == first  # reopened, not created again
        assert await container.devices() == [first]

    async def test_first_device_waits_for_a_transaction_creating_an_account(
        self, container: Container
    ) -> None:
        """Two first starts on an empty store make one account: ``first_device`` of one
        task waits for the other task's transaction that creates it, then returns it."""
        for existing in await container.devices():
            await container.delete_device(existing)
        inside, finish = asyncio.Event(), asyncio.Event()
        created: list[int] = []

        async def first_start() -> None:
            async with container.backend(999_999).transaction():
                created.append(await container.create_device())
                inside.set()
                await finish.wait()

        creator = asyncio.create_task(first_start())
        try:
            await asyncio.wait_for(inside.wait(), 10)
            second = asyncio.create_task(container.first_device())
            await asyncio.sleep(0.05)
            assert not second.done()  # it waits for the transaction, it creates nothing
            finish.set()
            await asyncio.wait_for(creator, 10)
            assert await asyncio.wait_for(second, 10) == created[0]
        finally:
            finish.set()
            await asyncio.gather(creator, return_exceptions=True)
        assert await container.devices() == created

    async def test_first_device_names_the_accounts_when_there_are_several(
        self, container: Container
    ) -> None:
        ids = [await container.create_device() for _ in range(2)]
        with pytest.raises(ConfigError) as info:
            await container.first_device()
        for device_id in ids:
            assert str(device_id) in str(info.value)

    async def test_find_device_rejects_an_invalid_jid(self, container: Container) -> None:
        for bad in ("", "a@b@c", "@s.whatsapp.net", "123:x@s.whatsapp.net", None, 123):
            with pytest.raises(ValidationError):
                await container.find_device(bad)  # type: ignore[arg-type]

    async def test_new_account_is_empty(self, backend: Backend) -> None:
        assert await backend.get_sessions(list(ADDRESSES)) == {}
        assert await backend.count_prekeys() == (0, 0)
        assert await backend.get_max_prekey_id() == 0
        assert await backend.load_unuploaded_prekeys(10) == []
        assert await backend.load_all_signed_prekeys() == []
        assert await backend.get_latest_sync_key_id() is None
        assert await backend.get_version(COLLECTIONS[0]) == HashState()
        assert await backend.get_all_lid_mappings() == []
        assert await backend.get_all_tc_token_jids() == []
        assert await backend.delete_expired_sent_messages(far_future()) == 0
        assert await backend.delete_expired_msg_secrets(far_future()) == 0
        assert await backend.delete_expired_pending_inbound(far_future()) == 0
        assert await backend.delete_expired_tc_tokens(far_future(), far_future()) == 0

    async def test_accounts_are_isolated_for_every_kind_of_data(
        self, backend: Backend, other_backend: Backend
    ) -> None:
        a_empty = await state_summary(backend)
        b_empty = await state_summary(other_backend)
        await populate(backend, 0)
        a_full = await state_summary(backend)
        for kind, value in a_full.items():  # populate() wrote every kind the summary reads
            assert value != a_empty[kind], f"populate() left {kind} unchanged"
        assert await state_summary(other_backend) == b_empty
        await populate(other_backend, 1)
        assert await state_summary(backend) == a_full

    async def test_bulk_deletes_and_their_counts_stay_within_the_account(
        self, backend: Backend, other_backend: Backend
    ) -> None:
        await populate(backend, 0)
        await populate(other_backend, 1)
        other_before = await state_summary(other_backend)
        b = backend
        assert await b.delete_signal_state_for_user("111") == 3
        assert await b.delete_signal_state_for_user("222") == 3
        assert await b.delete_expired_tc_tokens(far_future(), far_future()) == 1
        assert await b.delete_expired_sent_messages(far_future()) == 1
        assert await b.delete_expired_msg_secrets(far_future()) == 1
        assert await b.delete_expired_pending_inbound(far_future()) == 1
        await b.clear_all_sender_key_devices()
        await b.delete_sender_key_device_rows(list(ADDRESSES))
        for name in COLLECTIONS:
            await b.clear_mutation_macs(name)
        await b.mark_prekeys_uploaded(list(PREKEY_IDS))
        for i in PREKEY_IDS:
            await b.remove_prekey(i)
        assert await b.count_prekeys() == (0, 0)
        assert await state_summary(other_backend) == other_before

    async def test_delete_device_removes_that_account_and_nothing_else(
        self, container: Container, backend: Backend, other_backend: Backend
    ) -> None:
        empty = await state_summary(backend, device=False)
        await populate(backend, 0)
        await populate(other_backend, 1)
        other_before = await state_summary(other_backend)
        gone = backend.device_id
        await container.delete_device(gone)
        assert gone not in await container.devices()
        assert other_backend.device_id in await container.devices()
        for handle in (backend, container.backend(gone)):  # stale and fresh handles
            assert await handle.exists() is False
            assert await handle.load() is None
            assert await state_summary(handle, device=False) == empty
        assert await state_summary(other_backend) == other_before
        assert await other_backend.exists() is True

    async def test_deleted_account_is_no_longer_found_by_jid(
        self, container: Container, backend: Backend
    ) -> None:
        d = await backend.load()
        assert d is not None
        await backend.save(dataclasses.replace(d, pn=JID.parse("777@s.whatsapp.net")))
        assert await container.find_device("777@s.whatsapp.net") == backend.device_id
        await container.delete_device(backend.device_id)
        assert await container.find_device("777@s.whatsapp.net") is None

    async def test_writes_to_a_deleted_account_raise_device_not_found(
        self, container: Container, backend: Backend
    ) -> None:
        device = await backend.load()
        assert device is not None
        await container.delete_device(backend.device_id)
        await _assert_writes_raise_device_not_found(backend, device)

    async def test_backend_of_a_missing_account_reads_nothing_and_refuses_writes(
        self, container: Container, backend: Backend
    ) -> None:
        device = await backend.load()
        assert device is not None
        missing = container.backend(max(await container.devices()) + 1000)
        assert await missing.exists() is False
        assert await missing.load() is None
        assert await missing.get_session(ADDRESSES[0]) is None
        assert await missing.count_prekeys() == (0, 0)
        await _assert_writes_raise_device_not_found(missing, device)
        assert await missing.exists() is False


async def _assert_writes_raise_device_not_found(backend: Backend, device: Device) -> None:
    a = ADDRESSES[0]
    b = backend
    writes: list[tuple[str, Callable[[], Awaitable[object]]]] = [
        ("save", lambda: b.save(device)),
        ("put_identity", lambda: b.put_identity(a, key32(1))),
        ("put_identities_batch", lambda: b.put_identities_batch([(a, key32(1))])),
        ("put_session", lambda: b.put_session(a, record(1))),
        ("put_sessions_batch", lambda: b.put_sessions_batch([(a, record(1))])),
        ("store_prekey", lambda: b.store_prekey(1, record(1), False)),
        ("store_prekeys_batch", lambda: b.store_prekeys_batch([(1, record(1))], False)),
        ("store_signed_prekey", lambda: b.store_signed_prekey(1, record(1))),
        ("put_sender_key", lambda: b.put_sender_key(f"g@g.us::{a}", record(1))),
        ("put_sender_keys_batch", lambda: b.put_sender_keys_batch([(f"g@g.us::{a}", record(1))])),
        ("set_sync_key", lambda: b.set_sync_key(b"k", AppStateSyncKey(key32(1), b"", 1))),
        ("set_version", lambda: b.set_version("regular", HashState(1, bytes(128)))),
        (
            "put_mutation_macs",
            lambda: b.put_mutation_macs("regular", 1, [MutationMAC(key32(1), key32(2))]),
        ),
        ("set_sender_key_status", lambda: b.set_sender_key_status("g@g.us", [(a, True)])),
        ("put_lid_mapping", lambda: b.put_lid_mapping(LidPnMapping("555", "111", 1, 1))),
        ("save_base_key", lambda: b.save_base_key(a, "MSG", key32(1))),
        ("update_device_list", lambda: b.update_device_list(DeviceListRecord("111"))),
        ("put_tc_token", lambda: b.put_tc_token(a, TcToken(b"t", 1))),
        ("touch_tc_token_sender_timestamp", lambda: b.touch_tc_token_sender_timestamp(a, 1)),
        ("store_received_tc_token", lambda: b.store_received_tc_token(a, b"t", 1)),
        ("store_sent_message", lambda: b.store_sent_message(a, "MSG", record(1))),
        ("put_msg_secrets", lambda: b.put_msg_secrets([MsgSecret(a, a, "MSG", key32(1))])),
        ("store_pending_inbound", lambda: b.store_pending_inbound(a, a, "MSG", record(1))),
        ("put_group_metadata", lambda: b.put_group_metadata("g@g.us", record(1))),
    ]
    for name, write in writes:
        try:
            await write()
        except DeviceNotFoundError:
            continue
        pytest.fail(f"{name}() on a missing account did not raise DeviceNotFoundError")
