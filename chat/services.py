"""This process's services: everything it keeps while it serves, one object per event loop.

A server process serves on one event loop; tests run a new one per test. Every piece of state
that holds tasks, queues, locks, threads or connections is a *part* of the ``Services`` of the
loop it belongs to (the room fan-out, presence, the frames on their way out, the growth writes,
the room workers and the replies they read), built on first use with ``part`` and never
outliving its loop. Background tasks run under ``keep_running``, the one place a task that
ended is started again. Synchronous work (the database) leaves the loop by ``run``, on a named
lane of its own: the reply job's lanes never queue behind the one thread Django gives every
synchronous view. This module's registry of loops is the only module-level state that changes.

Views and signal receivers run in worker threads. ``call_soon`` hands a function to the loop the
process serves on without waiting for it; that loop is noted from Django's ``request_started``
signal (its async receivers run on the loop that serves the request) and by the ASGI wrapper
before the first page or socket. asgiref keeps its own note of that loop, but only in a private
attribute (``SyncToAsync.threadlocal``); this is the public way to the same thing.
"""

import asyncio
import contextlib
import contextvars
import threading
from concurrent.futures import ThreadPoolExecutor

from asgiref.sync import ThreadSensitiveContext, sync_to_async
from django.conf import settings
from django.core.signals import request_started
from django.db import Error, connection
from django.dispatch import receiver

_registry = {}  # event loop -> its Services (which hold the loop: so no weak keys, but a purge)
_registry_lock = threading.Lock()


class Services:
    """The parts and background tasks of this process on one event loop."""

    def __init__(self, loop):
        self.loop = loop
        self.serving = False  # the loop this process serves its pages and sockets on
        self.parts = {}  # (factory, *arguments) -> the one instance built on this loop
        self.tasks = {}  # name -> the background task of that name

    def part(self, factory, *arguments):
        """factory(*arguments), built once on this loop (the fan-out of a channel layer, the outbox...)."""
        key = (factory, *arguments)
        if key not in self.parts:
            self.parts[key] = factory(*arguments)
        return self.parts[key]

    def keep_running(self, name, start):
        """The task called name, started from start() unless one of that name still runs."""
        task = self.tasks.get(name)
        if task is None or task.done():
            task = self._start(name, start)
        return task

    def start_once(self, name, start):
        """The task called name, started from start() the first time it is asked for, never again."""
        return self.tasks[name] if name in self.tasks else self._start(name, start)

    def _start(self, name, start):
        # A fresh context: a task started from a request must not inherit its (soon dead) state.
        task = self.tasks[name] = self.loop.create_task(start(), name=name, context=contextvars.Context())
        return task

    def is_running(self, name):
        """Whether the task called name runs."""
        task = self.tasks.get(name)
        return task is not None and not task.done()

    def running(self, prefix=""):
        """The background tasks whose names start with prefix that have not ended."""
        return [task for name, task in self.tasks.items() if name.startswith(prefix) and not task.done()]

    def close(self):
        """The loop closed: let every part that holds a thread or a connection go."""
        for part in self.parts.values():
            if hasattr(part, "close"):
                part.close()


class Lane:
    """One named thread of a loop, with its own database connection, for synchronous work in turn."""

    def __init__(self, name):
        self.thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"parley-{name}")

    def run(self, function, *args, **kwargs):
        """function(*args, **kwargs) on this lane's thread, awaitable."""
        return _on(self.thread, function, *args, **kwargs)

    def threads(self):
        return [self.thread]

    def close(self):
        """The loop is gone: so is the thread (its connection closes with it)."""
        self.thread.shutdown(wait=False)


class Views:
    """The few long-lived threads Django's synchronous code (views, middleware) runs on: each
    request on the least busy one, so a slow query holds up only the requests behind it there."""

    def __init__(self, count):
        self.executors = [ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"parley-views{i}") for i in range(count)]
        self.busy = [0] * count

    @contextlib.asynccontextmanager
    async def lane(self):
        index = min(range(len(self.busy)), key=self.busy.__getitem__)
        self.busy[index] += 1
        try:
            async with ThreadSensitiveContext(executor=self.executors[index]):
                yield
        finally:
            self.busy[index] -= 1

    def threads(self):
        return self.executors

    def close(self):
        for executor in self.executors:
            executor.shutdown(wait=False)


def _on(executor, function, *args, **kwargs):
    return sync_to_async(_healing, thread_sensitive=False, executor=executor)(function, *args, **kwargs)


def _healing(function, *args, **kwargs):
    try:
        return function(*args, **kwargs)
    except Error:  # DatabaseError, or InterfaceError: a connection left broken is replaced next time
        connection.close()
        raise


# The lanes, by what waits on them: the reply job's reads and ends, its growth writes, its prompts.
# Pages and posts have threads of their own (``views_lane``).
LANES = ("replies", "growth", "prompts")


def run(lane, function, *args, **kwargs):
    """Await function(*args, **kwargs) on the running loop's thread called lane (one of LANES).

    A lane runs one call at a time, in order, on a connection of its own: the reply job's reads
    and writes never wait for page loads, posts or admin pages, which share Django's one thread.
    """
    if lane not in LANES:
        raise ValueError(f"no lane called {lane!r}: use one of {', '.join(LANES)}")
    return current().part(Lane, lane).run(function, *args, **kwargs)


def views_lane():
    """A context in which Django's thread-sensitive code (sync views, middleware) runs on one of
    VIEW_THREADS long-lived threads.

    Django would otherwise start a thread for each request, with a new database connection each
    time; a kept thread keeps its connection (CONN_MAX_AGE).
    """
    return current().part(Views, settings.VIEW_THREADS).lane()


async def on_every_lane(function):
    """function() once on each lane the running loop has opened (their connections: upkeep, shutdown)."""
    threads = [thread for part in current().parts.values() if isinstance(part, (Lane, Views)) for thread in part.threads()]
    await asyncio.gather(*(_on(thread, function) for thread in threads))


def current():
    """The Services of the running event loop, made on first use there."""
    loop = asyncio.get_running_loop()
    with _registry_lock:
        services = _registry.get(loop)
        if services is None:
            for closed in [old for old in _registry if old.is_closed()]:
                _registry.pop(closed).close()
            services = _registry[loop] = Services(loop)
        return services


def serve_here():
    """Note that this process serves on the running loop."""
    current().serving = True


def serving():
    """The Services of the loop this process serves on, or None outside a server (a shell, a command, a sync test)."""
    with _registry_lock:
        found = [services for loop, services in _registry.items() if services.serving and loop.is_running()]
    return found[-1] if found else None


def call_soon(callback, *args):
    """Run callback(*args) on the serving loop without waiting for it; False when there is no such loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:  # called on a loop: it is the one this code serves on
        callback(*args)
        return True
    services = serving()
    if services is None:
        return False
    services.loop.call_soon_threadsafe(callback, *args)
    return True


@receiver(request_started)
async def _note_serving_loop(sender, **kwargs):
    serve_here()
