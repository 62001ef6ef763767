"""pyaileys' authentication state in a wastore account (``pip install 'wastore[pyaileys]'``).

`pyaileys <https://pypi.org/project/pyaileys/>`_ is an asyncio WhatsApp Web
client modelled on Baileys. Its storage seam is Baileys' own: an
``AuthenticationState`` of ``creds`` (``AuthenticationCreds``) and ``keys``
(a ``SignalKeyStore``: ``get(type, ids)``, ``set({type: {id: value}})``,
``clear()``), by default ``MultiFileAuthState.load(folder)`` — one JSON file
per key. :class:`WastoreAuthState` is its counterpart over one wastore
account, on SQLite or PostgreSQL::

    state = await WastoreAuthState.load("sqlite:///wa.db")
    client = WhatsAppClient(auth=AuthenticationState(creds=state.creds, keys=state.keys))
    client.on("creds.update", lambda _creds: state.save_creds())
    ...
    await state.close()

- ``creds`` are the account's :class:`~wastore.Device`: the fields WhatsApp
  defines are typed Device fields, pyaileys' own bookkeeping is
  ``Device.client_data["pyaileys"]`` (:mod:`~wastore.interop.pyaileys._creds`
  has the table). :meth:`WastoreAuthState.save_creds` saves them through the
  account's :class:`~wastore.PersistenceManager`.
- ``keys`` maps every key family pyaileys uses to wastore's typed rows
  (:data:`FAMILIES`). Sessions, pre-keys and sender keys are libsignal
  records under the signal addresses every wastore client uses
  (:mod:`~wastore.interop.pyaileys._addresses`), so python-axolotl
  (:mod:`wastore.interop.axolotl`) continues what pyaileys started, and the
  other way round. Each ``keys.set()`` is one transaction, committed before
  it returns.

pyaileys awaits its store, so everything runs on the caller's event loop: no
thread, no bridge.

Only :class:`WastoreAuthState` needs pyaileys itself (it builds pyaileys'
``AuthenticationCreds``); it is imported on first use, so that the mapping
(used by ``wastore import --from pyaileys``) works without pyaileys installed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._addresses import (
    pyaileys_address,
    pyaileys_sender_key_name,
    sender_key_address,
    signal_address,
)
from ._creds import CLIENT, apply_creds, creds_dict, device_fields
from ._keystore import FAMILIES, WastoreKeyStore

if TYPE_CHECKING:
    from ._state import WastoreAuthState, sync_prekey_flags

__all__ = [
    "CLIENT",
    "FAMILIES",
    "WastoreAuthState",
    "WastoreKeyStore",
    "apply_creds",
    "creds_dict",
    "device_fields",
    "pyaileys_address",
    "pyaileys_sender_key_name",
    "sender_key_address",
    "signal_address",
    "sync_prekey_flags",
]


def __getattr__(name: str) -> Any:
    if name in ("WastoreAuthState", "sync_prekey_flags"):
        from . import _state  # imports pyaileys (ImportError naming the extra without it)

        return getattr(_state, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
