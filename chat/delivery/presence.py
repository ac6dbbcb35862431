"""Who is here: the people each room has open, across processes, told to its pages at most once a second.

Each process knows the people behind its own sockets and publishes that share of each room in the
shared cache with a short lifetime; a room's people are the union of the live processes' shares.
The live processes are a Redis sorted set of process ids scored by their last heartbeat: each
process changes only its own member (ZADD, ZREM), so two processes registering at once both stay.
One task per process, at most once a second, publishes what changed, reads the shares of the
rooms it has pages of and, where the sentence changed, hands its own pages one frame. Joining and
leaving cost no frame and no layer message each: 500 pages opening a room at once get a handful
of frames, not 500 apiece. A process that dies stops refreshing, and its share expires.
"""

import asyncio
import logging
import time
import uuid
from collections import Counter, defaultdict

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.cache import cache, caches
from django.utils import translation
from django.utils.translation import gettext, ngettext

from chat import services
from chat.delivery import fanout, frames

logger = logging.getLogger(__name__)

PROCESS = uuid.uuid4().hex[:12]
TTL = 15  # seconds a process's share outlives its last refresh (every TTL / 3): a dead one's people go within TTL + INTERVAL
INTERVAL = 1.0  # seconds between two presence frames of a room, at the least
NAMES_SHOWN = 3
TELLER = "presence"  # the name of the task that tells the rooms' pages who is here
_PROCESSES = "parley:presence:live"  # a sorted set (the key of the earlier plain set was another)


def _key(group, process):
    return f"parley:presence:{group}:{process}"


def sentence(people):
    """people ({person id: chosen name, or "" for a guest}) as a line in the active language: "Ana, Ben and 3 guests here"."""
    names = sorted((name for name in people.values() if name), key=str.casefold)
    guests = sum(1 for name in people.values() if not name)
    others = len(names) - NAMES_SHOWN
    parts = names[:NAMES_SHOWN]
    if others > 0:
        parts.append(ngettext("%(count)s other", "%(count)s others", others) % {"count": others})
    if guests:
        parts.append(ngettext("%(count)s guest", "%(count)s guests", guests) % {"count": guests})
    if not parts:
        return gettext("Nobody here yet")
    listed = gettext("%(first)s and %(last)s") % {"first": ", ".join(parts[:-1]), "last": parts[-1]} if len(parts) > 1 else parts[0]
    return ngettext("%(people)s here", "%(people)s here", len(names) + guests) % {"people": listed}


def sentences(people):
    """The line in every language of the interface, {code: line}: a frame is rendered once for a
    whole room, whatever its pages' languages, so it carries each and a page shows its own."""
    lines = {}
    for code, _name in settings.LANGUAGES:
        with translation.override(code):
            lines[code] = sentence(people)
    return lines


def _processes():
    """The Redis client holding the sorted set of live processes, and the set's key; None without
    Redis (the cache in this process's memory: this process is the only one)."""
    store = caches["default"]
    if not hasattr(store, "redis"):
        return None, None
    return store.redis(), store.make_key(_PROCESSES)


def register(process=PROCESS):
    """Note process as alive now, and drop processes silent for longer than TTL: each a command of its
    own on the sorted set, no read and write back, so no other process's heartbeat is lost."""
    client, key = _processes()
    if client is None:
        return
    now = time.time()  # hosts' clocks may differ by a few seconds: a heartbeat is every TTL / 3
    with client.pipeline() as pipe:
        pipe.zadd(key, {process: now})
        pipe.zremrangebyscore(key, "-inf", now - TTL)
        pipe.execute()


def live():
    """The ids of the processes that sent a heartbeat within TTL, this one included."""
    client, key = _processes()
    if client is None:
        return {PROCESS}
    return {member.decode() for member in client.zrangebyscore(key, time.time() - TTL, "+inf")} | {PROCESS}


def people(groups):
    """The people in each room now, in every live process: {group: {person id: name}}."""
    processes = live()
    shares = cache.get_many([_key(group, process) for group in groups for process in processes])
    rooms = {group: {} for group in groups}
    for group in groups:
        for process in processes:
            for person, name in shares.get(_key(group, process), {}).items():
                rooms[group][person] = name or rooms[group].get(person, "")
    return rooms


def here(group):
    """Who is in the room now, as a sentence (for the page as it is first served)."""
    return sentence(people([group])[group])


class Roster:
    """The people behind this process's sockets, by room, and the task that tells the rooms' pages."""

    def __init__(self):
        self.sockets = defaultdict(Counter)  # group -> Counter of (person id, name) over open sockets
        self.changed = set()  # groups whose share here changed since it was last published
        self.fresh = defaultdict(list)  # group -> sockets opened since the last round: told even if nothing changed
        self.said = {}  # group -> the sentence this process's pages of it last got
        self.refreshed = 0.0
        self.wake = asyncio.Event()

    def join(self, group, person, socket):
        """A socket of person opened in the room (its page is told who is here at the next round)."""
        self.sockets[group][(person.tag, person.name if person.named else "")] += 1
        self.fresh[group].append(socket)
        self._note(group)

    def leave(self, group, person):
        """A socket of person closed."""
        self.sockets[group][(person.tag, person.name if person.named else "")] -= 1
        self.sockets[group] = +self.sockets[group]  # drops people with no socket left
        self._note(group)

    def _note(self, group):
        self.changed.add(group)
        self.wake.set()
        services.current().keep_running(TELLER, self._tell_forever)

    async def _tell_forever(self):
        """A round at most every INTERVAL while this process has pages open (others' changes show up
        within one), and none while it has none."""
        loop = asyncio.get_running_loop()
        while True:
            if not self.changed and not any(self.sockets.values()):
                self.wake.clear()
                await self.wake.wait()
            started = loop.time()
            try:
                await self.tell()
            except Exception:  # noqa: BLE001 - the cache's server is away: the next round tries again
                logger.warning("presence: could not publish or read who is here", exc_info=True)
            await asyncio.sleep(max(0.0, INTERVAL - (loop.time() - started)))

    async def tell(self):
        """One round: publish this process's changed shares, then send each room whose sentence changed."""
        changed, self.changed = self.changed, set()
        fresh, self.fresh = self.fresh, defaultdict(list)
        shares = {group: self._share(group) for group in changed}
        open_groups = [group for group, sockets in self.sockets.items() if sockets]
        for group in changed - set(open_groups):
            self.sockets.pop(group, None)
            self.said.pop(group, None)
        loop = asyncio.get_running_loop()
        refresh = loop.time() - self.refreshed > TTL / 3
        if refresh:
            self.refreshed = loop.time()
            shares.update({group: self._share(group) for group in open_groups})
        try:
            rooms = await sync_to_async(_exchange, thread_sensitive=False)(shares, open_groups, refresh)
        except BaseException:
            self.changed |= changed  # published next round
            for group, sockets in fresh.items():
                self.fresh[group] = sockets + self.fresh[group]
            raise
        for group, present in rooms.items():
            line = frames.presence(sentences(present))
            send = {"type": "websocket.send", "text": line}
            if self.said.get(group) != line:
                self.said[group] = line
                await fanout.rooms().deliver(group, send)
            else:  # pages that opened meanwhile were served an older sentence, or none
                for socket in fresh.get(group, ()):
                    await _forward(socket, send)

    def _share(self, group):
        # Sockets in the order they opened: a person's newest name (they renamed, a tab rejoined) wins.
        share = {}
        for person, name in self.sockets.get(group, ()):
            share[person] = name or share.get(person, "")
        return share

    async def withdraw(self):
        """This process is shutting down: its pages are gone, so are its shares (and no round puts them back)."""
        for teller in services.current().running(TELLER):
            teller.cancel()
        groups = list(self.sockets)
        await sync_to_async(_withdraw, thread_sensitive=False)(groups)


async def _forward(socket, send):
    try:
        await socket.forward(send)
    except Exception:  # noqa: BLE001 - a page that closed meanwhile
        logger.debug("presence: a socket could not be sent to", exc_info=True)


def _exchange(shares, groups, refresh):
    """Publish shares ({group: share}, an empty share deleted), then read the rooms in groups."""
    cache.set_many({_key(group, PROCESS): share for group, share in shares.items() if share}, TTL)
    cache.delete_many([_key(group, PROCESS) for group, share in shares.items() if not share])
    if refresh:
        register()
    return people(groups)


def _withdraw(groups):
    cache.delete_many([_key(group, PROCESS) for group in groups])
    client, key = _processes()
    if client is not None:
        client.zrem(key, PROCESS)


def roster():
    """The roster of the running event loop."""
    return services.current().part(Roster)
