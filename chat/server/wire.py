"""A room's frame on the wire: framed once for all its sockets, and written at once where a socket can take it.

Daphne sends each ``websocket.send`` through autobahn, which frames the message anew for every
socket, and Twisted's transport, which never writes at once: it keeps the bytes, registers the
socket with epoll for writing, writes when the next loop turn says it can, and unregisters it.
Profiled at 10,000 room sockets, that was half of what the server spent outside the garbage
collector (README, "The garbage collector at 10,000 sockets"). Here the fan-out's one message
object for all of a room's sockets is framed once (gorilla/websocket's ``PreparedMessage`` does
the same), and a socket whose transport holds nothing unsent gets the bytes with one ``send``;
what the kernel does not take goes to the transport's buffer as before.

Only a plain TCP socket with no per-message compression and unmasked server frames (Daphne's
setup) is written to here; anything else goes through Daphne. tests/test_wire.py fails if the
Twisted and autobahn attributes read here move.
"""

import socket
import struct

from chat import services

TEXT, BINARY = 0x1, 0x2
FIN = 0x80

class Framer:
    """Frames ``websocket.send`` messages, keeping the last one's bytes: the fan-out sends one message
    object to every socket of a room, one after another."""

    __slots__ = ("message", "data")

    def __init__(self):
        self.message, self.data = None, b""

    def frame(self, message):
        """The bytes of the unmasked, unfragmented frame carrying message (which, as ASGI's messages
        are, is not changed once sent: its bytes are kept by its identity)."""
        if message is self.message:
            return self.data
        if message.get("bytes") is not None:
            opcode, payload = BINARY, message["bytes"]
        else:
            opcode, payload = TEXT, message["text"].encode()
        length = len(payload)
        if length < 126:
            head = bytes((FIN | opcode, length))
        elif length < 65536:
            head = struct.pack("!BBH", FIN | opcode, 126, length)
        else:
            head = struct.pack("!BBQ", FIN | opcode, 127, length)
        self.message, self.data = message, head + payload
        return self.data


def framer():
    """This process's framer (one per event loop, as every part)."""
    return services.current().part(Framer)


def writable(protocol):
    """The socket behind an open autobahn protocol when its frames may be written to it directly, else None."""
    from twisted.internet import tcp

    transport = protocol.transport
    if type(transport) is not tcp.Server or transport.TLS or protocol._perMessageCompress is not None:
        return None
    if protocol.maskServerFrames:
        return None
    handle = transport.getHandle()
    return handle if isinstance(handle, socket.socket) else None


def unsent(transport):
    """Bytes Twisted's transport still holds for its socket."""
    return len(transport.dataBuffer) - transport.offset + transport._tempDataLen


def write(protocol, sock, data):
    """Write data, a whole frame, to the socket of an open protocol: at once if its transport holds
    nothing unsent, the rest (or all) through the transport. Whether any was left to the transport
    (None: the socket is closing, and the frame is Daphne's to drop or send)."""
    transport = protocol.transport
    if protocol.state != protocol.STATE_OPEN or not transport.connected or transport.disconnecting:
        return None
    if unsent(transport):
        transport.write(data)  # after what it holds: frames stay whole and in order
        return True
    try:
        sent = sock.send(data)
    except (BlockingIOError, InterruptedError):
        sent = 0
    except OSError:
        # The connection broke: the transport's own write finds out and closes it as it always does.
        transport.write(data)
        return True
    if sent < len(data):
        transport.write(data[sent:])
        return True
    return False
