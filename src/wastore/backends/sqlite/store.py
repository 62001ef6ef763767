"""SqliteStore: the container over one SQLite database file (``sqlite:///path.db``)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
from pathlib import Path
from typing import Literal

from ... import _validate as v
from ...errors import ConfigError, StoreError
from .._common import make_private_dirs, sanitize_snapshot_name, utc_stamp, write_private
from ..options import check_flag, check_positive
from ..sql import migrate, schema
from ..sql.engine import run_now
from ..sql.schema import Migration
from ..sql.store import SqlStore
from .engine import FILE_MODE, SchemaConn, SqliteEngine, SqliteOptions
from .errors import translate


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
        """A consistent copy of the database (``VACUUM INTO``) beside it, or in
        ``snapshot_dir``, plus ``extra`` in a sidecar file; mode 0600."""
        safe = sanitize_snapshot_name(name)
        extra = v.opt_blob(extra, "extra")
        e = self.engine
        e.check_open()
        folder = e.opts.snapshot_dir or self.path.parent
        target = folder / f"{self.path.name}.snapshot-{utc_stamp()}-{safe}"

        def create() -> None:
            make_private_dirs(folder)
            # VACUUM INTO accepts an empty existing file and keeps its mode.
            fd = os.open(target, os.O_CREAT | os.O_EXCL | os.O_WRONLY, FILE_MODE)
            os.close(fd)

        try:
            await e.offload(create)
            try:
                await e.vacuum_into(target)
            except BaseException:
                with contextlib.suppress(OSError):
                    target.unlink()
                raise
            if extra is not None:
                await e.offload(
                    lambda: write_private(target.with_name(target.name + ".extra"), extra)
                )
        except OSError as err:
            raise StoreError(f"cannot write the snapshot {str(target)!r}: {err.strerror}") from err
        return str(target)


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
