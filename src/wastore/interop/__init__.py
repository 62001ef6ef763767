"""Adapters between wastore and other libraries.

Each adapter lives in its own subpackage and needs an optional extra; importing
``wastore`` never imports them:

- :mod:`wastore.interop.axolotl` — store classes for python-axolotl, the Python
  Signal implementation (``pip install 'wastore[axolotl]'``).
- :mod:`wastore.interop.pywhats` — pywhats, an asyncio WhatsApp client, with all
  of its state in a wastore account (``pip install 'wastore[pywhats]'``).
- :mod:`wastore.interop.pyaileys` — pyaileys' authentication state (creds and
  key store) over one account (``pip install 'wastore[pyaileys]'``).

:mod:`wastore.interop.bridge` (no extra) is what the synchronous adapters
(python-axolotl, pywhats) share: a store on an event loop of its own, called
synchronously from other threads.
"""
