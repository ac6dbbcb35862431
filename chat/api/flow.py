"""Flow control for streamed responses: a client that reads slowly slows its stream; one that stops is closed.

Daphne's ``http.response.body`` send never waits: it hands the bytes to Twisted's transport, which
buffers without bound for a client that does not read (a room's whole history, resumed from event
0, piled up in the process). Twisted has the public remedy, producer and consumer: a push producer
registered on the request is paused when the connection's write buffer passes its size (64 KiB)
and resumed when it drains. Here the send of a streamed body waits while paused, so what a stream
holds unsent is that buffer and one chunk; a client that stays paused for ``SEND_STALL_TIMEOUT``
seconds is disconnected, and its response ends as at any disconnect.

Daphne gives an application no public handle on its request: its ``send`` is
``functools.partial(server.handle_reply, protocol)``, the protocol being the Twisted request.
``request_of`` reads it there (tests/test_event_stream_bounds.py fails if that moves); under any
other server, or another shape, responses stream as before.
"""

import asyncio
import logging

from django.conf import settings

from chat.server.handles import protocol_behind

logger = logging.getLogger(__name__)


def request_of(send):
    """The Twisted request behind Daphne's send callable, or None elsewhere."""
    try:
        from twisted.web.http import Request
    except ImportError:
        return None
    return protocol_behind(send, Request)


class Flow:
    """One response's flow: a push producer on the Twisted request, and the send that heeds it."""

    def __init__(self, request, send):
        self.request = request
        self._send = send
        self.writable = asyncio.Event()
        self.writable.set()
        self.registered = False
        self.gone = False

    # Twisted's IPushProducer: called on the reactor, which runs on this event loop.
    def pauseProducing(self):  # noqa: N802 - Twisted's names
        self.writable.clear()

    def resumeProducing(self):  # noqa: N802
        self.writable.set()

    def stopProducing(self):  # noqa: N802
        self.gone = True
        self.writable.set()

    async def send(self, message):
        """Daphne's send, which waits while the client's connection is full and closes one that stays full."""
        if message["type"] == "http.response.body":
            if message.get("more_body", False):
                if not self.registered:
                    if getattr(self.request, "channel", None) is not None:  # not already gone
                        self.request.registerProducer(self, True)
                    self.registered = True
                elif not self.writable.is_set() and not await self._drained():
                    return
            else:
                self.release()  # Twisted wants the producer gone before the request finishes
        await self._send(message)

    async def _drained(self):
        """Wait for the client to read; False when it stalled too long (it is disconnected) or went away."""
        try:
            async with asyncio.timeout(settings.SEND_STALL_TIMEOUT):
                await self.writable.wait()
        except TimeoutError:
            logger.info("a client read nothing for %s s: closed", settings.SEND_STALL_TIMEOUT)
            self.release()
            transport = self.request.transport
            if transport is not None:
                # Not loseConnection: that waits to send the buffer, which this client never reads.
                getattr(transport, "abortConnection", transport.loseConnection)()
            self.gone = True
        return not self.gone

    def release(self):
        """Unregister the producer (once), while the request still has its connection."""
        if self.registered and self.request.producer is self and getattr(self.request, "channel", None) is not None:
            self.request.unregisterProducer()
        self.registered = False


class FlowControl:
    """ASGI middleware: HTTP responses under Daphne send through a Flow."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        request = request_of(send) if scope["type"] == "http" else None
        if request is None:
            return await self.app(scope, receive, send)
        flow = Flow(request, send)
        try:
            return await self.app(scope, receive, flow.send)
        finally:
            flow.release()
