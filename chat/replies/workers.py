"""Room workers: one reply at a time per room, pending replies answered oldest first.

The job belongs to no request: a POST saves a pending reply and calls ``request_reply``; this
process's worker for the room (a background task of the loop's services, ``reply:<room>``)
claims the room's pending replies one by one and hands each to a ``Writer``. Stop, shutdown and
the sweep reach replies through their rows.
"""

import asyncio
import contextlib
import logging
import time

from django.conf import settings
from django.db import DatabaseError
from django.utils.translation import gettext_noop

from bots.providers import ProviderError
from bots.registry import find_bot
from chat import services
from chat.models import ROOM_BUSY, Message
from chat.replies.reading import PARLEY_FAILED, configured_provider
from chat.replies.writer import LANE, Writer, heartbeat_interval

logger = logging.getLogger(__name__)

# A room busy with another process's reply is looked at again this often, in seconds.
ROOM_BUSY_POLL = 0.25
TASK = "reply:"  # the name of a room's worker task, before the room's key
BOT_GONE = gettext_noop("The bot %(bot)s no longer exists here.")  # stored on the reply, translated as shown (chat.wording)


class RoomWorkers:
    """This loop's room workers: the rooms asked for, the streaming slots, and the replies being read."""

    def __init__(self):
        self.wanted = set()  # rooms asked for since their worker last looked
        # A cap on the room replies this process streams at once (stateless ones have their own).
        self.slots = asyncio.Semaphore(settings.MAX_STREAMING_REPLIES)
        self.reading = {}  # reply pk -> the task reading its upstream, which Stop cancels


def here():
    """The running loop's room workers."""
    return services.current().part(RoomWorkers)


def request_reply(room_key):
    """Make this process answer the room's pending replies in order; safe from the loop or a worker thread.

    Outside a server (a shell, a management command) there is no event loop to run the job on:
    a live server's sweep picks the pending reply up instead.
    """
    if not services.call_soon(_start, room_key):
        logger.info("no event loop in this process: a server's sweep will answer %s", room_key)


def _start(room_key):
    here().wanted.add(room_key)
    services.current().keep_running(TASK + room_key, lambda: _answer_room(room_key))


def answer_waiting(room_keys):
    """Start this process's workers for rooms whose pending replies nobody may be answering."""
    for room_key in room_keys:
        _start(room_key)


def stop(pk):
    """Stop reply pk wherever it streams: its row tells every process, and this process closes its
    upstream at once. False if it had already ended."""
    if Message.objects.stop(pk) is None:
        return False
    stop_here(pk)
    return True


def stop_here(pk):
    """Close a stopped reply's upstream now if it streams in this process (others notice via the row)."""
    services.call_soon(_cancel_reading, pk)  # views run in a worker thread


def _cancel_reading(pk):
    reading = here().reading.get(pk)
    if reading is not None:
        reading.cancel()


def active_replies():
    """Primary keys of the replies this process is streaming."""
    return set(here().reading)


async def interrupt_all():
    """Shutdown: cancel this process's room workers; each marks its streaming reply interrupted."""
    tasks = services.current().running(TASK)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def drain():
    """Wait for every room worker of this process to finish (tests and shutdown)."""
    while tasks := services.current().running(TASK):
        await asyncio.gather(*tasks, return_exceptions=True)


async def _answer_room(room_key):
    loop, wanted = asyncio.get_running_loop(), here().wanted
    while room_key in wanted:
        wanted.discard(room_key)
        touched = loop.time()
        while True:
            # A slot first, then the claim: replies over the cap stay pending, queued, not dropped.
            async with _streaming_slot(room_key):
                try:
                    claimed = await services.run(LANE, Message.objects.claim_next, room_key, model_of)
                except DatabaseError:
                    logger.exception("room %s: could not claim the next reply; trying again", room_key)
                    claimed = ROOM_BUSY
                if claimed not in (None, ROOM_BUSY):
                    await _answer_safely(claimed)
                    continue
            if claimed is None:
                break
            # Another process streams in this room (or the database hiccuped): look again shortly,
            # and keep the replies queued here alive meanwhile, in case that process is dead.
            if loop.time() - touched > heartbeat_interval():
                touched = loop.time()
                await _touch_queue(room_key)
            await asyncio.sleep(ROOM_BUSY_POLL)


@contextlib.asynccontextmanager
async def _streaming_slot(room_key):
    """Hold one of this process's streaming slots; while waiting for one, keep the room's queue alive."""
    slots = here().slots
    while True:
        try:
            async with asyncio.timeout(heartbeat_interval()):
                await slots.acquire()
            break
        except TimeoutError:
            await _touch_queue(room_key)
    try:
        yield
    finally:
        slots.release()


def model_of(bot_key):
    """The model that will write bot_key's reply, recorded on the row as it is claimed ("" when misconfigured)."""
    try:
        return configured_provider(find_bot(bot_key)).model
    except ProviderError:
        return ""


async def _answer_safely(claimed):
    """Answer one claimed reply with its bot's provider; whatever goes wrong, it ends in a status a person can read."""
    started = time.monotonic()
    writer = Writer(claimed, here().reading)
    try:
        if writer.bot is None:
            raise ProviderError(ProviderError.FAILED, BOT_GONE % {"bot": claimed.bot})
        provider = configured_provider(writer.bot)
    except ProviderError as exc:
        await services.run(LANE, Message.objects.fail, claimed.pk, str(exc), revision=writer.revision)
        logger.info("reply room=%s bot=%s message=%s outcome=failed error=%s", claimed.room, claimed.bot, claimed.pk, exc.kind)
        return
    try:
        outcome = await writer.run(provider)
    except asyncio.CancelledError:
        raise
    except Exception:  # noqa: BLE001 - one broken reply must not stop the room
        logger.exception("reply %s in %s failed unexpectedly", claimed.pk, claimed.room)
        outcome = Message.Status.FAILED
        try:
            await services.run(LANE, Message.objects.fail, claimed.pk, PARLEY_FAILED, revision=writer.revision)
        except DatabaseError:  # the database itself is away: the sweep will mark it interrupted
            logger.exception("reply %s: could not mark it failed", claimed.pk)
    usage, error = writer.usage, writer.error
    logger.info(
        "reply room=%s bot=%s message=%s outcome=%s%s duration=%.2fs chars=%d prompt_tokens=%s completion_tokens=%s model=%s",
        claimed.room, claimed.bot, claimed.pk, outcome, f" error={error.kind}" if error else "", time.monotonic() - started,
        writer.offset, usage.prompt_tokens if usage else "-", usage.completion_tokens if usage else "-", provider.model,
    )


async def _touch_queue(room_key):
    """Keep the room's queued replies alive for the sweep; after a database hiccup, the next beat will."""
    try:
        await services.run(LANE, Message.objects.touch_queue, room_key)
    except DatabaseError:
        logger.warning("room %s: could not touch its queued replies", room_key, exc_info=True)
