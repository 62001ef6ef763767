"""pywhats sessions: reading one into a wastore account, and how pywhats' state maps onto one.

A pywhats session is two files: the device JSON at the *session path* (its
``DeviceStore``: keys, registration id, JIDs, push name, ...) and the SQLite
database ``{session path}.signal.db`` with its Signal and app-state tables.
:func:`read` turns both into one :class:`~wastore.portable.AccountDump`
(``wastore import URL SESSION_PATH --from pywhats``); it needs neither pywhats
nor write access, and writes nothing.

The mapping defined here is the one :mod:`wastore.interop.pywhats` uses when
pywhats runs on wastore, so an imported session and a session kept by
``WastoreClient`` look the same:

================================  =============================================
pywhats                           wastore
================================  =============================================
device JSON                       the account's :class:`~wastore.Device`
                                  (:func:`device_from_pywhats`); what has no
                                  Device field goes to ``client_data["pywhats"]``
``sessions`` (ratchet JSON)       ``sessions``: pywhats' JSON bytes, unchanged,
                                  under the signal address of the session id
``identities`` (32 bytes)         ``identities``, under the signal address
``lid_map`` (pn user, lid user)   ``lid_pn_mappings`` (learning source
                                  ``"pywhats"``)
``prekeys`` (id, private, public) ``prekeys``: a libsignal
                                  ``PreKeyRecordStructure``, marked uploaded
``app_state_sync_keys``           ``sync_keys``
``app_state_version``             ``app_state_versions``
``app_state_mutation_macs``       ``mutation_macs`` (the newest version of each
                                  index MAC)
``sender_keys`` (JSON)            ``sender_keys``: pywhats' JSON bytes under
                                  ``"{group}::{sender signal address}"``
================================  =============================================

pywhats' session and sender-key records are pywhats' own JSON, not libsignal
records: other clients cannot continue those sessions (nor pywhats theirs).
Pre-keys and identities use the encodings every wastore adapter shares.

JIDs: pywhats writes a device JID as ``user.device@server`` (its session ids as
``user:device@server``), and a user part may carry WhatsApp's agent, so that
the LID it learns at login reads ``111111111111111.0.1@lid`` — user
``111111111111111``, agent 0, device 1 — which :meth:`wastore.JID.parse`
(``user.agent:device@server``) rightly does not accept. :func:`jid_from_pywhats`
maps pywhats' forms explicitly.

The package: ``mapping`` (JIDs, addresses, pre-key records, the device) and
``_read`` (:func:`read`, a session into an account dump).
"""

from ._read import read, signal_db_path
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
    sender_key_address,
    session_address,
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
