"""What a cached entry is and what it costs, and the memory budget that bounds them.

The caches of one container share a :class:`CacheBudget` (see
:mod:`wastore.cache` for the bounds it keeps).
"""

from __future__ import annotations

import contextlib
import threading
import weakref
from collections import OrderedDict
from typing import TYPE_CHECKING, Any, Final

from .. import _validate as v
from ..errors import ValidationError

if TYPE_CHECKING:
    from .signal_cache import SignalCache

SESSION: Final = 0
IDENTITY: Final = 1
SENDER_KEY: Final = 2

# An entry's key: (the cache's slot in its budget, kind, address). The slot makes
# keys unique across the caches of a budget, whose clean entries share one list.
Key = tuple[int, int, str]
Dirty = tuple[bytes | None, int]  # (value, write sequence number); a new tuple per write

DEFAULT_BUDGET_BYTES: Final = 64 * 1024 * 1024
"""Default memory budget of the SignalCaches of one container (64 MiB)."""
ENTRY_OVERHEAD: Final = 300
"""Bytes an entry costs beyond its record and address: the key tuple, the address
and record objects, and its slots in the budget's list and the cache's set (about
230 bytes measured with tracemalloc on CPython 3.11; rounded up, so that the
budget overstates rather than understates; see tests/test_cache_budget.py)."""
_MISSING: Final[Any] = object()  # what a lookup answers for a key it does not hold


def _cost(key: Key, value: bytes | None) -> int:
    return ENTRY_OVERHEAD + len(key[2]) + (len(value) if value is not None else 0)


class CacheBudget:
    """A memory budget shared by SignalCaches (one per container by default).

    It counts the bytes of every cached entry of its caches (record, address and
    bookkeeping). While the count is above ``max_bytes``, the least recently used
    clean entries of any of its caches are evicted; dirty entries are never
    evicted, they are flushed by their cache (a write that finds the budget
    exceeded flushes its own cache first).

    Configure a container's budget before or while its caches run::

        wastore.cache.CacheBudget.of(container).max_bytes = 256 * 2**20
    """

    _registry: weakref.WeakKeyDictionary[Any, CacheBudget] = weakref.WeakKeyDictionary()
    _default: CacheBudget | None = None
    _registry_lock = threading.Lock()

    def __init__(self, max_bytes: int = DEFAULT_BUDGET_BYTES) -> None:
        self._max = v.integer(max_bytes, "max_bytes", 0)
        # Guards the state of every cache of this budget (see :mod:`wastore.cache`):
        # held for dictionary operations only, never across an await.
        self._lock = threading.Lock()
        self.used = 0
        """Bytes held by the caches sharing this budget (an estimate, see ENTRY_OVERHEAD)."""
        # Every clean entry of every cache, least recently used first. The keys hold
        # ints and strings only, so the garbage collector stops tracking them.
        self._clean: OrderedDict[Key, bytes | None] = OrderedDict()
        # Weak: a cache the application dropped without closing it is collected; its
        # clean entries stay counted until they reach the head of the list and go.
        self._caches: weakref.WeakValueDictionary[int, SignalCache] = weakref.WeakValueDictionary()
        self._next_slot = 0
        self.evictions = 0

    def __repr__(self) -> str:
        return f"CacheBudget(used={self.used}, max_bytes={self._max}, clean={len(self._clean)})"

    def _join(self, cache: SignalCache) -> int:
        with self._lock:
            self._next_slot += 1
            self._caches[self._next_slot] = cache
            return self._next_slot

    @property
    def max_bytes(self) -> int:
        return self._max

    @max_bytes.setter
    def max_bytes(self, value: int) -> None:
        self._max = v.integer(value, "max_bytes", 0)
        self.evict()

    @property
    def over(self) -> bool:
        """True while the caches hold more than ``max_bytes``."""
        return self.used > self._max

    @classmethod
    def of(cls, container: object) -> CacheBudget:
        """The budget shared by the SignalCaches of ``container`` (created on first use).

        Raises:
            ValidationError: ``container`` cannot be weakly referenced.
        """
        try:
            with cls._registry_lock:
                budget = cls._registry.get(container)
                if budget is None:
                    budget = cls._registry[container] = cls()
        except TypeError as err:
            raise ValidationError(
                f"a {type(container).__name__} cannot hold a cache budget"
            ) from err
        return budget

    @classmethod
    def default(cls) -> CacheBudget:
        """The process-wide budget of caches whose container is unknown."""
        with cls._registry_lock:
            if cls._default is None:
                cls._default = cls()
            return cls._default

    @classmethod
    def for_backend(cls, backend: object) -> CacheBudget:
        """The budget of ``backend``'s container (its ``store``), else :meth:`default`."""
        store = getattr(backend, "store", None)
        if store is not None:
            with contextlib.suppress(ValidationError):
                return cls.of(store)
        return cls.default()

    def evict(self) -> None:
        """Evict least recently used clean entries until the budget holds (O(1) each)."""
        with self._lock:
            self._evict()

    def _evict(self) -> None:
        """:meth:`evict`, with the lock held."""
        clean = self._clean
        caches = self._caches
        while self.used > self._max and clean:
            key, value = clean.popitem(last=False)
            self.used -= _cost(key, value)
            cache = caches.get(key[0])
            if cache is not None:
                cache._clean_keys.discard(key)
                cache._removals += 1
                if len(cache._clean_keys) * 4 < cache._keys_peak:
                    cache._compact()
            self.evictions += 1
