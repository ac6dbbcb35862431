"""The reply job: streams a bot's answer into its row a flush at a time, one reply per room at a time.

The job belongs to no request: a POST saves a pending reply and calls ``request_reply``; this
process's worker for the room answers pending replies oldest first. Text is buffered and written
at most once per ``REPLY_FLUSH_INTERVAL`` with a conditional update on ``status=streaming``
(and on the row's revision being the job's last write): zero rows updated means someone stopped
the reply, and the upstream is closed at once.
"""

import asyncio
import contextlib
import contextvars
import logging
import time

from asgiref.sync import SyncToAsync, async_to_sync, sync_to_async
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError
from django.db.models.functions import Length
from django.utils import timezone

from bots.providers import ProviderError, get_provider
from bots.registry import get_bot

from .capacity import streaming_slot
from .checkpoints import checkpoints
from .models import Message
from .prompt import afit, recent_history
from .pump import Pump
from .turns import BUSY, claim_next, touch_queue

logger = logging.getLogger(__name__)

Status = Message.Status

# While the upstream is silent the job still checks for Stop this often, in seconds.
IDLE_CHECK = 0.25
# A room busy with another process's reply is looked at again this often, in seconds.
ROOM_BUSY_POLL = 0.25

_rooms = {}  # bot key -> this process's worker task for the room
_wanted = set()  # rooms asked for since their worker last looked
_pumps = {}  # message pk -> the task reading its upstream, for Stop in this process


def request_reply(bot_key):
    """Make this process answer the room's pending replies in order; safe from the loop or a worker thread.

    Outside a server (a shell, a management command) there is no event loop to run the job on:
    a live server's sweep picks the pending reply up instead.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        if getattr(SyncToAsync.threadlocal, "main_event_loop", None) is None:
            logger.info("no event loop in this process: a server's sweep will answer %s", bot_key)
            return None
        return async_to_sync(_request)(bot_key)
    return _start(bot_key)


async def _request(bot_key):
    _start(bot_key)


def _start(bot_key):
    _wanted.add(bot_key)
    task = _rooms.get(bot_key)
    if task is None or task.done():
        # A fresh context: the job must not inherit the request's (soon dead) sync-thread executor.
        _rooms[bot_key] = asyncio.get_running_loop().create_task(
            _answer_room(bot_key), name=f"reply:{bot_key}", context=contextvars.Context()
        )


def answer_waiting(bot_keys):
    """Start this process's workers for rooms whose pending replies nobody may be answering."""
    for bot_key in bot_keys:
        _start(bot_key)


def heartbeat():
    """How often a live worker touches its streaming reply and the replies queued in its room:
    well inside REPLY_STALE_AFTER, so the sweep never takes them for a dead process's."""
    return settings.REPLY_STALE_AFTER / 3


def stop_here(pk):
    """Close a stopped reply's upstream now if it streams in this process (others notice via the row)."""
    loop, pump = _pumps.get(pk, (None, None))
    if pump is not None:
        loop.call_soon_threadsafe(pump.cancel)  # views run in a worker thread


def active_replies():
    """Primary keys of the replies this process is streaming."""
    return set(_pumps)


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


async def _answer_room(bot_key):
    loop = asyncio.get_running_loop()
    while bot_key in _wanted:
        _wanted.discard(bot_key)
        touched = loop.time()
        while True:
            try:
                provider = get_provider()
            except ImproperlyConfigured as exc:
                await _fail_pending(bot_key, f"The model is not configured: {exc}")
                break
            # A slot first, then the claim: replies over the cap stay pending, queued, not dropped.
            async with _streaming_slot(bot_key):
                try:
                    claimed = await _claim_next(bot_key, provider.model)
                except DatabaseError:
                    logger.exception("room %s: could not claim the next reply; trying again", bot_key)
                    claimed = BUSY
                if claimed not in (None, BUSY):
                    await _answer_safely(claimed, provider)
                    continue
            if claimed is None:
                break
            # Another process streams in this room (or the database hiccuped): look again shortly,
            # and keep the replies queued here alive meanwhile, in case that process is dead.
            if loop.time() - touched > heartbeat():
                touched = loop.time()
                await _touch_queue(bot_key)
            await asyncio.sleep(ROOM_BUSY_POLL)


@contextlib.asynccontextmanager
async def _streaming_slot(bot_key):
    """Hold one of this process's streaming slots; while waiting for one, keep the room's queue alive."""
    slots = streaming_slot()
    while True:
        try:
            async with asyncio.timeout(heartbeat()):
                await slots.acquire()
            break
        except TimeoutError:
            await _touch_queue(bot_key)
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
        logger.exception("reply %s in %s failed unexpectedly", claimed.pk, claimed.bot)
        outcome = Status.FAILED
        try:
            await _transition(
                claimed.pk, Message.ACTIVE, revision=writer.revision,
                status=Status.FAILED, error="Parley failed while writing this reply.",
            )
        except DatabaseError:  # the database itself is away: the sweep will mark it interrupted
            logger.exception("reply %s: could not mark it failed", claimed.pk)
    usage = writer.usage
    logger.info(
        "reply room=%s message=%s outcome=%s duration=%.2fs chars=%d prompt_tokens=%s completion_tokens=%s model=%s",
        claimed.bot, claimed.pk, outcome, time.monotonic() - started, writer.offset,
        usage.prompt_tokens if usage else "-", usage.completion_tokens if usage else "-", provider.model,
    )


_claim_next = sync_to_async(claim_next)
_transition = sync_to_async(Message.transition)
_recent_history = sync_to_async(recent_history)


async def _touch_queue(bot_key):
    """Keep the room's queued replies alive for the sweep; after a database hiccup, the next beat will."""
    try:
        await sync_to_async(touch_queue)(bot_key)
    except DatabaseError:
        logger.warning("room %s: could not touch its queued replies", bot_key, exc_info=True)


@sync_to_async
def _fail_pending(bot_key, error):
    for pk in Message.objects.filter(bot=bot_key, status=Status.PENDING).values_list("pk", flat=True):
        Message.transition(pk, [Status.PENDING], status=Status.FAILED, error=error)


@sync_to_async
def _heartbeat(pk, revision, bot_key):
    """Touch a streaming reply and its room's queued replies; False when it is no longer this job's."""
    alive = Message.streaming(pk, revision).update(updated_at=timezone.now())
    touch_queue(bot_key)
    return bool(alive)


@sync_to_async
def _still_streaming(pk, revision):
    return Message.streaming(pk, revision).exists()


@sync_to_async
def _landed(pk, revision, length):
    """Whether a write whose answer was lost (a dropped connection after COMMIT) did land."""
    return Message.streaming(pk, revision).annotate(length=Length("content")).filter(length=length).exists()


class Writer:
    """Streams one claimed reply into its row: a write per flush interval, then its end status.

    Every write is conditional on the revision the job last wrote, so a Stop, the sweep or a
    Retry claimed by another process in between makes the next write match no row.
    """

    def __init__(self, reply):
        self.reply = reply
        self.pk = reply.pk
        self.bot_key = reply.bot
        self.revision = reply.revision
        self.written = []  # text already in the row
        self.unwritten = []  # text taken from the stream and on its way to the row
        self.writing = None  # the write on its way, if any
        self.offset = 0
        self.usage = None

    async def run(self, provider):
        """Build the prompt, stream the reply, and return the status it ended in."""
        state, pump = Pump(), None
        try:
            max_tokens = settings.REPLY_MAX_TOKENS
            prompt = await afit(
                get_bot(self.bot_key), await _recent_history(self.bot_key, self.pk),
                context_tokens=provider.context_tokens, max_tokens=max_tokens, count_tokens=provider.count_tokens,
            )
            pump = asyncio.create_task(state.run(provider.stream(prompt, max_tokens=max_tokens)), name=f"upstream:{self.pk}")
            _pumps[self.pk] = (asyncio.get_running_loop(), pump)
            stopped = await self._flush_until_done(pump, state)
        except asyncio.CancelledError:
            # Shutdown: the reply is cut short; keep what streamed and say so.
            if pump is not None:
                pump.cancel()
            await asyncio.shield(self._interrupt(state))
            raise
        finally:
            _pumps.pop(self.pk, None)
            if pump is not None and not pump.done():
                pump.cancel()  # whatever went wrong here, stop paying for tokens nobody will see
        self.usage = state.usage
        if stopped or pump.cancelled():
            pump.cancel()
            await asyncio.gather(pump, return_exceptions=True)
            return Status.CANCELLED
        return await self._finish(pump, state)

    async def _write(self, text):
        """Append text to the row; False when the reply is no longer this job's to write."""
        self.writing = checkpoints().append(self.pk, self.revision, self.bot_key, self.offset, text)
        # Shielded: cancelled meanwhile (shutdown), the write still lands and _interrupt counts it.
        grown = await asyncio.shield(self.writing)
        self.writing = None
        if not grown:
            # After a failed batch each growth is written again alone: one whose first commit went
            # through finds the row a revision on, which is not a Stop. The row tells them apart.
            grown = await _landed(self.pk, self.revision + 1, self.offset + len(text))
        if grown:
            self.revision += 1
            self.offset += len(text)
        return grown

    async def _still_mine(self, check):
        """What the awaited look at the row says, or True while the database is away (the next look will tell)."""
        try:
            return await check
        except DatabaseError:
            logger.warning("reply %s: could not look at its row; looking again shortly", self.pk, exc_info=True)
            return True

    async def _flush_until_done(self, pump, state):
        """Flush what arrived on a steady beat of one interval; True if the row says it was stopped.

        The beat starts one interval after the first text (and again after a pause), so no text
        waits longer than an interval and a reply of D seconds makes at most D / interval writes,
        with an interval to spare for jitter. (Writing the first text at once would save a page
        that wait, and cost one more write than the D / interval + 3 a reply may make in all.)
        """
        loop = asyncio.get_running_loop()
        interval = settings.REPLY_FLUSH_INTERVAL
        touched = loop.time()
        beat = None  # when the text gathered since the last flush goes out
        # An interval of 0 writes every chunk, even those still buffered when the stream ends.
        while not pump.done() or (interval == 0 and state.pieces):
            if loop.time() - touched > heartbeat():
                touched = loop.time()
                if not await self._still_mine(_heartbeat(self.pk, self.revision, self.bot_key)):
                    return True
            try:
                async with asyncio.timeout(IDLE_CHECK):
                    await state.arrived.wait()
            except TimeoutError:
                # Silent upstream: Stop from another process shows only in the row.
                if not await self._still_mine(_still_streaming(self.pk, self.revision)):
                    return True
                continue
            now = loop.time()
            if beat is None or beat < now - interval:
                beat = now + interval
            if beat > now:
                # Let more text gather, but finish at once if the stream ends meanwhile.
                await asyncio.wait([pump], timeout=beat - now)
                if pump.done():
                    break
            beat += interval
            state.arrived.clear()
            # An interval of 0 buffers nothing: every chunk is its own write (the demo's design).
            self.unwritten += [text for text in (state.take_each() if interval == 0 else [state.take()]) if text]
            while self.unwritten:
                try:
                    if not await self._write(self.unwritten[0]):
                        return True
                except DatabaseError:
                    # Kept for the next beat: the row only ever holds the text in order.
                    logger.warning("reply %s: could not write its text; trying again next beat", self.pk, exc_info=True)
                    break
                self.written.append(self.unwritten.pop(0))
        return False

    async def _interrupt(self, state):
        """Shutdown: mark the reply interrupted with all the text it got, if it is still this job's."""
        if self.writing is not None:
            # A write still on its way may land and move the revision on: wait for it.
            done, _ = await asyncio.wait([self.writing], timeout=5)
            if done and not self.writing.cancelled() and self.writing.exception() is None and self.writing.result():
                self.revision += 1
        content = "".join(self.written) + "".join(self.unwritten) + state.take(final=True)
        await _transition(
            self.pk, Message.ACTIVE, revision=self.revision,
            status=Status.INTERRUPTED, content=content, error=Message.INTERRUPTED_ERROR,
        )

    async def _finish(self, pump, state):
        """The stream ended: write the whole text with complete, or failed with the error."""
        content = "".join(self.written) + "".join(self.unwritten) + state.take(final=True)
        error = pump.exception()
        if error is None and not content.strip():
            # Some servers end a stream early without an error (llama.cpp's, when interrupted).
            fields = {"status": Status.FAILED, "content": content, "error": "The model sent an empty reply."}
        elif error is None:
            fields = {"status": Status.COMPLETE, "content": content}
            if state.usage:
                fields.update(prompt_tokens=state.usage.prompt_tokens, completion_tokens=state.usage.completion_tokens)
        elif isinstance(error, ProviderError):
            fields = {"status": Status.FAILED, "content": content, "error": str(error)}
        else:
            logger.error("reply %s: unexpected error from the provider", self.pk, exc_info=error)
            fields = {"status": Status.FAILED, "content": content, "error": "Parley failed while writing this reply."}
        finished = await _transition(self.pk, [Status.STREAMING], revision=self.revision, **fields)
        return fields["status"] if finished else Status.CANCELLED
