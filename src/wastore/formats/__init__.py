"""Accounts from other WhatsApp stores, and back out to them.

Each source format has a reader module here — ``baileys`` (a
``useMultiFileAuthState`` folder), ``pyaileys`` (its ``MultiFileAuthState``
folder), ``pywhats`` (its session files), ``yowsup`` (its axolotl database),
``whatsmeow`` (its ``sqlstore`` database) — with one function::

    def read(source: Path, *, jid: str | None = None) -> list[AccountDump]

that reads every account the source holds (``jid`` picks one where a source
holds several) into wastore's typed rows with
:class:`~wastore.portable.AccountBuilder`, and raises
:class:`~wastore.ValidationError` naming the file or row on anything it cannot
read, before anything is written. A format that can be written back has
``write(dump, folder)`` as well. ``wastore`` is the portable account file
(:mod:`wastore.portable`).

:func:`import_from` is the library call behind ``wastore import URL SOURCE
--from FORMAT``; :func:`export_to` is behind ``wastore export URL DEVICE --to
FORMAT -o FOLDER``. Adding a format is adding its module and a line to
:data:`FORMATS`.
"""

from __future__ import annotations

import asyncio
import importlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Protocol, cast

from .. import portable
from ..contract import Container, PortableContainer
from ..errors import ConfigError, ValidationError
from ..portable import AccountDump

__all__ = [
    "FORMATS",
    "WRITABLE",
    "ImportResult",
    "export_to",
    "import_from",
    "read",
]

FORMATS: Final[dict[str, str]] = {
    "wastore": "the portable account file written by `wastore export`",
    "baileys": "a Baileys useMultiFileAuthState folder",
    "pyaileys": "a pyaileys MultiFileAuthState folder",
    "pywhats": "a pywhats session (its device file and .signal.db)",
    "yowsup": "a yowsup axolotl database",
    "whatsmeow": "a whatsmeow sqlstore database (an SQLite file or a postgresql:// URL)",
}
"""The source formats :func:`import_from` reads, with what each names."""

WRITABLE: Final = ("baileys",)
"""The formats :func:`export_to` writes."""


class _Reader(Protocol):
    def __call__(self, source: Path, *, jid: str | None = None) -> list[AccountDump]: ...


@dataclass(frozen=True)
class ImportResult:
    """One account read from a source: where it went and how many rows of each kind."""

    device_id: int | None
    """The new (or replaced) account's id; None for a dry run."""
    pn: str | None
    lid: str | None
    counts: dict[str, int] = field(default_factory=dict)


def _module(fmt: str) -> Any:
    if fmt not in FORMATS or fmt == "wastore":
        raise ConfigError(f"unknown format {fmt!r}; known: {', '.join(FORMATS)}")
    try:
        return importlib.import_module(f"{__name__}.{fmt}")
    except ImportError as err:
        raise ConfigError(
            f"the {fmt} format needs an optional dependency that is not installed ({err}): "
            "pip install 'wastore[formats]'"
        ) from err


def _read_portable(source: Path, *, jid: str | None = None) -> list[AccountDump]:
    return [portable.decode(portable.read_file(source))]


def reader(fmt: str) -> _Reader:
    """The ``read`` function of ``fmt``."""
    if fmt == "wastore":
        return _read_portable
    return cast(_Reader, _module(fmt).read)


def writer(fmt: str) -> Callable[[AccountDump, Path], None]:
    """The ``write`` function of ``fmt`` (one of :data:`WRITABLE`)."""
    if fmt not in WRITABLE:
        raise ConfigError(f"cannot export to {fmt!r}; writable formats: {', '.join(WRITABLE)}")
    return cast(Callable[[AccountDump, Path], None], _module(fmt).write)


def read(source: str | os.PathLike[str], fmt: str, *, jid: str | None = None) -> list[AccountDump]:
    """Every account ``source`` holds in format ``fmt`` (``jid``: only that one).

    Raises:
        ValidationError: the source cannot be read (the message names the file or row).
        ConfigError: an unknown format, or one whose optional dependency is missing.
    """
    text = os.fspath(source)
    # A database URL (a whatsmeow PostgreSQL source) is passed on as it is.
    dumps = reader(fmt)(text if "://" in text else Path(text), jid=jid)  # type: ignore[arg-type]
    if not dumps:
        what = f" for {jid}" if jid else ""
        raise ValidationError(f"{source}: no account{what} found in this {fmt} source")
    return dumps


def _summary(dump: AccountDump, device_id: int | None) -> ImportResult:
    counts = {t: n for t, n in dump.count().items() if t != "device"}
    return ImportResult(
        device_id=device_id, pn=dump.device.get("pn"), lid=dump.device.get("lid"), counts=counts
    )


async def import_from(
    container: Container,
    source: str | os.PathLike[str],
    fmt: str,
    *,
    jid: str | None = None,
    replace: bool = False,
    dry_run: bool = False,
) -> list[ImportResult]:
    """Read the accounts of ``source`` and write each into ``container`` in one transaction.

    Everything is read and checked first (on a worker thread); nothing is written
    if any account cannot be read. An account that is already in the store (same
    identity key) is refused unless ``replace``, which replaces it under its device
    id; another account with its phone number or LID is refused either way.

    Raises:
        ValidationError: unreadable source, an account already there without
            ``replace``, or another account with its phone number or LID; nothing
            was written.
        ConfigError: unknown format, or a container that cannot import accounts.
    """
    if not isinstance(container, PortableContainer):
        raise ConfigError(f"{type(container).__name__} cannot import accounts")
    dumps = await asyncio.to_thread(read, source, fmt, jid=jid)
    if dry_run:
        return [_summary(d, None) for d in dumps]
    results = []
    for dump in dumps:
        device_id = await container.import_account(dump, replace=replace)
        results.append(_summary(dump, device_id))
    return results


async def export_to(
    container: Container, device_id: int, fmt: str, folder: str | os.PathLike[str]
) -> Path:
    """Write account ``device_id`` as a ``fmt`` source (e.g. a Baileys folder) into ``folder``.

    Raises:
        ConfigError: a format that cannot be written, or a container that cannot export.
        DeviceNotFoundError: no such account.
    """
    write = writer(fmt)
    if not isinstance(container, PortableContainer):
        raise ConfigError(f"{type(container).__name__} cannot export accounts")
    dump = await container.export_account(device_id)
    target = Path(folder)
    await asyncio.to_thread(write, dump, target)
    return target
