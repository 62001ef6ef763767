"""Which transaction, if any, the running task is inside of; and waits for one to end.

A transaction belongs to one task of one container (its *owner*: the engine or
store). Nested ``transaction()`` blocks of that task join it. Any other task is
outside it:

- A task that was **started inside** the transaction (``asyncio.create_task``,
  ``asyncio.gather``, ``asyncio.shield``, and ``asyncio.wait_for`` on Python
  3.11 start tasks; they inherit the context, so they see the transaction in
  :data:`_CURRENT`) may read, outside the transaction (the committed state,
  never the transaction's writes), but its writes are refused with
  :class:`~wastore.StoreError` while the transaction is open: it can neither
  join it (its calls would interleave with the owner's on one connection, and
  a savepoint of one could undo the other's writes) nor wait for it (the owner
  usually awaits it: they would wait for each other forever), and a write
  outside it would survive its rollback. Once the transaction has ended it is
  an ordinary task.
- Any other task waits for the transaction to end where the backend makes it
  wait (SQLite's writer, PostgreSQL's account lock, the memory store), at most
  a lock timeout, after which :func:`wait_timeout` names the task holding it.
"""

from __future__ import annotations

import asyncio
import time
from contextvars import ContextVar, Token
from typing import Any, Generic, TypeVar

from ..errors import BackendUnavailableError, StoreError

T = TypeVar("T")

DEFAULT_LOCK_TIMEOUT = 30.0
"""Seconds a call waits for another task's transaction (memory and SQLite; PostgreSQL
uses its ``command_timeout``), before :class:`~wastore.BackendUnavailableError`."""


class TxnState(Generic[T]):
    """An open transaction: its owner container, task, nesting depth and backend data.

    ``account`` is the account whose ``transaction()`` opened it (None: an internal
    atomic block); ``open`` turns False when it ends.
    """

    __slots__ = ("account", "data", "depth", "open", "owner", "started", "task")

    def __init__(self, owner: object, data: T, account: int | None = None) -> None:
        self.owner = owner
        self.task = asyncio.current_task()
        self.depth = 0
        self.data = data
        self.account = account
        self.open = True
        self.started = time.monotonic()

    def describe(self) -> str:
        """The holder, for people: which task, which account, for how long."""
        return describe_holder(self.task, self.account, self.started)


_CURRENT: ContextVar[tuple[TxnState[Any], ...]] = ContextVar("wastore_txn", default=())


def task_name(task: asyncio.Task[Any] | None) -> str:
    return "no task" if task is None else repr(task.get_name())


def describe_holder(task: asyncio.Task[Any] | None, account: int | None, since: float) -> str:
    what = "a transaction" if account is None else f"a transaction of account {account}"
    return f"{what} of task {task_name(task)}, open for {time.monotonic() - since:.1f}s"


def current(owner: object, read: bool = False) -> TxnState[Any] | None:
    """The open transaction of ``owner`` that the running task owns, or None.

    ``read``: the call only reads; a task started inside an open transaction then
    reads outside it (None).

    Raises:
        StoreError: a write by a task started inside a transaction of ``owner``
            that is still open (see the module docstring).
    """
    stack = _CURRENT.get()
    if not stack:
        return None
    task = asyncio.current_task()
    for st in reversed(stack):
        if st.owner is owner and st.open:
            if st.task is task:
                found: TxnState[Any] = st
                return found
            if read:
                return None
            raise started_inside(st)
    return None


def refuse_lease_inside(owner: object) -> None:
    """Refuse to take or release a lease inside a transaction of ``owner``: leases are
    taken and released in transactions of their own. A rollback of the caller's would
    undo the lease row (and its epoch) while the caller went on as the holder, or
    bring back a released lease that nobody knows it holds."""
    _refuse_inside(
        owner,
        "a lease cannot be taken or released inside a transaction (its rollback "
        "would undo that); do it before or after the transaction",
    )


def refuse_close_inside(owner: object) -> None:
    """Refuse to close ``owner``'s store inside one of its transactions, or from a task
    started inside one: closing waits for the open transactions to end (and releases
    the leases in transactions of its own), so it would wait for itself."""
    _refuse_inside(
        owner,
        "a store cannot be closed inside one of its transactions (closing waits for "
        "them to end); close it after the transaction",
    )


def _refuse_inside(owner: object, message: str) -> None:
    """StoreError(message) inside a transaction of ``owner``; from a task started inside
    one, :func:`current` raises its own."""
    if current(owner) is not None:
        raise StoreError(message)


def started_inside_open() -> TxnState[Any] | None:
    """The open transaction (of any owner) that the running task was started inside,
    if any: a write of this task could not belong to it."""
    stack = _CURRENT.get()
    if not stack:
        return None
    task = asyncio.current_task()
    for st in reversed(stack):
        if st.open and st.task is not task:
            found: TxnState[Any] = st
            return found
    return None


def started_inside(st: TxnState[Any]) -> StoreError:
    return StoreError(
        f"this task ({task_name(asyncio.current_task())}) was started inside "
        f"{st.describe()}, which is still open: a task started inside a transaction "
        "cannot write until the transaction ends (it could neither join it nor wait for "
        "it without deadlocking its owner, and a write outside it would survive its "
        "rollback). Make the writes from the task that opened the transaction, or await "
        "the task after the transaction block (asyncio.gather, asyncio.shield, and "
        "asyncio.wait_for on Python 3.11, start tasks)"
    )


def push(state: TxnState[Any]) -> Token[tuple[TxnState[Any], ...]]:
    return _CURRENT.set((*_CURRENT.get(), state))


def pop(token: Token[tuple[TxnState[Any], ...]], state: TxnState[Any] | None = None) -> None:
    """Leave the transaction (``state``, if given, is marked ended for the tasks it
    started)."""
    if state is not None:
        state.open = False
    _CURRENT.reset(token)


def wait_timeout(what: str, holder: str, seconds: float) -> BackendUnavailableError:
    """The error of a wait for another task's transaction that took too long."""
    return BackendUnavailableError(
        f"waited {seconds:g}s for {what}, held by {holder}: if that task awaits this one, "
        "they wait for each other; otherwise the transaction is too long"
    )
