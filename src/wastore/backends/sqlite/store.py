"""SqliteStore: the container over one SQLite database file (``sqlite:///path.db``).

Snapshots (``snapshot_db``) hold one account: a new SQLite database file
``<db>.snapshot-<UTC time>-<name>`` (beside the database, or in
``snapshot_dir``) with the latest schema and that account's rows only, copied
as they are stored (same device id, same bytes, damaged records included) in one
read transaction, so that it opens with :func:`wastore.open_store` like any
store. No other account's row is ever in it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
import uuid
from pathlib import Path
from typing import Literal

from ... import _validate as v
from ...errors import ConfigError, DeviceNotFoundError, StoreError
from .._common import make_private_dirs, sanitize_snapshot_name, utc_stamp, write_private
from ..options import check_flag, check_positive
from ..sql import migrate, schema
from ..sql.engine import run_now
from ..sql.schema import Migration
from ..sql.store import SqlStore
from .connections import FILE_MODE, SchemaConn, SqliteOptions
from .engine import SqliteEngine
from .errors import translate

log = logging.getLogger("wastore.sqlite")

SNAPSHOT_SKIPPED_TABLES = frozenset({"leases"})
"""Tables a snapshot leaves empty: a lease belongs to the live database's processes."""


class SqliteStore(SqlStore):
    """A Container over one SQLite database file (many accounts, one connection set).

    Open it with :func:`wastore.open_store` (``sqlite:///path.db``) or
    :meth:`open`.
    """

    engine: SqliteEngine

    def __init__(self, engine: SqliteEngine) -> None:
        super().__init__(engine)
        self.path = engine.path

    @classmethod
    async def open(
        cls,
        path: str | os.PathLike[str],
        *,
        prefix: str = schema.DEFAULT_PREFIX,
        synchronous: str = "NORMAL",
        busy_timeout: float = 5.0,
        snapshot_dir: str | os.PathLike[str] | None = None,
        migrate: bool = True,
        create: bool = True,
    ) -> SqliteStore:
        """Open (and create, and upgrade) the database at ``path``.

        Args:
            path: the database file; created with mode 0600 if missing.
            prefix: table prefix (default ``wastore_``).
            synchronous: ``NORMAL`` (default: a commit survives a process crash;
                the last commits may be lost on power failure, never corrupted)
                or ``FULL`` (every commit is fsynced).
            busy_timeout: seconds to keep retrying while another process holds
                the write lock, before :class:`BackendUnavailableError`.
            snapshot_dir: folder for debug snapshots (default: beside the file).
            migrate: upgrade an older schema on open (else raise SchemaError).
            create: create the file if it does not exist.

        Raises:
            ConfigError: a bad option, or a path that is no database file.
            SchemaTooNewError: the database was written by a newer wastore.
            BackendUnavailableError: another process kept the database locked.
        """
        opts = SqliteOptions(
            prefix=schema.check_prefix(prefix),
            synchronous=_check_sync(synchronous),
            busy_timeout=check_positive(busy_timeout, "busy_timeout"),
            snapshot_dir=None if snapshot_dir is None else Path(snapshot_dir),
            migrate=check_flag(migrate, "migrate"),
        )
        create = check_flag(create, "create")
        if str(path) in ("", ":memory:") or str(path).startswith("file:"):
            raise ConfigError(
                "SqliteStore needs a database file path (in-memory databases cannot hold a "
                "writer and readers apart; use memory:// for a store in memory)"
            )
        engine = SqliteEngine(Path(path), opts)
        await engine.open(create)
        return cls(engine)

    def __repr__(self) -> str:
        return f"SqliteStore({str(self.path)!r}, prefix={self.prefix!r})"

    @property
    def open_connections(self) -> int:
        """SQLite connections this store holds open (three while open, for any account count)."""
        return self.engine.open_connections

    def schema_status(self) -> tuple[int, int, list[Migration]]:
        """``(version, compat, pending steps)`` of the open database."""
        return self.engine.schema_status()

    async def snapshot(self, device_id: int, name: str, extra: bytes | None) -> str:
        """Write a database file holding this account only (see the module docstring),
        plus ``extra`` in a ``.extra`` sidecar file; both mode 0600. Return its path.

        Raises:
            DeviceNotFoundError: the account does not exist (nothing is written).
            StoreError: the file cannot be written.
        """
        safe = sanitize_snapshot_name(name)
        extra = v.opt_blob(extra, "extra")
        device_id = v.integer(device_id, "device_id", 1)
        e = self.engine
        e.check_open()
        folder = e.opts.snapshot_dir or self.path.parent
        target = folder / f"{self.path.name}.snapshot-{utc_stamp()}-{safe}"

        def write() -> None:
            make_private_dirs(folder)
            _write_account_db(self.path, target, self.prefix, device_id)
            if extra is not None:
                write_private(target.with_name(target.name + ".extra"), extra)

        try:
            await e.offload(write)
        except sqlite3.Error as err:
            raise translate(err, "snapshot") from err
        except OSError as err:
            raise StoreError(f"cannot write the snapshot {str(target)!r}: {err.strerror}") from err
        return str(target)


def _write_account_db(source: Path, target: Path, prefix: str, device_id: int) -> None:
    """Build the one-account database ``target`` from ``source`` (on a worker thread).

    A temporary file beside ``target`` (created 0600) gets the latest schema, then,
    in one transaction with ``source`` attached read-only, the account's rows of
    every table, column by column by name; it is renamed to ``target`` once
    complete (and removed on any failure).
    """
    tmp = target.with_name(f".{target.name}.tmp-{uuid.uuid4().hex[:8]}")
    fd = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, FILE_MODE)
    os.close(fd)
    try:
        conn = sqlite3.connect(tmp.resolve().as_uri(), uri=True, isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode=MEMORY")  # no journal file beside it
            run_now(
                migrate.migrate(SchemaConn(conn), prefix, upgrade=True, where=str(tmp), log=log)
            )
            conn.execute("ATTACH DATABASE ? AS src", (source.resolve().as_uri() + "?mode=ro",))
            conn.execute("BEGIN")
            _copy_account(conn, prefix, device_id)
            conn.execute("COMMIT")
            conn.execute("DETACH DATABASE src")
        finally:
            conn.close()
        os.chmod(tmp, FILE_MODE)  # whatever the umask
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    with contextlib.suppress(OSError):  # not every platform can open a directory
        dfd = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)


def _copy_account(conn: sqlite3.Connection, prefix: str, device_id: int) -> None:
    """Copy one account's rows from ``src`` into ``main`` (inside a transaction)."""
    for table in schema.TABLES:
        if table in SNAPSHOT_SKIPPED_TABLES:
            continue
        name = f"{prefix}{table}"
        cols = [str(r[1]) for r in conn.execute(f'PRAGMA src.table_info("{name}")')]
        listed = ", ".join(f'"{c}"' for c in cols)
        key = "id" if table == "device" else "device_id"
        copied = conn.execute(
            f'INSERT INTO main."{name}" ({listed}) SELECT {listed} FROM src."{name}" '
            f"WHERE {key} = ?",
            (device_id,),
        ).rowcount
        if table == "device" and copied == 0:
            raise DeviceNotFoundError(device_id)


def _check_sync(value: object) -> Literal["NORMAL", "FULL"]:
    text = str(value).upper()
    if text == "NORMAL":
        return "NORMAL"
    if text == "FULL":
        return "FULL"
    raise ConfigError(f"synchronous must be NORMAL or FULL, not {value!r}")


async def read_schema_version(path: Path, prefix: str) -> tuple[int, int] | None:
    """``(version, compat)`` of the database file, None when it has no wastore schema.

    Opens the file read-only: nothing is created, migrated or locked.

    Raises:
        FileNotFoundError: the file does not exist.
        SchemaError: tables of the prefix exist without a version table.
        StoreError: the file cannot be read.
    """
    return await asyncio.to_thread(_read_version, path, schema.check_prefix(prefix))


def _read_version(path: Path, prefix: str) -> tuple[int, int] | None:
    if not path.exists():
        raise FileNotFoundError(str(path))
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as err:
        raise StoreError(f"cannot open {str(path)!r} read-only: {err}") from err
    try:
        return run_now(migrate.read_version(SchemaConn(conn), prefix))
    except (sqlite3.DatabaseError, UnicodeDecodeError) as err:
        raise translate(err, f"reading {str(path)!r}", path) from err
    finally:
        conn.close()
