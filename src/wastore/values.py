"""Value types of the app-state and protocol stores.

All are frozen and validated when built, so a value that exists is a value a
backend can store. Timestamps are Unix seconds unless a name ends in ``_ms``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

from . import _validate as v

HASH_STATE_LEN: Final = 128
"""Length of an app-state LTHash (bytes)."""
SYNC_KEY_LEN: Final = 32
MAC_LEN: Final = 32
SECRET_LEN: Final = 32
MAX_FINGERPRINT_LEN: Final = 4096
MAX_SYNC_KEY_ID_LEN: Final = 64


def _set(obj: object, name: str, value: object) -> None:
    object.__setattr__(obj, name, value)


def _bytes_repr(b: bytes | None) -> str:
    return "None" if b is None else f"<{len(b)} bytes>"


@dataclass(frozen=True, slots=True)
class AppStateSyncKey:
    """An app-state sync key: 32 bytes of key data (secret), its fingerprint and timestamp."""

    key_data: bytes
    fingerprint: bytes
    timestamp: int

    def __post_init__(self) -> None:
        _set(self, "key_data", v.fixed(self.key_data, "sync key data", SYNC_KEY_LEN))
        _set(
            self,
            "fingerprint",
            v.blob(
                self.fingerprint,
                "sync key fingerprint",
                max_len=MAX_FINGERPRINT_LEN,
                allow_empty=True,
            ),
        )
        _set(self, "timestamp", v.integer(self.timestamp, "sync key timestamp"))

    def __repr__(self) -> str:
        return (
            f"AppStateSyncKey(key_data=<redacted>, fingerprint={_bytes_repr(self.fingerprint)}, "
            f"timestamp={self.timestamp})"
        )


@dataclass(frozen=True, slots=True)
class HashState:
    """The state of one app-state collection: its version and 128-byte LTHash."""

    version: int = 0
    hash: bytes = bytes(HASH_STATE_LEN)

    def __post_init__(self) -> None:
        _set(self, "version", v.integer(self.version, "collection version", 0))
        _set(self, "hash", v.fixed(self.hash, "collection hash", HASH_STATE_LEN))

    def __repr__(self) -> str:
        return f"HashState(version={self.version}, hash={self.hash[:8].hex()}…)"


@dataclass(frozen=True, slots=True)
class MutationMAC:
    """One app-state mutation: its 32-byte index MAC and 32-byte value MAC."""

    index_mac: bytes
    value_mac: bytes

    def __post_init__(self) -> None:
        _set(self, "index_mac", v.fixed(self.index_mac, "index MAC", MAC_LEN))
        _set(self, "value_mac", v.fixed(self.value_mac, "value MAC", MAC_LEN))


@dataclass(frozen=True, slots=True)
class LidPnMapping:
    """A LID user <-> phone-number user mapping (user parts, not full JIDs)."""

    lid: str
    phone_number: str
    created_at: int
    updated_at: int
    learning_source: str = ""

    def __post_init__(self) -> None:
        v.text(self.lid, "lid", max_len=128, allow_empty=False)
        v.text(self.phone_number, "phone_number", max_len=128, allow_empty=False)
        v.integer(self.created_at, "created_at")
        v.integer(self.updated_at, "updated_at")
        v.text(self.learning_source, "learning_source", max_len=128)


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    """One device of a user in the device registry."""

    device_id: int
    key_index: int | None = None
    is_hosted: bool = False

    def __post_init__(self) -> None:
        v.integer(self.device_id, "device_id", 0, 65535)
        v.opt_integer(self.key_index, "key_index", 0, v.MAX_U32)
        v.boolean(self.is_hosted, "is_hosted")


@dataclass(frozen=True, slots=True)
class DeviceListRecord:
    """The known devices of one user (a usync result)."""

    user: str
    devices: tuple[DeviceInfo, ...] = field(default=())
    timestamp: int = 0
    phash: str | None = None
    raw_id: int | None = None

    def __post_init__(self) -> None:
        v.text(self.user, "user", max_len=128, allow_empty=False)
        _set(self, "devices", tuple(v.instances(self.devices, DeviceInfo, "devices")))
        v.integer(self.timestamp, "timestamp")
        v.opt_text(self.phash, "phash", max_len=256)
        v.opt_integer(self.raw_id, "raw_id", 0, v.MAX_U32)


@dataclass(frozen=True, slots=True)
class TcToken:
    """A trusted-contact privacy token and when it was received / last issued by us."""

    token: bytes
    token_timestamp: int
    sender_timestamp: int | None = None

    def __post_init__(self) -> None:
        _set(self, "token", v.blob(self.token, "tc token", max_len=4096, allow_empty=True))
        v.integer(self.token_timestamp, "token_timestamp")
        v.opt_integer(self.sender_timestamp, "sender_timestamp")

    def __repr__(self) -> str:
        return (
            f"TcToken(token={_bytes_repr(self.token)}, token_timestamp={self.token_timestamp}, "
            f"sender_timestamp={self.sender_timestamp})"
        )


@dataclass(frozen=True, slots=True)
class MsgSecret:
    """The 32-byte secret of a message (polls, reactions, edits); expires_at 0 = never."""

    chat: str
    sender: str
    msg_id: str
    secret: bytes
    expires_at: int = 0
    message_ts: int = 0

    def __post_init__(self) -> None:
        v.address(self.chat, "chat")
        v.address(self.sender, "sender")
        v.text(self.msg_id, "msg_id", max_len=256, allow_empty=False)
        _set(self, "secret", v.fixed(self.secret, "message secret", SECRET_LEN))
        v.timestamp(self.expires_at, "expires_at")
        v.timestamp(self.message_ts, "message_ts")

    def __repr__(self) -> str:
        return (
            f"MsgSecret(chat={self.chat!r}, sender={self.sender!r}, msg_id={self.msg_id!r}, "
            f"secret=<redacted>, expires_at={self.expires_at}, message_ts={self.message_ts})"
        )


# -- whole accounts --------------------------------------------------------------

Row = dict[str, Any]
"""One database row of an exported account: column name -> value (bytes for blobs)."""


@dataclass
class AccountDump:
    """Every row of one account, as Python values (bytes for blob columns).

    What :meth:`wastore.contract.PortableContainer.export_account` returns and
    ``import_account`` takes; :mod:`wastore.portable` turns it into a file. It
    holds private keys: its ``repr`` shows the account's JIDs and row counts only.
    """

    tables: dict[str, list[Row]]

    def __repr__(self) -> str:
        devices = self.tables.get("device") or [{}]
        who = ", ".join(f"{c}={devices[0].get(c)!r}" for c in ("pn", "lid"))
        return f"AccountDump({who}, rows={self.count()})"

    @property
    def device(self) -> Row:
        return self.tables["device"][0]

    def count(self) -> dict[str, int]:
        return {t: len(rows) for t, rows in self.tables.items()}
