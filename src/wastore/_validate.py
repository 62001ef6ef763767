"""Argument checks shared by the value types and every backend.

The checks run before any storage is touched, so a rejected call writes
nothing. They are written for the hot path (one type test and one length test
per argument) and their messages never include the offending bytes: a wrong
value may be key material.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Final

from .errors import ValidationError

MAX_ADDRESS_LEN: Final = 512
"""Longest signal / sender-key / JID address accepted (characters)."""
MAX_NAME_LEN: Final = 64
"""Longest app-state collection name (characters)."""
MAX_TEXT_LEN: Final = 1024
"""Longest free-text field (push name, props hash, learning source, ...)."""
MAX_RECORD_LEN: Final = 16 * 1024 * 1024
"""Largest opaque record (bytes)."""
MAX_PREKEY_ID: Final = (1 << 24) - 1
MAX_U32: Final = (1 << 32) - 1
MAX_I64: Final = (1 << 63) - 1
MIN_I64: Final = -(1 << 63)
MAX_BATCH: Final = 1_000_000


def _type_name(value: object) -> str:
    return type(value).__name__


def address(value: object, what: str = "address") -> str:
    if type(value) is not str:
        raise ValidationError(f"{what} must be a str, not {_type_name(value)}")
    n = len(value)
    if n == 0 or n > MAX_ADDRESS_LEN:
        raise ValidationError(f"{what} must be 1..{MAX_ADDRESS_LEN} characters long, got {n}")
    if "\x00" in value:
        raise ValidationError(f"{what} must not contain NUL characters")
    if not value.isascii():
        _check_utf8(value, what)
    return value


def _check_utf8(value: str, what: str) -> None:
    """Reject strings no database can store (lone surrogates are not UTF-8)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValidationError(f"{what} is not valid Unicode text (lone surrogate)") from None


def text(value: object, what: str, *, max_len: int = MAX_TEXT_LEN, allow_empty: bool = True) -> str:
    if type(value) is not str:
        raise ValidationError(f"{what} must be a str, not {_type_name(value)}")
    n = len(value)
    if n > max_len or (n == 0 and not allow_empty):
        lo = 0 if allow_empty else 1
        raise ValidationError(f"{what} must be {lo}..{max_len} characters long, got {n}")
    if "\x00" in value:
        raise ValidationError(f"{what} must not contain NUL characters")
    if not value.isascii():
        _check_utf8(value, what)
    return value


def opt_text(value: object, what: str, *, max_len: int = MAX_TEXT_LEN) -> str | None:
    return None if value is None else text(value, what, max_len=max_len)


def collection_name(value: object) -> str:
    return text(value, "collection name", max_len=MAX_NAME_LEN, allow_empty=False)


def blob(
    value: object, what: str, *, max_len: int = MAX_RECORD_LEN, allow_empty: bool = False
) -> bytes:
    """An opaque byte string (bytes or bytearray; returned as bytes)."""
    if type(value) is not bytes:
        if isinstance(value, bytearray | memoryview):
            value = bytes(value)
        else:
            raise ValidationError(f"{what} must be bytes, not {_type_name(value)}")
    assert isinstance(value, bytes)
    n = len(value)
    if n > max_len or (n == 0 and not allow_empty):
        lo = 0 if allow_empty else 1
        raise ValidationError(f"{what} must be {lo}..{max_len} bytes long, got {n}")
    return value


def opt_blob(value: object, what: str, *, max_len: int = MAX_RECORD_LEN) -> bytes | None:
    return None if value is None else blob(value, what, max_len=max_len, allow_empty=True)


def fixed(value: object, what: str, length: int) -> bytes:
    """A byte string of exactly ``length`` bytes (keys, MACs, signatures)."""
    if type(value) is not bytes:
        if isinstance(value, bytearray | memoryview):
            value = bytes(value)
        else:
            raise ValidationError(f"{what} must be bytes, not {_type_name(value)}")
    assert isinstance(value, bytes)
    if len(value) != length:
        raise ValidationError(f"{what} must be exactly {length} bytes, got {len(value)}")
    return value


def integer(value: object, what: str, lo: int = MIN_I64, hi: int = MAX_I64) -> int:
    if type(value) is not int:  # bool is rejected on purpose
        raise ValidationError(f"{what} must be an int, not {_type_name(value)}")
    if value < lo or value > hi:
        raise ValidationError(f"{what} must be in [{lo}, {hi}], got {value}")
    return value


def opt_integer(value: object, what: str, lo: int = MIN_I64, hi: int = MAX_I64) -> int | None:
    return None if value is None else integer(value, what, lo, hi)


def boolean(value: object, what: str) -> bool:
    if type(value) is not bool:
        raise ValidationError(f"{what} must be a bool, not {_type_name(value)}")
    return value


def prekey_id(value: object, what: str = "pre-key id") -> int:
    return integer(value, what, 0, MAX_PREKEY_ID)


def u32(value: object, what: str) -> int:
    return integer(value, what, 0, MAX_U32)


def timestamp(value: object, what: str) -> int:
    return integer(value, what, 0, MAX_I64)


def sequence(value: object, what: str) -> Sequence[Any]:
    """A list or tuple of items (a lone str/bytes is rejected, a generator is materialised)."""
    if isinstance(value, list | tuple):
        seq: Sequence[Any] = value
    elif isinstance(value, str | bytes | bytearray | dict) or not isinstance(value, Iterable):
        raise ValidationError(f"{what} must be a list or tuple, not {_type_name(value)}")
    else:
        seq = list(value)
    if len(seq) > MAX_BATCH:
        raise ValidationError(f"{what} has {len(seq)} items; at most {MAX_BATCH} per call")
    return seq


def pair(value: object, what: str) -> tuple[Any, Any]:
    if not isinstance(value, tuple | list) or len(value) != 2:
        raise ValidationError(f"each item of {what} must be a pair, not {_type_name(value)}")
    return value[0], value[1]


# The batch checks below run over thousands of items (a SignalCache flush, a group
# fan-out): each has an inline fast path for the valid case, and falls back to the
# single-value check — which raises with the precise message, or converts a
# bytearray — for anything else. Same result either way, a third of the time.


def address_list(value: object, what: str = "addresses") -> list[str]:
    item_what = what[:-2] if what.endswith("es") else what
    out = []
    for a in sequence(value, what):
        if not (
            type(a) is str and 0 < len(a) <= MAX_ADDRESS_LEN and a.isascii() and "\x00" not in a
        ):
            a = address(a, item_what)
        out.append(a)
    return out


def address_records(value: object, what: str) -> dict[str, bytes]:
    """Validate ``[(address, record)]``; a later duplicate address wins (like sequential puts)."""
    out: dict[str, bytes] = {}
    for item in sequence(value, what):
        if type(item) is tuple and len(item) == 2:
            a, r = item
        else:
            a, r = pair(item, what)
        if not (
            type(a) is str and 0 < len(a) <= MAX_ADDRESS_LEN and a.isascii() and "\x00" not in a
        ):
            a = address(a)
        if type(r) is not bytes or not 0 < len(r) <= MAX_RECORD_LEN:
            r = blob(r, "record")
        out[a] = r
    return out


def key_statuses(value: object) -> dict[str, bool]:
    """Validate the ``[(device jid, has_key)]`` of ``set_sender_key_status``; a later
    duplicate device wins (like sequential calls)."""
    checked: dict[str, bool] = {}
    for item in sequence(value, "items"):
        d, has = pair(item, "items")
        checked[address(d, "device jid")] = boolean(has, "has_key")
    return checked


def address_keys(value: object, what: str) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    for item in sequence(value, what):
        if type(item) is tuple and len(item) == 2:
            a, k = item
        else:
            a, k = pair(item, what)
        if not (
            type(a) is str and 0 < len(a) <= MAX_ADDRESS_LEN and a.isascii() and "\x00" not in a
        ):
            a = address(a)
        if type(k) is not bytes or len(k) != 32:
            k = fixed(k, "identity key", 32)
        out[a] = k
    return out


def prekey_ids(value: object, what: str = "pre-key ids") -> list[int]:
    return [
        i if type(i) is int and 0 <= i <= MAX_PREKEY_ID else prekey_id(i)
        for i in sequence(value, what)
    ]


def prekey_records(value: object, what: str = "pre-keys") -> dict[int, bytes]:
    out: dict[int, bytes] = {}
    for item in sequence(value, what):
        if type(item) is tuple and len(item) == 2:
            i, r = item
        else:
            i, r = pair(item, what)
        if type(i) is not int or not 0 <= i <= MAX_PREKEY_ID:
            i = prekey_id(i)
        if type(r) is not bytes or not 0 < len(r) <= MAX_RECORD_LEN:
            r = blob(r, "pre-key record")
        out[i] = r
    return out


def mac(value: object, what: str) -> bytes:
    return fixed(value, what, 32)


def mac_list(value: object, what: str = "index MACs") -> list[bytes]:
    return [
        m if type(m) is bytes and len(m) == 32 else mac(m, "index MAC")
        for m in sequence(value, what)
    ]


def message_id(value: object, what: str = "message id") -> str:
    return text(value, what, max_len=256, allow_empty=False)


def user(value: object, what: str = "user") -> str:
    return text(value, what, max_len=128, allow_empty=False)


def sync_key_id(value: object) -> bytes:
    return blob(value, "sync key id", max_len=64)


def base_key(value: object) -> bytes:
    b = blob(value, "base key", max_len=33)
    if len(b) not in (32, 33):
        raise ValidationError(f"base key must be 32 or 33 bytes, got {len(b)}")
    return b


def pending_key(chat: object, sender: object, msg_id: object) -> tuple[str, str, str]:
    return address(chat, "chat"), address(sender, "sender"), message_id(msg_id)


def instances(value: object, kind: type[Any], what: str) -> Sequence[Any]:
    """A list of ``kind`` values (e.g. MutationMAC), rejected whole if one is of another type."""
    items = sequence(value, what)
    for item in items:
        if not isinstance(item, kind):
            raise ValidationError(
                f"{what} must hold {kind.__name__} values, not {_type_name(item)}"
            )
    return items


def instance(value: object, kind: type[Any], what: str) -> Any:
    if not isinstance(value, kind):
        raise ValidationError(f"{what} must be a {kind.__name__}, not {_type_name(value)}")
    return value
