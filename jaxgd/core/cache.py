"""A small bounded cache for the functions and programs jaxgd builds once and reuses."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any


class BoundedCache:
    """Least-recently-used cache of at most ``size`` entries.

    Keys often hold user callables (a loss function, a schedule) that may close over
    large arrays; the bound keeps a long session that builds many of them from holding
    on to all of them. A key that cannot be hashed is not cached: ``make`` runs each time.
    """

    def __init__(self, size: int = 128):
        self.size = size
        self._entries: OrderedDict[Hashable, Any] = OrderedDict()

    def get(self, key: Hashable, make: Callable[[], Any]) -> Any:
        try:
            value = self._entries.pop(key)
        except KeyError:
            value = make()
        except TypeError:  # unhashable key
            return make()
        self._entries[key] = value
        if len(self._entries) > self.size:
            self._entries.popitem(last=False)
        return value

    def __len__(self) -> int:
        return len(self._entries)
