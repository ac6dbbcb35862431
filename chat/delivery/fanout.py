"""Room fan-out: one channel-layer subscription per room per process, frames handed to local sockets.

Channels' usual fan-out gives every socket its own channel and lets the layer copy each frame to
all of them: a layer round trip and a consumer wake-up per frame per socket. Here the process
holds one channel, joins a room's group once while it has a page of that room open, and one
listener hands each frame, rendered once by the broadcaster, to the room's local sockets in the
order it came. Every process joins the same groups, so scale-out is unchanged.

The fan-out owns the channel-layer messages it reads: ``publish`` and ``resync`` write them, and
the listener dispatches each by its type to the method of that name (``room.frame`` to
``room_frame``), as a Channels consumer does. A socket is anything with two coroutine methods:
``forward(message)``, which sends it one ASGI ``websocket.send`` message, and ``close(code)``;
its ``account_id`` (the signed-in account's pk, or None) says whose it is when a member is removed.
"""

import asyncio
import logging
from collections import defaultdict

from channels.layers import get_channel_layer

from bots import registry
from chat import services

logger = logging.getLogger(__name__)

# A page whose frames may have been lost is closed with this code (1012, service restart, in the
# application range Daphne allows) and reconnects with catch-up.
RECONNECT = 4012
# After the channel layer fails, wait this long before pages are told to reconnect.
RETRY_AFTER = 0.5
# A page of a member just removed from the room is closed with this code (403 in the application
# range): it gets nothing more, and its reconnect is refused at the handshake.
REMOVED = 4403
LISTENER, HAND_OUT = "room-fanout", "room-handout"  # the names of the fan-out's two tasks


class Fanout:
    """This process's pages, by room, and the one listener that feeds them."""

    def __init__(self, layer):
        self.layer = layer
        self.channel = None
        self.rooms = defaultdict(set)  # group -> sockets (consumers) open in this process
        self.joined = set()  # groups this process's channel is a member of
        self.lock = asyncio.Lock()  # serialises group membership changes
        self.pending = {}  # group -> frames received since the last hand-out, in order
        self.arrived = asyncio.Event()

    async def join(self, group, socket):
        """Hand the room's frames to socket from now on."""
        self.rooms[group].add(socket)
        if group in self.joined:
            return
        async with self.lock:
            if group not in self.joined:
                await self._listen()
                await self.layer.group_add(group, self.channel)
                self.joined.add(group)

    def leave(self, group, socket):
        """No more frames for socket; the group is left by the next maintenance if it emptied."""
        self.rooms[group].discard(socket)

    async def maintain(self):
        """Leave rooms with no page open here; renew membership of the rest before it expires."""
        async with self.lock:
            for group in list(self.joined):
                try:
                    if self.rooms.get(group):
                        await self.layer.group_add(group, self.channel)
                    else:
                        # Forget first: a page joining during the await below waits for the lock, then rejoins.
                        self.joined.discard(group)
                        self.rooms.pop(group, None)
                        await self.layer.group_discard(group, self.channel)
                except Exception:  # noqa: BLE001 - the room's Redis host is away: the other rooms' still count
                    logger.warning("room frames: could not renew %s; next maintenance tries again", group, exc_info=True)

    async def _listen(self):
        here = services.current()
        if not here.is_running(LISTENER):
            self.channel = await self.layer.new_channel()
            listener = here.keep_running(LISTENER, self._receive_forever)
            listener.add_done_callback(lambda _: self.arrived.set())  # its hand-out task ends too
            here.keep_running(HAND_OUT, lambda: self._hand_out_forever(listener))

    async def _receive_forever(self):
        while True:
            try:
                message = await self.layer.receive(self.channel)
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - the layer's server went away; pages must not go deaf
                logger.warning("room frames: the channel layer failed; pages reconnect", exc_info=True)
                await asyncio.sleep(RETRY_AFTER)
                await self.lost()
                return
            kind = message.get("type")
            if kind == "turbo.stream":  # from a process of the previous release, during a rolling deploy
                kind = "room.resync" if message.get("resync") else "room.frame"
            if kind not in TYPES:
                logger.warning("room frames: ignored a layer message of type %r", message.get("type"))
                continue
            await getattr(self, kind.replace(".", "_"))(message)

    async def room_frame(self, message):
        """A frame for a room's pages: queued for the hand-out, which batches what arrives together."""
        self.pending.setdefault(message["group"], []).append(message["frame"])
        self.arrived.set()

    async def room_resync(self, message):
        """A frame of the room was lost on its way here: its pages reconnect and catch up."""
        await _reconnect(list(self.rooms.get(message["group"], ())))

    async def room_remove(self, message):
        """A member was removed from the room: their pages here leave it before any later frame, and close."""
        group = message["group"]
        gone = [socket for socket in self.rooms.get(group, ()) if getattr(socket, "account_id", None) == message["user"]]
        for socket in gone:
            self.leave(group, socket)
            try:
                await socket.close(code=REMOVED)
            except Exception:  # noqa: BLE001 - already gone
                pass

    async def room_recheck(self, message):
        """Who may read the room changed (it became members-only): each page here asks again, in a
        task of its own so the room's frames keep flowing; those that may not read it close."""
        group = message["group"]
        registry.shelf().forget()  # the room's row changed: read it now, not at the next periodic look
        # A members room is never a guest's (nor a key's without an account): those leave before any
        # later frame, without waiting for a check.
        sockets = []
        for socket in list(self.rooms.get(group, ())):
            if getattr(socket, "account_id", None) is None:
                self.leave(group, socket)
                try:
                    await socket.close(code=REMOVED)
                except Exception:  # noqa: BLE001 - already gone
                    pass
            elif hasattr(socket, "recheck"):
                sockets.append(socket)

        async def recheck():
            for socket in sockets:
                try:
                    if not await socket.recheck():
                        self.leave(group, socket)
                        await socket.close(code=REMOVED)
                except Exception:  # noqa: BLE001 - one broken socket must not spare the others
                    logger.debug("room frames: a socket of %s could not be checked", group, exc_info=True)

        services.current().keep_running(f"recheck:{group}:{id(sockets)}", recheck)

    async def _hand_out_forever(self, listener):
        """Hand out what arrived: under load several frames of a room go to each page as one message."""
        while not listener.done():
            await self.arrived.wait()
            self.arrived.clear()
            batch, self.pending = self.pending, {}
            for group, frames in batch.items():
                await self.deliver(group, {"type": "websocket.send", "text": "".join(frames)})

    async def deliver(self, group, send):
        """One text frame to every local page of the room: the same message object for all of them."""
        for socket in list(self.rooms.get(group, ())):
            try:
                await socket.forward(send)
            except Exception:  # noqa: BLE001 - one broken socket must not starve the others
                logger.debug("room frames: a socket of %s could not be sent to", group, exc_info=True)

    async def lost(self, host=None):
        """Frames may have been lost (the layer failed, or its host reconnected: then only that host's
        rooms). Close their pages so each reconnects, rejoins and catches up from the database
        instead of silently missing them."""
        async with self.lock:
            groups = [group for group in self.rooms if host is None or host_of(group) == host]
            sockets = [socket for group in groups for socket in self.rooms.pop(group)]
            self.joined.difference_update(groups)
        await _reconnect(sockets)


async def _reconnect(sockets):
    """Close pages so that each reconnects and catches up."""
    for socket in sockets:
        try:
            await socket.close(code=RECONNECT)
        except Exception:  # noqa: BLE001 - already gone
            pass


TYPES = ("room.frame", "room.resync", "room.remove", "room.recheck")


async def publish(group, frame):
    """Send one frame to every page of the room, in every process."""
    # The group rides along: a process's one fan-out channel receives the frames of every room.
    await get_channel_layer().group_send(group, {"type": "room.frame", "group": group, "frame": frame})


async def resync(group):
    """Tell every page of the room, in every process, to reconnect and catch up (a frame was lost)."""
    # "resync" rides along: a process of the previous release reads that flag, not the type.
    await get_channel_layer().group_send(group, {"type": "room.resync", "group": group, "resync": True})


async def remove(group, user_id):
    """Close the pages (and event streams) of account user_id in the room, in every process."""
    await get_channel_layer().group_send(group, {"type": "room.remove", "group": group, "user": user_id})


async def recheck(group):
    """Have every page of the room, in every process, check again whether its person may read it."""
    await get_channel_layer().group_send(group, {"type": "room.recheck", "group": group})


def rooms():
    """This process's fan-out for the running event loop and channel layer."""
    return services.current().part(Fanout, get_channel_layer())


def host_of(group):
    """The name of the Redis host that carries the room's frames, or None with a layer of one place."""
    layer = get_channel_layer()
    return layer.host_of(group) if hasattr(layer, "host_of") else None


def layer_reconnected(host):
    """A connection to one of the layer's Redis hosts came back after a drop, when frames may have been
    lost (called on the event loop by the layer's connect hook): every page of a room that host
    carries reconnects and catches up; the other hosts' rooms carry on."""
    logger.warning("room frames: Redis at %s reconnected; its rooms' pages reconnect and catch up", host)
    services.current().keep_running(f"layer-lost:{host}", lambda: rooms().lost(host))

