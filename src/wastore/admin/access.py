"""How administration reaches a store: through public API and the documented hooks
of :class:`~wastore.backends.sql.store.SqlStore` only."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..backends.sql.store import SqlStore
from ..contract import PortableContainer
from ..errors import ConfigError, CorruptRecordError
from ..values import AccountDump
from .reports import Lease


def sql_store(container: object) -> SqlStore:
    if isinstance(container, SqlStore):
        return container
    raise ConfigError(
        f"this command needs an SQL store (sqlite:// or postgresql://), not "
        f"{type(container).__name__}"
    )


def portable_container(container: object) -> PortableContainer:
    if isinstance(container, PortableContainer):
        return container
    raise ConfigError(
        f"{type(container).__name__} cannot export or import whole accounts "
        "(it has no export_account/import_account)"
    )


class UnreadableRows(CorruptRecordError):
    def __init__(self, device_id: int, detail: str) -> None:
        super().__init__(f"rows of account {device_id} cannot be read: {detail}")
        self.detail = detail


async def export(container: object, device_id: int) -> AccountDump:
    """``export_account``, with the account named when a row cannot be read."""
    try:
        return await portable_container(container).export_account(device_id)
    except CorruptRecordError as err:
        raise UnreadableRows(device_id, str(err)) from None


def plain(value: Any) -> Any:
    """A column value as JSON can carry it (damaged rows may hold anything)."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, bytes):
        return "0x" + value.hex()
    return repr(value)


def lease_from_row(row: Sequence[Any]) -> Lease:
    expires = None if row[4] is None else float(row[4])
    return Lease(int(row[0]), str(row[1]), str(row[2]), int(row[3]), expires)


def as_int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def opt_str(value: Any) -> str | None:
    return None if value is None else str(value)
