"""The libsignal and WhatsApp protobuf records the pyaileys adapter reads and writes.

Three small messages are encoded here by hand, on the protobuf wire format,
so that neither this module nor the folder importer needs a protobuf runtime:

- ``PreKeyRecordStructure`` (``id = 1``, ``publicKey = 2``, ``privateKey = 3``):
  how every wastore client stores a one-time pre-key. pyaileys keeps a pre-key
  as ``{"public": 32 bytes, "private": 32 bytes}``; the record holds the public
  key in libsignal's serialized form (``0x05`` type byte first), as
  python-axolotl writes it.
- ``AppStateSyncKeyData`` (``keyData = 1``, ``fingerprint = 2``,
  ``timestamp = 3``): what pyaileys keeps per app-state sync key, split into
  wastore's :class:`~wastore.AppStateSyncKey` (the fingerprint stays its
  serialized ``AppStateSyncKeyFingerprint`` message).
- ``SenderKeyRecordStructure``: pyaileys stores the signing public key of its
  *own* sender key as the raw 32-byte Curve25519 key, where libsignal (and
  python-axolotl, which cannot read the raw form) serialize it with the type
  byte. :func:`normalize_sender_key_record` adds the byte; pyaileys reads both
  forms, so it continues from the normalized record unchanged.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Final

from ...errors import CorruptRecordError, ValidationError
from ...keys import DJB_TYPE, KEY_LEN
from ...values import AppStateSyncKey

_VARINT: Final = 0
_I64: Final = 1
_LEN: Final = 2
_I32: Final = 5
_U64: Final = 1 << 64


class WireError(ValueError):
    """The bytes are not a well-formed protobuf message."""


def _varint(n: int) -> bytes:
    if n < 0:
        n += _U64  # int64: two's complement, ten bytes
    out = bytearray()
    while True:
        low = n & 0x7F
        n >>= 7
        if n:
            out.append(low | 0x80)
        else:
            out.append(low)
            return bytes(out)


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise WireError("truncated or overlong varint")
        b = data[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7


def _fields(data: bytes) -> Iterator[tuple[int, int, int | bytes, int, int]]:
    """``(field number, wire type, value, start, end)`` of each field of a message."""
    pos = 0
    n = len(data)
    while pos < n:
        start = pos
        key, pos = _read_varint(data, pos)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise WireError("field number 0")
        value: int | bytes
        if wire == _VARINT:
            value, pos = _read_varint(data, pos)
        elif wire == _LEN:
            length, pos = _read_varint(data, pos)
            if pos + length > n:
                raise WireError("a length-delimited field runs past the end")
            value = data[pos : pos + length]
            pos += length
        elif wire == _I64:
            value, pos = data[pos : pos + 8], pos + 8
        elif wire == _I32:
            value, pos = data[pos : pos + 4], pos + 4
        else:
            raise WireError(f"unsupported wire type {wire}")
        if pos > n:
            raise WireError("a fixed-size field runs past the end")
        yield number, wire, value, start, pos


def _len_field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | _LEN) + _varint(len(payload)) + payload


def _varint_field(number: int, value: int) -> bytes:
    return _varint(number << 3 | _VARINT) + _varint(value)


# -- pre-keys ------------------------------------------------------------------
def encode_prekey(key_id: int, public: bytes, private: bytes) -> bytes:
    """A ``PreKeyRecordStructure`` (public key with its ``0x05`` type byte)."""
    return _varint_field(1, key_id) + _len_field(2, DJB_TYPE + public) + _len_field(3, private)


def decode_prekey(data: bytes, key_id: int) -> tuple[bytes, bytes]:
    """``(public, private)`` — 32 bytes each — of a stored ``PreKeyRecordStructure``.

    Raises:
        CorruptRecordError: not a pre-key record with two Curve25519 keys.
    """
    public = private = None
    try:
        for number, wire, value, _, _ in _fields(data):
            if number == 2 and wire == _LEN:
                public = value
            elif number == 3 and wire == _LEN:
                private = value
    except WireError as err:
        raise CorruptRecordError(
            f"the stored pre-key {key_id} is not a PreKeyRecordStructure ({err})"
        ) from None
    if isinstance(public, bytes) and len(public) == KEY_LEN + 1 and public[:1] == DJB_TYPE:
        public = public[1:]
    if not (
        isinstance(public, bytes)
        and isinstance(private, bytes)
        and len(public) == KEY_LEN
        and len(private) == KEY_LEN
    ):
        raise CorruptRecordError(
            f"the stored pre-key {key_id} does not hold a 32-byte Curve25519 key pair"
        )
    return public, private


# -- app-state sync keys -----------------------------------------------------------
def decode_sync_key_data(data: bytes, what: str) -> AppStateSyncKey:
    """Split a serialized ``AppStateSyncKeyData`` into wastore's value.

    Raises:
        ValidationError: not such a message, or its key data is not 32 bytes.
    """
    key_data: bytes | None = None
    fingerprint = b""
    timestamp = 0
    try:
        for number, wire, value, _, _ in _fields(data):
            if number == 1 and wire == _LEN:
                assert isinstance(value, bytes)
                key_data = value
            elif number == 2 and wire == _LEN:
                assert isinstance(value, bytes)
                fingerprint = value
            elif number == 3 and wire == _VARINT:
                assert isinstance(value, int)
                timestamp = value - _U64 if value >= 1 << 63 else value
    except WireError as err:
        raise ValidationError(f"{what} is not a serialized AppStateSyncKeyData ({err})") from None
    if key_data is None:
        raise ValidationError(f"{what} has no keyData")
    return AppStateSyncKey(key_data=key_data, fingerprint=fingerprint, timestamp=timestamp)


def encode_sync_key_data(key: AppStateSyncKey) -> bytes:
    """The serialized ``AppStateSyncKeyData`` of a stored sync key (fields in number order;
    an empty fingerprint and a zero timestamp are left out)."""
    out = _len_field(1, key.key_data)
    if key.fingerprint:
        out += _len_field(2, key.fingerprint)
    if key.timestamp:
        out += _varint_field(3, key.timestamp)
    return out


# -- sender keys -------------------------------------------------------------------
def _rewrite(data: bytes, number: int, fix: object) -> bytes:
    """``data`` with each length-delimited field ``number`` replaced by ``fix(value)``;
    every other byte is kept as it is. Returns ``data`` itself when nothing changed."""
    assert callable(fix)
    parts: list[bytes] = []
    changed = False
    last = 0
    for n, wire, value, start, end in _fields(data):
        if n != number or wire != _LEN:
            continue
        assert isinstance(value, bytes)
        new = fix(value)
        if new is value:
            continue
        parts.append(data[last:start])
        parts.append(_len_field(number, new))
        last = end
        changed = True
    if not changed:
        return data
    parts.append(data[last:])
    return b"".join(parts)


def _typed_public(key: bytes) -> bytes:
    return DJB_TYPE + key if len(key) == KEY_LEN else key


def normalize_sender_key_record(data: bytes, what: str) -> bytes:
    """The ``SenderKeyRecordStructure`` with every 32-byte signing public key written
    in libsignal's 33-byte form (``0x05`` first); the record itself when none is raw.

    Raises:
        ValidationError: the bytes are not a protobuf message.
    """
    try:
        return _rewrite(
            data,
            1,  # senderKeyStates
            lambda state: _rewrite(
                state,
                3,  # senderSigningKey
                lambda signing: _rewrite(signing, 1, _typed_public),  # public
            ),
        )
    except WireError as err:
        raise ValidationError(
            f"{what} is not a serialized SenderKeyRecordStructure ({err})"
        ) from None
