"""Per-process state that belongs to an event loop, and the hop from a worker thread onto the server's loop.

A server process runs one event loop; tests run a new one per test. State that holds tasks,
queues or locks (the fan-out, the growth writes, the streaming slots, the outgoing frames) is
built once per loop with ``per_loop`` and never outlives it.

Views and signal receivers run in worker threads. ``call_soon`` hands a function to the loop the
process serves on without waiting for it; the loop is noted from Django's ``request_started``
signal (its async receivers run on the loop that serves the request) and by the ASGI wrapper
before the first page or socket. asgiref keeps its own note of that loop, but only in a private
attribute (``SyncToAsync.threadlocal``); this is the public way to the same thing.
"""

import asyncio
import threading

from django.core.signals import request_started
from django.dispatch import receiver

_serving = None  # the event loop this process serves requests on


def per_loop(build):
    """A function that returns build()'s result for the running event loop, built on first use there."""
    made = {}  # event loop -> its state (which may hold the loop: so no weak keys, but a purge)
    lock = threading.Lock()

    def current():
        loop = asyncio.get_running_loop()
        with lock:
            if loop not in made:
                for closed in [old for old in made if old.is_closed()]:
                    del made[closed]
                made[loop] = build()
            return made[loop]

    return current


def serving(loop):
    """Note the loop this process serves on."""
    global _serving
    _serving = loop


def serving_loop():
    """The loop this process serves on, or None outside a server (a shell, a command, a sync test)."""
    loop = _serving
    return loop if loop is not None and loop.is_running() else None


def call_soon(callback, *args):
    """Run callback(*args) on the serving loop without waiting for it; False when there is no such loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:  # called on a loop: it is the one this code serves on
        callback(*args)
        return True
    loop = serving_loop()
    if loop is None:
        return False
    loop.call_soon_threadsafe(callback, *args)
    return True


@receiver(request_started)
async def _note_serving_loop(sender, **kwargs):
    serving(asyncio.get_running_loop())
