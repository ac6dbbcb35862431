"""The reply job: streams a bot's answer into its row a flush at a time, one reply per room at a time.

The job belongs to no request: a POST saves a pending reply and calls ``request_reply``; this
process's worker for the room answers pending replies oldest first. Text is buffered and written
at most once per ``REPLY_FLUSH_INTERVAL`` with a conditional update on ``status=streaming``:
zero rows updated means someone stopped the reply, and the upstream is closed at once.
"""

import asyncio
import contextvars
import logging
import time

from asgiref.sync import SyncToAsync, async_to_sync, sync_to_async
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError
from django.utils import timezone

from bots.providers import ProviderError, get_provider
from bots.registry import get_bot

from .capacity import streaming_slot
from .models import Message
from .prompt import build_prompt
from .turns import BUSY, claim_next, touch_queue

logger = logging.getLogger(__name__)

Status = Message.Status

# While the upstream is silent the job still checks for Stop this often, in seconds.
IDLE_CHECK = 0.25
# Rows a live worker owns are touched this often, so the sweep can tell them from orphans.
HEARTBEAT = 10.0
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
    while bot_key in _wanted:
        _wanted.discard(bot_key)
        while True:
            try:
                provider = get_provider()
            except ImproperlyConfigured as exc:
                await _fail_pending(bot_key, f"The model is not configured: {exc}")
                break
            # A slot first, then the claim: replies over the cap stay pending, queued, not dropped.
            async with streaming_slot():
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
            # Another process streams in this room (or the database hiccuped): look again shortly.
            await asyncio.sleep(ROOM_BUSY_POLL)


async def _answer_safely(claimed, provider):
    try:
        await answer(claimed, provider)
    except asyncio.CancelledError:
        raise
    except Exception:  # noqa: BLE001 - one broken reply must not stop the room
        logger.exception("reply %s in %s failed unexpectedly", claimed.pk, claimed.bot)
        await _transition(claimed.pk, Message.ACTIVE, status=Status.FAILED, error="Parley failed while writing this reply.")


_claim_next = sync_to_async(claim_next)


@sync_to_async
def _fail_pending(bot_key, error):
    for pk in Message.objects.filter(bot=bot_key, status=Status.PENDING).values_list("pk", flat=True):
        Message.transition(pk, [Status.PENDING], status=Status.FAILED, error=error)


@sync_to_async
def _heartbeat(pk, bot_key):
    """Touch a silent streaming reply and its queue; False when it was stopped meanwhile."""
    alive = Message.objects.filter(pk=pk, status=Status.STREAMING).update(updated_at=timezone.now())
    touch_queue(bot_key)
    return bool(alive)


@sync_to_async
def _still_streaming(pk):
    return Message.objects.filter(pk=pk, status=Status.STREAMING).exists()


class Checkpoints:
    """The growth writes of every reply streaming on this event loop, gathered into batches.

    Replies flushing at the same moment share one trip to the database thread and one commit,
    instead of queueing behind each other there one by one.
    """

    def __init__(self):
        self.waiting = []  # ((pk, bot, offset, text), future) not yet written
        self.writer = None

    async def append(self, pk, bot_key, offset, text):
        """Write one reply's new text; False when it is no longer streaming (stopped)."""
        future = asyncio.get_running_loop().create_future()
        self.waiting.append(((pk, bot_key, offset, text), future))
        if self.writer is None or self.writer.done():
            self.writer = asyncio.get_running_loop().create_task(self._write(), context=contextvars.Context())
        return await future

    async def _write(self):
        while self.waiting:
            batch, self.waiting = self.waiting, []
            growths = [growth for growth, _ in batch]
            try:
                try:
                    results = await _append(growths)
                except DatabaseError:
                    # One bad write must not fail the others: write them one at a time instead.
                    results = [await _append_alone(growth) for growth in growths]
            except BaseException as exc:  # noqa: BLE001 - every waiting reply hears of it
                results = [exc] * len(batch)
                if isinstance(exc, asyncio.CancelledError):
                    self._settle(batch, results)
                    raise
            self._settle(batch, results)

    @staticmethod
    def _settle(batch, results):
        for (_, future), result in zip(batch, results):
            if future.done():
                continue  # its reply was cancelled meanwhile
            if isinstance(result, BaseException):
                future.set_exception(result)
            else:
                future.set_result(result)


async def _append_alone(growth):
    try:
        (grown,) = await _append([growth])
        return grown
    except DatabaseError as exc:
        return exc


_append = sync_to_async(Message.append)
_checkpoints = {}  # event loop -> its Checkpoints


def checkpoints():
    loop = asyncio.get_running_loop()
    if loop not in _checkpoints:
        _checkpoints.clear()  # a new loop (a test's): the old one is gone
        _checkpoints[loop] = Checkpoints()
    return _checkpoints[loop]


_transition = sync_to_async(Message.transition)


async def answer(reply, provider):
    """Stream one claimed reply to its end status."""
    max_tokens = settings.REPLY_MAX_TOKENS
    prompt = await sync_to_async(build_prompt)(
        get_bot(reply.bot), reply, context_tokens=provider.context_tokens, max_tokens=max_tokens
    )
    started = time.monotonic()
    writer = Writer(reply.pk, reply.bot)
    outcome = await writer.run(provider.stream(prompt, max_tokens=max_tokens))
    usage = writer.usage
    logger.info(
        "reply room=%s message=%s outcome=%s duration=%.2fs chars=%d prompt_tokens=%s completion_tokens=%s model=%s",
        reply.bot, reply.pk, outcome, time.monotonic() - started, writer.offset,
        usage.prompt_tokens if usage else "-", usage.completion_tokens if usage else "-", provider.model,
    )


class Pump:
    """Reads the provider's stream into a buffer as fast as it comes."""

    def __init__(self):
        self.pieces = []
        self.usage = None
        self.arrived = asyncio.Event()

    async def run(self, stream):
        try:
            async for chunk in stream:
                if chunk.usage:
                    self.usage = chunk.usage
                if chunk.text:
                    self.pieces.append(chunk.text)
                    self.arrived.set()
        finally:
            # Cancelled (Stop, shutdown): closing the generator closes the upstream connection now.
            await stream.aclose()
            self.arrived.set()

    def take(self):
        """All text read since the last take, as one piece."""
        return "".join(self.take_each())

    def take_each(self):
        """The chunks read since the last take, as they came."""
        pieces, self.pieces = self.pieces, []
        return pieces


class Writer:
    """Moves buffered text into the row once per flush interval and writes the end status."""

    def __init__(self, pk, bot_key):
        self.pk = pk
        self.bot_key = bot_key
        self.written = []  # text already in the row
        self.unwritten = []  # text taken from the stream and on its way to the row
        self.offset = 0
        self.usage = None

    async def run(self, stream):
        pump_state = Pump()
        pump = asyncio.create_task(pump_state.run(stream), name=f"upstream:{self.pk}")
        _pumps[self.pk] = (asyncio.get_running_loop(), pump)
        try:
            stopped = await self._flush_until_done(pump, pump_state)
        except asyncio.CancelledError:
            # Shutdown: the reply is cut short; keep what streamed and say so.
            pump.cancel()
            content = "".join(self.written) + "".join(self.unwritten) + pump_state.take()
            await asyncio.shield(
                _transition(
                    self.pk, Message.ACTIVE, status=Status.INTERRUPTED, content=content,
                    error=Message.INTERRUPTED_ERROR,
                )
            )
            raise
        finally:
            _pumps.pop(self.pk, None)
            if not pump.done():
                pump.cancel()  # whatever went wrong here, stop paying for tokens nobody will see
        if stopped or pump.cancelled():
            pump.cancel()
            await asyncio.gather(pump, return_exceptions=True)
            return Status.CANCELLED
        return await self._finish(pump, pump_state)

    async def _flush_until_done(self, pump, state):
        """Flush what arrived on a steady beat of one interval; True if the row says it was stopped.

        The beat starts one interval after the first text (and again after a pause), so no text
        waits longer than an interval and a reply of D seconds makes at most D / interval writes.
        """
        loop = asyncio.get_running_loop()
        interval = settings.REPLY_FLUSH_INTERVAL
        last_write = loop.time()
        beat = None  # when the text gathered since the last flush goes out
        # An interval of 0 writes every chunk, even those still buffered when the stream ends.
        while not pump.done() or (interval == 0 and state.pieces):
            try:
                await asyncio.wait_for(state.arrived.wait(), timeout=IDLE_CHECK)
            except TimeoutError:
                if loop.time() - last_write > HEARTBEAT:
                    last_write = loop.time()
                    if not await _heartbeat(self.pk, self.bot_key):
                        return True
                elif not await _still_streaming(self.pk):
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
            self.unwritten = [text for text in (state.take_each() if interval == 0 else [state.take()]) if text]
            while self.unwritten:
                text = self.unwritten[0]
                if not await checkpoints().append(self.pk, self.bot_key, self.offset, text):
                    return True
                last_write = loop.time()
                self.written.append(self.unwritten.pop(0))
                self.offset += len(text)
        return False

    async def _finish(self, pump, state):
        """The stream ended: write the whole text with complete, or failed with the error."""
        content = "".join(self.written) + state.take()
        error = pump.exception()
        self.usage = state.usage
        if error is None and not content.strip():
            # Some servers end a stream early without an error (llama.cpp's, when interrupted).
            fields = {"status": Status.FAILED, "content": content, "error": "The model sent an empty reply."}
        elif error is None:
            usage = state.usage
            fields = {"status": Status.COMPLETE, "content": content}
            if usage:
                fields.update(prompt_tokens=usage.prompt_tokens, completion_tokens=usage.completion_tokens)
        elif isinstance(error, ProviderError):
            fields = {"status": Status.FAILED, "content": content, "error": str(error)}
        else:
            logger.error("reply %s: unexpected error from the provider", self.pk, exc_info=error)
            fields = {"status": Status.FAILED, "content": content, "error": "Parley failed while writing this reply."}
        finished = await _transition(self.pk, [Status.STREAMING], **fields)
        return fields["status"] if finished else Status.CANCELLED
