"""The file and the connections of one SQLite database.

Opening creates the file if asked (mode 0600, and an open file's group and
others rights taken away: its keys are secrets), checks that it can be read
and written, puts it in WAL mode with the pragmas the engine relies on, and
creates or upgrades the schema; then three connections are open: the writer,
the reader of inline reads (``query_only``) and the worker thread's reader
(see :mod:`.engine` for who uses which, and when).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
import stat
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal, TypeVar

from ...errors import BackendUnavailableError, ConfigError
from .._common import make_private_dirs, shielded
from ..options import StoreOptions
from ..retry import SQLITE_BUSY, Budget
from ..sql import migrate
from ..sql.engine import run_now
from ..sql.queries import to_sqlite
from ..sql.schema import Dialect, Migration
from .errors import DRIVER_ERRORS, access_problem, diagnose, is_busy, translate

log = logging.getLogger("wastore.sqlite")

T = TypeVar("T")
Conn = sqlite3.Connection

WAL_LIMIT: Final = 64 * 1024 * 1024
"""The bound of the ``-wal`` file under sustained writes (docs/sqlite.md), also its
``journal_size_limit``."""
CACHE_KIB: Final = 16384
"""Page cache of each connection (SQLite's default is 2 MiB). It fills only with pages
actually read; a bigger one keeps a single account's Signal tables in memory (2,000
sessions of 1.2 KB take 2.8 MB of pages) and halves the cost of a batch of writes."""
FILE_MODE: Final = 0o600


@dataclass(frozen=True, slots=True, kw_only=True)
class SqliteOptions(StoreOptions):
    """The options of an open SQLite store (checked by :meth:`SqliteStore.open`)."""

    synchronous: Literal["NORMAL", "FULL"]
    busy_timeout: float
    snapshot_dir: Path | None


class SqliteConnections:
    """The database file, its three connections and the worker thread that runs what
    may take long."""

    def __init__(self, path: Path, options: SqliteOptions) -> None:
        self.path = path
        self.opts = options
        self._w: Conn | None = None
        self._r: Conn | None = None
        self._bg: Conn | None = None
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="wastore-sqlite")
        self._closed = False
        self._page_size = 4096

    # -- opening and closing ---------------------------------------------------
    async def open(self, create: bool) -> None:
        """Create (if ``create``) and open the file, then create or upgrade the schema."""
        try:
            await asyncio.get_running_loop().run_in_executor(self._pool, self._open_sync, create)
        except BaseException:
            self._close_sync()
            self._pool.shutdown(wait=False)
            raise

    def _open_sync(self, create: bool) -> None:
        path = self.path
        if not path.exists():
            if not create:
                raise ConfigError(f"SQLite database {str(path)!r} does not exist")
            try:
                make_private_dirs(path.parent if str(path.parent) else Path("."))
                fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, FILE_MODE)
                os.close(fd)
            except FileExistsError:
                pass
            except OSError as err:
                why = diagnose(path)
                raise BackendUnavailableError(
                    f"cannot create SQLite database {str(path)!r}: {why or err.strerror}"
                ) from err
        _private_files(path)
        why = access_problem(path)
        if why is not None:
            raise BackendUnavailableError(f"cannot open SQLite database {str(path)!r}: {why}")
        budget_ms = int(self.opts.busy_timeout * 1000)
        try:
            self._w = self._connect(busy_ms=budget_ms)
            w = self._w
            # A journal-mode change fails at once with "database is locked" while another
            # connection holds a write lock on a file still in rollback mode (two processes
            # opening a fresh file together): SQLite calls no busy handler there.
            mode = self._busy_retry_sync(lambda: w.execute("PRAGMA journal_mode=WAL").fetchone()[0])
            if str(mode).lower() != "wal":
                raise ConfigError(
                    f"SQLite refused WAL mode for {str(path)!r} (got {mode!r}); the file system "
                    "may not support shared memory (network drives do not)"
                )
            w.execute(f"PRAGMA synchronous={self.opts.synchronous}")
            w.execute("PRAGMA foreign_keys=ON")
            if w.execute("PRAGMA foreign_keys").fetchone()[0] != 1:
                raise ConfigError("this SQLite build cannot enforce foreign keys")
            w.execute("PRAGMA wal_autocheckpoint=0")
            w.execute(f"PRAGMA journal_size_limit={WAL_LIMIT}")
            run_now(
                migrate.migrate(
                    SchemaConn(w),
                    self.opts.prefix,
                    upgrade=self.opts.migrate,
                    where=str(path),
                    log=log,
                )
            )
            w.execute("PRAGMA busy_timeout=0")
            self._r = self._connect(busy_ms=0)
            self._r.execute("PRAGMA query_only=ON")
            self._bg = self._connect(busy_ms=budget_ms)
            self._bg.execute("PRAGMA query_only=ON")
            self._page_size = int(w.execute("PRAGMA page_size").fetchone()[0])
        except DRIVER_ERRORS as err:
            raise translate(err, f"opening {str(path)!r}", path) from err

    def _busy_retry_sync(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on the worker thread, retrying busy errors within the busy budget."""
        budget = Budget(self.opts.busy_timeout, SQLITE_BUSY)
        while True:
            try:
                return fn()
            except sqlite3.Error as err:
                if not is_busy(err) or not budget.pause_sync():
                    raise

    def _connect(self, *, busy_ms: int) -> Conn:
        conn = sqlite3.connect(
            self.path,
            isolation_level=None,
            check_same_thread=False,
            cached_statements=512,
            timeout=busy_ms / 1000,
        )
        conn.execute(f"PRAGMA busy_timeout={busy_ms}")
        conn.execute("PRAGMA temp_store=MEMORY")
        conn.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
        return conn

    def schema_status(self) -> tuple[int, int, list[Migration]]:
        """``(version, compat, pending steps)`` of the open database (inline)."""
        self.check_open()
        assert self._w is not None
        return run_now(migrate.status(SchemaConn(self._w), self.opts.prefix))

    @property
    def open_connections(self) -> int:
        return sum(c is not None for c in (self._w, self._r, self._bg))

    def _close_sync(self) -> None:
        if self._bg is not None:
            with contextlib.suppress(sqlite3.Error):
                self._bg.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        for conn in (self._r, self._bg, self._w):
            if conn is not None:
                with contextlib.suppress(sqlite3.Error):
                    conn.close()
        self._r = self._bg = self._w = None

    def check_open(self) -> None:
        if self._closed:
            raise BackendUnavailableError(f"the SQLite store {str(self.path)!r} is closed")

    # -- the worker thread -----------------------------------------------------
    async def offload(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on the worker thread; a cancelled caller still waits for it to finish
        (the connection it uses must not be touched by anyone else meanwhile)."""
        return await shielded(asyncio.get_running_loop().run_in_executor(self._pool, fn))

    async def vacuum_into(self, target: Path) -> None:
        """``VACUUM INTO target`` on the worker's connection (a consistent copy of the
        database; ``target`` may be an empty file, whose mode it keeps)."""
        self.check_open()

        def run() -> None:
            bg = self._bg
            assert bg is not None
            bg.execute("PRAGMA query_only=OFF")  # VACUUM INTO writes the target file
            try:
                bg.execute("VACUUM INTO ?", (str(target),))
            finally:
                bg.execute("PRAGMA query_only=ON")

        try:
            await self.offload(run)
        except sqlite3.Error as err:
            raise translate(err, "snapshot", self.path) from err


class SchemaConn:
    """A connection as the migrations runner uses it (synchronous, never suspends)."""

    dialect: Dialect = "sqlite"

    def __init__(self, conn: Conn) -> None:
        self._c = conn

    async def fetch(self, sql: str, args: Sequence[Any] = ()) -> list[Sequence[Any]]:
        return self._c.execute(to_sqlite(sql), args).fetchall()

    async def execute(self, sql: str, args: Sequence[Any] = ()) -> None:
        self._c.execute(to_sqlite(sql), args)

    async def script(self, statements: Sequence[str]) -> None:
        for stmt in statements:
            self._c.execute(stmt)

    @asynccontextmanager
    async def locked(self) -> AsyncIterator[None]:
        conn = self._c
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")


def _private_files(path: Path) -> None:
    """Take every right of the group and of others away from the database file and its
    ``-wal`` and ``-shm`` files (0644 becomes 0600).

    SQLite creates the ``-wal`` and ``-shm`` files with the database file's mode, so
    a database made readable by others (mode 0644 from another tool, a copy, an
    older version) would hand its keys to every local user through them too. A
    file that cannot be tightened (another user owns it) is refused.

    Raises:
        BackendUnavailableError: a file is open to others and this process cannot
            change its mode.
    """
    for target in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        try:
            mode = stat.S_IMODE(target.stat().st_mode)
        except FileNotFoundError:
            continue
        except OSError:
            return  # diagnose() says what is wrong with the file
        if not mode & 0o077:
            continue
        try:
            os.chmod(target, mode & 0o700)
        except OSError as err:
            raise BackendUnavailableError(
                f"the SQLite file {str(target)!r} has mode {mode:04o} (others may read its "
                f"keys) and its mode cannot be changed: {err.strerror}; run "
                f"`chmod 600 {target}` as its owner"
            ) from None
        log.warning(
            "SQLite file %r had mode %04o (open to others): changed to %04o",
            str(target),
            mode,
            mode & 0o700,
        )
