"""The broadcaster: every change to a Message row becomes one Turbo Stream frame for its room.

Like turbo-rails' Broadcastable, it hangs off the model's signals, fires after commit and funnels
through one function, ``broadcast``. Views and the reply job never send frames themselves.
"""

import asyncio
import contextlib
import contextvars
import logging

from asgiref.sync import SyncToAsync, async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from bots.registry import get_bot

from . import frames
from .models import Message, content_appended, row_changed

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


def broadcast(bot_key, frame):
    """Send one frame to every page of a room once the current transaction commits."""
    if _suppressed.get() or get_bot(bot_key) is None:
        return
    transaction.on_commit(lambda: _send(bot_key, frame), robust=True)


def _send(bot_key, frame):
    loop = getattr(SyncToAsync.threadlocal, "main_event_loop", None)
    if loop is None or loop.is_closed():
        async_to_sync(abroadcast)(bot_key, frame)  # a shell or a command: no server loop to hand it to
    else:
        # A server: queue it on the event loop and return, so the database thread that wrote the
        # row never waits on the channel layer.
        loop.call_soon_threadsafe(_outbox, bot_key, frame)


_sending = None  # (event loop, queue, task): frames waiting for the channel layer, in order
_resyncing = {}  # bot key -> the task that tells the room's pages to catch up once the layer is back

# Pauses between tries of a frame the channel layer refused, in seconds; then it is given up.
SEND_RETRIES = (0.1, 0.5, 1.0, 2.0)


def _outbox(bot_key, frame):
    global _sending
    loop = asyncio.get_running_loop()
    if _sending is None or _sending[0] is not loop or _sending[2].done():
        queue = asyncio.Queue()
        task = loop.create_task(_send_in_order(queue), name="broadcasts", context=contextvars.Context())
        _sending = (loop, queue, task)
    _sending[1].put_nowait((bot_key, frame))


async def _send_in_order(queue):
    """One task sends every queued frame, one after another: a room's frames keep their order."""
    while True:
        bot_key, frame = await queue.get()
        try:
            await _send_with_retries(bot_key, frame)
        finally:
            queue.task_done()


async def _send_with_retries(bot_key, frame):
    for pause in (*SEND_RETRIES, None):
        if bot_key in _resyncing:
            return None  # the room's pages will catch up from the database: this frame is moot
        try:
            return await abroadcast(bot_key, frame)
        except Exception:  # noqa: BLE001 - the layer's server is away; try again, then resync
            if pause is None:
                logger.exception("could not send a frame to %s; its pages will catch up instead", bot_key)
                _resyncing[bot_key] = asyncio.get_running_loop().create_task(
                    _resync(bot_key), context=contextvars.Context()
                )
                return None
            await asyncio.sleep(pause)


async def _resync(bot_key):
    """A frame of the room was lost: when the layer is back, every page of the room reconnects and
    catches up from the database (growth gaps repair themselves, a lost final frame would not)."""
    group = get_bot(bot_key).group
    try:
        while True:
            try:
                # An empty frame rides along: a process of the previous release hands it out as nothing.
                message = {"type": "turbo.stream", "group": group, "frame": "", "resync": True}
                return await get_channel_layer().group_send(group, message)
            except Exception:  # noqa: BLE001 - still away
                await asyncio.sleep(1)
    finally:
        _resyncing.pop(bot_key, None)


async def flush(timeout):
    """Wait until this process's queued frames are sent or given up (shutdown), at most timeout seconds."""
    if _sending is not None and _sending[0] is asyncio.get_running_loop() and not _sending[2].done():
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await _sending[1].join()


async def abroadcast(bot_key, frame):
    """Send one frame to every page of a room now (for changes that are not rows, like presence)."""
    group = get_bot(bot_key).group
    # The group rides along: a process's one fan-out channel receives the frames of every room.
    await get_channel_layer().group_send(group, {"type": "turbo.stream", "group": group, "frame": frame})


@receiver(post_save, sender=Message)
def message_saved(sender, instance, created, **kwargs):
    broadcast(instance.bot, frames.prepend(instance) if created else frames.replace(instance))


@receiver(row_changed, sender=Message)
def message_changed(sender, instance, **kwargs):
    broadcast(instance.bot, frames.replace(instance))


@receiver(content_appended, sender=Message)
def message_grew(sender, message_id, bot, offset, text, **kwargs):
    broadcast(bot, frames.grow(message_id, offset, text))


@receiver(post_delete, sender=Message)
def message_deleted(sender, instance, **kwargs):
    broadcast(instance.bot, frames.remove(instance.dom_id))
