"""The bounded cache behind jaxgd's reuse of compiled programs."""

from jaxgd.core.cache import BoundedCache


def test_keeps_the_most_recently_used_entries_up_to_its_size():
    cache = BoundedCache(size=2)
    made = []

    def make(value):
        return lambda: made.append(value) or value

    assert cache.get("a", make(1)) == 1
    assert cache.get("b", make(2)) == 2
    assert cache.get("a", make(99)) == 1      # hit: "a" becomes the most recent
    assert cache.get("c", make(3)) == 3       # evicts "b", the least recent
    assert len(cache) == 2
    assert cache.get("b", make(4)) == 4       # rebuilt
    assert made == [1, 2, 3, 4]


def test_unhashable_keys_are_built_every_time():
    cache = BoundedCache()
    calls = []
    for _ in range(2):
        cache.get(({"mask": True},), lambda: calls.append(1))
    assert len(calls) == 2 and len(cache) == 0
