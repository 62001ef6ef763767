"""Contract tests of ``Backend.transaction()``."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any, TypeVar

import pytest

from ..contract import Backend, Container, LeaseStore
from ..errors import AccountInUseError, StoreError
from ..jid import JID
from ..values import (
    AppStateSyncKey,
    DeviceInfo,
    DeviceListRecord,
    HashState,
    LidPnMapping,
    MsgSecret,
    MutationMAC,
)
from ._support import (
    ADDRESSES,
    BASE_KEYS,
    COLLECTIONS,
    GROUPS,
    INDEX_MACS,
    LIDS,
    MESSAGE_IDS,
    PHONES,
    PREKEY_IDS,
    SENDER_KEY_ADDRESSES,
    SIGNED_PREKEY_IDS,
    SYNC_KEY_IDS,
    USERS,
    Abort,
    hash128,
    in_aborted_transaction,
    key32,
    populate,
    record,
    state_summary,
)

A, B, C, D = (f"{u}@s.whatsapp.net" for u in ("111", "222", "333", "444"))

T = TypeVar("T")

# How long a test lets a task that runs beside an open transaction make progress.
_GRACE = 0.1
# How long a test waits for such a task once the transaction has ended.
_DEADLINE = 10.0


async def _finish(task: asyncio.Task[T]) -> T:
    """Await a helper task after its transaction ended (bounded, so a hang fails the test)."""
    return await asyncio.wait_for(task, _DEADLINE)


async def _cancel(task: asyncio.Task[Any] | None) -> None:
    if task is not None and not task.done():
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def _write_every_kind(b: Backend) -> None:
    """Writes and deletes of every kind, over data that ``populate()`` wrote."""
    device = await b.load()
    assert device is not None
    await b.save(dataclasses.replace(device, push_name="inside", login_counter=99))
    await b.put_identity(ADDRESSES[0], key32("txn"))
    await b.delete_identity(ADDRESSES[1])
    await b.put_sessions_batch([(ADDRESSES[0], record("txn", 0)), (ADDRESSES[1], record("txn"))])
    await b.delete_session(ADDRESSES[0])
    await b.store_prekey(PREKEY_IDS[0], record("txn prekey"), False)
    await b.mark_prekeys_uploaded([PREKEY_IDS[1]])
    await b.remove_prekey(PREKEY_IDS[2])
    await b.store_signed_prekey(SIGNED_PREKEY_IDS[1], record("txn spk"))
    await b.remove_signed_prekey(SIGNED_PREKEY_IDS[0])
    await b.put_sender_keys_batch([(SENDER_KEY_ADDRESSES[0], record("txn sk"))])
    await b.delete_sender_key(SENDER_KEY_ADDRESSES[1])
    await b.set_sync_key(SYNC_KEY_IDS[1], AppStateSyncKey(key32("txn"), b"", 10**12))
    await b.set_version(COLLECTIONS[1], HashState(version=99, hash=hash128("txn")))
    await b.put_mutation_macs(COLLECTIONS[1], 99, [MutationMAC(INDEX_MACS[1], key32("txn"))])
    await b.clear_mutation_macs(COLLECTIONS[0])
    await b.set_sender_key_status(GROUPS[1], [(ADDRESSES[1], False)])
    await b.clear_all_sender_key_devices()
    await b.put_lid_mappings([LidPnMapping(LIDS[1], PHONES[1], 5, 5, "txn")])
    await b.save_base_key(ADDRESSES[1], MESSAGE_IDS[0], BASE_KEYS[1])
    await b.delete_base_key(ADDRESSES[0], MESSAGE_IDS[0])
    await b.update_device_lists([DeviceListRecord(USERS[1], (DeviceInfo(1),), 5)])
    await b.delete_devices(USERS[0])
    await b.touch_tc_token_sender_timestamp(ADDRESSES[1], 5)
    await b.store_received_tc_token(ADDRESSES[0], b"txn", 10**9)
    assert await b.take_sent_message(ADDRESSES[0], MESSAGE_IDS[0]) is not None
    await b.store_sent_message(ADDRESSES[1], MESSAGE_IDS[0], record("txn sent"))
    await b.put_msg_secrets([MsgSecret(ADDRESSES[1], ADDRESSES[1], MESSAGE_IDS[0], key32("s"))])
    await b.delete_expired_msg_secrets(2**62)
    await b.store_pending_inbound(ADDRESSES[0], ADDRESSES[1], MESSAGE_IDS[0], record("txn"))
    await b.delete_pending_inbound(ADDRESSES[1], ADDRESSES[0], MESSAGE_IDS[0])
    await b.put_group_metadata(GROUPS[1], record("txn meta"))
    await b.delete_group_metadata(GROUPS[0])
    await b.delete_signal_state_for_user(USERS[1])


class TransactionContract:
    """``async with backend.transaction():`` is atomic, nests as savepoints, and is isolated."""

    async def test_committed_transaction_keeps_its_writes(self, backend: Backend) -> None:
        async with backend.transaction():
            await backend.put_session(A, record("a"))
            await backend.put_identity(A, key32("a"))
            await backend.store_prekeys_batch([(1, record(1))], False)
        assert await backend.get_session(A) == record("a")
        assert await backend.load_identity(A) == key32("a")
        assert await backend.load_prekey(1) == record(1)

    async def test_writes_are_visible_inside_the_transaction(self, backend: Backend) -> None:
        await backend.put_session(A, record("old"))
        async with backend.transaction():
            await backend.put_session(A, record("new"))
            await backend.store_prekey(1, record(1), False)
            await backend.delete_session(B)
            assert await backend.get_session(A) == record("new")
            assert await backend.get_sessions([A, B]) == {A: record("new")}
            assert await backend.count_prekeys() == (1, 0)
            assert await backend.take_sent_message(A, "MSG") is None

    async def test_raising_transaction_propagates_the_exception(self, backend: Backend) -> None:
        error = Abort("the very same exception")
        with pytest.raises(Abort) as caught:
            async with backend.transaction():
                raise error
        assert caught.value is error

    async def test_raising_transaction_leaves_nothing_behind(self, backend: Backend) -> None:
        await populate(backend)
        before = await state_summary(backend)

        async def writes() -> None:
            await _write_every_kind(backend)
            assert await state_summary(backend) != before  # the writes did happen inside

        with pytest.raises(Abort):
            await in_aborted_transaction(backend, writes)
        assert await state_summary(backend) == before

    async def test_store_is_usable_after_a_rolled_back_transaction(self, backend: Backend) -> None:
        with pytest.raises(Abort):
            await in_aborted_transaction(backend, lambda: backend.put_session(A, record(1)))
        await backend.put_session(B, record(2))
        async with backend.transaction():
            await backend.put_session(C, record(3))
        assert await backend.get_sessions([A, B, C]) == {B: record(2), C: record(3)}

    async def test_nested_block_that_raises_undoes_only_its_own_writes(
        self, backend: Backend
    ) -> None:
        await backend.put_session(C, record("c before"))
        async with backend.transaction():
            await backend.put_session(A, record("outer"))

            async def inner() -> None:
                await backend.put_session(B, record("inner"))
                await backend.put_session(A, record("inner overwrite"))
                await backend.delete_session(C)
                await backend.store_prekey(1, record(1), False)

            with pytest.raises(Abort):
                await in_aborted_transaction(backend, inner)
            assert await backend.get_sessions([A, B, C]) == {
                A: record("outer"),
                C: record("c before"),
            }
            assert await backend.load_prekey(1) is None
            await backend.put_identity(A, key32("after inner"))
        assert await backend.get_sessions([A, B, C]) == {
            A: record("outer"),
            C: record("c before"),
        }
        assert await backend.load_identity(A) == key32("after inner")
        assert await backend.count_prekeys() == (0, 0)

    async def test_nested_block_joins_the_outer_transaction(self, backend: Backend) -> None:
        async def outer() -> None:
            await backend.put_session(A, record("outer"))
            async with backend.transaction():
                await backend.put_session(B, record("inner"))
            assert await backend.get_session(B) == record("inner")

        with pytest.raises(Abort):
            await in_aborted_transaction(backend, outer)
        assert await backend.get_sessions([A, B]) == {}

    async def test_other_task_never_sees_uncommitted_writes(self, backend: Backend) -> None:
        await backend.put_session(A, record("old"))
        open_ = {"txn": True}
        seen: list[tuple[bytes | None, bool]] = []
        go = asyncio.Event()

        async def reader() -> None:  # started outside the transaction
            await go.wait()
            value = await backend.get_session(A)
            seen.append((value, open_["txn"]))

        task = asyncio.create_task(reader())
        try:
            async with backend.transaction():
                await backend.put_session(A, record("new"))
                go.set()
                # The reader may answer now (with the committed value) or wait for the commit.
                await asyncio.wait({task}, timeout=_GRACE)
                open_["txn"] = False
            await _finish(task)
        finally:
            await _cancel(task)
        [(value, during_txn)] = seen
        if during_txn:
            assert value == record("old"), "another task saw an uncommitted write"
        else:
            assert value in (record("old"), record("new"))
        assert await backend.get_session(A) == record("new")

    async def test_other_task_never_sees_rolled_back_writes(self, backend: Backend) -> None:
        await backend.put_session(A, record("old"))
        go = asyncio.Event()

        async def reader() -> bytes | None:  # started outside the transaction
            await go.wait()
            return await backend.get_session(A)

        task = asyncio.create_task(reader())

        async def body() -> None:
            await backend.put_session(A, record("rolled back"))
            go.set()
            await asyncio.wait({task}, timeout=_GRACE)

        try:
            with pytest.raises(Abort):
                await in_aborted_transaction(backend, body)
            assert await _finish(task) == record("old")
        finally:
            await _cancel(task)
        assert await backend.get_session(A) == record("old")

    async def test_other_task_writes_survive_a_rollback(self, backend: Backend) -> None:
        go = asyncio.Event()

        async def writer() -> None:  # started outside the transaction
            await go.wait()
            await backend.put_session(B, record("theirs"))

        task = asyncio.create_task(writer())

        async def body() -> None:
            await backend.put_session(A, record("mine"))
            go.set()
            await asyncio.wait({task}, timeout=_GRACE)

        try:
            with pytest.raises(Abort):
                await in_aborted_transaction(backend, body)
            await _finish(task)
        finally:
            await _cancel(task)
        assert await backend.get_session(A) is None
        assert await backend.get_session(B) == record("theirs")

    async def test_read_modify_write_transactions_never_lose_an_update(
        self, backend: Backend
    ) -> None:
        """20 coroutines x 10 increments of one record, each a read-modify-write inside
        ``transaction()``: transactions of one account run one at a time, so all 200
        increments count (READ COMMITTED alone would let two read the same value)."""
        await backend.put_session(A, b"0")

        async def increments(n: int) -> None:
            for _ in range(n):
                async with backend.transaction():
                    value = await backend.get_session(A)
                    assert value is not None
                    await asyncio.sleep(0)  # let every other coroutine run in between
                    await backend.put_session(A, str(int(value) + 1).encode())

        await asyncio.wait_for(asyncio.gather(*(increments(10) for _ in range(20))), _DEADLINE * 6)
        assert await backend.get_session(A) == b"200"

    async def test_gather_inside_a_transaction_is_refused_not_hung(self, backend: Backend) -> None:
        """Tasks started inside a transaction (gather, create_task) cannot write while it
        is open: refused at once with StoreError (never a hang), and nothing they tried
        reaches the store (never an escape from the rollback). They may read, outside
        the transaction: the committed state, never its writes."""
        await backend.put_session(C, record("c"))

        async def body() -> None:
            await backend.put_session(A, record("in the transaction"))
            results = await asyncio.wait_for(
                asyncio.gather(
                    backend.put_session(B, record("from a child task")),
                    backend.put_sessions_batch([(D, record("from a child task"))]),
                    backend.get_session(C),
                    backend.get_session(A),
                    return_exceptions=True,
                ),
                _DEADLINE,
            )
            assert isinstance(results[0], StoreError), results
            assert isinstance(results[1], StoreError), results
            assert "started inside" in str(results[0])
            assert list(results[2:]) == [record("c"), None]  # committed state only
            task = asyncio.create_task(backend.delete_session(C))
            with pytest.raises(StoreError, match="started inside"):
                await asyncio.wait_for(task, _DEADLINE)
            # The transaction itself goes on.
            assert await backend.get_session(A) == record("in the transaction")

        with pytest.raises(Abort):
            await in_aborted_transaction(backend, body)
        assert await backend.get_sessions([A, B, C, D]) == {C: record("c")}

    async def test_a_task_started_inside_works_once_the_transaction_ended(
        self, backend: Backend
    ) -> None:
        ended = asyncio.Event()

        async def later() -> bytes | None:
            await ended.wait()
            await backend.put_session(B, record("later"))
            return await backend.get_session(A)

        task: asyncio.Task[bytes | None] | None = None
        try:
            async with backend.transaction():
                await backend.put_session(A, record("committed"))
                task = asyncio.create_task(later())
            ended.set()
            assert await _finish(task) == record("committed")
        finally:
            await _cancel(task)
        assert await backend.get_session(B) == record("later")

    async def test_concurrent_transactions_do_not_mix(self, backend: Backend) -> None:
        async def commit(i: int) -> None:
            async with backend.transaction():
                await backend.put_session(A, record("commit", i))
                await asyncio.sleep(0)
                await backend.put_session(B, record("commit", i))

        async def abort(i: int) -> None:
            async def body() -> None:
                await backend.put_session(C, record("abort", i))
                await asyncio.sleep(0)

            with pytest.raises(Abort):
                await in_aborted_transaction(backend, body)

        await asyncio.gather(*(commit(i) if i % 2 else abort(i) for i in range(8)))
        found = await backend.get_sessions([A, B, C])
        assert C not in found
        assert found[A] == found[B]  # each transaction's pair of writes stayed together

    async def test_container_writes_inside_a_raising_transaction_are_undone(
        self, container: Container, backend: Backend, other_backend: Backend
    ) -> None:
        """``delete_device()``, ``create_device()`` and ``backend(id).create()`` called by
        the task inside its transaction join it: its rollback undoes them too."""
        device = await other_backend.load()
        assert device is not None
        await other_backend.save(dataclasses.replace(device, push_name="kept"))
        await other_backend.put_group_metadata(GROUPS[0], record("kept"))
        gone = other_backend.device_id
        before = await container.devices()
        missing = container.backend(max(before) + 1000)
        created: list[int] = []

        async def body() -> None:
            await container.delete_device(gone)
            created.append(await container.create_device())
            assert await missing.create() == missing.device_id
            listed = await container.devices()
            assert gone not in listed
            assert {created[0], missing.device_id} <= set(listed)
            assert await other_backend.exists() is False

        with pytest.raises(Abort):
            await in_aborted_transaction(backend, body)
        assert await container.devices() == before
        assert await missing.exists() is False
        restored = await other_backend.load()
        assert restored is not None
        assert restored.push_name == "kept"
        assert await other_backend.get_group_metadata(GROUPS[0]) == record("kept")
        # Nothing is left half-undone: the restored account takes writes, and the
        # container creates accounts again.
        await other_backend.put_group_metadata(GROUPS[1], record("after"))
        assert await other_backend.get_group_metadata(GROUPS[1]) == record("after")
        assert await container.create_device() not in before

    async def test_other_task_never_sees_uncommitted_container_writes(
        self, container: Container, backend: Backend, other_backend: Backend
    ) -> None:
        device = await other_backend.load()
        assert device is not None
        await other_backend.save(dataclasses.replace(device, pn=JID.parse("777@s.whatsapp.net")))
        gone = other_backend.device_id
        before = await container.devices()
        go = asyncio.Event()

        async def reader() -> tuple[list[int], bool, int | None]:  # started outside
            await go.wait()
            return (
                await container.devices(),
                await other_backend.exists(),
                await container.find_device("777@s.whatsapp.net"),
            )

        task = asyncio.create_task(reader())

        async def body() -> None:
            await container.delete_device(gone)
            await container.create_device()
            go.set()
            await asyncio.wait({task}, timeout=_GRACE)

        try:
            with pytest.raises(Abort):
                await in_aborted_transaction(backend, body)
            # Whether it read during the transaction or after its rollback, the reader
            # saw the committed accounts only.
            assert await _finish(task) == (before, True, gone)
        finally:
            await _cancel(task)
        assert await container.devices() == before

    async def test_a_lease_is_never_taken_or_released_inside_a_transaction(
        self, backend: Backend
    ) -> None:
        """A lease taken inside a transaction that rolls back would be undone while its
        holder went on as the holder (and a second holder could get the same epoch):
        it is refused, before and after a write of the transaction, and nothing of the
        transaction is lost by the refusal."""
        if not isinstance(backend, LeaseStore):
            return
        async with backend.transaction():
            with pytest.raises(StoreError, match="inside a transaction"):
                await backend.acquire_lease("inside", 30.0)
            await backend.put_session(ADDRESSES[0], record("in the transaction"))
            with pytest.raises(StoreError, match="inside a transaction"):
                await backend.acquire_lease("inside", 30.0)
        assert await backend.get_session(ADDRESSES[0]) == record("in the transaction")
        token = await backend.acquire_lease("outside", 30.0)  # not taken by the refusals
        async with backend.transaction():
            with pytest.raises(StoreError, match="inside a transaction"):
                await backend.release_lease(token)
        with pytest.raises(AccountInUseError):  # the refused release kept the lease
            await backend.acquire_lease("another holder", 30.0)
        await backend.release_lease(token)
        await backend.release_lease(await backend.acquire_lease("another holder", 30.0))

    async def test_the_store_is_never_closed_inside_its_own_transaction(
        self, container: Container, backend: Backend
    ) -> None:
        """Closing waits for the open transactions to end: called inside one, or from a
        task started inside one, it would wait for itself. Refused at once with
        StoreError (never a hang), and the transaction goes on and commits."""
        async with backend.transaction():
            await backend.put_session(A, record("in the transaction"))
            with pytest.raises(StoreError, match="cannot be closed inside"):
                async with asyncio.timeout(_DEADLINE):  # in this task (wait_for starts one)
                    await container.close()
            task = asyncio.create_task(container.close())
            with pytest.raises(StoreError, match="started inside"):
                await asyncio.wait_for(task, _DEADLINE)
            await backend.put_session(B, record("after the refusals"))
        assert await backend.get_sessions([A, B]) == {
            A: record("in the transaction"),
            B: record("after the refusals"),
        }
