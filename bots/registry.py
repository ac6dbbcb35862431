"""The one place the code asks for bots, rooms, mentions and answerers: rows, read through a per-process copy.

Each process keeps the rows as frozen snapshots and asks the shared cache at most every
REGISTRY_CHECK_INTERVAL seconds whether they changed: a save or delete of a bot or room sets a new
version there (after commit), and the next look in every process reads the rows again. In the
steady state a lookup costs no database query and no network round trip.
"""

import asyncio
import concurrent.futures
import functools
import logging
import re
import threading
import time
import uuid
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.db import connections, transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from django.http import Http404

from bots import models

logger = logging.getLogger(__name__)

VERSION_KEY = "bots.registry.version"


@dataclass(frozen=True)
class Bot:
    """A personality as its row says: its key (how a message mentions it: @PirateBot), names, persona and model."""

    key: str
    name: str
    description: str
    persona: str
    provider: str = ""
    model: str = ""
    base_url: str = ""
    api_key_env: str = ""
    temperature: float | None = None
    max_tokens: int | None = None
    context_tokens: int | None = None
    active: bool = True


@dataclass(frozen=True)
class Room:
    """A live room as its row says: its key (its name in URLs), title, topic, its own (active) bot and who may enter."""

    id: int
    key: str
    title: str
    topic: str
    bot: Bot | None = None
    visibility: str = models.Room.Visibility.PUBLIC

    @property
    def group(self):
        """The Channels group every page of the room listens on."""
        return f"{self.key}.messages"

    @property
    def public(self):
        """True when anyone, guests included, may enter."""
        return self.visibility == models.Room.Visibility.PUBLIC

    def answerers(self, content):
        """The bots that answer a message, in order: the active ones it mentions, else the room's own bot, if any."""
        return mentioned(content) or ([self.bot] if self.bot is not None else [])


@dataclass(frozen=True)
class Catalog:
    """Every bot and room at one version of the rows."""

    version: str | None
    bots: dict  # key -> Bot, inactive ones too (their old replies keep their names)
    active: tuple  # the active bots, in the order they were made
    bots_by_lower_key: dict  # lower-cased key -> active Bot, for mentions
    rooms: dict  # key -> Room
    rooms_by_id: dict  # row id -> Room
    public: tuple  # the public rooms, in the order they were made


# The row's fields in the order of the Bot snapshot's.
BOT_FIELDS = ("key", "name", "description", "persona", "provider", "model", "base_url", "api_key_env", "temperature",
              "max_tokens", "context_tokens", "active")
ROOM_FIELDS = ("pk", "key", "title", "topic", "bot_id", "visibility")


def _read(version):
    """The rows as a Catalog: two queries, read as plain values (a thousand rooms in a few milliseconds)."""
    bots, bots_by_pk = {}, {}
    for pk, *fields in models.Bot.objects.order_by("pk").values_list("pk", *BOT_FIELDS):
        bots_by_pk[pk] = bots[fields[0]] = Bot(*fields)
    # A room whose bot is inactive has, for now, no bot of its own: pages, the API and answers agree.
    active_by_pk = {pk: bot for pk, bot in bots_by_pk.items() if bot.active}
    rooms = {
        key: Room(id=pk, key=key, title=title, topic=topic, bot=active_by_pk.get(bot_pk), visibility=visibility)
        for pk, key, title, topic, bot_pk, visibility in models.Room.objects.order_by("pk").values_list(*ROOM_FIELDS)
    }
    active = tuple(bot for bot in bots.values() if bot.active)
    public = tuple(room for room in rooms.values() if room.public)
    by_id = {room.id: room for room in rooms.values()}
    return Catalog(version, bots, active, {bot.key.lower(): bot for bot in active}, rooms, by_id, public)


def _read_off_the_loop(version):
    """Read the rows; on an event loop's thread (a socket connecting, a reply starting), on a thread of
    their own, since the ORM refuses to run on a loop: rare, only after a change."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return _read(version)
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="registry") as pool:
        return pool.submit(_read_and_close, version).result()


def _read_and_close(version):
    try:
        return _read(version)
    finally:
        connections.close_all()  # the thread ends here: its connections must not outlive it


class Shelf:
    """This process's copy of the rows, and when it last asked the shared cache whether they changed."""

    def __init__(self):
        self.catalog = None
        self.checked = float("-inf")
        self.lock = threading.Lock()

    def current(self):
        """The catalog in force: the copy, read again when the shared version moved."""
        catalog, now = self.catalog, time.monotonic()
        if catalog is not None and now - self.checked < settings.REGISTRY_CHECK_INTERVAL:
            return catalog
        version = _shared_version()
        if catalog is None or version is None or version != catalog.version:
            with self.lock:
                catalog = self.catalog
                if catalog is None or version is None or version != catalog.version:  # not read meanwhile
                    # The version is read before the rows: a change between the two costs one more read.
                    catalog = self.catalog = _read_off_the_loop(version)
        self.checked = now
        return catalog

    def forget(self):
        """Drop the copy: the next look reads the rows."""
        self.catalog = None


@functools.cache
def shelf():
    """The one Shelf of this process."""
    return Shelf()


def _shared_version():
    """The rows' version every process agrees on, or None when the shared cache cannot say."""
    try:
        version = cache.get(VERSION_KEY)
        if version is None:  # first look since the cache started (or lost it): agree on one
            cache.add(VERSION_KEY, uuid.uuid4().hex, timeout=None)
            version = cache.get(VERSION_KEY)
        return version
    except Exception:  # noqa: BLE001 - the cache away: read the rows at each check rather than serve a stale copy
        logger.warning("the shared cache did not answer; reading bots and rooms from the database", exc_info=True)
        return None


def changed():
    """Tell every process the rows changed: this one at once, the others once the change is committed."""
    shelf().forget()

    def publish():
        shelf().forget()
        try:
            cache.set(VERSION_KEY, uuid.uuid4().hex, timeout=None)
        except Exception:  # noqa: BLE001 - a save must not fail for it; other processes see it once the cache is back
            logger.warning("could not tell other processes that bots or rooms changed", exc_info=True)

    transaction.on_commit(publish)


@receiver([post_save, post_delete], sender=models.Bot)
@receiver([post_save, post_delete], sender=models.Room)
def _row_changed(sender, **kwargs):
    changed()


def bots():
    """The bots a person may call (the active ones), in the order they were made."""
    return shelf().current().active


def rooms():
    """Every room, in the order they were made (who may enter which is the access check's to say)."""
    return list(shelf().current().rooms.values())


def get_bot(key):
    """The active bot under key, or None: what a request may call. Keys are looked up, never imported."""
    bot = find_bot(key)
    return bot if bot is not None and bot.active else None


def get_bot_or_404(key):
    """The active bot under key, or Http404 saying there is none: for views, like get_object_or_404."""
    return _or_404(get_bot(key), key, "bot")


def find_bot(key):
    """The bot under key, active or not, or None: for naming old replies and finishing replies already asked for."""
    return shelf().current().bots.get(key) if isinstance(key, str) else None


def public_rooms():
    """The public rooms, in the order they were made."""
    return shelf().current().public


def rooms_by_id(ids):
    """The rooms whose row ids are among ids (an id of no room is left out), in ids' order."""
    by_id = shelf().current().rooms_by_id
    return [by_id[pk] for pk in ids if pk in by_id]


def get_room(key):
    """The room under key, or None."""
    return shelf().current().rooms.get(key) if isinstance(key, str) else None


def get_room_or_404(key):
    """The room under key, or Http404 saying there is none."""
    return _or_404(get_room(key), key, "room")


def _or_404(entry, key, kind):
    if entry is None:
        raise Http404(f"There is no {kind} called {str(key)[:40]!r}.")
    return entry


# A mention is @ and a bot key, not inside a word or an e-mail address ("me@PirateBot.com" calls no one).
MENTION = re.compile(r"(?<![\w@.])@(\w+)(?![\w@]|\.\w)")


def mentioned(content):
    """The active bots a message mentions (@Key, any case), each once, in the order first mentioned."""
    by_lower_key, found = shelf().current().bots_by_lower_key, []
    for key in MENTION.findall(content):
        bot = by_lower_key.get(key.lower())
        if bot is not None and bot not in found:
            found.append(bot)
    return found
