"""The room event streams open in this process, by API key: capped per key, ended when their key is revoked.

A key's streams are counted here, in its process (``EVENT_STREAMS_PER_KEY`` each). While any is
open, one task looks once a second for keys revoked or deleted meanwhile, with one query for all
of them, and ends their streams: no query per stream, none while no stream is open.
"""

import asyncio
import logging
import weakref
from collections import defaultdict

from asgiref.sync import sync_to_async
from django.conf import settings

from chat import services
from chat.models import ApiKey

logger = logging.getLogger(__name__)

CHECK_EVERY = 1.0  # seconds between two looks for revoked keys
WATCHER = "key-watch"  # the name of the task that looks


class Followers:
    """This process's open event streams by key; a stream is anything with a ``revoke()`` method."""

    def __init__(self):
        # key id -> its open streams; weakly held: a response dropped before it ever ran counts no more
        self.streams = defaultdict(weakref.WeakSet)

    def admit(self, key, stream):
        """Count stream against key: False when the key already has its share open here."""
        if len(self.streams[key.pk]) >= settings.EVENT_STREAMS_PER_KEY:
            return False
        self.streams[key.pk].add(stream)
        services.current().keep_running(WATCHER, self._watch_forever)
        return True

    def leave(self, key, stream):
        """A stream ended."""
        self.streams[key.pk].discard(stream)
        self._prune()

    def _prune(self):
        for empty in [key for key, streams in self.streams.items() if not streams]:
            del self.streams[empty]

    async def _watch_forever(self):
        while self.streams:
            await asyncio.sleep(CHECK_EVERY)
            self._prune()
            try:
                await self.look()
            except Exception:  # noqa: BLE001 - the database is away: look again next time
                logger.warning("event streams: could not check their keys", exc_info=True)

    async def look(self):
        """End the streams of the keys open here that are revoked or deleted."""
        # Only the keys asked about: a key whose first stream opened while the query ran was not
        # asked about, and is not revoked for missing from its answer.
        asked = list(self.streams)
        live = await sync_to_async(_live)(asked)
        for key in set(asked) - live:
            for stream in list(self.streams.get(key, ())):
                stream.revoke()


def _live(keys):
    """The ids among keys that are still live (not revoked, not deleted)."""
    return set(ApiKey.objects.filter(pk__in=keys, revoked_at__isnull=True).values_list("pk", flat=True))


def followers():
    """The event streams of the running event loop."""
    return services.current().part(Followers)
