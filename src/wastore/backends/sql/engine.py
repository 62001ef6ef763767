"""The engine seam: the few primitives a dialect provides to the one SQL backend.

:class:`~wastore.backends.sql.account.SqlAccount` implements the whole
per-account :class:`~wastore.Backend` once, and
:class:`~wastore.backends.sql.store.SqlStore` the container, over an
:class:`Engine`. An engine owns the connections and decides how each
primitive runs; the statements come from its :class:`Queries` (shared) and
:class:`DialectQueries` (its own forms of batches and multi-key reads). The
two engines:

- :class:`~wastore.backends.sqlite.engine.SqliteEngine` runs point operations
  inline on the event-loop thread and anything large on one worker thread;
  busy errors are retried within the busy budget.
- :class:`~wastore.backends.postgres.engine.PostgresEngine` runs every call
  on a pooled asyncpg connection; a statement runs again after a lost
  connection only if it is idempotent and outside a transaction.

Every engine has one place where a transaction begins and commits, used by
:meth:`Engine.transaction`, :meth:`Engine.atomic` and the statements that run
as their own implicit transaction.

Writes on an account that does not exist raise
:class:`~wastore.DeviceNotFoundError` with device id 0 and the driver error
as its cause; the account view names its id.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Sequence
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from .queries import Batch, DialectQueries, KeyRead, Queries

if TYPE_CHECKING:
    from .leases import LeaseKeeper

T = TypeVar("T")

Args = tuple[Any, ...]
"""The parameters of one statement (or the head, row or tail of a batch row)."""
Rows = list[tuple[Any, ...]]
Statements = Sequence[tuple[str, Sequence[Any]]]


class Tx(Protocol):
    """The statements of one atomic block (:meth:`Engine.atomic`), on its connection.

    On SQLite these coroutines never suspend: a block runs synchronously, on the
    event loop or on the worker thread.
    """

    async def one(self, sql: str, args: Sequence[Any]) -> Any:
        """The one row of a query, or None."""
        ...

    async def rows(self, sql: str, args: Sequence[Any]) -> list[Any]: ...

    async def write(self, sql: str, args: Sequence[Any]) -> int:
        """Run one write statement; the number of rows it touched."""
        ...

    async def write_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """Run the one-row statement ``sql`` for every row."""
        ...


Block = Callable[[Tx], Coroutine[Any, Any, T]]


class EngineBase(Protocol):
    """The primitives whose public form is the same in every dialect, written once.

    Each takes and documents the arguments, and hands them to the dialect's own
    method (:meth:`_write_batch`, :meth:`_run_block`). An engine derives from
    this class; :class:`Engine` extends it with the primitives a dialect writes
    whole.
    """

    async def batch(
        self,
        stmt: Batch,
        head: Args,
        rows: Sequence[Args],
        tail: Args = (),
        *,
        account: int | None = None,
    ) -> None:
        """Write every row (``(*head, *row, *tail)``) in one transaction, in the
        given order (callers sort by key). Nothing happens for no rows.
        ``account``: whose lease epoch fences it (checked at its start)."""
        if rows:
            await self._write_batch(stmt, head, rows, tail, account)

    async def atomic(
        self,
        block: Block[T],
        *,
        items: int = 1,
        idempotent: bool = False,
        account: int | None = None,
    ) -> T:
        """Run ``block`` as one transaction (a savepoint inside the task's
        transaction). ``items``: about how many rows it touches; ``idempotent``:
        it may run again when its outcome is unknown; ``account``: whose lease
        epoch fences it (checked at its start)."""
        return await self._run_block(block, items, idempotent, account)

    async def _write_batch(
        self, stmt: Batch, head: Args, rows: Sequence[Args], tail: Args, account: int | None
    ) -> None:
        """:meth:`batch` in the dialect's form (``stmt.mode``); ``rows`` is not empty."""
        ...

    async def _run_block(
        self, block: Block[T], items: int, idempotent: bool, account: int | None
    ) -> T:
        """:meth:`atomic`, on the dialect's connection."""
        ...


class Engine(EngineBase, Protocol):
    """What a dialect provides to the one SQL backend.

    Reads outside a transaction never see another task's uncommitted writes;
    inside the task's :meth:`transaction` every primitive joins it.
    """

    @property
    def q(self) -> Queries:
        """The shared statements, rendered for the dialect and table prefix."""
        ...

    @property
    def dq(self) -> DialectQueries:
        """The dialect's own statements."""
        ...

    @property
    def leases(self) -> LeaseKeeper:
        """The container's account leases (and the epochs that fence its writes)."""
        ...

    def check_open(self) -> None:
        """Raise :class:`~wastore.BackendUnavailableError` once the store is closed."""
        ...

    def transaction(self, account: int | None = None) -> AbstractAsyncContextManager[None]:
        """The task's transaction; a nested block is a savepoint.

        ``account``: the account it is for. Transactions of one account run one at
        a time (in every process), and if this container holds its lease, the
        epoch is checked before the block runs (``AccountInUseError`` if lost).
        """
        ...

    async def one(self, sql: str, args: Sequence[Any]) -> Any:
        """The row of a query returning at most one, or None."""
        ...

    async def value(self, sql: str, args: Sequence[Any]) -> Any:
        """The first column of that row, or None when there is no row."""
        ...

    async def rows(self, sql: str, args: Sequence[Any], *, expect: int | None = 0) -> list[Any]:
        """Every row of a query; ``expect`` is how many rows it may return at most
        (None: no bound), so that an engine can move a large read off the event loop."""
        ...

    async def by_keys(self, stmt: KeyRead, head: tuple[Any, ...], keys: Sequence[Any]) -> list[Any]:
        """The rows of ``stmt`` for every key (distinct keys), in one call."""
        ...

    async def write(
        self, sql: str, args: Sequence[Any], *, idempotent: bool = True, account: int | None = None
    ) -> int:
        """One write statement, committed on return (or part of the task's
        transaction); the number of rows it touched. ``idempotent``: running it
        twice is harmless, so it may run again when its outcome is unknown.
        ``account``: the account it writes (its transactions in other tasks of this
        process are waited for; the statement carries its own fence, if any)."""
        ...

    async def write_returning(
        self, sql: str, args: Sequence[Any], *, account: int | None = None
    ) -> Any:
        """One write statement returning at most one row; never run twice."""
        ...

    async def read_snapshot(self, statements: Statements) -> list[Rows]:
        """Run read-only statements (in the engine's dialect) in one consistent
        snapshot, off the event loop."""
        ...

    def unique_violation(self, err: BaseException | None) -> bool:
        """Whether a driver error is a unique-key violation."""
        ...

    async def close(self) -> None: ...


def run_now(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine that never suspends, synchronously, and return its result.

    How SQLite runs an atomic block (and a migration) written as a coroutine
    over :class:`Tx`: its statements are synchronous calls, so the coroutine
    completes in one step, on whichever thread calls this.
    """
    try:
        coro.send(None)
    except StopIteration as done:
        result: T = done.value
        return result
    coro.close()
    raise RuntimeError("a synchronous SQL block suspended")
