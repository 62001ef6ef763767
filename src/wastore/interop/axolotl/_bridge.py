"""Calling asyncio code from synchronous code: the bridge python-axolotl needs.

python-axolotl calls its store synchronously; wastore is asyncio. A
:class:`LoopBridge` runs a coroutine on the event loop that owns the store
(``asyncio.run_coroutine_threadsafe(...).result()``) and blocks the calling
thread until it is done. That is only possible from *another* thread: called
on the loop's own thread it would wait for a loop that cannot run, forever.
The bridge refuses that case with :class:`WrongThreadError` instead of
hanging.

:class:`EventLoopThread` is a loop of its own on a background thread, for
callers that have no loop (or do not want the store on theirs).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
from collections.abc import Coroutine
from typing import Any, Final, TypeVar

from ...errors import BackendUnavailableError, StoreError

T = TypeVar("T")

DEFAULT_TIMEOUT: Final = 60.0
"""Seconds a blocking store call may take before it is cancelled."""


class WrongThreadError(RuntimeError):
    """A blocking store call was made on the thread of the event loop that runs the store.

    The call would wait for the loop while blocking it: a deadlock. From a
    coroutine on that loop, run the python-axolotl call in a worker thread —
    ``await asyncio.to_thread(cipher.decryptMsg, message)`` or
    ``await store.run_in_thread(cipher.decryptMsg, message)``.
    """


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

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        return self._loop

    def on_loop_thread(self) -> bool:
        """True when the caller runs on the bridge's event loop (a coroutine or callback)."""
        try:
            return asyncio.get_running_loop() is self._loop
        except RuntimeError:
            return False

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the loop and return its result (or raise its exception).

        Raises:
            WrongThreadError: called on the loop's own thread (``coro`` is closed
                without running).
            StoreError: the loop is closed or not running.
            BackendUnavailableError: the call did not finish within the timeout.
        """
        loop = self._loop
        problem: BaseException | None = None
        if self.on_loop_thread():
            problem = WrongThreadError(
                "a python-axolotl store call was made on the event-loop thread that runs "
                "the wastore store; it would block that loop forever. Run the python-axolotl "
                "call in a worker thread: `await asyncio.to_thread(fn, ...)` or "
                "`await store.run_in_thread(fn, ...)`"
            )
        elif loop.is_closed() or not loop.is_running():
            problem = StoreError(
                "the event loop that runs this wastore store is "
                + ("closed" if loop.is_closed() else "not running")
                + ": the store was closed, or it was created on a loop that has stopped"
            )
        if problem is not None:
            coro.close()
            raise problem
        future = asyncio.run_coroutine_threadsafe(coro, loop)
        try:
            return future.result(self._timeout)
        except concurrent.futures.CancelledError:
            raise StoreError(
                "the store call was cancelled: the event loop running it was stopped"
            ) from None
        except TimeoutError:
            if future.done():  # the coroutine itself raised TimeoutError
                raise
            future.cancel()
            raise BackendUnavailableError(
                f"a store call did not finish within {self._timeout:g}s "
                "(is the database reachable? is the event loop blocked?)"
            ) from None


class EventLoopThread:
    """An asyncio event loop running on a background thread until :meth:`stop`.

    The thread is a daemon, so a forgotten :meth:`stop` does not keep the
    interpreter alive — but anything not flushed by then is lost: close what
    runs on it first.
    """

    def __init__(self, name: str = "wastore-axolotl-loop") -> None:
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)
        self._thread.start()
        self._ready.wait()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        return self._loop

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def _main(self) -> None:
        loop = self._loop
        asyncio.set_event_loop(loop)
        loop.call_soon(self._ready.set)
        try:
            loop.run_forever()
        finally:
            try:
                tasks = asyncio.all_tasks(loop)
                for task in tasks:
                    task.cancel()
                if tasks:
                    loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.run_until_complete(loop.shutdown_default_executor())
            finally:
                loop.close()

    def stop(self) -> None:
        """Stop the loop (cancelling what still runs on it) and join the thread.

        Safe to call twice. Raises :class:`WrongThreadError` on the loop's thread.
        """
        if threading.current_thread() is self._thread:
            raise WrongThreadError("an EventLoopThread cannot be stopped from its own thread")
        if self._thread.is_alive():
            with contextlib.suppress(RuntimeError):  # closed between the check and the call
                self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"EventLoopThread({self._thread.name!r}, {state})"
