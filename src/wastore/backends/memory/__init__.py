"""MemoryStore: the whole contract in process memory (``memory://``).

For tests, examples and short-lived tools; nothing survives the process.
"""

from .account import MemoryBackend, MemoryStore, open_memory
from .journal import MemorySnapshot

__all__ = ["MemoryBackend", "MemorySnapshot", "MemoryStore", "open_memory"]
