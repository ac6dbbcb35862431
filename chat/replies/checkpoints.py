"""Growth checkpoints: the row writes of every reply streaming on an event loop, gathered into batches.

Replies flushing at the same moment share one trip to the database and one commit, instead of
queueing behind each other one by one. The writes have a lane of their own (``services.run``):
behind Django's one thread for views, or behind the replies' reads, a reply's words would wait
for the posts, claims and page loads of every other room.
"""

import asyncio

from chat import services
from chat.models import Message

LANE = "growth"


class Checkpoints:
    """The growth writes waiting on one event loop, and the task that writes them."""

    def __init__(self):
        self.waiting = []  # ((pk, revision, room, offset, text), future) not yet written

    def append(self, pk, revision, room_key, offset, text):
        """Queue one reply's new text; the future says whether it was written (False: stopped)."""
        future = asyncio.get_running_loop().create_future()
        self.waiting.append(((pk, revision, room_key, offset, text), future))
        services.current().keep_running("growth-writes", self._write_waiting)
        return future

    async def _write_waiting(self):
        while self.waiting:
            batch, self.waiting = self.waiting, []
            growths = [growth for growth, _ in batch]
            try:
                try:
                    results = await _write(growths)
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


def _write(growths):
    return services.run(LANE, Message.objects.append, growths)


async def _append_alone(growth):
    try:
        (grown,) = await _write([growth])
        return grown
    except Exception as exc:  # noqa: BLE001 - goes to the one reply it belongs to
        return exc


def here():
    """The running loop's checkpoints."""
    return services.current().part(Checkpoints)
