"""The broadcaster: every change to a Message row becomes one Turbo Stream frame for its room (and
so does a room's new title or topic).

Like turbo-rails' Broadcastable, it hangs off the model's signals, fires after commit and funnels
through one function, ``broadcast``. Views and the reply job never send frames themselves.
"""

import asyncio
import contextlib
import contextvars
import logging

from asgiref.sync import async_to_sync
from django.db import transaction
from django.db.models.signals import post_delete, post_save, pre_save
from django.dispatch import receiver

from bots.models import Room
from bots.registry import get_room
from chat import dom, services
from chat.delivery import fanout, frames
from chat.models import Message, content_appended, row_changed, votes_changed

logger = logging.getLogger(__name__)

_suppressed = contextvars.ContextVar("parley_broadcasts_suppressed", default=False)


@contextlib.contextmanager
def suppressing_broadcasts():
    """Change messages inside the block without telling any page (imports, bulk fixes)."""
    token = _suppressed.set(True)
    try:
        yield
    finally:
        _suppressed.reset(token)


def broadcast(room_key, frame):
    """Send one frame to every page of a room once the current transaction commits."""
    if _suppressed.get() or get_room(room_key) is None:
        return
    transaction.on_commit(lambda: _send(room_key, frame), robust=True)


def _send(room_key, frame):
    # A server: queue it on the event loop and return, so the database thread that wrote the row
    # never waits on the channel layer. A shell or a command has no server loop: send it now.
    if not services.call_soon(lambda: outbox().put(room_key, frame)):
        async_to_sync(abroadcast)(room_key, frame)


async def abroadcast(room_key, frame):
    """Send one frame to every page of a room now (the outbox's sender; tests and benchmarks)."""
    await fanout.publish(get_room(room_key).group, frame)


# Pauses between tries of a frame the channel layer refused, in seconds; then it is given up.
SEND_RETRIES = (0.1, 0.5, 1.0, 2.0)
RESYNC = "resync:"  # the name of the task telling a room's pages to catch up, before the room's key


class Outbox:
    """Frames waiting for the channel layer on one event loop, sent in order by one task per Redis host."""

    def __init__(self):
        self.queues = {}  # the name of the Redis host carrying the room (None: one place) -> its frames

    def put(self, room_key, frame):
        # A queue and a sender per host: while one host is away and its frames wait through their
        # retries, the rooms on the other hosts carry on.
        room = get_room(room_key)
        host = fanout.host_of(room.group) if room is not None else None
        queue = self.queues.setdefault(host, asyncio.Queue())
        services.current().keep_running(f"broadcasts:{host}", lambda: self._send_in_order(queue))
        queue.put_nowait((room_key, frame))

    async def _send_in_order(self, queue):
        """One task sends its queue's frames in rounds: what waited together goes as one message a
        room, the rooms at once; a room's frames keep their order (a round ends before the next)."""
        while True:
            waiting = [await queue.get()]
            while not queue.empty():
                waiting.append(queue.get_nowait())
            rooms = {}
            for room_key, frame in waiting:
                rooms.setdefault(room_key, []).append(frame)
            try:
                # One frame at a time, a layer round trip each, fell behind at 200 frames a second
                # while pages loaded: 166 frames (0.8 s) queued here. A page applies a message of
                # several frames in order, as it does the fan-out's own batches.
                await asyncio.gather(*(self._send_with_retries(room_key, "".join(frames)) for room_key, frames in rooms.items()))
            finally:
                for _ in waiting:
                    queue.task_done()

    async def _send_with_retries(self, room_key, frame):
        here = services.current()
        for pause in (*SEND_RETRIES, None):
            if here.is_running(RESYNC + room_key):
                return  # the room's pages will catch up from the database: this frame is moot
            try:
                return await abroadcast(room_key, frame)
            except Exception:  # noqa: BLE001 - the layer's server is away; try again, then resync
                if pause is None:
                    logger.exception("could not send a frame to %s; its pages will catch up instead", room_key)
                    here.keep_running(RESYNC + room_key, lambda: _resync(room_key))
                    return
                await asyncio.sleep(pause)

    async def flush(self, timeout):
        """Wait until the queued frames are sent or given up, at most timeout seconds."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await asyncio.gather(*(queue.join() for queue in list(self.queues.values())))


async def _resync(room_key):
    """A frame of the room was lost: when the layer is back, every page of the room reconnects and
    catches up from the database (growth gaps repair themselves, a lost final frame would not)."""
    while True:
        try:
            return await fanout.resync(get_room(room_key).group)
        except Exception:  # noqa: BLE001 - still away
            await asyncio.sleep(1)


def outbox():
    """The frames waiting on the running event loop."""
    return services.current().part(Outbox)


@receiver(post_save, sender=Message)
def message_saved(sender, instance, created, **kwargs):
    broadcast(instance.room, frames.prepend(instance) if created else frames.replace(instance))


@receiver(row_changed, sender=Message)
def message_changed(sender, instance, **kwargs):
    broadcast(instance.room, frames.current(instance))


@receiver(votes_changed, sender=Message)
def votes_counted(sender, instance, **kwargs):
    broadcast(instance.room, frames.feedback(instance))


@receiver(content_appended, sender=Message)
def message_grew(sender, message_id, room, offset, text, **kwargs):
    broadcast(room, frames.grow(message_id, offset, text))


@receiver(post_delete, sender=Message)
def message_deleted(sender, instance, **kwargs):
    broadcast(instance.room, frames.remove(instance))


@receiver(pre_save, sender=Room)
def heading_saving(sender, instance, update_fields=None, **kwargs):
    """Note which of the room's title and topic this save changes, for heading_saved."""
    written = [name for name in ("title", "topic") if update_fields is None or name in update_fields]
    before = Room.objects.filter(pk=instance.pk).values(*written).first() if instance.pk is not None and written else None
    instance._new_heading = [name for name in written if before is not None and before[name] != getattr(instance, name)]


@receiver(post_save, sender=Room)
def heading_saved(sender, instance, **kwargs):
    """A new title or topic (the members page's, or the admin's) shows on the room's open pages."""
    changed = getattr(instance, "_new_heading", [])
    if changed:
        broadcast(instance.key, frames.heading(instance, changed))
