"""Daphne's WebSocket protocol, keeping less for each open socket.

autobahn copies its factory's 30 options into every protocol, and keeps the opening handshake (the
request's bytes, its headers parsed, the response) for the socket's life; Daphne keeps the request
again for its log lines, which read only its path. An idle room socket held about 3 KiB of it. Here
the options are read from the factory, and once the socket is open the handshake is dropped (the
headers the application needs are in its scope) and the attributes repacked.

Daphne's server builds its WebSocket factory from the name ``WebSocketFactory`` in ``daphne.server``
when it starts (as it does ``HTTPFactory``, see chat/server/protocol.py); tests/test_inbox.py fails if
that or autobahn's option copying moves.
"""

import daphne.server
from daphne.ws_protocol import WebSocketFactory, WebSocketProtocol

from chat.server import heap

# What autobahn reads only while the opening handshake runs (a server's, not a client's).
HANDSHAKE = (
    "http_request_data", "http_headers", "http_response_data", "http_status_line", "http_request_uri",
    "http_request_path", "http_request_params", "http_request_host", "_wskey",
)


class FromFactory:
    """An autobahn option of the protocol, read from its factory unless set on the protocol itself."""

    def __init__(self, name):
        self.name = name

    def __get__(self, protocol, owner=None):
        if protocol is None:
            return self
        return getattr(protocol.factory, self.name)


class Opened:
    """What Daphne's log lines read of the opening request (its path), and the heap's last freeze at the open."""

    __slots__ = ("path", "freeze")

    def __init__(self, path, freeze):
        self.path = path
        self.freeze = freeze


class SendQueue(list):
    """autobahn's queue of synchronous writes, which Daphne never makes: empty, it is a list's 56 bytes,
    not a deque's block of 64 slots."""

    __slots__ = ()

    def popleft(self):
        return self.pop(0)


class LeanWebSocketProtocol(WebSocketProtocol):
    """Daphne's protocol with autobahn's options on the factory and no handshake kept once open; the
    heap keeper counts its sockets (chat/server/heap.py)."""

    def _connectionMade(self):
        super()._connectionMade()
        self.send_queue = SendQueue()

    def onOpen(self):
        super().onOpen()
        state = self.__dict__
        for name in HANDSHAKE:
            state.pop(name, None)
        self.request = Opened(self.request.path, heap.socket_opened())
        self.__dict__ = dict(state)  # a dict does not shrink as keys go: a copy is sized to what is left

    def onClose(self, wasClean, code, reason):
        try:
            super().onClose(wasClean, code, reason)
        finally:
            if isinstance(self.request, Opened):  # it had opened (a refused handshake never counted)
                heap.socket_closed(self.request.freeze)


# autobahn copies an option into the protocol only when the protocol has none (hasattr): these answer.
for _option in WebSocketProtocol.CONFIG_ATTRS:
    setattr(LeanWebSocketProtocol, _option, FromFactory(_option))


class LeanWebSocketFactory(WebSocketFactory):
    """Daphne's WebSocket factory, building lean protocols."""

    protocol = LeanWebSocketProtocol


def install():
    """Make every Daphne server this process starts build lean WebSocket protocols."""
    daphne.server.WebSocketFactory = LeanWebSocketFactory
