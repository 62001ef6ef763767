"""pywhats on wastore (``pip install 'wastore[pywhats]'``).

pywhats is an asyncio WhatsApp multi-device client that keeps its state in a
device JSON file and a private SQLite database. This adapter keeps all of it
in one wastore account instead, on SQLite or PostgreSQL, next to any number of
other accounts:

- :class:`WastoreClient` is a ``pywhats.Client`` over one account: the device
  credentials are the account's :class:`~wastore.Device`, the Signal and
  app-state stores are the account's tables::

      from wastore.interop.pywhats import WastoreClient

      client = WastoreClient("sqlite:///wa.db")      # the store's only account
      await client.connect()                         # pairs (QR) or logs in
      ...
      await client.close()                           # flush, release, close

- :class:`SignalStores` is the seven store facets of pywhats' ``SqliteStore``
  (``sessions``, ``identities``, ``lid_map``, ``prekeys``, ``app_state_keys``,
  ``app_state``, ``sender_keys``) plus ``transaction()`` and ``close()``, over
  one account: for tools and tests that read or seed an account directly.

What is stored where, how pywhats' device JSON maps onto the Device (and the
``client_data["pywhats"]`` bookkeeping that makes it round-trip exactly), and
why pywhats' sessions cannot be continued by other clients: see
:mod:`wastore.formats.pywhats` and docs/pywhats.md.

The sync/async model
--------------------

pywhats calls its stores synchronously from its own event loop. The store
therefore runs on an event loop of its own, in another thread
(:class:`~wastore.interop.bridge.SyncContainer`). The client's sessions,
identities and sender keys go through a SignalCache served on pywhats' own
thread (:class:`~wastore.interop.bridge.SyncSignal`) and are committed before
any frame goes to the server; every other store call blocks pywhats' loop for
one database round trip and commits before it returns — what pywhats' own
``sqlite3`` store does. pywhats' ``atomic`` blocks (a decrypted pre-key
message's session, the peer identity and the consumed one-time pre-key; a
batch of app-state keys; a LID migration) are one transaction each. An async
:class:`~wastore.Container` cannot be given to the client: it runs on the
caller's loop, which pywhats blocks while it calls its stores.
"""

from __future__ import annotations

from ...formats.pywhats import jid_from_pywhats, jid_to_pywhats
from ._client import WastoreClient
from ._compat import SUPPORTED_VERSION
from ._stores import SignalStores

__all__ = [
    "SUPPORTED_VERSION",
    "SignalStores",
    "WastoreClient",
    "jid_from_pywhats",
    "jid_to_pywhats",
]
