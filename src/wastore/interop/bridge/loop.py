"""Blocking calls into the event loop that runs a store: :class:`LoopBridge`.

See :mod:`wastore.interop.bridge` for the model.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import threading
from collections.abc import Coroutine, Iterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, Final, TypeVar

from ...errors import BackendUnavailableError, StoreError

log = logging.getLogger("wastore.interop")

T = TypeVar("T")

DEFAULT_TIMEOUT: Final = 60.0
"""Seconds a blocking store call may take before it is cancelled."""
_CLOSED_CHECK: Final = 0.5
"""With no timeout, how often a blocked caller checks that the loop has not been closed
(a loop closed with the call's callback still queued would never answer it)."""


class WrongThreadError(RuntimeError):
    """A blocking store call was made on the thread of the event loop that runs the store.

    The call would wait for the loop while blocking it: a deadlock. From a
    coroutine on that loop, run the synchronous library call in a worker
    thread (``await asyncio.to_thread(fn, ...)``), or give the store a loop of
    its own (:class:`SyncContainer`).
    """


class _Rollback(Exception):
    """Thrown into a held context manager to leave it as if its block had raised."""


@dataclass
class _Call:
    coro: Coroutine[Any, Any, Any]
    done: concurrent.futures.Future[Any]


@dataclass
class _Enter:
    cm: AbstractAsyncContextManager[Any]
    entered: concurrent.futures.Future[None]


@dataclass
class _Exit:
    commit: bool
    done: concurrent.futures.Future[None]


_Item = _Call | _Enter | _Exit


class _Scope:
    """The task that holds a context manager open, and how the calling thread feeds it."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.queue: asyncio.Queue[_Item] = asyncio.Queue()
        self.task: concurrent.futures.Future[None] | None = None
        self.broken: BaseException | None = None

    def put(self, item: _Item) -> None:
        self.loop.call_soon_threadsafe(self.queue.put_nowait, item)

    async def hold(
        self, cm: AbstractAsyncContextManager[Any], entered: concurrent.futures.Future[None]
    ) -> None:
        exit_item: _Exit | None = None
        try:
            async with cm:
                entered.set_result(None)
                exit_item = await self._serve()
                if not exit_item.commit:
                    raise _Rollback
        except _Rollback:
            assert exit_item is not None
            exit_item.done.set_result(None)
        except asyncio.CancelledError as err:
            _fail(entered, err)
            if exit_item is not None:
                _fail(exit_item.done, err)
            raise
        except Exception as err:
            if not entered.done():
                entered.set_exception(err)
            elif exit_item is not None:  # the commit (or the rollback) failed
                exit_item.done.set_exception(err)
            else:  # pragma: no cover - _serve only returns with an exit item
                raise
        else:
            assert exit_item is not None
            exit_item.done.set_result(None)

    async def _serve(self) -> _Exit:
        while True:
            item = await self.queue.get()
            if isinstance(item, _Exit):
                return item
            if isinstance(item, _Enter):  # a nested block: a savepoint of the outer one
                await self.hold(item.cm, item.entered)
                continue
            try:
                result = await item.coro
            except asyncio.CancelledError:
                item.done.cancel()
                raise
            except Exception as err:
                item.done.set_exception(err)
            else:
                item.done.set_result(result)


class _Hop:
    """One blocking call outside a held block: the task that runs it on the loop, and
    the lock its caller waits on (released by the task's last step)."""

    __slots__ = ("cancelled", "coro", "error", "lock", "result", "task")

    def __init__(self, coro: Coroutine[Any, Any, Any]) -> None:
        self.coro = coro
        self.lock = threading.Lock()
        self.lock.acquire()
        self.task: asyncio.Task[Any] | None = None
        self.result: Any = None
        self.error: BaseException | None = None
        self.cancelled = False

    def start(self) -> None:  # on the loop
        self.task = task = asyncio.get_running_loop().create_task(self._run())
        task.add_done_callback(self._done)

    async def _run(self) -> None:
        try:
            self.result = await self.coro
        except asyncio.CancelledError:
            self.cancelled = True
            raise
        except BaseException as err:
            self.error = err
        finally:
            # Released here rather than by a done callback: the caller wakes one
            # iteration of the loop earlier.
            self.task = None
            self.lock.release()

    def _done(self, task: asyncio.Task[Any]) -> None:  # on the loop
        if self.task is not None:  # cancelled before its first step: _run never ran
            self.coro.close()
            self.cancelled = True
            self.task = None
            self.lock.release()

    def cancel(self) -> None:  # on the loop (after start()), when the caller gave up
        if self.task is not None:
            self.task.cancel()


class _Local(threading.local):
    """Per thread: the held block the thread is in (a class default, so that reading it
    in a thread that never entered one costs no AttributeError)."""

    scope: _Scope | None = None


def _fail(fut: concurrent.futures.Future[Any], err: BaseException) -> None:
    if not fut.done():
        fut.set_exception(StoreError(f"the store's event loop stopped the call ({err!r})"))


class LoopBridge:
    """Runs coroutines on ``loop`` for callers on other threads, and waits for them.

    Args:
        loop: the event loop that owns the store (its connections, locks, tasks).
        timeout: seconds to wait for one call (None: no limit). On expiry the
            coroutine is cancelled and :class:`BackendUnavailableError` raised.
    """

    def __init__(
        self, loop: asyncio.AbstractEventLoop, timeout: float | None = DEFAULT_TIMEOUT
    ) -> None:
        if timeout is not None and not timeout > 0:
            raise ValueError("timeout must be positive or None")
        self._loop = loop
        self._timeout = timeout
        self._local = _Local()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        return self._loop

    @property
    def timeout(self) -> float | None:
        return self._timeout

    def on_loop_thread(self) -> bool:
        """True when the caller runs on the bridge's event loop (a coroutine or callback)."""
        try:
            return asyncio.get_running_loop() is self._loop
        except RuntimeError:
            return False

    def _scope(self) -> _Scope | None:
        return self._local.scope

    def may_bypass(self) -> bool:
        """Whether the calling thread may use thread-safe state shared with the loop
        directly, instead of a :meth:`call`: it is not the loop's thread, it is not
        inside a :meth:`held` block (whose calls belong to the block's task), and the
        loop is running (a stopped loop would never flush what was buffered)."""
        loop = self._loop
        return (
            asyncio._get_running_loop() is not loop
            and self._local.scope is None
            and loop.is_running()
        )

    def _check(self) -> None:
        loop = self._loop
        if self.on_loop_thread():
            raise WrongThreadError(
                "a blocking store call was made on the event-loop thread that runs the "
                "wastore store; it would block that loop forever. Run the synchronous "
                "library call in a worker thread (`await asyncio.to_thread(fn, ...)`), or "
                "give the store a loop of its own (wastore.interop.bridge.SyncContainer)"
            )
        if loop.is_closed() or not loop.is_running():
            raise StoreError(
                "the event loop that runs this wastore store is "
                + ("closed" if loop.is_closed() else "not running")
                + ": the store was closed, or it was created on a loop that has stopped"
            )

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the loop and return its result (or raise its exception).

        Inside a :meth:`held` block of the calling thread, ``coro`` runs in the
        task that holds the block's context manager (so it is part of the
        block's transaction); otherwise in a task of its own.

        Raises:
            WrongThreadError: called on the loop's own thread (``coro`` is closed
                without running).
            StoreError: the loop is closed or not running, or the held block
                this call belongs to was aborted.
            BackendUnavailableError: the call did not finish within the timeout.
        """
        try:
            self._check()
            scope = self._scope()
            if scope is not None and scope.broken is not None:
                raise StoreError(
                    "this call belongs to a transaction that was aborted "
                    f"({scope.broken}); leave the `with` block"
                )
        except BaseException:
            coro.close()
            raise
        if scope is None:
            return self._hop(coro)
        done: concurrent.futures.Future[T] = concurrent.futures.Future()
        scope.put(_Call(coro, done))
        return self._wait(done, scope)

    def _hop(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` in a task of its own on the loop and wait for it.

        The lean path of :meth:`call`: the loop starts the task from one callback and
        the task's done callback releases the waiting thread, with no
        ``concurrent.futures.Future`` in between (half the latency of
        ``run_coroutine_threadsafe(...).result()`` on a busy machine).
        """
        hop = _Hop(coro)
        try:
            self._loop.call_soon_threadsafe(hop.start)
        except RuntimeError:  # the loop closed since _check()
            coro.close()
            raise StoreError("the event loop that runs this wastore store is closed") from None
        timeout = self._timeout
        if timeout is None:
            while not hop.lock.acquire(timeout=_CLOSED_CHECK):
                if not self._loop.is_closed():
                    continue
                if hop.lock.acquire(blocking=False):  # it finished as the loop closed
                    break
                if hop.task is None:  # never started: its callback was dropped
                    coro.close()
                raise StoreError(
                    "the store call was abandoned: the event loop running it was closed"
                )
        elif not hop.lock.acquire(timeout=timeout):
            with contextlib.suppress(RuntimeError):  # closed meanwhile: nothing runs it
                self._loop.call_soon_threadsafe(hop.cancel)
            raise BackendUnavailableError(
                f"a store call did not finish within {timeout:g}s "
                "(is the database reachable? is the event loop blocked?)"
            )
        if hop.error is not None:
            error, hop.error = hop.error, None  # no reference cycle through the traceback
            raise error
        if hop.cancelled:
            raise StoreError("the store call was cancelled: the event loop running it was stopped")
        result: T = hop.result
        return result

    def _result(self, fut: concurrent.futures.Future[T]) -> T:
        """``fut``'s result within the timeout; with none, until the loop is closed
        (then ``CancelledError``: a closed loop never completes it)."""
        if self._timeout is not None:
            return fut.result(self._timeout)
        while True:
            try:
                return fut.result(_CLOSED_CHECK)
            except TimeoutError:
                if fut.done():  # done just now (or the coroutine itself raised TimeoutError)
                    return fut.result()
                if self._loop.is_closed() and not fut.done():
                    raise concurrent.futures.CancelledError from None

    def _wait(self, fut: concurrent.futures.Future[T], scope: _Scope | None) -> T:
        try:
            return self._result(fut)
        except concurrent.futures.CancelledError:
            problem = StoreError(
                "the store call was cancelled: the event loop running it was stopped"
            )
            if scope is not None:
                scope.broken = problem
            raise problem from None
        except TimeoutError:
            if fut.done() and not fut.cancelled():  # the coroutine itself raised TimeoutError
                raise
            fut.cancel()
            problem = BackendUnavailableError(
                f"a store call did not finish within {self._timeout:g}s "
                "(is the database reachable? is the event loop blocked?)"
            )
            if scope is not None:  # the task holds a transaction: abort it (a rollback)
                scope.broken = problem
                if scope.task is not None:
                    scope.task.cancel()
            raise problem from None

    async def acall(self, coro: Coroutine[Any, Any, T]) -> T:
        """From a coroutine on another event loop: run ``coro`` on the bridge's loop and
        await it, without blocking the calling loop meanwhile. On the bridge's own
        loop ``coro`` is simply awaited.

        Raises:
            StoreError: the bridge's loop is closed or not running.
            BackendUnavailableError: ``coro`` did not finish within the timeout (it
                is cancelled).
        """
        loop = self._loop
        if asyncio.get_running_loop() is loop:
            return await coro
        if loop.is_closed() or not loop.is_running():
            coro.close()
            self._check()  # raises the StoreError that says which
        fut = asyncio.run_coroutine_threadsafe(coro, loop)
        try:
            return await asyncio.wait_for(asyncio.wrap_future(fut), self._timeout)
        except TimeoutError:
            if fut.done() and not fut.cancelled():  # the coroutine itself raised it
                raise
            fut.cancel()
            raise BackendUnavailableError(
                f"a store call did not finish within {self._timeout:g}s "
                "(is the database reachable? is the event loop blocked?)"
            ) from None
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if fut.cancelled() and (task is None or not task.cancelling()):
                raise StoreError(
                    "the store call was cancelled: the event loop running it was stopped"
                ) from None
            raise

    @contextlib.contextmanager
    def held(self, cm: AbstractAsyncContextManager[Any]) -> Iterator[None]:
        """Keep the async context manager ``cm`` open while the ``with`` block runs.

        ``cm`` is entered in a task on the loop; every :meth:`call` this thread
        makes inside the block runs in that task; when the block ends ``cm`` is
        left — normally (a transaction commits) or, if the block raised, as if
        its body had raised (a transaction rolls back; the block's exception
        propagates). A nested block of the same thread is entered inside the
        outer one (for a transaction: a savepoint). Other threads are not
        inside the block: their calls run in tasks of their own.

        Raises:
            WrongThreadError: used on the loop's own thread.
            StoreError: the loop is not running.
            BackendUnavailableError: entering or leaving took longer than the timeout.
            Exception: whatever entering ``cm`` or leaving it normally raises
                (a failed commit).
        """
        self._check()
        outer = self._scope()
        entered: concurrent.futures.Future[None] = concurrent.futures.Future()
        if outer is None:
            scope = _Scope(self._loop)
            scope.task = asyncio.run_coroutine_threadsafe(scope.hold(cm, entered), self._loop)
        else:
            if outer.broken is not None:
                raise StoreError(
                    f"the enclosing transaction was aborted ({outer.broken}); leave its block"
                )
            scope = outer
            scope.put(_Enter(cm, entered))
        self._wait(entered, scope)
        self._local.scope = scope
        try:
            try:
                yield
            except BaseException:
                if scope.broken is None:
                    try:
                        self._leave(scope, commit=False)
                    except Exception:
                        log.warning("rolling back a held transaction failed", exc_info=True)
                raise
            if scope.broken is not None:
                raise StoreError(
                    f"the transaction was aborted ({scope.broken}): nothing of it was committed"
                )
            self._leave(scope, commit=True)
        finally:
            self._local.scope = outer
            if outer is None and scope.task is not None and not scope.broken:
                with contextlib.suppress(Exception):
                    scope.task.result(self._timeout)

    def _leave(self, scope: _Scope, *, commit: bool) -> None:
        done: concurrent.futures.Future[None] = concurrent.futures.Future()
        scope.put(_Exit(commit, done))
        self._wait(done, scope)
