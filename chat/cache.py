"""The cache: Django's Redis cache with one client, and its connections, per serving process; or, without
Redis, Django's in-process cache. Both count (the budgets' counters) in one step."""

from functools import cached_property

from django.core.cache.backends.locmem import LocMemCache
from django.core.cache.backends.redis import RedisCache, RedisCacheClient

from chat import services


def _client(servers, options):
    return RedisCacheClient(list(servers), **dict(options))


class ProcessRedisCache(RedisCache):
    """Django's RedisCache, its client held by the serving loop's services.

    Under ASGI Django makes a cache object per request, and each made a client of its own: every
    page and post opened a new connection to Redis. Outside a server (a shell, a command, a sync
    test) each cache object keeps its own client, as Django's does.
    """

    @property
    def _cache(self):
        here = services.serving()
        if here is None:
            return self._own_client
        return here.part(_client, tuple(self._servers), tuple(sorted(self._options.items())))

    @cached_property
    def _own_client(self):
        return _client(self._servers, self._options.items())

    def redis(self):
        """The redis-py client of the cache's server, for what Django's cache API lacks (presence's sorted set)."""
        return self._cache.get_client(write=True)

    def count(self, key, timeout):
        """Add one to key's count and return it; a new count lives timeout seconds. One round trip
        (Django's add then incr took three: incr asks whether the key exists first)."""
        key = self.make_and_validate_key(key)
        pipe = self._cache.get_client(key, write=True).pipeline()  # MULTI ... EXEC: both or neither
        pipe.set(key, 0, ex=timeout, nx=True)  # an int is stored as itself: Django's get reads it
        pipe.incr(key)
        return pipe.execute()[1]


class LocalCache(LocMemCache):
    """Django's in-process cache, for a lone process without Redis, counting as the Redis one does."""

    def count(self, key, timeout):
        """Add one to key's count and return it; a new count lives timeout seconds."""
        self.add(key, 0, timeout)
        try:
            return self.incr(key)
        except ValueError:  # expired between add and incr
            self.set(key, 1, timeout)
            return 1
