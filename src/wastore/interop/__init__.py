"""Adapters between wastore and other libraries.

Each adapter lives in its own subpackage and needs an optional extra; importing
``wastore`` never imports them:

- :mod:`wastore.interop.axolotl` — store classes for python-axolotl, the Python
  Signal implementation (``pip install 'wastore[axolotl]'``).
- :mod:`wastore.interop.pyaileys` — pyaileys' authentication state (creds and
  key store) over one account (``pip install 'wastore[pyaileys]'``).
"""
