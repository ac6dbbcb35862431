"""Who is here: how many pages each room has open, across processes.

Each process publishes its own count per room (the fan-out knows it) in the shared cache with a
short lifetime, refreshed by the sweep loop; a room's total is the sum over live processes. A
process that dies stops refreshing, and its share expires instead of haunting the count.
"""

import uuid

from django.core.cache import cache

PROCESS = uuid.uuid4().hex[:12]
TTL = 60  # seconds a process's count outlives its last refresh
_PROCESSES = "parley:presence:processes"


def _key(group, process):
    return f"parley:presence:{group}:{process}"


def publish(group, local):
    """This process has `local` pages of the room open; returns the room's total."""
    cache.set(_key(group, PROCESS), local, TTL)
    processes = cache.get(_PROCESSES, set())
    if PROCESS not in processes:
        cache.set(_PROCESSES, processes | {PROCESS}, None)
    return here(group)


def refresh(counts):
    """Keep this process's counts (group -> pages) alive, and forget processes whose shares expired."""
    for group, local in counts.items():
        cache.set(_key(group, PROCESS), local, TTL)
    processes = cache.get(_PROCESSES, set())
    alive = {p for p in processes if any(cache.get(_key(group, p)) is not None for group in _groups())}
    if alive | {PROCESS} != processes:  # also puts this process back if another dropped it
        cache.set(_PROCESSES, alive | {PROCESS}, None)


def withdraw(groups):
    """This process is shutting down: its pages are gone, so are its shares."""
    cache.delete_many([_key(group, PROCESS) for group in groups])
    cache.set(_PROCESSES, cache.get(_PROCESSES, set()) - {PROCESS}, None)


def here(group):
    """Pages open in the room now, in every live process."""
    processes = cache.get(_PROCESSES, set()) | {PROCESS}
    return sum(cache.get_many([_key(group, p) for p in processes]).values())


def _groups():
    from bots.registry import BOTS

    return [bot.group for bot in BOTS.values()]
