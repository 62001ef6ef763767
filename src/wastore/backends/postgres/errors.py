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

import contextlib
import re
from typing import Any, Final, NoReturn

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
    text = str(scrub(err)) or type(err).__name__
    text = text if len(text) <= 300 else text[:300] + "…"
    return f"{type(err).__name__}: {text}"


# What a driver error may quote of a row: the server's "Failing row contains (...)"
# and "Key (...)=(...)" details, a parameter's value in its context (with the server's
# log_parameter_max_length_on_error set), and asyncpg's own "invalid input for query
# argument $n: <the value's repr> (...)".
_ROW: Final = re.compile(r"(Failing row contains |\)=)\(.*\)", re.S)
_PARAM: Final = re.compile(r"(parameter \$\d+ = ).*?(?=\n|$)", re.S)
_ARGUMENT: Final = re.compile(r"(query argument \$\d+[^:]*: ).*?( \(|$)", re.S)
REDACTED: Final = "(values not shown: the row may hold keys)"


def scrub(err: BaseException) -> BaseException:
    """Remove every value of a row from a driver error and from the errors it chains,
    in place (they are chained as the cause of wastore's error, and printed with it).
    Returns ``err``."""
    seen: set[int] = set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        for attr in ("detail", "context", "hint", "internal_query"):
            value = getattr(current, attr, None)
            if isinstance(value, str):
                clean = _scrub_text(value)
                if clean != value:
                    with contextlib.suppress(AttributeError):
                        setattr(current, attr, clean)
        if current.args and isinstance(current.args[0], str):
            clean = _scrub_text(current.args[0])
            if clean != current.args[0]:
                current.args = (clean, *current.args[1:])
        current = current.__cause__ or current.__context__
    return err


def _scrub_text(text: str) -> str:
    text = _ROW.sub(lambda m: m.group(1) + REDACTED, text)
    text = _PARAM.sub(lambda m: m.group(1) + "(value not shown)", text)
    return _ARGUMENT.sub(lambda m: m.group(1) + "(value not shown)" + m.group(2), text)


def translate(err: BaseException, action: str, where: str) -> StoreError:
    """A driver error as the library's own (the caller chains it with ``from``); the
    driver error is scrubbed of row values first (:func:`scrub`)."""
    if isinstance(err, StoreError):
        return err
    scrub(err)
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
    """``url`` without its passwords (see :func:`~wastore.backends.options.redact_url`)."""
    return redact_url(url)
