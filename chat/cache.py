"""The cache in Redis: Django's Redis cache with one client, and its connections, per serving process."""

from functools import cached_property

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
