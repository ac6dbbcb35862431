"""Growth checkpoints: the row writes of every reply streaming on an event loop, gathered into batches.

Replies flushing at the same moment share one trip to the database and one commit, instead of
queueing behind each other one by one. The writes have a thread and a connection of their own:
behind the one thread every other database call of the loop shares, a reply's first words would
wait for the posts, claims and page loads of every other room.
"""

import asyncio
from concurrent.futures import ThreadPoolExecutor

from asgiref.sync import sync_to_async
from django.db import Error, close_old_connections, connection, connections

from chat import services
from chat.models import Message


def _write(growths):
    """Message.objects.append on the growth thread; a connection a failure left broken is replaced next time."""
    try:
        return Message.objects.append(growths)
    except Error:  # DatabaseError, and InterfaceError (a connection already closed)
        connection.close()
        raise


class Checkpoints:
    """The growth writes waiting on one event loop, the task that writes them, and their thread."""

    def __init__(self):
        self.waiting = []  # ((pk, revision, room, offset, text), future) not yet written
        self.thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="parley-growth")

    def append(self, pk, revision, room_key, offset, text):
        """Queue one reply's new text; the future says whether it was written (False: stopped)."""
        future = asyncio.get_running_loop().create_future()
        self.waiting.append(((pk, revision, room_key, offset, text), future))
        services.current().keep_running("growth-writes", self._write_waiting)
        return future

    def on_thread(self, function):
        """function, awaitable, run on the growth thread."""
        return sync_to_async(function, thread_sensitive=False, executor=self.thread)

    async def close_connection(self):
        """Close the growth thread's database connection (at shutdown; tests, before the test database goes)."""
        await self.on_thread(connections.close_all)()

    async def close_old_connection(self):
        """Let the growth thread's connection go if it broke or aged out (CONN_MAX_AGE): the sweep's upkeep."""
        await self.on_thread(close_old_connections)()

    def close(self):
        """The loop is gone: so is the thread (its connection closes with it)."""
        self.thread.shutdown(wait=False)

    async def _write_waiting(self):
        write = self.on_thread(_write)
        while self.waiting:
            batch, self.waiting = self.waiting, []
            growths = [growth for growth, _ in batch]
            try:
                try:
                    results = await write(growths)
                except Exception:  # noqa: BLE001 - one reply's bad write must not fail the others
                    results = [await _append_alone(write, growth) for growth in growths]
            except BaseException as exc:  # cancelled: every waiting reply hears of it
                _settle(batch, [exc] * len(batch))
                raise
            _settle(batch, results)


def _settle(batch, results):
    for (_, future), result in zip(batch, results):
        if future.done():
            continue
        if isinstance(result, BaseException):
            future.set_exception(result)
        else:
            future.set_result(result)


async def _append_alone(write, growth):
    try:
        (grown,) = await write([growth])
        return grown
    except Exception as exc:  # noqa: BLE001 - goes to the one reply it belongs to
        return exc


def here():
    """The running loop's checkpoints."""
    return services.current().part(Checkpoints)
