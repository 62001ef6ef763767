"""pywhats sessions: reading one into a wastore account, and how pywhats' state maps onto one."""

from .mapping import (
    CLIENT,
    DEVICE_SCHEMA_VERSION,
    LEARNING_SOURCE,
    decode_prekey_record,
    device_from_pywhats,
    device_to_pywhats,
    encode_prekey_record,
    jid_from_pywhats,
    jid_to_pywhats,
    read,
    sender_key_address,
    session_address,
    signal_db_path,
)

__all__ = [
    "CLIENT",
    "DEVICE_SCHEMA_VERSION",
    "LEARNING_SOURCE",
    "decode_prekey_record",
    "device_from_pywhats",
    "device_to_pywhats",
    "encode_prekey_record",
    "jid_from_pywhats",
    "jid_to_pywhats",
    "read",
    "sender_key_address",
    "session_address",
    "signal_db_path",
]
