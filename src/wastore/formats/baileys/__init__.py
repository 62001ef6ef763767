"""Baileys ``useMultiFileAuthState`` folders (Baileys 6.x and 7.x), both ways.

A folder holds ``creds.json`` and one JSON file per key, named
``<category>-<id>.json`` with ``/`` in the id written ``__`` and ``:`` written
``-``. Values are JSON with Baileys' ``BufferJSON`` encoding
(``{"type": "Buffer", "data": "<base64>"}``). What each file becomes:

==========================================  =========================================
Baileys file                                wastore
==========================================  =========================================
``creds.json``                              the :class:`~wastore.Device` (see below)
``session-<user>[_<domain>].<device>``      ``sessions`` (libsignal-node JSON converted
                                            to a ``RecordStructure``:
                                            :mod:`wastore.formats.libsignal`)
``sender-key-<group>--<user>--<device>``    ``sender_keys`` under ``<group>::<address>``
``pre-key-<id>``                            ``prekeys``; uploaded when ``id <
                                            firstUnuploadedPreKeyId``
``identity-key-<address>``                  ``identities`` (32-byte key)
``app-state-sync-key-<key id>``             ``sync_keys`` (fingerprint as the serialized
                                            ``AppStateSyncKeyFingerprint``)
``app-state-sync-version-<name>``           ``app_state_versions`` + ``app_state_macs``
``lid-mapping-<pn user>`` (and ``_reverse``)  ``lid_pn_mappings``
``device-list-<user>``                      ``device_lists``
``tctoken-<jid>``                           ``tc_tokens`` (``tctoken-__index`` is derived)
``sender-key-memory-<group>``               ``sender_key_devices``
==========================================  =========================================

Sender keys: Baileys up to 6.7.18 keeps the list of states in the file;
6.7.19+ and 7 keep its JSON text as a Buffer. An account read from a folder
that holds only the older form is marked so in its bookkeeping
(``"senderKeys": "states"``), and :func:`write` writes that form back for it.

Signal addresses: Baileys names a device ``user.device`` with a domain suffix
for the non-phone-number servers (``user_1`` LID, ``user_128`` hosted,
``user_129`` hosted LID, as WhatsApp's own domain types); wastore names it
``user[:device]@server``. Baileys 6 had no suffix: its addresses are phone
numbers.

``creds.json``: the keys, registration id, ``advSecretKey``, ``me``
(``id`` -> ``pn``, ``lid``, ``name`` -> ``push_name``, ``verifiedName`` ->
``business_name``), ``account`` (serialized ``ADVSignedDeviceIdentity``),
``platform``, ``registered``, ``pairingCode``, ``pairingEphemeralKeyPair``,
``myAppStateKeyId``, ``lastAccountSyncTimestamp``, ``lastPropHash``,
``routingInfo``, ``accountSettings``, the pre-key counters and
``signedPreKey.timestampS`` are Device fields. Everything else Baileys keeps
there (``processedHistoryMessages``, ``accountSyncCounter``,
``signalIdentities``, ``additionalData``, other ``me`` fields, and the order of
the keys) is kept as Baileys' own bookkeeping in ``Device.client_data["baileys"]``
so that :func:`write` gives Baileys back the same ``creds.json``.
``signalIdentities`` (the phone's identity) also go to ``identities``, under the phone's
address (the named user's device ``deviceId``, 0: pairing names it by our own
device's JID).
"""

from __future__ import annotations

from ._common import CLIENT, baileys_address, signal_address
from ._read import read
from ._write import write
from .creds import creds_from_device, device_from_creds

__all__ = [
    "CLIENT",
    "baileys_address",
    "creds_from_device",
    "device_from_creds",
    "read",
    "signal_address",
    "write",
]
