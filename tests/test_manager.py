"""PersistenceManager on the MemoryStore, with and without injected save failures."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import wastore
from _faults import FailingBackend, wait_until
from wastore import (
    AccountInUseError,
    BackendUnavailableError,
    Device,
    IncrementLoginCounter,
    MemoryStore,
    PersistenceManager,
    SetPreKeyWatermarks,
    SetPushName,
    StoreError,
    ValidationError,
)
from wastore.manager import MAX_CONSECUTIVE_FAILURES

LOGGER = "wastore.manager"

Opener = Callable[..., Awaitable[PersistenceManager]]


@pytest.fixture
async def store() -> AsyncIterator[MemoryStore]:
    container = await wastore.open_store("memory://")
    assert isinstance(container, MemoryStore)
    yield container
    await container.close()


@pytest.fixture
async def open_pm() -> AsyncIterator[Opener]:
    """``await open_pm(backend, **kw)``: a manager that is closed after the test."""
    managers: list[PersistenceManager] = []

    async def _open(backend: Any, **kwargs: Any) -> PersistenceManager:
        pm = await PersistenceManager.open(backend, **kwargs)
        managers.append(pm)
        return pm

    yield _open
    for pm in managers:
        with contextlib.suppress(StoreError):
            await pm.close()


@pytest.fixture
async def faulty(store: MemoryStore) -> FailingBackend:
    return FailingBackend(store.backend(await store.create_device()))


def saver_tasks() -> list[asyncio.Task[Any]]:
    return [
        t for t in asyncio.all_tasks() if t.get_name().startswith("wastore-saver") and not t.done()
    ]


async def stored(backend: Any) -> Device:
    """The device as the backend has it (bypassing the wrapper)."""
    inner = backend.inner if isinstance(backend, FailingBackend) else backend
    device = await inner.load()
    assert device is not None
    return device


# -- opening -------------------------------------------------------------------


async def test_open_creates_the_device_row_when_missing(
    store: MemoryStore, open_pm: Opener
) -> None:
    backend = store.backend(7)
    assert not await backend.exists()
    pm = await open_pm(backend)
    assert await backend.exists()
    assert await store.devices() == [7]
    assert pm.device_id == 7
    assert pm.get_device_snapshot() == await stored(backend)
    assert not pm.is_dirty


async def test_open_loads_the_existing_device(store: MemoryStore, open_pm: Opener) -> None:
    backend = store.backend(await store.create_device())
    existing = await stored(backend)
    existing.push_name = "saved before"
    existing.login_counter = 4
    await backend.save(existing)
    pm = await open_pm(backend)
    snap = pm.get_device_snapshot()
    assert snap == existing
    assert snap.push_name == "saved before"
    assert pm.backend is backend


# -- snapshots -------------------------------------------------------------------


async def test_snapshot_is_cheap_and_read_only(store: MemoryStore, open_pm: Opener) -> None:
    pm = await open_pm(store.backend(await store.create_device()))
    snap = pm.get_device_snapshot()
    assert pm.get_device_snapshot() is snap  # no copy per call
    with pytest.raises(dataclasses.FrozenInstanceError):
        snap.push_name = "mutated"
    with pytest.raises(dataclasses.FrozenInstanceError):
        del snap.login_counter
    assert pm.get_device_snapshot().push_name == ""
    assert pm.get_device_snapshot().login_counter == 0
    assert not pm.is_dirty


async def test_old_snapshot_is_unchanged_by_later_modifications(
    store: MemoryStore, open_pm: Opener
) -> None:
    pm = await open_pm(store.backend(await store.create_device()))
    old = pm.get_device_snapshot()
    await pm.process_command(SetPushName("new"))
    new = pm.get_device_snapshot()
    assert new is not old
    assert new.push_name == "new"
    assert old.push_name == ""
    assert new.is_frozen
    assert pm.get_device_snapshot() is new


# -- modify_device / process_command -------------------------------------------------


async def test_modify_device_returns_result_marks_dirty_and_publishes(
    store: MemoryStore, open_pm: Opener
) -> None:
    backend = store.backend(await store.create_device())
    pm = await open_pm(backend)

    def fn(d: Device) -> int:
        d.push_name = "bot"
        d.login_counter += 2
        return 42

    assert await pm.modify_device(fn) == 42
    assert pm.is_dirty
    snap = pm.get_device_snapshot()
    assert (snap.push_name, snap.login_counter) == ("bot", 2)
    assert snap.is_frozen
    # Not saved yet: nothing runs the saver and nobody flushed.
    assert (await stored(backend)).push_name == ""


async def test_modify_device_passes_a_mutable_copy(store: MemoryStore, open_pm: Opener) -> None:
    pm = await open_pm(store.backend(await store.create_device()))
    before = pm.get_device_snapshot()
    seen: list[Device] = []
    await pm.modify_device(seen.append)
    assert seen[0] is not before
    assert seen[0] == before
    # Once published the draft is frozen: keeping a reference does not allow later edits.
    with pytest.raises(dataclasses.FrozenInstanceError):
        seen[0].push_name = "late"
    assert pm.get_device_snapshot().push_name == ""


async def test_modify_device_concurrent_changes_all_apply(
    store: MemoryStore, open_pm: Opener
) -> None:
    pm = await open_pm(store.backend(await store.create_device()))
    await asyncio.gather(*(pm.process_command(IncrementLoginCounter()) for _ in range(50)))
    assert pm.get_device_snapshot().login_counter == 50


async def test_modify_device_when_fn_raises_nothing_changes(
    store: MemoryStore, open_pm: Opener
) -> None:
    pm = await open_pm(store.backend(await store.create_device()))
    before = pm.get_device_snapshot()

    def half_then_fail(d: Device) -> None:
        d.push_name = "half written"
        d.login_counter += 1
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        await pm.modify_device(half_then_fail)
    assert pm.get_device_snapshot() is before
    assert before.push_name == ""
    assert not pm.is_dirty


async def test_modify_device_leaving_device_invalid_changes_nothing(
    store: MemoryStore, open_pm: Opener
) -> None:
    pm = await open_pm(store.backend(await store.create_device()))
    before = pm.get_device_snapshot()

    def corrupt(d: Device) -> None:
        d.push_name = "ok"
        d.adv_secret_key = b"too short"

    with pytest.raises(ValidationError):
        await pm.modify_device(corrupt)
    assert pm.get_device_snapshot() is before
    assert not pm.is_dirty


async def test_modify_device_rejects_coroutine_functions(
    store: MemoryStore, open_pm: Opener
) -> None:
    pm = await open_pm(store.backend(await store.create_device()))
    before = pm.get_device_snapshot()

    async def async_fn(d: Device) -> None:
        d.push_name = "never"

    with pytest.raises(ValidationError, match="coroutine"):
        await pm.modify_device(async_fn)
    assert pm.get_device_snapshot() is before
    assert not pm.is_dirty


async def test_process_command_and_commands(store: MemoryStore, open_pm: Opener) -> None:
    pm = await open_pm(store.backend(await store.create_device()))
    await pm.process_command(SetPushName("one"))
    assert pm.get_device_snapshot().push_name == "one"
    assert pm.is_dirty
    before = pm.get_device_snapshot()
    await pm.process_commands([SetPreKeyWatermarks(31, 21), IncrementLoginCounter()])
    snap = pm.get_device_snapshot()
    assert (snap.next_pre_key_id, snap.first_unupload_pre_key_id) == (31, 21)
    assert snap.login_counter == before.login_counter + 1


async def test_process_command_rejects_non_commands(store: MemoryStore, open_pm: Opener) -> None:
    pm = await open_pm(store.backend(await store.create_device()))
    before = pm.get_device_snapshot()
    with pytest.raises(ValidationError):
        await pm.process_command("SetPushName('x')")  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        await pm.process_commands([IncrementLoginCounter(), object()])  # type: ignore[list-item]
    assert pm.get_device_snapshot() is before
    assert not pm.is_dirty


# -- flush ------------------------------------------------------------------------


async def test_flush_saves_to_the_backend(faulty: FailingBackend, open_pm: Opener) -> None:
    pm = await open_pm(faulty)
    await pm.process_command(SetPushName("flushed"))
    await pm.flush()
    assert not pm.is_dirty
    assert await stored(faulty) == pm.get_device_snapshot()
    assert (await stored(faulty)).push_name == "flushed"
    assert faulty.save_attempts == 1


async def test_flush_when_clean_does_not_save(faulty: FailingBackend, open_pm: Opener) -> None:
    pm = await open_pm(faulty)
    await pm.flush()
    await pm.process_command(SetPushName("x"))
    await pm.flush()
    await pm.flush()
    assert faulty.save_attempts == 1


async def test_failed_flush_keeps_state_dirty_and_reraises(
    faulty: FailingBackend, open_pm: Opener
) -> None:
    pm = await open_pm(faulty)
    await pm.process_command(SetPushName("precious"))
    faulty.failing = True
    with pytest.raises(BackendUnavailableError, match="injected") as info:
        await pm.flush()
    assert pm.is_dirty
    assert pm.last_save_error is info.value
    assert (await stored(faulty)).push_name == ""
    assert pm.get_device_snapshot().push_name == "precious"

    faulty.failing = False
    await pm.flush()
    assert not pm.is_dirty
    assert pm.last_save_error is None
    assert await stored(faulty) == pm.get_device_snapshot()


async def test_change_during_a_save_is_not_lost(faulty: FailingBackend, open_pm: Opener) -> None:
    pm = await open_pm(faulty)
    await pm.process_command(SetPushName("first"))
    faulty.gate = asyncio.Event()
    flushing = asyncio.create_task(pm.flush())
    await faulty.save_started.wait()  # the save of "first" is in progress
    await pm.process_command(SetPushName("second"))
    faulty.gate.set()
    await flushing
    assert (await stored(faulty)).push_name == "first"
    assert pm.is_dirty  # "second" is not saved yet and must not be forgotten
    await pm.flush()
    assert (await stored(faulty)).push_name == "second"
    assert not pm.is_dirty


async def test_change_during_a_failing_save_is_not_lost(
    faulty: FailingBackend, open_pm: Opener
) -> None:
    pm = await open_pm(faulty)
    await pm.process_command(SetPushName("first"))
    faulty.gate = asyncio.Event()
    faulty.fail_next = 1
    flushing = asyncio.create_task(pm.flush())
    await faulty.save_started.wait()
    await pm.process_command(IncrementLoginCounter())
    faulty.gate.set()
    with pytest.raises(BackendUnavailableError):
        await flushing
    assert pm.is_dirty
    await pm.flush()
    saved = await stored(faulty)
    assert (saved.push_name, saved.login_counter) == ("first", 1)


_ops = st.lists(
    st.one_of(
        st.tuples(
            st.just("push_name"), st.text(st.characters(exclude_characters="\x00"), max_size=8)
        ),
        st.tuples(st.just("login"), st.none()),
        st.tuples(st.just("watermarks"), st.integers(0, 1000)),
        st.tuples(st.just("flush"), st.booleans()),  # True: the backend fails this flush
    ),
    max_size=25,
)


@settings(max_examples=60, deadline=None)
@given(_ops)
def test_property_no_modification_is_lost_across_failed_flushes(
    ops: list[tuple[str, Any]],
) -> None:
    async def scenario() -> None:
        container = await wastore.open_store("memory://")
        fb = FailingBackend(container.backend(await container.create_device()))
        pm = await PersistenceManager.open(fb)
        logins = 0
        for op, arg in ops:
            if op == "push_name":
                await pm.process_command(SetPushName(arg))
            elif op == "login":
                await pm.process_command(IncrementLoginCounter())
                logins += 1
            elif op == "watermarks":
                await pm.process_command(SetPreKeyWatermarks(arg + 1, arg))
            else:
                was_dirty = pm.is_dirty
                fb.failing = arg
                if arg and was_dirty:
                    with pytest.raises(BackendUnavailableError):
                        await pm.flush()
                    assert pm.is_dirty
                else:
                    await pm.flush()  # clean: no save is attempted, so nothing can fail
                    assert not pm.is_dirty
                    assert await stored(fb) == pm.get_device_snapshot()
                fb.failing = False
        await pm.close()  # final flush
        final = await stored(fb)
        assert final == pm.get_device_snapshot()
        assert final.login_counter == logins
        await container.close()

    asyncio.run(scenario())


# -- background saver -----------------------------------------------------------------


async def test_saver_saves_after_a_change_when_notified(
    faulty: FailingBackend, open_pm: Opener
) -> None:
    pm = await open_pm(faulty)
    pm.run_background_saver(interval=3600.0)  # only a notification can wake it in time
    await pm.process_command(SetPushName("notified"))
    await wait_until(lambda: faulty.save_successes == 1)
    assert not pm.is_dirty
    assert (await stored(faulty)).push_name == "notified"
    await pm.process_command(IncrementLoginCounter())
    await wait_until(lambda: faulty.save_successes == 2)
    assert await stored(faulty) == pm.get_device_snapshot()


async def test_saver_saves_periodically_without_notification(
    faulty: FailingBackend, open_pm: Opener
) -> None:
    pm = await open_pm(faulty)
    await pm.process_command(SetPushName("periodic"))
    pm._wake.clear()  # swallow the notification: only the interval can trigger the save
    pm.run_background_saver(interval=0.02)
    await wait_until(lambda: faulty.save_successes == 1)
    assert (await stored(faulty)).push_name == "periodic"
    assert not pm.is_dirty


async def test_saver_does_not_save_when_clean(faulty: FailingBackend, open_pm: Opener) -> None:
    pm = await open_pm(faulty)
    pm.run_background_saver(interval=0.005)
    await asyncio.sleep(0.1)  # ~20 wake-ups
    assert faulty.save_attempts == 0
    assert not pm._saver.done()  # type: ignore[union-attr]


async def test_run_background_saver_twice_keeps_one_task(
    faulty: FailingBackend, open_pm: Opener
) -> None:
    pm = await open_pm(faulty)
    pm.run_background_saver(interval=60.0)
    first = pm._saver
    pm.run_background_saver(interval=30.0)
    assert pm._saver is first
    assert len(saver_tasks()) == 1
    with pytest.raises(ValidationError):
        pm.run_background_saver(interval=0)


async def test_no_modification_is_lost_while_saves_fail_intermittently(
    faulty: FailingBackend, open_pm: Opener
) -> None:
    pm = await open_pm(faulty)
    pm.run_background_saver(interval=0.01)
    faulty.fail_when = lambda attempt: attempt % 3 != 0  # two of every three saves fail
    for i in range(30):
        await pm.process_command(SetPushName(f"name {i}"))
        await pm.process_command(IncrementLoginCounter())
        await asyncio.sleep(0.003)
    faulty.fail_when = None
    await wait_until(lambda: not pm.is_dirty)
    assert faulty.save_failures > 0  # the failures really happened
    final = await stored(faulty)
    assert final == pm.get_device_snapshot()
    assert (final.push_name, final.login_counter) == ("name 29", 30)
    await pm.close()
    assert await stored(faulty) == pm.get_device_snapshot()


async def test_saver_halts_after_exactly_ten_consecutive_failures(
    faulty: FailingBackend, open_pm: Opener, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger=LOGGER)
    pm = await open_pm(faulty)
    faulty.failing = True
    pm.run_background_saver(interval=0.01)
    await pm.process_command(SetPushName("kept in memory"))
    await wait_until(pm.is_saver_halted)
    assert MAX_CONSECUTIVE_FAILURES == 10
    assert faulty.save_attempts == 10
    saver = pm._saver
    assert saver is not None
    await wait_until(saver.done)
    await asyncio.sleep(0.05)  # a halted saver makes no further attempts
    assert faulty.save_attempts == 10
    errors = [r for r in caplog.records if r.name == LOGGER and r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert "halted" in errors[0].getMessage()
    assert "BackendUnavailableError" in errors[0].getMessage()
    # The dirty state stays in memory.
    assert pm.is_dirty
    assert pm.get_device_snapshot().push_name == "kept in memory"
    assert (await stored(faulty)).push_name == ""
    # More changes still go to memory while halted.
    await pm.process_command(IncrementLoginCounter())
    assert pm.get_device_snapshot().login_counter == 1

    # flush() still works, and restarts the saver.
    faulty.failing = False
    await pm.flush()
    assert not pm.is_saver_halted()
    assert not pm.is_dirty
    assert await stored(faulty) == pm.get_device_snapshot()
    assert pm._saver is not None
    assert not pm._saver.done()
    await pm.process_command(SetPushName("saved by the restarted saver"))
    await wait_until(lambda: not pm.is_dirty)
    assert (await stored(faulty)).push_name == "saved by the restarted saver"


async def test_any_success_resets_the_failure_count(
    faulty: FailingBackend, open_pm: Opener
) -> None:
    pm = await open_pm(faulty)
    pm.run_background_saver(interval=0.01)
    faulty.fail_next = 9
    await pm.process_command(SetPushName("first"))
    await wait_until(lambda: faulty.save_successes == 1)
    assert faulty.save_attempts == 10
    faulty.fail_next = 9
    await pm.process_command(SetPushName("second"))
    await wait_until(lambda: faulty.save_successes == 2)
    assert faulty.save_attempts == 20
    # Eighteen failures in all, never ten in a row: the saver is still running.
    assert not pm.is_saver_halted()
    assert pm._saver is not None
    assert not pm._saver.done()
    assert (await stored(faulty)).push_name == "second"


async def test_retry_backoff_starts_at_50ms_doubles_and_is_capped_by_interval(
    faulty: FailingBackend, open_pm: Opener, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger=LOGGER)
    pm = await open_pm(faulty)
    pm.run_background_saver(interval=0.15)
    faulty.fail_next = 4
    await pm.process_command(SetPushName("x"))
    await wait_until(lambda: faulty.save_successes == 1)
    delays = [
        float(m.group(1))
        for r in caplog.records
        if r.name == LOGGER and (m := re.search(r"retrying in ([0-9.]+)s", r.getMessage()))
    ]
    assert delays == [0.05, 0.10, 0.15, 0.15]


# -- close ----------------------------------------------------------------------------


async def test_close_does_a_final_flush(faulty: FailingBackend) -> None:
    pm = await PersistenceManager.open(faulty)
    await pm.process_command(SetPushName("final"))
    await pm.close()
    assert (await stored(faulty)).push_name == "final"
    await pm.close()  # safe to call twice
    assert faulty.save_attempts == 1


async def test_close_stops_the_saver_and_flushes(faulty: FailingBackend) -> None:
    pm = await PersistenceManager.open(faulty)
    pm.run_background_saver(interval=3600.0)
    saver = pm._saver
    assert saver is not None
    assert len(saver_tasks()) == 1
    await pm.process_command(SetPushName("before close"))
    await pm.close()
    assert saver.done()
    assert saver_tasks() == []
    assert (await stored(faulty)).push_name == "before close"
    assert not pm.is_dirty


async def test_async_with_closes(store: MemoryStore) -> None:
    backend = store.backend(await store.create_device())
    async with await PersistenceManager.open(backend) as pm:
        pm.run_background_saver(interval=3600.0)
        pm._wake.clear()
        await pm.process_command(SetPushName("ctx"))
    assert saver_tasks() == []
    assert (await stored(backend)).push_name == "ctx"
    with pytest.raises(StoreError):
        await pm.process_command(SetPushName("after close"))


async def test_closed_manager_refuses_changes(faulty: FailingBackend) -> None:
    pm = await PersistenceManager.open(faulty)
    await pm.close()
    with pytest.raises(StoreError, match="closed"):
        await pm.modify_device(lambda d: None)
    with pytest.raises(StoreError, match="closed"):
        pm.run_background_saver(interval=1.0)
    with pytest.raises(StoreError, match="closed"):
        await pm.create_snapshot("x")
    assert saver_tasks() == []


async def test_close_while_saves_fail_stops_the_saver_and_raises(
    store: MemoryStore, faulty: FailingBackend
) -> None:
    pm = await PersistenceManager.open(faulty)
    pm.run_background_saver(interval=0.01)
    faulty.failing = True
    await pm.process_command(SetPushName("unsaved"))
    await wait_until(lambda: faulty.save_failures >= 2)  # the saver is retrying
    saver = pm._saver
    assert saver is not None
    with pytest.raises(BackendUnavailableError):
        await pm.close()
    assert saver.done()
    assert saver_tasks() == []
    assert [t for t in asyncio.all_tasks() if t.get_name() == "wastore-lease"] == []
    # Everything was stopped and the lease released: the account can be opened again.
    pm2 = await PersistenceManager.open(store.backend(pm.device_id))
    await pm2.close()


async def test_close_after_halt_raises_and_leaves_no_task(faulty: FailingBackend) -> None:
    pm = await PersistenceManager.open(faulty)
    faulty.failing = True
    pm.run_background_saver(interval=0.005)
    await pm.process_command(SetPushName("unsaved"))
    await wait_until(pm.is_saver_halted)
    with pytest.raises(BackendUnavailableError):
        await pm.close()
    assert saver_tasks() == []
    assert faulty.save_attempts == MAX_CONSECUTIVE_FAILURES + 1  # the final flush tried once


# -- debug snapshots ----------------------------------------------------------------------


async def test_create_snapshot_off_by_default_logs_a_warning(
    store: MemoryStore,
    open_pm: Opener,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("WASTORE_DEBUG_SNAPSHOTS", raising=False)
    caplog.set_level(logging.WARNING, logger=LOGGER)
    pm = await open_pm(store.backend(await store.create_device()))
    await pm.process_command(SetPushName("x"))
    assert await pm.create_snapshot("before-upgrade") is None
    assert store.snapshots == []
    assert pm.is_dirty  # it did nothing at all, not even a flush
    warnings = [r for r in caplog.records if r.name == LOGGER and r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "debug snapshots are off" in warnings[0].getMessage()
    assert "WASTORE_DEBUG_SNAPSHOTS" in warnings[0].getMessage()


async def test_create_snapshot_enabled_flushes_and_returns_location(
    store: MemoryStore, open_pm: Opener
) -> None:
    pm = await open_pm(store.backend(await store.create_device()), debug_snapshots=True)
    await pm.process_command(SetPushName("in snapshot"))
    location = await pm.create_snapshot("before-upgrade", b"extra bytes")
    assert isinstance(location, str)
    assert location.startswith("memory://snapshot-")
    assert location.endswith("before-upgrade")
    assert not pm.is_dirty  # create_snapshot flushes first
    assert len(store.snapshots) == 1
    snap = store.snapshots[0]
    assert snap.location == location
    assert snap.extra == b"extra bytes"
    assert snap.account.device == pm.get_device_snapshot()


@pytest.mark.parametrize("value", ["1", "true", "yes", "on"])
async def test_create_snapshot_enabled_by_environment(
    store: MemoryStore, open_pm: Opener, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("WASTORE_DEBUG_SNAPSHOTS", value)
    pm = await open_pm(store.backend(await store.create_device()))
    location = await pm.create_snapshot("env")
    assert location is not None
    assert location.endswith("env")
    assert len(store.snapshots) == 1


@pytest.mark.parametrize(("env", "option"), [("0", None), ("", None), ("1", False)])
async def test_create_snapshot_disabled(
    store: MemoryStore,
    open_pm: Opener,
    monkeypatch: pytest.MonkeyPatch,
    env: str,
    option: bool | None,
) -> None:
    monkeypatch.setenv("WASTORE_DEBUG_SNAPSHOTS", env)
    pm = await open_pm(store.backend(await store.create_device()), debug_snapshots=option)
    assert await pm.create_snapshot("nope") is None
    assert store.snapshots == []


# -- account lease ---------------------------------------------------------------------------


async def test_second_open_of_same_account_raises_account_in_use(
    store: MemoryStore, open_pm: Opener
) -> None:
    device_id = await store.create_device()
    pm1 = await open_pm(store.backend(device_id), holder="worker-A on host-1")
    with pytest.raises(AccountInUseError) as info:
        await PersistenceManager.open(store.backend(device_id), holder="worker-B")
    assert info.value.holder == "worker-A on host-1"
    assert info.value.device_id == device_id
    assert "worker-A on host-1" in str(info.value)
    # The failed opener disturbed nothing.
    await pm1.process_command(SetPushName("still mine"))
    await pm1.flush()
    assert (await stored(store.backend(device_id))).push_name == "still mine"


async def test_default_holder_names_this_process(store: MemoryStore, open_pm: Opener) -> None:
    device_id = await store.create_device()
    await open_pm(store.backend(device_id))
    with pytest.raises(AccountInUseError) as info:
        await PersistenceManager.open(store.backend(device_id))
    assert f"pid {os.getpid()}" in info.value.holder


async def test_open_works_again_after_close(store: MemoryStore) -> None:
    device_id = await store.create_device()
    pm1 = await PersistenceManager.open(store.backend(device_id))
    await pm1.process_command(SetPushName("from pm1"))
    await pm1.close()
    pm2 = await PersistenceManager.open(store.backend(device_id))
    assert pm2.get_device_snapshot().push_name == "from pm1"
    with pytest.raises(AccountInUseError):
        await PersistenceManager.open(store.backend(device_id))
    await pm2.close()


async def test_lease_is_per_account(store: MemoryStore, open_pm: Opener) -> None:
    a, b = await store.create_device(), await store.create_device()
    await open_pm(store.backend(a))
    pm_b = await open_pm(store.backend(b))
    assert pm_b.device_id == b


async def test_lease_through_a_wrapping_backend(faulty: FailingBackend, open_pm: Opener) -> None:
    await open_pm(faulty)
    with pytest.raises(AccountInUseError):
        await PersistenceManager.open(faulty.inner)


async def test_lease_is_renewed_while_open(store: MemoryStore, open_pm: Opener) -> None:
    device_id = await store.create_device()
    await open_pm(store.backend(device_id), lease_ttl=0.6)
    await asyncio.sleep(0.9)  # longer than the ttl: only renewals keep the lease
    with pytest.raises(AccountInUseError):
        await PersistenceManager.open(store.backend(device_id))


async def test_lease_of_a_crashed_holder_expires(store: MemoryStore, open_pm: Opener) -> None:
    device_id = await store.create_device()
    crashed = await open_pm(store.backend(device_id), lease_ttl=0.05, holder="crashed")
    assert crashed._lease_task is not None
    crashed._lease_task.cancel()  # the holder stops renewing, as a dead process would
    await asyncio.sleep(0.1)
    await open_pm(store.backend(device_id), holder="successor")
    # Closing the stale manager must not release the successor's lease.
    await crashed.close()
    with pytest.raises(AccountInUseError) as info:
        await PersistenceManager.open(store.backend(device_id))
    assert info.value.holder == "successor"


async def test_lost_lease_stops_all_saving(faulty: FailingBackend) -> None:
    async def lost(token: str, ttl: float) -> bool:
        return False

    faulty.renew_lease = lost  # type: ignore[attr-defined]
    pm = await PersistenceManager.open(faulty, lease_ttl=0.03)
    await wait_until(lambda: pm.lease_lost)
    await pm.process_command(SetPushName("must not be written"))
    with pytest.raises(AccountInUseError):
        await pm.flush()
    with pytest.raises(AccountInUseError):
        await pm.close()
    assert faulty.save_attempts == 0
    assert (await stored(faulty)).push_name == ""


async def test_open_releases_the_lease_when_loading_fails(store: MemoryStore) -> None:
    faulty = FailingBackend(store.backend(await store.create_device()))

    async def vanished() -> None:
        return None

    faulty.load = vanished  # type: ignore[attr-defined]
    with pytest.raises(wastore.CorruptRecordError):
        await PersistenceManager.open(faulty)
    pm = await PersistenceManager.open(faulty.inner)  # the lease was given back
    await pm.close()


async def test_open_rejects_bad_lease_ttl(store: MemoryStore) -> None:
    with pytest.raises(ValidationError):
        await PersistenceManager.open(store.backend(await store.create_device()), lease_ttl=0)


# -- pass-throughs and repr -----------------------------------------------------------------


async def test_sender_key_status_pass_throughs(store: MemoryStore, open_pm: Opener) -> None:
    backend = store.backend(await store.create_device())
    pm = await open_pm(backend)
    group = "120363025246125486@g.us"
    await pm.set_sender_key_status(group, [("15551234567:1@s.whatsapp.net", True)])
    assert await pm.get_sender_key_devices(group) == [("15551234567:1@s.whatsapp.net", True)]
    assert await backend.get_sender_key_devices(group) == [("15551234567:1@s.whatsapp.net", True)]
    await pm.clear_sender_key_devices(group)
    assert await pm.get_sender_key_devices(group) == []


async def test_repr_shows_state(store: MemoryStore) -> None:
    pm = await PersistenceManager.open(store.backend(await store.create_device()))
    assert "clean" in repr(pm)
    await pm.process_command(SetPushName("x"))
    assert "dirty" in repr(pm)
    await pm.close()
    assert "closed" in repr(pm)


async def test_is_dirty_stays_true_while_a_save_is_in_flight(
    faulty: FailingBackend, open_pm: Opener
) -> None:
    pm = await open_pm(faulty)
    await pm.process_command(wastore.SetPushName("in flight"))
    faulty.gate = asyncio.Event()
    flushing = asyncio.create_task(pm.flush())
    await asyncio.sleep(0.01)
    assert pm.is_dirty  # the save has not reached the store yet
    faulty.gate.set()
    await flushing
    assert not pm.is_dirty
