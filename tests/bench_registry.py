"""Benchmark: the registry lookups a post and its reply make, rows against the code-defined dicts they replaced.

    ./parley bench-registry [--rooms 1000] [--bots 20]

Makes a throw-away SQLite database with the seed's bots and rooms plus --rooms rooms and --bots bots,
then times, side by side in one run: the lookups of one reply through bots/registry.py (its cached
copy of the rows; with REGISTRY_CHECK_INTERVAL=0, asking the shared cache at every look), the same
lookups in plain module-level dicts as the registry was before bots and rooms were rows, and one
reading of the rows after an edit. Exits 1 if a cached lookup made a database query.
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
WORK = tempfile.mkdtemp(prefix="parley-bench-registry-")
os.environ["DATABASE_URL"] = f"sqlite:///{WORK}/bench.sqlite3"
os.environ.pop("REDIS_URL", None)  # the in-process cache: this times the app's code, not a network
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")

import django  # noqa: E402


def reply_lookups(registry):
    """What a post in a room and its reply ask: the room, its answerers, each bot, the composer's bots."""
    room = registry.get_room("BenchRoom0007")
    bots = room.answerers("@PirateBot and @bellebot, a word")
    return room.group, registry.find_bot(bots[0].key).persona, registry.get_bot("BelleBot").name, len(registry.bots())


class Dicts:
    """The registry as it was: module-level dicts built once from code (here, from the same rows)."""

    def __init__(self, catalog, mentioned):
        self.rooms_by_key, self.bots_by_key, self.by_lower, self.mention = (
            catalog.rooms, catalog.bots, catalog.bots_by_lower_key, mentioned
        )
        self.active = [bot for bot in catalog.bots.values() if bot.active]

    def get_room(self, key):
        return self.rooms_by_key.get(key)

    def find_bot(self, key):
        return self.bots_by_key.get(key)

    get_bot = find_bot

    def bots(self):
        return self.active

    def mentioned(self, content):
        found = []
        for key in self.mention.findall(content):
            bot = self.by_lower.get(key.lower())
            if bot is not None and bot not in found:
                found.append(bot)
        return found


def per_call_us(function, calls):
    """Median over 7 rounds of the microseconds one call takes."""
    rounds = []
    for _ in range(7):
        started = time.perf_counter()
        for _ in range(calls):
            function()
        rounds.append((time.perf_counter() - started) / calls * 1e6)
    return statistics.median(rounds)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rooms", type=int, default=1000)
    parser.add_argument("--bots", type=int, default=20)
    options = parser.parse_args()
    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from bots import registry
    from bots.models import Bot, Room

    call_command("migrate", verbosity=0)
    bots = Bot.objects.bulk_create(
        Bot(key=f"BenchBot{i:03d}", name=f"Bench {i}", persona=f"You are bench bot {i}.") for i in range(options.bots)
    )
    Room.objects.bulk_create(
        Room(key=f"BenchRoom{i:04d}", title=f"Room {i}", bot=bots[i % len(bots)] if bots else None) for i in range(options.rooms)
    )
    registry.changed()
    lookups = lambda: reply_lookups(registry)  # noqa: E731
    lookups()  # the first look reads the rows
    room_of_dicts = Dicts(registry.shelf().current(), registry.MENTION)

    def dict_lookups():
        room = room_of_dicts.get_room("BenchRoom0007")
        bots_ = room_of_dicts.mentioned("@PirateBot and @bellebot, a word") or [room.bot]
        return (room.group, room_of_dicts.find_bot(bots_[0].key).persona, room_of_dicts.get_bot("BelleBot").name,
                len(room_of_dicts.bots()))

    assert dict_lookups() == lookups()
    with CaptureQueriesContext(connection) as cached:
        rows_us = per_call_us(lookups, 20_000)
        settings.REGISTRY_CHECK_INTERVAL = 0
        checking_us = per_call_us(lookups, 5_000)
        settings.REGISTRY_CHECK_INTERVAL = 0.5
    dicts_us = per_call_us(dict_lookups, 20_000)

    reads = []
    for _ in range(7):
        registry.changed()
        started = time.perf_counter()
        lookups()
        reads.append((time.perf_counter() - started) * 1e3)

    print(f"{options.rooms + 4} rooms, {options.bots + 3} bots; one reply's registry lookups (median of 7 rounds):")
    print(f"  before, code-defined dicts:                         {dicts_us:7.2f} us")
    print(f"  after, rows through the cached copy (0.5 s checks): {rows_us:7.2f} us")
    print(f"  after, asking the shared cache at every look:       {checking_us:7.2f} us")
    print(f"  after an edit, reading the rows again once:         {statistics.median(reads):7.2f} ms")
    print(f"  database queries made by cached lookups:            {len(cached.captured_queries)}")
    return 1 if cached.captured_queries else 0


if __name__ == "__main__":
    sys.exit(main())
