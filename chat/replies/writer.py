"""The writer: streams one claimed reply into its row, a write per flush interval, then its end status.

Text is buffered and written at most once per ``REPLY_FLUSH_INTERVAL`` with a conditional update
on ``status=streaming`` and on the row's revision being the writer's last write: zero rows
updated means someone stopped the reply (or the sweep, or a Retry on another process, took the
row), and the upstream is closed at once. Every write goes through the broadcaster by way of the
row's signals; the writer never sends a frame itself.
"""

import asyncio
import logging

from django.conf import settings
from django.db import DatabaseError, Error
from django.utils.translation import gettext_noop

from bots.registry import find_bot
from chat import services
from chat.models import Message
from chat.replies import checkpoints
from chat.replies.prompt import recent_history
from chat.replies.reading import Reader

logger = logging.getLogger(__name__)

Status = Message.Status

# The reply job's reads and writes (history, claims, Stop's checks, ends) take this lane, never
# Django's thread for views: a page load or a post elsewhere must not delay a reply's words.
LANE = "replies"

# While the upstream is silent the writer still checks for Stop this often, in seconds.
IDLE_CHECK = 0.25


def heartbeat_interval():
    """How often a live writer touches its reply and the replies queued in its room: well inside
    REPLY_STALE_AFTER, so the sweep never takes them for a dead process's."""
    return settings.REPLY_STALE_AFTER / 3


class Writer:
    """Streams one claimed reply into its row."""

    def __init__(self, reply, reading):
        """reply: the claimed row; reading: reply pk -> the task reading its upstream (Stop cancels it there)."""
        self.reading = reading
        self.pk = reply.pk
        self.room_key = reply.room
        self.bot = find_bot(reply.bot)
        self.revision = reply.revision
        self.written = []  # text already in the row
        self.unwritten = []  # text taken from the stream and on its way to the row
        self.writing = None  # the write on its way, if any
        self.offset = 0
        self.usage = None
        self.error = None

    async def run(self, provider):
        """Build the prompt, stream the reply, and return the status it ended in."""
        reader, reading = Reader(provider), None
        try:
            history, speakers = await services.run(LANE, recent_history, self.room_key, self.pk, self.bot)
            reading = asyncio.create_task(reader.run(self.bot, history, speakers), name=f"upstream:{self.pk}")
            self.reading[self.pk] = reading
            stopped = await self._flush_until_done(reading, reader)
        except asyncio.CancelledError:
            # Shutdown: the reply is cut short; keep what streamed and say so.
            if reading is not None:
                reading.cancel()
            await asyncio.shield(self._interrupt(reader))
            raise
        finally:
            self.reading.pop(self.pk, None)
            if reading is not None and not reading.done():
                reading.cancel()  # whatever went wrong here, stop paying for tokens nobody will see
        self.usage = reader.usage
        if stopped or reading.cancelled():
            reading.cancel()
            await asyncio.gather(reading, return_exceptions=True)
            return Status.CANCELLED
        return await self._finish(reader)

    async def _write(self, text):
        """Append text to the row; False when the reply is no longer this writer's to write."""
        self.writing = checkpoints.here().append(self.pk, self.revision, self.room_key, self.offset, text)
        # Shielded: cancelled meanwhile (shutdown), the write still lands and _interrupt counts it.
        grown = await asyncio.shield(self.writing)
        self.writing = None
        if not grown:
            # After a failed batch each growth is written again alone: one whose first commit went
            # through finds the row a revision on, which is not a Stop. The row tells them apart.
            grown = await services.run(LANE, Message.objects.landed, self.pk, self.revision + 1, self.offset + len(text))
        if grown:
            self.revision += 1
            self.offset += len(text)
        return grown

    async def _still_mine(self, look, *args):
        """What a look at the row says, or True while the database is away (the next look will tell)."""
        try:
            return await services.run(LANE, look, *args)
        except DatabaseError:
            logger.warning("reply %s: could not look at its row; looking again shortly", self.pk, exc_info=True)
            return True

    async def _flush_until_done(self, reading, reader):
        """Flush what arrived on a steady beat of one interval; True if the row says it was stopped.

        The first text goes out at once (and the first after a pause), then the beat holds the
        rest to one write per interval: no text waits longer than an interval, and a reply of D
        seconds makes at most D / interval + 1 writes of growth, whatever the token rate.
        """
        loop = asyncio.get_running_loop()
        interval = settings.REPLY_FLUSH_INTERVAL
        touched = loop.time()
        beat = None  # when the text gathered since the last flush goes out
        # An interval of 0 writes every chunk, even those still buffered when the stream ends.
        while not reading.done() or (interval == 0 and reader.pieces):
            if loop.time() - touched > heartbeat_interval():
                touched = loop.time()
                if not await self._still_mine(Message.objects.touch_streaming, self.pk, self.revision, self.room_key):
                    return True
            try:
                async with asyncio.timeout(IDLE_CHECK):
                    await reader.arrived.wait()
            except TimeoutError:
                # Silent upstream: Stop from another process shows only in the row.
                if not await self._still_mine(Message.objects.still_streaming, self.pk, self.revision):
                    return True
                continue
            now = loop.time()
            if beat is None or beat < now - interval:
                beat = now  # the first words (or the first after a pause) wait for nothing
            if beat > now:
                # Let more text gather, but finish at once if the stream ends meanwhile.
                await asyncio.wait([reading], timeout=beat - now)
                if reading.done():
                    break
            beat += interval
            reader.arrived.clear()
            # An interval of 0 buffers nothing: every chunk is its own write (the demo's design).
            self.unwritten += [text for text in (reader.take_each() if interval == 0 else [reader.take()]) if text]
            while self.unwritten:
                try:
                    if not await self._write(self.unwritten[0]):
                        return True
                except Error:  # DatabaseError, or InterfaceError from a connection that died
                    # Kept for the next beat: the row only ever holds the text in order.
                    logger.warning("reply %s: could not write its text; trying again next beat", self.pk, exc_info=True)
                    break
                self.written.append(self.unwritten.pop(0))
        return False

    def _content(self, reader):
        return "".join(self.written) + "".join(self.unwritten) + reader.take(final=True)

    async def _interrupt(self, reader):
        """Shutdown: mark the reply interrupted with all the text it got, if it is still this writer's."""
        if self.writing is not None:
            # A write still on its way may land and move the revision on: wait for it.
            done, _ = await asyncio.wait([self.writing], timeout=5)
            if done and not self.writing.cancelled() and self.writing.exception() is None and self.writing.result():
                self.revision += 1
        await services.run(LANE, Message.objects.interrupt, self.pk, revision=self.revision, content=self._content(reader))

    async def _finish(self, reader):
        """The stream ended: write the whole text with complete, or failed with the error."""
        content, self.error = self._content(reader), reader.error
        if self.error is None and not content.strip():
            # Some servers end a stream early without an error (llama.cpp's, when interrupted).
            status, error = Status.FAILED, gettext_noop("The model sent an empty reply.")
        elif self.error is None:
            status, error = Status.COMPLETE, ""
        else:
            status, error = Status.FAILED, str(self.error)
        finished = await services.run(
            LANE, Message.objects.finish, self.pk, self.revision, status=status, content=content, error=error,
            usage=reader.usage if status == Status.COMPLETE else None,
        )
        if finished:
            self.offset = len(content)  # the row now holds the whole text (the log reports its length)
        return status if finished else Status.CANCELLED

