"""A MemoryStore's data, and the undo journal that makes transactions of it.

An account is a set of plain dicts (:class:`_Account`). A write inside a
transaction goes through :func:`_set` or :func:`_del`, which record the old
value in the transaction's journal; :func:`_rollback` puts the old values
back, newest first, down to a mark (a savepoint's, or the start). A debug
snapshot (:class:`MemorySnapshot`) is a deep copy of one account.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from ...device import Device
from ...values import AppStateSyncKey, DeviceListRecord, HashState, LidPnMapping, MsgSecret, TcToken
from .. import _txn

K = TypeVar("K")
V = TypeVar("V")
_MISSING: Any = object()


@dataclass(repr=False)
class _Account:
    device: Device | None = None
    identities: dict[str, bytes] = field(default_factory=dict)
    sessions: dict[str, bytes] = field(default_factory=dict)
    prekeys: dict[int, tuple[bytes, bool]] = field(default_factory=dict)
    signed_prekeys: dict[int, bytes] = field(default_factory=dict)
    sender_keys: dict[str, bytes] = field(default_factory=dict)
    sync_keys: dict[bytes, AppStateSyncKey] = field(default_factory=dict)
    versions: dict[str, HashState] = field(default_factory=dict)
    macs: dict[tuple[str, bytes], tuple[int, bytes]] = field(default_factory=dict)
    sender_key_devices: dict[tuple[str, str], bool] = field(default_factory=dict)
    lid_map: dict[str, LidPnMapping] = field(default_factory=dict)
    base_keys: dict[tuple[str, str], bytes] = field(default_factory=dict)
    device_lists: dict[str, DeviceListRecord] = field(default_factory=dict)
    tc_tokens: dict[str, TcToken] = field(default_factory=dict)
    sent_messages: dict[tuple[str, str], tuple[bytes, int]] = field(default_factory=dict)
    msg_secrets: dict[tuple[str, str, str], MsgSecret] = field(default_factory=dict)
    pending_inbound: dict[tuple[str, str, str], tuple[bytes, int]] = field(default_factory=dict)
    group_metadata: dict[str, bytes] = field(default_factory=dict)
    lease: tuple[str, str, float] | None = None  # (token, holder, expires_at monotonic)


_Undo = tuple[dict[Any, Any], Any, Any]  # (dict, key, old value or _MISSING)


def _journal(st: _txn.TxnState[list[_Undo]] | None) -> list[_Undo] | None:
    """The undo journal of the running task's transaction, if it is inside one."""
    return None if st is None else st.data


def _set(journal: list[_Undo] | None, d: dict[K, V], key: K, value: V) -> None:
    if journal is not None:
        journal.append((d, key, d.get(key, _MISSING)))
    d[key] = value


def _del(journal: list[_Undo] | None, d: dict[K, V], key: K) -> bool:
    old = d.pop(key, _MISSING)
    if old is _MISSING:
        return False
    if journal is not None:
        journal.append((d, key, old))
    return True


def _del_where(journal: list[_Undo] | None, d: dict[K, V], pred: Callable[[K, V], bool]) -> int:
    doomed = [k for k, val in d.items() if pred(k, val)]
    for k in doomed:
        _del(journal, d, k)
    return len(doomed)


@dataclass
class MemorySnapshot:
    """A debug snapshot kept by a MemoryStore: a deep copy of one account (its repr
    names the snapshot and never shows the account's keys)."""

    name: str
    location: str
    account: _Account = field(repr=False)
    extra: bytes | None = field(repr=False)


def _rollback(journal: list[_Undo], mark: int) -> None:
    while len(journal) > mark:
        d, key, old = journal.pop()
        if old is _MISSING:
            d.pop(key, None)
        else:
            d[key] = old
