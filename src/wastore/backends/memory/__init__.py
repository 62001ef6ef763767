"""MemoryStore: the whole contract in process memory (``memory://``).

For tests, examples and short-lived tools; nothing survives the process.
"""

from .account import MemoryBackend
from .journal import MemorySnapshot
from .store import MemoryStore, open_memory

__all__ = ["MemoryBackend", "MemorySnapshot", "MemoryStore", "open_memory"]
