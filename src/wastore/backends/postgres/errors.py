"""PostgreSQL errors: which mean "the server cannot be reached", what may run again,
and how a driver error becomes wastore's own.

"The server cannot be reached" (refused/reset connections,
``CannotConnectNowError`` while it starts or stops, a connection that died)
is transient: retried with backoff (:data:`wastore.backends.retry.POSTGRES_UNREACHABLE`)
within ``retry_timeout``. A statement whose connection died after it was sent
has an unknown outcome: it runs again only if running it twice is harmless
(:func:`retry_after_send`), and never inside a transaction.
"""

from __future__ import annotations

from typing import Any, Final, NoReturn
from urllib.parse import parse_qsl, urlencode, urlsplit

import asyncpg

from ...errors import (
    BackendUnavailableError,
    ConfigError,
    DeviceNotFoundError,
    SchemaError,
    StoreError,
)
from ..options import redact_url

Conn = Any  # asyncpg.Connection (or a pool proxy of one); asyncpg has no type stubs

LOST_ERRORS: Final = (
    OSError,
    asyncpg.PostgresConnectionError,  # class 08, incl. "closed in the middle of operation"
    asyncpg.CannotConnectNowError,  # starting up, shutting down, in recovery
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.TooManyConnectionsError,
)


def unsent(err: BaseException) -> bool:
    """The statement was never sent: the connection was already closed, or the server
    had just ended the session (a FATAL error read while the connection was idle, e.g.
    ``pg_terminate_backend``, before the socket's end was seen)."""
    if isinstance(err, asyncpg.InterfaceError):
        return "connection is closed" in str(err)
    return isinstance(err, asyncpg.InternalClientError) and "cannot switch to state" in str(err)


def lost(err: BaseException) -> bool:
    """The server is unreachable or the connection died (transient)."""
    return isinstance(err, LOST_ERRORS) or unsent(err)


def connect_transient(err: BaseException) -> bool:
    return lost(err) or isinstance(err, TimeoutError)


def retry_after_send(err: BaseException, idempotent: bool) -> bool:
    """Whether a statement that failed with ``err`` outside a transaction may run again."""
    if unsent(err) or isinstance(err, asyncpg.TransactionRollbackError):
        return True  # never ran, or rolled back whole (deadlock, serialization)
    return idempotent and lost(err)


def connection_ok(conn: Conn, err: BaseException) -> bool:
    """After ``err``, can ``conn`` go back to the pool? (Not after a cancellation or a
    timeout: the connection may still be busy with the statement.)"""
    return (
        isinstance(err, asyncpg.PostgresError | StoreError)
        and not lost(err)
        and not conn.is_closed()
        and not conn.is_in_transaction()
    )


def reraise(err: BaseException, action: str, where: str) -> NoReturn:
    """Raise ``err`` as a wastore error (chained), or as it is if it is one already."""
    if isinstance(err, StoreError) or not isinstance(err, Exception):
        raise err
    raise translate(err, action, where) from err


def message(err: BaseException) -> str:
    text = str(err) or type(err).__name__
    text = text if len(text) <= 300 else text[:300] + "…"
    return f"{type(err).__name__}: {text}"


def translate(err: BaseException, action: str, where: str) -> StoreError:
    """A driver error as the library's own (the caller chains it with ``from``)."""
    if isinstance(err, StoreError):
        return err
    if isinstance(err, asyncpg.ForeignKeyViolationError):
        return DeviceNotFoundError(0, "the account was deleted or never created")
    if connect_transient(err):
        return BackendUnavailableError(
            f"PostgreSQL {action} failed: the connection to {where} could not be made or was "
            f"lost ({message(err)})"
        )
    if isinstance(err, asyncpg.QueryCanceledError):
        return BackendUnavailableError(
            f"PostgreSQL {action} was cancelled at {where} (statement_timeout, or "
            f"pg_cancel_backend): {message(err)}"
        )
    if isinstance(err, asyncpg.TransactionRollbackError):
        return BackendUnavailableError(
            f"PostgreSQL {action} conflicted with a concurrent transaction ({message(err)}); "
            "run the transaction again"
        )
    if isinstance(err, asyncpg.InvalidAuthorizationSpecificationError):
        return ConfigError(f"PostgreSQL refused the login to {where}: {message(err)}")
    if isinstance(err, asyncpg.InvalidCatalogNameError):
        return ConfigError(f"{where}: {message(err)}; create the database first (createdb)")
    if isinstance(err, asyncpg.InsufficientPrivilegeError):
        return ConfigError(
            f"the PostgreSQL role lacks a privilege at {where}: {message(err)}; grant it the "
            "rights on the wastore tables (or on the schema, to create them)"
        )
    if isinstance(err, asyncpg.UndefinedTableError | asyncpg.UndefinedColumnError):
        return SchemaError(
            f"the wastore tables at {where} are missing or different ({message(err)}): "
            "they were changed outside wastore, or another table prefix is in use"
        )
    if isinstance(err, asyncpg.InsufficientResourcesError):
        hint = ""
        if "shared memory" in str(err):
            hint = (
                "; the server's lock table is full: raise its max_locks_per_transaction "
                "(wastore holds one advisory lock per container, not one per account)"
            )
        return BackendUnavailableError(f"PostgreSQL {action} failed: {message(err)}{hint}")
    return StoreError(f"PostgreSQL {action} failed: {message(err)}")


def display_url(url: str) -> str:
    """``url`` without its password (also a ``password=`` query parameter)."""
    shown = redact_url(url)
    parts = urlsplit(shown)
    if parts.query and "password" in parts.query:
        query = [(k, "***" if k == "password" else x) for k, x in parse_qsl(parts.query, True)]
        shown = parts._replace(query=urlencode(query, safe="*")).geturl()
    return shown
