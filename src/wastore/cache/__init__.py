"""SignalCache: a write-back cache for sessions, identities and sender keys.

The package is being split along its seams; for now everything lives in
``signal_cache`` (see its docstring for the durability model).
"""

from .signal_cache import (
    DEFAULT_BUDGET_BYTES,
    DEFAULT_FLUSH_WINDOW,
    DEFAULT_MAX_ENTRIES,
    ENTRY_OVERHEAD,
    FLUSH_CHUNK,
    FLUSH_CHUNK_BYTES,
    IDENTITY,
    SENDER_KEY,
    SESSION,
    CacheBudget,
    Dirty,
    Key,
    SignalCache,
    backend_transaction_open,
)

__all__ = [
    "DEFAULT_BUDGET_BYTES",
    "DEFAULT_FLUSH_WINDOW",
    "DEFAULT_MAX_ENTRIES",
    "ENTRY_OVERHEAD",
    "FLUSH_CHUNK",
    "FLUSH_CHUNK_BYTES",
    "IDENTITY",
    "SENDER_KEY",
    "SESSION",
    "CacheBudget",
    "Dirty",
    "Key",
    "SignalCache",
    "backend_transaction_open",
]
