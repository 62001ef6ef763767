"""The error hierarchy of wastore.

Every error raised through the public API is a :class:`StoreError`. Driver
exceptions (``sqlite3``, ``asyncpg``) never escape: they are chained as
``__cause__`` of one of these. Messages say what was wrong and, where there is
one, what to do; they never contain key material or passwords.
"""

from __future__ import annotations

__all__ = [
    "AccountInUseError",
    "BackendUnavailableError",
    "ConfigError",
    "CorruptRecordError",
    "DeviceNotFoundError",
    "SchemaError",
    "SchemaTooNewError",
    "StoreError",
    "ValidationError",
]


class StoreError(Exception):
    """Base class of every error wastore raises."""


class ValidationError(StoreError, ValueError):
    """An argument was rejected before anything was stored."""


class ConfigError(StoreError):
    """A store URL or option is wrong, or an optional driver is missing."""


class DeviceNotFoundError(StoreError, LookupError):
    """The account (device id) does not exist in this store."""

    def __init__(self, device_id: int, detail: str = "") -> None:
        self.device_id = device_id
        msg = f"no account with device id {device_id} in this store"
        if detail:
            msg += f": {detail}"
        super().__init__(msg)


class CorruptRecordError(StoreError):
    """A stored value exists but cannot be decoded.

    It is never reported as missing: treating an unreadable record as absent
    makes a client re-pair or reset sessions, which loses data for good.
    """


class SchemaError(StoreError):
    """The database schema is not one this release can use."""


class SchemaTooNewError(SchemaError):
    """The database was written by a newer wastore whose schema this one cannot read."""


class BackendUnavailableError(StoreError):
    """The database could not be reached (or stayed locked) within the retry budget."""


class AccountInUseError(StoreError):
    """Another live process holds the lease of this account."""

    def __init__(self, device_id: int, holder: str, detail: str = "") -> None:
        self.device_id = device_id
        self.holder = holder
        msg = (
            f"account {device_id} is in use by {holder}; one account is served by one "
            "process at a time: stop that process (or wait for its lease to expire)"
        )
        if detail:
            msg += f" ({detail})"
        super().__init__(msg)
