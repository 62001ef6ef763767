"""SQLite errors: which are transient, and how a driver error becomes wastore's own."""

from __future__ import annotations

import sqlite3
from typing import Final

from ...errors import BackendUnavailableError, CorruptRecordError, DeviceNotFoundError, StoreError

BUSY_CODES: Final = frozenset({sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED})


def is_busy(err: sqlite3.Error) -> bool:
    """Another connection holds a lock this statement needs (transient: retried)."""
    code = getattr(err, "sqlite_errorcode", None)
    if code is not None:
        return (code & 0xFF) in BUSY_CODES
    msg = str(err)
    return "locked" in msg or "busy" in msg


def translate(err: sqlite3.Error, action: str) -> StoreError:
    """Turn a driver error into the library's own (the caller chains it)."""
    code = (getattr(err, "sqlite_errorcode", 0) or 0) & 0xFF
    name = getattr(err, "sqlite_errorname", type(err).__name__)
    if isinstance(err, sqlite3.IntegrityError) and "FOREIGN KEY" in str(err):
        return DeviceNotFoundError(0, "the account was deleted or never created")
    if code in BUSY_CODES:
        return BackendUnavailableError(f"SQLite {action} failed: database is locked ({name})")
    if code in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB):
        return CorruptRecordError(
            f"the SQLite database is damaged ({name}): restore a backup or a snapshot; "
            "`wastore check` tells what is affected"
        )
    if code in (
        sqlite3.SQLITE_IOERR,
        sqlite3.SQLITE_FULL,
        sqlite3.SQLITE_CANTOPEN,
        sqlite3.SQLITE_READONLY,
        sqlite3.SQLITE_PERM,
    ):
        return BackendUnavailableError(f"SQLite {action} failed: {err} ({name})")
    return StoreError(f"SQLite {action} failed: {err} ({name})")
