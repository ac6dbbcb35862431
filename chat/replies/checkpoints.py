"""Growth checkpoints: the row writes of every reply streaming on an event loop, gathered into batches.

Replies flushing at the same moment share one trip to the database thread and one commit,
instead of queueing behind each other there one by one.
"""

import asyncio
import contextvars

from asgiref.sync import sync_to_async

from chat.loops import per_loop
from chat.models import Message


class Checkpoints:
    """The growth writes waiting on one event loop, and the task that writes them."""

    def __init__(self):
        self.waiting = []  # ((pk, revision, bot, offset, text), future) not yet written
        self.writer = None

    def append(self, pk, revision, bot_key, offset, text):
        """Queue one reply's new text; the future says whether it was written (False: stopped)."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self.waiting.append(((pk, revision, bot_key, offset, text), future))
        if self.writer is None or self.writer.done():
            self.writer = loop.create_task(self._write(), context=contextvars.Context())
        return future

    async def _write(self):
        while self.waiting:
            batch, self.waiting = self.waiting, []
            growths = [growth for growth, _ in batch]
            try:
                try:
                    results = await sync_to_async(Message.objects.append)(growths)
                except Exception:  # noqa: BLE001 - one reply's bad write must not fail the others
                    results = [await _append_alone(growth) for growth in growths]
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


async def _append_alone(growth):
    try:
        (grown,) = await sync_to_async(Message.objects.append)([growth])
        return grown
    except Exception as exc:  # noqa: BLE001 - goes to the one reply it belongs to
        return exc


#: The checkpoints of the running event loop.
checkpoints = per_loop(Checkpoints)
