"""The room socket: joins its room in this process's fan-out and gets its frames; sends only, never listens."""

import time
from urllib.parse import parse_qs

from asgiref.sync import sync_to_async
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from django.http import Http404

from chat import access, identity, services
from chat.delivery import addresses, fanout, frames, presence
from chat.delivery.catch_up import catch_up
from chat.models import Message

# A page sends nothing; a client sending more than this many frames in the window, or one frame
# larger than this, is closed with 4008 (1008, policy violation, in the
# application range: Daphne lets applications send only 1000 and 3000-4999).
FLOOD_FRAMES = 20
FLOOD_WINDOW = 10.0
MAX_CLIENT_FRAME = 1024
POLICY_VIOLATION = 4008



def parse_after(query_string):
    """The room's event number a reconnecting page is in step with (`after`, a whole number), or
    None when absent or unreadable (then nothing is replayed, as for a first connect)."""
    values = parse_qs(query_string.decode("latin-1")).get("after")
    if not values or not values[0].isascii() or not values[0].isdigit():
        return None
    return int(values[0])


class RoomConsumer(AsyncWebsocketConsumer):
    """One page of a room: gets the room's Turbo Stream frames, and on (re)connect what it missed."""

    # No channel of its own: the process's fan-out hands this socket its room's frames.
    channel_layer_alias = None
    channel_layer = None

    window_start = 0.0
    received = 0
    held = None  # room frames that came before the handshake or the catch-up was done, sent after it
    room = None
    person = None  # who this page is, once counted in the room's presence
    address = None  # where it comes from, once counted against that address's share
    account_id = None  # the signed-in account's pk: a member removed from the room is closed by it
    shut = False  # closed (or its handshake refused) by this server

    async def __call__(self, scope, receive, send):
        """Channels' consumer loop for one source of messages, the client: awaited here, not in a task
        of its own (with its wait's futures) as Channels' loop over several sources does for each socket."""
        if self.channel_layer_alias is not None:  # a subclass with a channel of its own (the benchmark's)
            return await super().__call__(scope, receive, send)
        self.scope, self.base_send = scope, send
        try:
            while True:
                await self.dispatch(await receive())
        except StopConsumer:
            pass

    async def connect(self):
        # The handshake's trips to the database (the session, the access check, the catch-up) go
        # to the least busy of the views' threads: on asgiref's one shared thread a storm of
        # reconnects queued there one after another (py-spy under ./parley bench-drops).
        async with services.views_lane():
            await self._connect()

    async def _connect(self):
        # The address's share first: a socket past it costs no trip to a view thread, so a
        # flood of them cannot hold up everyone else's handshakes there.
        address = addresses.of_scope(self.scope)
        if not addresses.addresses().admit(address):
            await self.accept()
            await self.close(code=addresses.TOO_MANY)  # after accept, so the client learns the code
            return
        try:
            self.room, self.account_id, me, had_token = await sync_to_async(self._enter)()
        except BaseException as exc:
            addresses.addresses().leave(address)
            if not isinstance(exc, Http404):
                raise
            await self.close()  # before accept: the handshake is refused (403), as for a room that does not exist
            return
        self.address = address
        after = parse_after(self.scope.get("query_string", b""))
        # Joined before the handshake completes, frames held until then: a client that posts the
        # moment its socket opens sees every frame of it (with the Redis layer the join is a round
        # trip, and a post could overtake it).
        self.held = []
        try:
            await fanout.rooms().join(self.room.group, self)
            # Joined, then checked again: a removal (or the room closing to members) committed since
            # the check above is seen here; one committed later reaches this page through the fan-out.
            await sync_to_async(self._may_read)()
        except BaseException as exc:
            self._leave()
            if not isinstance(exc, Http404):
                raise
            if not self.shut:
                await self.close()  # still before accept: refused, as for a room that does not exist
            return
        if self.shut:  # removed while it was checked: the fan-out has refused it already
            self._leave()
            return
        try:
            self.person = self._present_as(me, had_token)
            presence.roster().join(self.room.group, self.person, self)
            await self.accept()
            if after is not None:
                # Joined first, then read: whatever changed meanwhile arrives at least once, and
                # after the catch-up, which must not paint over it. Older repeats are dropped by
                # the page (revisions, offsets).
                await self.send(text_data=self._heading() + await sync_to_async(self._catch_up)(after))
            while self.held:
                await self.base_send(self.held.pop(0))
            self.held = None
        except Exception:
            # Channels calls no disconnect() after a failed connect(): leave here, or the fan-out
            # keeps handing frames to a dead socket.
            self._leave()
            raise

    def _enter(self):
        """The room, if this page's person may read it (the one access check), their account's pk, who
        they are and whether their session had a guest token: one trip to the database thread."""
        who = access.person(self.scope.get("user"))
        room = access.room_for(who, self.scope["url_route"]["kwargs"]["room"])
        session = self.scope["session"]
        had_token = "author_id" in session  # before of_session hands a session without one a new token
        return room, getattr(who, "pk", None), identity.of_session(session, self.scope.get("user")), had_token

    def _may_read(self):
        """The one access check again, for this page's person and room (Http404 when they may not read it)."""
        access.room_for(access.person(self.scope.get("user")), self.room.key)

    def _present_as(self, sender, had_token):
        """Who this page is in the room's presence. A guest who has not posted yet is who their page's
        offer names, one person per page view; without one (a script), the address's one anonymous guest."""
        if not had_token and sender.kind == identity.Kind.GUEST:
            guest = parse_qs(self.scope["query_string"].decode("latin-1")).get("guest", [""])[0]
            if offered := identity.of_offer(guest):
                return offered
        return addresses.present_as(sender, had_token, self.address)

    async def recheck(self):
        """Whether this page's person may still read its room (the fan-out asks when that may have changed)."""
        try:
            await sync_to_async(self._may_read)()
        except Http404:
            return False
        return True

    def _heading(self):
        """The room's title and topic for a page that reconnects showing others (its mark differs): a new
        title or topic is a frame, not one of the room's numbered events."""
        shown = parse_qs(self.scope["query_string"].decode("latin-1")).get("heading")
        # A client that sends no mark (a script) keeps to the messages: nothing more to read on each reconnect.
        return "" if shown is None or shown[0] == frames.heading_mark(self.room) else frames.heading(self.room)

    def _catch_up(self, after):
        now, changed = catch_up(self.room.key, after)
        if changed is None:  # more changed than a page shows: the whole list anew
            return frames.messages(Message.objects.recent(self.room.key)) + frames.synced(now)
        return "".join(frames.current(m, otherwise=frames.prepend) for m in changed) + frames.synced(now)

    async def forward(self, message):
        """A room frame from the fan-out: sent now, or after the catch-up while one is on its way."""
        if self.held is not None:
            self.held.append(message)
        else:
            await self.base_send(message)

    async def close(self, code=None, reason=None):
        """Close the socket (refuse its handshake, before accept); the fan-out closes removed members' so."""
        self.shut = True
        await super().close(code, reason)

    async def disconnect(self, code):
        if self.address is not None:
            self._leave()

    def _leave(self):
        addresses.addresses().leave(self.address)
        self.address = None
        fanout.rooms().leave(self.room.group, self)
        if self.person is not None:
            presence.roster().leave(self.room.group, self.person)
            self.person = None

    async def receive(self, text_data=None, bytes_data=None):
        """Pages only listen: what a client sends is ignored, and a client that floods is closed."""
        now = time.monotonic()
        if now - self.window_start > FLOOD_WINDOW:
            self.window_start, self.received = now, 0
        self.received += 1
        size = len(text_data or bytes_data or "")
        if self.received > FLOOD_FRAMES or size > MAX_CLIENT_FRAME:
            await self.close(code=POLICY_VIOLATION)

    async def dispatch(self, message):
        # Client chatter and leaving touch no database: skip Channels' per-message close_old_connections
        # hop, which queues every message of every socket behind one thread (the sweep keeps that
        # thread's connection healthy).
        if message["type"] == "websocket.receive":
            await self.websocket_receive(message)
        elif message["type"] == "websocket.disconnect":
            await self.websocket_disconnect(message)
        else:
            await super().dispatch(message)
