"""The neutral synchronous bridge (wastore.interop.bridge): blocking calls, held
transactions across several calls, and the SyncContainer."""

from __future__ import annotations

import asyncio
import sys
import threading
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest

import wastore
from wastore import BackendUnavailableError, StoreError
from wastore.backends._common import shielded
from wastore.interop import bridge
from wastore.interop.bridge import EventLoopThread, LoopBridge, SyncContainer, WrongThreadError

pytestmark = pytest.mark.filterwarnings("error")

A, B, C = "15550000001@s.whatsapp.net", "15550000002@s.whatsapp.net", "15550000003@s.whatsapp.net"


class Boom(Exception):
    pass


@pytest.fixture(params=["sqlite", "memory"])
def container(request: pytest.FixtureRequest, tmp_path: Path) -> SyncContainer:
    url = f"sqlite:///{tmp_path}/bridge.db" if request.param == "sqlite" else "memory://"
    c = SyncContainer.open(url)
    yield c
    c.close()


def _sessions(c: SyncContainer, device_id: int) -> dict[str, bytes]:
    return c.run(c.container.backend(device_id).get_sessions([A, B, C]))


def test_the_axolotl_import_paths_are_the_neutral_bridge() -> None:
    from wastore.interop import axolotl
    from wastore.interop.axolotl import _bridge

    for name in ("EventLoopThread", "LoopBridge", "WrongThreadError", "DEFAULT_TIMEOUT"):
        assert getattr(axolotl, name) is getattr(bridge, name)
        assert getattr(_bridge, name) is getattr(bridge, name)
    assert issubclass(axolotl.SyncContainer, SyncContainer)


def test_the_bridge_module_does_not_need_python_axolotl(tmp_path: Path) -> None:
    code = (
        "import sys, wastore.interop.bridge as b\n"
        "assert 'axolotl' not in sys.modules, 'python-axolotl was imported'\n"
        "assert 'wastore.interop.axolotl' not in sys.modules\n"
        "print('ok')\n"
    )
    import subprocess

    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_a_held_transaction_spans_several_blocking_calls(container: SyncContainer) -> None:
    device_id = container.create_device()
    backend = container.container.backend(device_id)
    b = container.bridge
    with b.held(backend.transaction()):
        b.call(backend.put_session(A, b"a1"))
        # Inside the block the calls run in the transaction's task: they see its writes.
        assert b.call(backend.get_session(A)) == b"a1"
        b.call(backend.put_session(B, b"b1"))
    assert _sessions(container, device_id) == {A: b"a1", B: b"b1"}


def test_a_held_transaction_rolls_back_when_the_block_raises(container: SyncContainer) -> None:
    device_id = container.create_device()
    backend = container.container.backend(device_id)
    b = container.bridge
    b.call(backend.put_session(C, b"before"))

    def block() -> None:
        with b.held(backend.transaction()):
            b.call(backend.put_session(A, b"a1"))
            b.call(backend.put_session(C, b"overwritten"))
            raise Boom

    with pytest.raises(Boom):
        block()
    assert _sessions(container, device_id) == {C: b"before"}
    # The bridge is usable again afterwards, in and out of blocks.
    with b.held(backend.transaction()):
        b.call(backend.put_session(B, b"b1"))
    assert _sessions(container, device_id) == {B: b"b1", C: b"before"}


def test_a_failing_call_inside_a_block_fails_the_block_when_it_propagates(
    container: SyncContainer,
) -> None:
    device_id = container.create_device()
    backend = container.container.backend(device_id)
    b = container.bridge

    def block() -> None:
        with b.held(backend.transaction()):
            b.call(backend.put_session(A, b"a1"))
            b.call(backend.put_identity(B, b"short"))  # rejected by the backend

    with pytest.raises(wastore.ValidationError):
        block()
    assert _sessions(container, device_id) == {}


def test_a_nested_block_is_a_savepoint(container: SyncContainer) -> None:
    device_id = container.create_device()
    backend = container.container.backend(device_id)
    b = container.bridge

    def inner() -> None:
        with b.held(backend.transaction()):
            b.call(backend.put_session(B, b"inner"))
            raise Boom

    with b.held(backend.transaction()):
        b.call(backend.put_session(A, b"outer"))
        with pytest.raises(Boom):
            inner()
        with b.held(backend.transaction()):
            b.call(backend.put_session(C, b"inner kept"))
    assert _sessions(container, device_id) == {A: b"outer", C: b"inner kept"}


def test_other_threads_are_outside_the_block(container: SyncContainer) -> None:
    device_id = container.create_device()
    backend = container.container.backend(device_id)
    b = container.bridge
    seen: list[bytes | None] = []
    reader = threading.Thread(target=lambda: seen.append(b.call(backend.get_session(A))))

    def block() -> None:
        with b.held(backend.transaction()):
            b.call(backend.put_session(A, b"uncommitted"))
            reader.start()
            reader.join(0.5)  # SQLite reads the last commit at once; the memory store waits
            raise Boom

    with pytest.raises(Boom):
        block()
    reader.join(30)
    # The other thread never saw the uncommitted write.
    assert seen == [None]
    assert _sessions(container, device_id) == {}


def test_a_timeout_inside_a_block_aborts_the_whole_transaction(tmp_path: Path) -> None:
    c = SyncContainer.open(f"sqlite:///{tmp_path}/t.db", timeout=0.5)
    try:
        device_id = c.create_device()
        backend = c.container.backend(device_id)
        b = c.bridge

        async def stuck() -> None:
            await asyncio.sleep(30)

        def block() -> None:
            with b.held(backend.transaction()):
                b.call(backend.put_session(A, b"a1"))
                with pytest.raises(BackendUnavailableError):
                    b.call(stuck())
                with pytest.raises(StoreError, match="aborted"):
                    b.call(backend.put_session(B, b"b1"))

        with pytest.raises(StoreError, match="aborted"):
            block()
        assert _sessions(c, device_id) == {}
        # The account is not left locked by the aborted transaction.
        c.run(backend.put_session(C, b"c1"))
        assert _sessions(c, device_id) == {C: b"c1"}
    finally:
        c.close()


def test_blocking_calls_on_the_loop_thread_are_refused(container: SyncContainer) -> None:
    device_id = container.create_device()
    backend = container.container.backend(device_id)
    b = container.bridge

    async def on_the_loop() -> None:
        with b.held(backend.transaction()):
            pass  # pragma: no cover - refused before

    with pytest.raises(WrongThreadError):
        container.run(on_the_loop())

    async def call_on_the_loop() -> None:
        b.call(backend.get_session(A))

    with pytest.raises(WrongThreadError):
        container.run(call_on_the_loop())


def test_a_blocking_call_from_inside_another_event_loop() -> None:
    """What pywhats does: call its stores synchronously from a coroutine on its own loop."""
    c = SyncContainer.open("memory://")
    try:
        device_id = c.create_device()
        backend = c.container.backend(device_id)

        async def client_code() -> bytes | None:
            c.run(backend.put_session(A, b"from another loop"))
            return c.run(backend.get_session(A))

        assert asyncio.run(client_code()) == b"from another loop"
    finally:
        c.close()


def test_sync_container_tracks_and_closes_accounts(tmp_path: Path) -> None:
    c = SyncContainer.open(tmp_path / "c.db")  # a filesystem path is an SQLite store
    closed: list[str] = []
    try:
        device_id = c.first_device()
        assert c.devices() == [device_id]
        pm = c.open_manager(device_id)

        class Account:
            def close(self) -> None:
                closed.append("account")
                c.run(pm.close())

        c.track(Account())
        other = Account()
        c.track(other)
        c.forget(other)
    finally:
        c.close()
    c.close()
    assert closed == ["account"]
    assert c.closed
    with pytest.raises(StoreError, match="closed"):
        c.devices()
    # The lease was released by the account's close: the account opens again at once.
    c2 = SyncContainer.open(tmp_path / "c.db")
    try:
        c2.run(c2.open_manager(device_id).close())
    finally:
        c2.close()


def test_event_loop_thread_and_bridge_basics() -> None:
    thread = EventLoopThread(name="test-loop")
    try:
        b = LoopBridge(thread.loop, timeout=None)
        assert b.timeout is None
        assert "test-loop" in repr(thread)

        async def add(x: int, y: int) -> int:
            return x + y

        assert b.call(add(2, 3)) == 5
        with pytest.raises(ValueError, match="timeout"):
            LoopBridge(thread.loop, timeout=0)
    finally:
        thread.stop()
    assert "stopped" in repr(thread)


async def _on_the_worker(seconds: float, started: threading.Event) -> str:
    """A call whose work runs on a thread, as the SQLite store's batches do: cancelled,
    it still waits for that thread before it ends."""

    def work() -> None:
        started.set()
        threading.Event().wait(seconds)

    await shielded(asyncio.get_running_loop().run_in_executor(None, work))
    return "done"


def _blocking_call(
    b: LoopBridge, coro: Coroutine[Any, Any, object], out: list[object]
) -> threading.Thread:
    def run() -> None:
        try:
            out.append(b.call(coro))
        except BaseException as err:  # recorded for the assertion
            out.append(err)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def test_a_call_made_while_the_loop_stops_is_answered_not_abandoned() -> None:
    """With no timeout: a call made while the stopping loop still finishes cancelled
    work started a task after the loop's cleanup had listed what to cancel; the loop was
    then closed with that task pending and its caller waited forever."""
    elt = EventLoopThread()
    b = LoopBridge(elt.loop, timeout=None)
    started = threading.Event()
    asyncio.run_coroutine_threadsafe(_on_the_worker(2.0, started), elt.loop)
    assert started.wait(10)
    stopper = threading.Thread(target=elt.stop)
    stopper.start()
    threading.Event().wait(0.3)  # the loop is inside its cleanup, waiting for the worker
    out: list[object] = []
    caller = _blocking_call(b, asyncio.sleep(2, "late"), out)
    stopper.join(10)
    caller.join(10)
    assert not caller.is_alive(), "the caller was abandoned by the closed loop"
    assert len(out) == 1 and isinstance(out[0], StoreError), out


def test_two_stops_at_once_let_the_cleanup_finish() -> None:
    """A second stop() used to land inside the first one's cleanup and cut it short:
    the loop closed with cancelled work still pending, whose caller waited forever."""
    elt = EventLoopThread()
    b = LoopBridge(elt.loop, timeout=None)
    out: list[object] = []
    started = threading.Event()
    caller = _blocking_call(b, _on_the_worker(2.0, started), out)
    assert started.wait(10)
    errors: list[str] = []
    hook, threading.excepthook = threading.excepthook, lambda a: errors.append(repr(a.exc_value))
    try:
        stoppers = [threading.Thread(target=elt.stop) for _ in range(2)]
        for t in stoppers:
            t.start()
            threading.Event().wait(0.1)
        for t in stoppers:
            t.join(10)
    finally:
        threading.excepthook = hook
    caller.join(10)
    assert errors == []
    assert elt.loop.is_closed()
    assert not caller.is_alive(), "the caller was abandoned by the closed loop"
    assert len(out) == 1 and isinstance(out[0], StoreError), out


def _recording_errors(fn: Callable[[], object], errors: list[BaseException]) -> Callable[[], None]:
    """``fn`` as a thread's target or a loop callback: its exception is recorded, not lost."""

    def run() -> None:
        try:
            fn()
        except BaseException as err:  # recorded for the assertion
            errors.append(err)

    return run


def test_sync_container_closed_from_two_threads_at_once(tmp_path: Path) -> None:
    """Both calls return once everything is closed; the accounts are closed once."""
    c = SyncContainer.open(tmp_path / "two.db", timeout=None)
    device_id = c.first_device()
    closed: list[str] = []

    class Account:
        def close(self) -> None:
            threading.Event().wait(0.2)
            c.run(c.container.backend(device_id).put_session(A, b"flushed on close"))
            closed.append(threading.current_thread().name)

    c.track(Account())
    errors: list[BaseException] = []
    close = _recording_errors(c.close, errors)

    threads = [threading.Thread(target=close) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert not any(t.is_alive() for t in threads)
    assert errors == [] and len(closed) == 1 and c.closed
    again = SyncContainer.open(tmp_path / "two.db")
    try:
        assert again.run(again.container.backend(device_id).get_session(A)) == b"flushed on close"
    finally:
        again.close()


def test_closing_inside_a_held_transaction_is_refused(container: SyncContainer) -> None:
    """Closing waits for the block's transaction: refused at once, and the block goes on."""
    device_id = container.first_device()
    b = container.container.backend(device_id)
    with container.bridge.held(b.transaction()):
        container.run(b.put_session(A, b"kept"))
        with pytest.raises(StoreError, match="inside a transaction block"):
            container.close()
        container.run(b.put_session(B, b"after the refusal"))
    assert not container.closed
    assert _sessions(container, device_id) == {A: b"kept", B: b"after the refusal"}


def test_closing_from_the_loop_thread_is_refused_even_while_another_thread_closes(
    tmp_path: Path,
) -> None:
    """On the loop thread close() would block the loop that closing needs."""
    c = SyncContainer.open(tmp_path / "loop.db", timeout=5)
    c.first_device()

    class Slow:
        def close(self) -> None:
            threading.Event().wait(0.3)

    c.track(Slow())
    errors: list[BaseException] = []
    close = _recording_errors(c.close, errors)

    closer = threading.Thread(target=close)
    closer.start()
    threading.Event().wait(0.1)  # the closer is inside Slow.close()
    c.loop.call_soon_threadsafe(close)
    closer.join(15)
    assert not closer.is_alive()
    assert [type(e) for e in errors] == [WrongThreadError] and c.closed


def test_with_no_timeout_a_held_call_keeps_its_answer_across_the_loop_checks(
    tmp_path: Path,
) -> None:
    """With timeout=None a caller wakes every 0.5 s to check that the loop is open: a
    call that outlasts several checks still returns its value, and a TimeoutError the
    call itself raises is its answer, not taken for the bridge's own."""
    c = SyncContainer.open(tmp_path / "slices.db", timeout=None)
    try:
        b = c.container.backend(c.first_device())

        async def slow(value: str) -> str:
            await asyncio.sleep(1.2)
            return value

        async def times_out() -> None:
            raise TimeoutError("the call's own")

        with c.bridge.held(b.transaction()):
            assert c.run(slow("late")) == "late"
            with pytest.raises(TimeoutError, match="the call's own"):
                c.run(times_out())
        assert c.run(slow("outside")) == "outside"
    finally:
        c.close()
