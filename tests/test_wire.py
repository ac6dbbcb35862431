"""Room frames on the wire: framed once, byte for byte as a WebSocket library frames them, and the
Twisted and autobahn attributes the direct write reads."""

import inspect

import pytest
from autobahn.websocket.protocol import WebSocketProtocol, WebSocketServerFactory
from twisted.internet import abstract, tcp
from websockets.frames import Frame, Opcode

from chat.server import wire


@pytest.mark.parametrize("size", [0, 1, 125, 126, 127, 65535, 65536, 70000])
def test_a_frame_is_what_a_websocket_library_makes(size):
    text = ("é" * size)[: size // 2] + "a" * (size - size // 2 * 2)  # multi-byte characters: lengths in bytes
    framer = wire.Framer()
    assert framer.frame({"type": "websocket.send", "text": text}) == Frame(Opcode.TEXT, text.encode()).serialize(mask=False)
    data = bytes(range(256)) * (size // 256) + bytes(size % 256)
    assert framer.frame({"type": "websocket.send", "bytes": data}) == Frame(Opcode.BINARY, data).serialize(mask=False)


def test_one_message_is_framed_once_for_all_its_sockets():
    framer = wire.Framer()
    message = {"type": "websocket.send", "text": "<turbo-stream></turbo-stream>"}
    first = framer.frame(message)
    assert framer.frame(message) is first
    other = {"type": "websocket.send", "text": "<turbo-stream></turbo-stream>"}  # equal, not the same: framed anew
    assert framer.frame(other) == first and framer.frame(other) is not first


def test_the_attributes_the_direct_write_reads_are_where_they_were():
    """If Twisted or autobahn move these, this fails: a moved one would send every frame through Daphne
    again (slower), or write past bytes Twisted still holds (frames out of order)."""
    assert tcp.Server.TLS is False and hasattr(tcp.Server, "getHandle")
    write = inspect.getsource(abstract.FileDescriptor.write)
    assert "self._tempDataBuffer.append(data)" in write and "self._tempDataLen += len(data)" in write
    do_write = inspect.getsource(abstract.FileDescriptor.doWrite)
    assert "self.dataBuffer" in do_write and "self.offset" in do_write
    # autobahn: a protocol starts with no compression (Daphne's factory offers none) and the server's
    # frames unmasked, its state named as read here.
    assert "self._perMessageCompress = None" in inspect.getsource(WebSocketProtocol._connectionMade)
    assert WebSocketServerFactory().maskServerFrames is False
    assert WebSocketProtocol.STATE_OPEN != WebSocketProtocol.STATE_CLOSING
