"""Room workers: one reply at a time per room, pending replies answered oldest first.

The job belongs to no request: a POST saves a pending reply and calls ``request_reply``; this
process's worker for the room claims the room's pending replies one by one and hands each to a
``Writer``. Stop, shutdown and the sweep reach replies through their rows.
"""

import asyncio
import contextlib
import contextvars
import logging
import time

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import DatabaseError

from bots.providers import ProviderError
from chat import loops
from chat.loops import per_loop
from chat.models import ROOM_BUSY, Message
from chat.replies.stream import PARLEY_FAILED, configured_provider
from chat.replies.writer import Writer, heartbeat_interval

logger = logging.getLogger(__name__)

# A room busy with another process's reply is looked at again this often, in seconds.
ROOM_BUSY_POLL = 0.25

#: A cap on the replies one process streams at once (rooms and /chat): the semaphore of the running loop.
streaming_slot = per_loop(lambda: asyncio.Semaphore(settings.MAX_STREAMING_REPLIES))

_rooms = {}  # room key -> this process's worker task for the room
_wanted = set()  # rooms asked for since their worker last looked


def request_reply(room_key):
    """Make this process answer the room's pending replies in order; safe from the loop or a worker thread.

    Outside a server (a shell, a management command) there is no event loop to run the job on:
    a live server's sweep picks the pending reply up instead.
    """
    if not loops.call_soon(_start, room_key):
        logger.info("no event loop in this process: a server's sweep will answer %s", room_key)


def _start(room_key):
    _wanted.add(room_key)
    task = _rooms.get(room_key)
    if task is None or task.done():
        # A fresh context: the job must not inherit the request's (soon dead) sync-thread executor.
        _rooms[room_key] = asyncio.get_running_loop().create_task(
            _answer_room(room_key), name=f"reply:{room_key}", context=contextvars.Context()
        )


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
    reading = Writer.reading.get(pk)
    if reading is not None:
        reading.get_loop().call_soon_threadsafe(reading.cancel)  # views run in a worker thread


def active_replies():
    """Primary keys of the replies this process is streaming."""
    return set(Writer.reading)


async def interrupt_all():
    """Shutdown: cancel this process's room workers; each marks its streaming reply interrupted."""
    tasks = [task for task in _rooms.values() if not task.done()]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def drain():
    """Wait for every room worker of this process to finish (tests and shutdown)."""
    while tasks := [task for task in _rooms.values() if not task.done()]:
        await asyncio.gather(*tasks, return_exceptions=True)


async def _answer_room(room_key):
    loop = asyncio.get_running_loop()
    while room_key in _wanted:
        _wanted.discard(room_key)
        touched = loop.time()
        while True:
            try:
                provider = configured_provider()
            except ProviderError as exc:
                await sync_to_async(Message.objects.fail_pending)(room_key, str(exc))
                break
            # A slot first, then the claim: replies over the cap stay pending, queued, not dropped.
            async with _streaming_slot(room_key):
                try:
                    claimed = await sync_to_async(Message.objects.claim_next)(room_key, provider.model)
                except DatabaseError:
                    logger.exception("room %s: could not claim the next reply; trying again", room_key)
                    claimed = ROOM_BUSY
                if claimed not in (None, ROOM_BUSY):
                    await _answer_safely(claimed, provider)
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
    slots = streaming_slot()
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


async def _answer_safely(claimed, provider):
    """Answer one claimed reply; whatever goes wrong, it ends in a status a person can read."""
    started = time.monotonic()
    writer = Writer(claimed)
    try:
        outcome = await writer.run(provider)
    except asyncio.CancelledError:
        raise
    except Exception:  # noqa: BLE001 - one broken reply must not stop the room
        logger.exception("reply %s in %s failed unexpectedly", claimed.pk, claimed.room)
        outcome = Message.Status.FAILED
        try:
            await sync_to_async(Message.objects.fail)(claimed.pk, PARLEY_FAILED, revision=writer.revision)
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
        await sync_to_async(Message.objects.touch_queue)(room_key)
    except DatabaseError:
        logger.warning("room %s: could not touch its queued replies", room_key, exc_info=True)
