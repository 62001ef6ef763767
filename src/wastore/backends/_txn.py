"""Which transaction, if any, the running task is inside of.

A transaction belongs to one task of one container. Nested ``transaction()``
blocks of that task join it; any other task (including a child task spawned
inside the block) is outside it and waits for the commit before it writes.
"""

from __future__ import annotations

import asyncio
from contextvars import ContextVar, Token
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class TxnState(Generic[T]):
    """An open transaction: its owner container, task, nesting depth and backend data."""

    __slots__ = ("data", "depth", "owner", "task")

    def __init__(self, owner: object, data: T) -> None:
        self.owner = owner
        self.task = asyncio.current_task()
        self.depth = 0
        self.data = data


_CURRENT: ContextVar[tuple[TxnState[Any], ...]] = ContextVar("wastore_txn", default=())


def current(owner: object) -> TxnState[Any] | None:
    """The open transaction of ``owner`` that the running task owns, or None."""
    stack = _CURRENT.get()
    if not stack:
        return None
    for st in stack:
        if st.owner is owner and st.task is asyncio.current_task():
            return st
    return None


def push(state: TxnState[Any]) -> Token[tuple[TxnState[Any], ...]]:
    return _CURRENT.set((*_CURRENT.get(), state))


def pop(token: Token[tuple[TxnState[Any], ...]]) -> None:
    _CURRENT.reset(token)
