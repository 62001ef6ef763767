"""What every command shares: exit codes, error reporting, JSON and text helpers.

Nothing here needs more than click and the standard library: ``wastore`` works
right after ``pip install wastore``. Tables and progress bars are in
:mod:`._output` (rich when it is installed, plain text otherwise).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import sys
import traceback
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from enum import IntEnum
from pathlib import Path
from typing import Any, NoReturn

import click

from ..admin import NotFoundError
from ..backends._common import write_private as backend_write_private
from ..backends.options import url_secrets
from ..errors import (
    ConfigError,
    CorruptRecordError,
    DeviceNotFoundError,
    SchemaError,
    StoreError,
    ValidationError,
)
from ..registry import redact_url


class Exit(IntEnum):
    """The exit codes of ``wastore`` (documented in ``docs/cli.md`` and ``wastore --help``)."""

    OK = 0
    PROBLEMS = 1
    """Problems found: ``check`` not clean, accounts not copied or not verified,
    an exported or shown account with damaged rows, a corrupt record."""
    USAGE = 2
    """Bad command line, URL or option (also: a driver that is not installed)."""
    STORE = 3
    """The store failed: unreachable, locked, account in use, I/O error."""
    REFUSED = 4
    """Input refused, nothing written: an invalid, damaged or too new account file,
    an account that is already there (use --replace), an output file that exists
    (use --force)."""
    NOT_FOUND = 5
    """No such database, account or file."""
    SCHEMA = 6
    """The schema needs ``wastore migrate``, or is newer than this wastore."""
    INTERNAL = 70
    """A bug in wastore: please report it with the ``--debug`` output."""
    INTERRUPTED = 130


EXIT_CODES_HELP = (
    "Exit codes: 0 ok; 1 problems found (check, copy, damaged rows); 2 usage error "
    "(bad command line, URL or option); 3 store error (unreachable, locked, in use); "
    "4 input refused, nothing written (invalid or tampered file, account exists: "
    "--replace, output exists: --force); 5 no such database, account or file; "
    "6 schema needs `wastore migrate` or is too new; 70 internal error; 130 interrupted."
)


class CliError(Exception):
    """An error the command reports itself, with its exit code."""

    def __init__(self, code: Exit, message: str) -> None:
        super().__init__(message)
        self.code = code


class _State:
    debug = False
    secrets: set[str] = set()
    """Passwords given on the command line (at least 4 characters: shorter ones would
    garble every message, and the library redacts URLs itself anyway)."""


state = _State()


def store_url(text: str) -> str:
    """A URL from the command line: a bare path means an SQLite file. Its password is
    remembered so that no message ever shows it."""
    url = text if "://" in text else "sqlite:///" + text
    state.secrets.update(s for s in url_secrets(text) if len(s) >= 4)
    return url


def shown(url: str) -> str:
    """A URL as it may be printed (password replaced by ``***``)."""
    return redact_url(url)


def scrub(message: str) -> str:
    """One line, without any password given on the command line."""
    for secret in state.secrets:
        message = message.replace(secret, "***")
    return " ".join(message.splitlines())


# -- running a command -------------------------------------------------------------


def classify(err: BaseException) -> tuple[Exit, str]:
    """The exit code and one-line message for an error."""
    if isinstance(err, CliError):
        return err.code, str(err)
    if isinstance(err, DeviceNotFoundError | NotFoundError):
        return Exit.NOT_FOUND, str(err)
    if isinstance(err, ValidationError):
        return Exit.REFUSED, str(err)
    if isinstance(err, SchemaError):
        return Exit.SCHEMA, str(err)
    if isinstance(err, ConfigError):
        return Exit.USAGE, str(err)
    if isinstance(err, CorruptRecordError):
        return Exit.PROBLEMS, f"{err} (run `wastore check` for a full report)"
    if isinstance(err, StoreError):
        return Exit.STORE, str(err)
    if isinstance(err, FileNotFoundError):
        return Exit.NOT_FOUND, f"{err.filename}: no such file"
    if isinstance(err, IsADirectoryError | NotADirectoryError | PermissionError):
        return Exit.REFUSED, f"{err.filename}: {err.strerror}"
    if isinstance(err, OSError):
        where = f"{err.filename}: " if err.filename else ""
        return Exit.STORE, f"{where}{err.strerror or err}"
    return (
        Exit.INTERNAL,
        f"internal error: {type(err).__name__}: {err} "
        "(please report it with the output of --debug)",
    )


def error(message: str) -> None:
    """Print ``wastore: error: message`` on stderr, on one line."""
    _to_stderr(f"wastore: error: {scrub(message)}")


def warn(message: str) -> None:
    """Print ``wastore: warning: message`` on stderr, on one line."""
    _to_stderr(f"wastore: warning: {scrub(message)}")


def _to_stderr(line: str) -> None:
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


def run(body: Callable[[], Coroutine[Any, Any, int]], *, debug: bool) -> NoReturn:
    """Run a command's async body; turn any error into one line and an exit code."""
    debug = debug or state.debug or os.environ.get("WASTORE_DEBUG", "") not in ("", "0")
    if debug:
        logging.basicConfig(
            level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s"
        )
    else:
        # The library's warnings (a database file's mode tightened, ...) as our own lines.
        handler = logging.StreamHandler(sys.stderr)
        handler.setLevel(logging.WARNING)
        handler.setFormatter(_WarningLine())
        logging.getLogger("wastore").addHandler(handler)
    code: int
    try:
        code = asyncio.run(body())
    except KeyboardInterrupt:
        error("interrupted")
        code = Exit.INTERRUPTED
    except BrokenPipeError:
        # The reader went away (`wastore devices URL | head`): stop quietly, as the
        # shell's own tools do, and keep Python from complaining at exit.
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = Exit.OK
    except Exception as err:
        code, message = classify(err)
        if debug:
            sys.stderr.write(scrub_block("".join(traceback.format_exception(err))))
        error(message)
    raise click.exceptions.Exit(int(code))


class _WarningLine(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return f"wastore: warning: {scrub(record.getMessage())}"


def scrub_block(text: str) -> str:
    for secret in state.secrets:
        text = text.replace(secret, "***")
    return text


# -- output -------------------------------------------------------------------


def emit_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def clean(value: object) -> str:
    """Text for a terminal: control characters (from names a peer chose) escaped."""
    text = "" if value is None else str(value)
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def cell(value: object, empty: str = "-") -> str:
    """A table cell: ``yes``/``no`` for booleans, ``empty`` for nothing, control characters
    escaped (tables never read their cells as markup)."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    text = clean(value)
    return text if text else empty


def when(ms: object) -> str:
    """A ``*_ms`` timestamp as UTC time (the headers say UTC), or ``never``."""
    if not ms:
        return "never"
    if not isinstance(ms, int | float) or isinstance(ms, bool):
        return clean(ms)  # a damaged row: show what is there
    return when_s(ms / 1000)


def when_s(seconds: float) -> str:
    try:
        return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S")
    except (ValueError, OverflowError, OSError):  # out of the calendar's range
        return f"{seconds:g} s"


# -- files ----------------------------------------------------------------------


def write_private(path: Path, data: bytes, *, force: bool) -> None:
    """Write ``data`` to ``path`` atomically (temporary file, fsync, rename) with mode 0600.

    An existing file is replaced only with ``force``.
    """
    if path.is_dir():
        raise CliError(Exit.REFUSED, f"{path} is a directory: name the file to write")
    if path.exists() and not force:
        raise CliError(Exit.REFUSED, f"{path} exists: use --force to overwrite it")
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise CliError(Exit.NOT_FOUND, f"{folder}: no such folder")
    backend_write_private(path, data)
