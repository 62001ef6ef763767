"""SQLite errors: which are transient, and how a driver error becomes wastore's own.

SQLite reports every failed ``write()`` as "disk I/O error" and a file it may
not write as "unable to open database file" or "attempt to write a readonly
database". :func:`translate` says which it is, when the file system can tell:
a read-only file system or file, a permission, a full disk, or the process's
file-size limit (``ulimit -f``, ``RLIMIT_FSIZE``: a write past it fails with
``EFBIG``). A value that is not valid UTF-8 in a text column is a damaged
record: the message names the column, never the text (it could be a secret).
"""

from __future__ import annotations

import errno
import os
import sqlite3
import stat
from pathlib import Path
from typing import Final

from ...errors import (
    BackendUnavailableError,
    CorruptRecordError,
    DeviceNotFoundError,
    StoreError,
)

BUSY_CODES: Final = frozenset({sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED})
DriverError = sqlite3.Error | UnicodeDecodeError
DRIVER_ERRORS: Final = (sqlite3.Error, UnicodeDecodeError)
"""What the driver raises: its own errors, and UnicodeDecodeError when the message of
an error (SQLite's "malformed database schema ...", which quotes the damaged schema
text) is not UTF-8."""
_DAMAGED: Final = "restore a backup or a snapshot; `wastore check` tells what is affected"


def is_busy(err: DriverError) -> bool:
    """Another connection holds a lock this statement needs (transient: retried)."""
    code = getattr(err, "sqlite_errorcode", None)
    if code is not None:
        return (code & 0xFF) in BUSY_CODES
    msg = str(err)
    return "locked" in msg or "busy" in msg


def translate(err: DriverError, action: str, path: Path | None = None) -> StoreError:
    """Turn a driver error into the library's own (the caller chains it).

    Args:
        err: the driver's error.
        action: what failed ("write", "opening ...").
        path: the database file, to tell what an I/O error is.
    """
    if isinstance(err, UnicodeDecodeError):
        return CorruptRecordError(
            f"the SQLite database is damaged (its schema or an error message holds bytes that "
            f"are not UTF-8): {_DAMAGED}"
        )
    code = (getattr(err, "sqlite_errorcode", 0) or 0) & 0xFF
    name = getattr(err, "sqlite_errorname", type(err).__name__)
    text = str(err)
    if isinstance(err, sqlite3.IntegrityError) and "FOREIGN KEY" in text:
        return DeviceNotFoundError(0, "the account was deleted or never created")
    if text.startswith("Could not decode to UTF-8 column"):
        # The driver's message quotes the text, which may be a secret: name the column only.
        column = text.split("'", 2)[1] if text.count("'") >= 2 else "?"
        # The driver's error is chained as the cause and printed with tracebacks.
        err.args = (f"Could not decode to UTF-8 column {column!r} (its text not shown)",)
        return CorruptRecordError(
            f"the text column {column!r} holds bytes that are not UTF-8: the SQLite database is "
            f"damaged; {_DAMAGED}"
        )
    if code in BUSY_CODES:
        return BackendUnavailableError(f"SQLite {action} failed: database is locked ({name})")
    if code in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB):
        return CorruptRecordError(f"the SQLite database is damaged ({name}): {_DAMAGED}")
    if code in (
        sqlite3.SQLITE_IOERR,
        sqlite3.SQLITE_FULL,
        sqlite3.SQLITE_CANTOPEN,
        sqlite3.SQLITE_READONLY,
        sqlite3.SQLITE_PERM,
    ):
        why = diagnose(path) if path is not None else None
        if why is not None:
            return BackendUnavailableError(f"SQLite {action} failed: {why} ({text}, {name})")
        return BackendUnavailableError(f"SQLite {action} failed: {text} ({name})")
    return StoreError(f"SQLite {action} failed: {text} ({name})")


def diagnose(path: Path) -> str | None:
    """Why SQLite may fail to write the database at ``path`` (None when nothing is found).

    Looks at what SQLite cannot report: a read-only file system, a file or folder
    this process may not write, the file-size limit, a full disk.
    """
    why = access_problem(path)
    if why is not None:
        return why
    limit = file_size_limit()
    if limit is not None:
        sizes = [_size(p) for p in (path, Path(f"{path}-wal"))]
        if max(sizes) + 65536 >= limit:
            return (
                f"the process's file-size limit (ulimit -f, RLIMIT_FSIZE: {limit:,} bytes) "
                f"stops the database from growing (database {sizes[0]:,} bytes, WAL "
                f"{sizes[1]:,} bytes): raise the limit"
            )
    folder = path.parent if str(path.parent) else Path(".")
    try:
        vfs = os.statvfs(folder)
    except OSError:
        return None
    if vfs.f_bavail * vfs.f_frsize < 1 << 20:
        return f"the disk holding {str(folder)!r} is full"
    return None


def access_problem(path: Path) -> str | None:
    """Why this process cannot write the database at ``path`` and the files SQLite
    keeps beside it: a read-only file system, or a permission (None: it can)."""
    folder = path.parent if str(path.parent) else Path(".")
    try:
        if os.statvfs(folder).f_flag & os.ST_RDONLY:
            return f"{str(folder)!r} is on a read-only file system"
    except OSError:
        pass
    for target in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        problem = _unwritable(target)
        if problem is not None:
            return problem
    beside = Path(f"{path}-wal").exists() and Path(f"{path}-shm").exists()
    if path.exists() and not beside and not os.access(folder, os.W_OK | os.X_OK):
        return (
            f"permission denied: the folder {str(folder)!r} is not writable, and SQLite "
            "creates the -wal and -shm files beside the database there"
        )
    return None


def _unwritable(target: Path) -> str | None:
    try:
        fd = os.open(target, os.O_RDWR | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        return None
    except OSError as err:
        if err.errno == errno.EROFS:
            return f"{str(target)!r} is on a read-only file system"
        if err.errno in (errno.EACCES, errno.EPERM):
            try:
                mode = f"mode {stat.S_IMODE(target.stat().st_mode):04o}, "
            except OSError:
                mode = ""
            return (
                f"permission denied: this process may not write {str(target)!r} ({mode}"
                f"uid {os.geteuid()} runs it)"
            )
        return f"{str(target)!r} cannot be opened for writing: {err.strerror}"
    os.close(fd)
    return None


def file_size_limit() -> int | None:
    """The soft ``RLIMIT_FSIZE`` of this process in bytes, None when unlimited."""
    try:
        import resource
    except ImportError:  # not on this platform
        return None
    soft, _ = resource.getrlimit(resource.RLIMIT_FSIZE)
    return None if soft == resource.RLIM_INFINITY else int(soft)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0
