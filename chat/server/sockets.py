"""Room sockets hold bounded unsent data: one whose client stops reading is closed, not buffered for.

Daphne's ``websocket.send`` never waits: autobahn writes each frame to the Twisted transport, which
buffers without bound for a client that reads nothing. Twisted's public remedy is a producer on the
transport (autobahn's ``registerProducer``). A push producer is paused only past the transport's
64 KiB high-water mark, which is also its read size, so it cannot be lowered; a pull producer is
asked to ``resumeProducing()`` each time the transport's buffer empties. That is the one fact needed
here: the frames written since the buffer was last empty, past the first, are what the socket
holds in the process. Past SOCKET_MAX_UNSENT_BYTES of them the socket gets no more frames and is
closed with CLIENT_TOO_SLOW; its application sees a disconnect at once (put in Daphne's queue of its
incoming messages, so no task per socket waits for it), and the client has
SEND_STALL_TIMEOUT seconds to read up to the close before the connection is dropped. A socket thus
holds at most one frame and the bound in the process; its kernel send buffer is set to the bound
as well, so a client that reads nothing reaches it soon. Once open, a frame the kernel takes whole
while the transport holds nothing goes straight to the socket (chat/server/wire.py): nothing of it
waits in the process; what the kernel does not take goes to the transport's buffer, counted as above.

Daphne's send is ``functools.partial(server.handle_reply, protocol)``; ``protocol_of`` reads the
protocol there and ``inbox_behind`` the queue behind Daphne's receive (tests/test_stalled_sockets.py
fails if either moves). Elsewhere sockets send as before.
"""

import logging
import socket

from django.conf import settings

from chat.server import wire
from chat.server.handles import inbox_behind, protocol_behind

logger = logging.getLogger(__name__)

# 1013 (try again later) in the application range Daphne allows: the page reconnects and catches up.
CLIENT_TOO_SLOW = 4013


def protocol_of(send):
    """The autobahn WebSocket protocol behind Daphne's send callable, or None elsewhere."""
    try:
        from autobahn.twisted.websocket import WebSocketServerProtocol
    except ImportError:
        return None
    return protocol_behind(send, WebSocketServerProtocol)


def payload_size(message):
    """The bytes a ``websocket.send`` message carries."""
    return len(message["bytes"]) if message.get("bytes") else len(message.get("text", "").encode())


class Outbox:
    """One socket's way out: a pull producer on its transport, and a send that stops at the bound."""

    __slots__ = ("protocol", "_send", "inbox", "buffered", "held", "full", "socket", "framer", "__weakref__")

    def __init__(self, protocol, send, inbox):
        self.protocol = protocol
        self._send = send
        self.inbox = inbox  # the application's incoming messages (Daphne's queue)
        self.buffered = False  # Twisted's buffer holds some of this socket's frames (it has not said it emptied)
        self.held = 0  # bytes written since the buffer was last seen empty, past the first frame
        self.full = False  # over the bound: closed, and the application told so
        self.socket = None  # once open, the socket its frames are written to directly (chat/server/wire.py), if any
        self.framer = None  # and what frames them

    # Twisted's IPullProducer: called on the reactor, which runs on this event loop.
    def resumeProducing(self):  # noqa: N802 - Twisted's names
        """The transport's buffer is empty."""
        self.buffered, self.held = False, 0

    def stopProducing(self):  # noqa: N802
        pass  # the connection is gone: Daphne tells the application

    def attach(self):
        """Be the transport's producer, and give it a kernel send buffer of the bound."""
        transport = self.protocol.transport
        # A client that gave up before its accept went out leaves a transport with no socket behind it.
        if transport is None or not getattr(transport, "connected", True) or getattr(transport, "disconnecting", False):
            return
        self.protocol.unregisterProducer()  # the HTTP channel the socket was upgraded from
        self.protocol.registerProducer(self, False)
        handle = getattr(transport, "getHandle", lambda: None)()
        if isinstance(handle, socket.socket):
            handle.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, settings.SOCKET_MAX_UNSENT_BYTES)
        self.socket = wire.writable(self.protocol)
        self.framer = wire.framer()

    async def send(self, message):
        """Daphne's send, which drops frames once the socket is over its bound and closes it then."""
        kind = message["type"]
        if self.full:
            return  # closed for being too slow: what the application still sends goes nowhere
        if kind == "websocket.send":
            data = self.framer.frame(message) if self.socket is not None else None
            if self.buffered:
                self.held += len(data) if data is not None else payload_size(message)
                if self.held > settings.SOCKET_MAX_UNSENT_BYTES:
                    await self._close()
                    return
            left = wire.write(self.protocol, self.socket, data) if data is not None else None
            if left is False:
                self.buffered, self.held = False, 0  # the kernel took it all: nothing of it waits here
                return
            self.buffered = True  # until Twisted says its buffer emptied
            if left:
                return  # written, the rest in Twisted's buffer
        await self._send(message)
        if kind == "websocket.accept":
            self.attach()

    async def _close(self):
        logger.info("a room socket held over %s bytes unsent: closed with %s", settings.SOCKET_MAX_UNSENT_BYTES,
                    CLIENT_TOO_SLOW)
        self.full = True
        # The application learns at once, from its own inbox: no task per socket waits for this.
        self.inbox.put_nowait({"type": "websocket.disconnect", "code": CLIENT_TOO_SLOW})
        # autobahn drops the connection this long after its close frame if the client never answers.
        self.protocol.closeHandshakeTimeout = settings.SEND_STALL_TIMEOUT
        await self._send({"type": "websocket.close", "code": CLIENT_TOO_SLOW})


class BoundedSockets:
    """ASGI middleware: WebSockets under Daphne send through an Outbox."""

    def __init__(self, app):
        self.app = app

    def __call__(self, scope, receive, send):
        # The inner application's coroutine, not one of this middleware's own kept for the socket's life.
        protocol = protocol_of(send) if scope["type"] == "websocket" else None
        inbox = inbox_behind(receive)
        if protocol is None or inbox is None:
            return self.app(scope, receive, send)
        return self.app(scope, receive, Outbox(protocol, send, inbox).send)
