"""Daphne's HTTP/1.1 connection and request, bounded.

Twisted reads a request's whole body before Daphne hands it on, and by default parses form and
multipart bodies itself on the reactor thread (Daphne never reads what it parsed): one large form
post froze every room. Here the body is never parsed, never read past MAX_BODY_BYTES (413 at once
from the Content-Length, or when a chunked body crosses the cap), and a connection has a fixed time
for a request's head and one for its body, which no amount of trickled data extends.

Daphne builds its factory from the name `HTTPFactory` in `daphne.server` when its server starts,
and Twisted's factory wraps each channel in `_GenericHTTPChannelProtocol`: both are private, and
tests/test_hostile_bodies.py fails if either moves.
"""

import logging
from urllib.parse import unquote

import daphne.server
from daphne.http_protocol import HTTPFactory, WebRequest
from django.conf import settings
from twisted.web import http

from chat.server import refusals

logger = logging.getLogger(__name__)

# Seconds a refused connection stays open, not read, so the client can read the 413 before the
# close (closing with unread data sends a reset, which can destroy the answer in flight).
REFUSAL_LINGER = 1.0


class BoundedChannel(http.HTTPChannel):
    """Twisted's HTTP/1.1 channel with deadlines that data does not move: HTTP_HEADER_TIMEOUT for a
    request's line and headers (from the connection's start, or the previous response's end: an idle
    keep-alive connection closes then too), HTTP_BODY_TIMEOUT for its body."""

    _deadline = None

    def connectionMade(self):
        super().connectionMade()
        self._expect(settings.HTTP_HEADER_TIMEOUT)

    def allHeadersReceived(self):
        self._expect(settings.HTTP_BODY_TIMEOUT)
        super().allHeadersReceived()

    def allContentReceived(self):
        self._expect(None)  # the app answers in its own time: a stream may last hours
        super().allContentReceived()

    def requestDone(self, request):
        # Before Twisted's own: it may read a pipelined request at once, which sets its own deadline.
        self._expect(settings.HTTP_HEADER_TIMEOUT)
        super().requestDone(request)

    def connectionLost(self, reason):
        self._expect(None)
        super().connectionLost(reason)

    def _expect(self, seconds):
        """Close the connection in `seconds` unless the next stage comes first (None: no deadline)."""
        if self._deadline is not None and self._deadline.active():
            self._deadline.cancel()
        self._deadline = self.callLater(seconds, self.timeoutConnection) if seconds else None


class BoundedRequest(WebRequest):
    """Daphne's request, which never parses its body and refuses one over MAX_BODY_BYTES unread."""

    refused = False
    received = 0

    def __init__(self, channel, *args, **kwargs):
        super().__init__(channel, *args, parsePOSTFormSubmission=False, **kwargs)

    def gotLength(self, length):
        limit = settings.MAX_BODY_BYTES
        if length is not None and length > limit:
            self._refuse(f"The body has {length} bytes; the limit is {limit}.")
            return
        super().gotLength(length)

    def handleContentChunk(self, data):
        if self.refused:
            return  # what was already in the socket's last read: dropped, never stored
        self.received += len(data)
        limit = settings.MAX_BODY_BYTES
        if self.received > limit:
            self._refuse(f"The body is over {limit} bytes, the limit.")
            return
        super().handleContentChunk(data)

    def requestReceived(self, command, path, version):
        if not self.refused:
            super().requestReceived(command, path, version)

    def _refuse(self, message):
        """Answer 413 in the endpoint's shape, stop reading, and close the connection a moment later."""
        self.refused = True
        # Twisted answers "Expect: 100-continue" right after the headers: not to this request.
        self.requestHeaders.removeHeader(b"Expect")
        channel = self.channel
        path = unquote(channel._path.split(b"?", 1)[0].decode("latin-1"))
        transport = channel.transport
        transport.write(refusals.wire(refusals.too_large(path, message)))
        transport.pauseProducing()
        channel.callLater(REFUSAL_LINGER, transport.abortConnection)
        logger.info("413 for %s from %s: %s", path, getattr(self.client, "host", "?"), message)


class BoundedHTTPFactory(HTTPFactory):
    """Daphne's HTTP factory, building bounded channels and requests."""

    def protocol(self):
        return http._GenericHTTPChannelProtocol(BoundedChannel())

    def buildProtocol(self, addr):
        protocol = super().buildProtocol(addr)
        protocol.requestFactory = BoundedRequest
        return protocol


def install():
    """Make every Daphne server this process starts use the bounded factory (`daphne` and `./parley run` alike)."""
    daphne.server.HTTPFactory = BoundedHTTPFactory
