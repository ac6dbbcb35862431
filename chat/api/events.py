"""A room's events over SSE, resumable exactly: the rows themselves are the log.

Every visible change of a message gives it its room's next event number (``Message.seq``) in the
transaction that makes it, under the room's lock, so numbers commit in order: "every row whose
number is above N" is exactly what happened after event N, on any process. The stream reads that,
sends each row as one event numbered by its change, and waits for the next; the room's frames
(this process's fan-out, fed by every process through the channel layer) wake it. A reconnect with
`Last-Event-ID: N` (or `?after=N`) gets the messages changed since, each whole, then deltas again.
Nothing here writes: a client that goes away stops no reply.

Bounds: a resume more than ``EVENT_REPLAY_MAX`` events behind gets one ``event: reset`` (page the
history, go on from now) instead of the replay; a key holds at most ``EVENT_STREAMS_PER_KEY``
streams in a process, and a revoked key's streams end within a second or two (chat.api.followers);
what a stream holds unsent is bounded by the response's flow control (chat.api.flow).
"""

import asyncio
import logging

from asgiref.sync import sync_to_async
from django.conf import settings

from chat import access
from chat.api import sse
from chat.api.errors import error
from chat.api.followers import followers
from chat.delivery import fanout
from chat.models import Message

RETRY_MS = 1000  # how soon a client reconnects after losing the stream
RETRY_AFTER_FULL = 5  # seconds a key with all its streams open is told to wait
BATCH = 200  # rows read at a time
WAKE_GATHER = 0.05  # seconds a wake-up waits for more changes before reading

logger = logging.getLogger(__name__)


async def follow(request, room, after, who=None):
    """The room's event stream as an SSE response (the key and the room were checked by the API, and
    are checked again once the stream hears the room), or a JSON error (400, 429), or Http404 when
    who (the key's account) was removed meanwhile; it ends when who is removed from the room."""
    resume = request.headers.get("Last-Event-ID") or after
    try:
        cursor = None if resume is None else int(resume)
        if cursor is not None and cursor < 0:
            raise ValueError
    except ValueError:
        return error("Last-Event-ID (or after) must be an event id: a whole number, 0 or more.", 400)
    key, waker = request.api_key, _Waker(room.key, getattr(who, "pk", None))
    if not followers().admit(key, waker):
        return error(f"This key already has {settings.EVENT_STREAMS_PER_KEY} event streams open here; "
                     "close one before opening another.", 429, Retry_After=RETRY_AFTER_FULL)
    try:
        await _join(room, waker)
        # Joined, then checked again: a removal committed since the API's check is seen here, and
        # one committed after it reaches the stream through the room's fan-out.
        await sync_to_async(access.room_for)(who, room.key)
        now = await sync_to_async(Message.objects.last_event)(room.key)
    except BaseException:
        fanout.rooms().leave(room.group, waker)
        followers().leave(key, waker)
        raise
    response = sse.EventStream(_events(room, now if cursor is None else cursor, now, key, waker))
    # The stream is in the room's fan-out from here: a response cancelled before its events ever
    # started (their own finally leaves it) must leave it too. Django closes it, off the loop.
    joined = fanout.rooms()
    response._resource_closers.append(lambda: joined.leave(room.group, waker))
    return response


async def _join(room, waker):
    """Have the room's frames (and removals) wake the stream; if the layer is away, it stays dropped
    (the stream reads the database every second and joins again)."""
    try:
        await fanout.rooms().join(room.group, waker)
        waker.dropped = False
    except Exception:  # noqa: BLE001 - the layer is away: the database is the log, read it every second
        logger.warning("room events: could not join %s; reading it every second", room.group, exc_info=True)


def reset(room, now):
    """The event a resume too far behind gets instead of the replay: page the history, then go on from now."""
    data = {
        "last": now,
        "history": f"/api/rooms/{room.key}/messages",
        "error": f"More than {settings.EVENT_REPLAY_MAX} events were missed: page the history with "
                 f"GET /api/rooms/{room.key}/messages, then continue from this event.",
    }
    return sse.event(data, name="reset", id=now)


class _Waker:
    """Sits in the room's fan-out like a page's socket: any frame of the room wakes the stream (and
    so do its key's revocation and its account's removal from the room)."""

    def __init__(self, room_key, account_id):
        self.room_key = room_key
        self.wake = asyncio.Event()
        self.dropped = True  # not joined to the room's fan-out (yet, or since the layer failed)
        self.revoked = False
        self.removed = False
        self.account_id = account_id

    def revoke(self):
        self.revoked = True
        self.wake.set()

    async def forward(self, message):
        self.wake.set()

    async def recheck(self):
        """Whether the key's account may still read the room (the fan-out asks when that may have changed)."""
        return await sync_to_async(access.account_may_read)(self.account_id, self.room_key)

    async def close(self, code=None):
        if code == fanout.REMOVED:
            self.removed = True  # the key's account left the room: the stream ends, nothing more is read
        else:
            self.dropped = True  # the fan-out lost the layer: join again, and read what changed
        self.wake.set()


async def _events(room, cursor, now, key, waker):
    known = {}  # message id -> (status, the text of a reply still streaming) this client has
    loop = asyncio.get_running_loop()
    said_at = loop.time()  # when the client last heard from this stream
    try:
        yield sse.retry(RETRY_MS)
        if now - cursor > settings.EVENT_REPLAY_MAX:
            yield reset(room, now)
            cursor = now
        while True:
            if waker.revoked:
                yield sse.event({"error": "This API key was revoked."}, name="error")
                return
            waker.wake.clear()
            if waker.dropped:
                await _join(room, waker)
                # A removal sent while the stream was not joined never reached it: ask again.
                if not waker.dropped and not await waker.recheck():
                    return
            if waker.removed:
                return
            rows = await sync_to_async(Message.objects.events_after)(room.key, cursor, BATCH)
            if waker.removed:  # removed while the rows were read: they are not theirs any more
                return
            for row in rows:
                yield _event(row, known)
                cursor = row.seq
                said_at = loop.time()
            if len(rows) == BATCH:
                continue
            try:
                async with asyncio.timeout(1 if waker.dropped else settings.SSE_KEEPALIVE):
                    await waker.wake.wait()
                # A streaming reply wakes this ten times a second: gather a moment, then read once.
                await asyncio.sleep(WAKE_GATHER)
            except TimeoutError:
                # Also while the layer is away and the join is retried every second: the client
                # and its proxies must not take a quiet stream for a dead one.
                if loop.time() - said_at >= settings.SSE_KEEPALIVE:
                    yield sse.KEEP_ALIVE
                    said_at = loop.time()
    finally:
        fanout.rooms().leave(room.group, waker)
        followers().leave(key, waker)


def message_json(message):
    """A message as the API shows it (the shape of the API's MessageOut)."""
    user = message.role == Message.Role.USER
    return {
        "id": message.pk, "room": message.room, "role": message.role,
        "author": message.author_name, "bot": None if user else message.bot,
        "via_api": message.via_api, "status": message.status, "content": message.content,
        "error": message.error, "created": message.created_at, "updated": message.updated_at,
        "revision": message.revision, "reply_to": message.reply_to_id,
        "up_votes": message.up_votes, "down_votes": message.down_votes,
    }


def _event(row, known):
    """One row as the event its change is: removed, a delta of a reply still streaming, or the whole message."""
    had = known.pop(row.pk, None)
    if row.is_removed:
        name, data = "removed", {"id": row.pk}
    elif had and had[0] == row.status == Message.Status.STREAMING and row.content.startswith(had[1]):
        # Still the text this client has, grown (a reply stopped and retried meanwhile would not be).
        name, data = "delta", {"id": row.pk, "offset": len(had[1]), "text": row.content[len(had[1]):]}
    else:
        name, data = "message", message_json(row)
    if row.status == Message.Status.STREAMING and not row.is_removed:
        known[row.pk] = (row.status, row.content)  # only replies still streaming are remembered
    return sse.event(data, name=name, id=row.seq)
