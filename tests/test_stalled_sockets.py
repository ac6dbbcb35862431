"""A room socket whose client stops reading: closed with 4013 at its bound, while the pages that read get every frame."""

import array
import asyncio
import base64
import fcntl
import os
import socket
import struct
import termios
import time

import pytest
import websockets
from asgiref.sync import sync_to_async

from chat.server import sockets
from tests.rooms import finished, parse_frames, shown_text
from tests.servers import Browser, daphne
from tests.test_end_to_end import provider_env, room_rows

pytestmark = pytest.mark.django_db(transaction=True)

BOUND = 8192  # the server's SOCKET_MAX_UNSENT_BYTES here
GRACE = 30  # its SEND_STALL_TIMEOUT: how long the closed socket waits for its client to read the close
CLOSED_LINE = f"a room socket held over {BOUND} bytes unsent: closed with {sockets.CLIENT_TOO_SLOW}"
TOKEN = "Arr, the tide be turning and the rum be flowing. " * 4  # 200 characters a token


def open_stalled(port, path):
    """A raw WebSocket client with a small receive buffer that reads its handshake's answer and then nothing."""
    client = socket.socket()
    client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    client.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    client.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                   f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nOrigin: http://127.0.0.1:{port}\r\n\r\n".encode())
    head = b""
    while not head.endswith(b"\r\n\r\n"):
        head += client.recv(1)  # one byte at a time: not one byte of the frames behind it
    assert head.startswith(b"HTTP/1.1 101"), head
    return client


def unread(client):
    """Bytes waiting in the client's receive buffer, not read (FIONREAD)."""
    count = array.array("i", [0])
    fcntl.ioctl(client.fileno(), termios.FIONREAD, count)
    return count[0]


def kernel_unsent(server_port, client_port):
    """Bytes in the server's kernel send queue for the connection to client_port (/proc/net/tcp's tx_queue)."""
    with open("/proc/net/tcp") as table:
        for line in table.readlines()[1:]:
            fields = line.split()
            local, remote = fields[1].split(":")[1], fields[2].split(":")[1]
            if int(local, 16) == server_port and int(remote, 16) == client_port:
                return int(fields[4].split(":")[0], 16)
    return 0


def wire_size(payload):
    """A server frame's bytes on the wire: its header (unmasked) and payload."""
    return len(payload) + (2 if len(payload) < 126 else 4 if len(payload) < 65536 else 10)


def read_until_closed(client, timeout):
    """Read the client's whole stream (its frames, then the close): [(opcode, payload)]."""
    client.settimeout(timeout)
    data = b""
    while chunk := client.recv(65536):
        data += chunk
        if b"\x88" in data[-64:] and (frames := split_frames(data)) and frames[-1][0] == 8:
            return frames
    return split_frames(data)


def split_frames(data):
    """Server frames (unmasked, unfragmented) as (opcode, payload), up to the last whole one."""
    frames, at = [], 0
    while at + 2 <= len(data):
        opcode, length, at2 = data[at] & 0x0F, data[at + 1] & 0x7F, at + 2
        if length == 126:
            length, at2 = struct.unpack("!H", data[at2:at2 + 2])[0], at2 + 2
        elif length == 127:
            length, at2 = struct.unpack("!Q", data[at2:at2 + 8])[0], at2 + 8
        if at2 + length > len(data):
            break
        frames.append((opcode, data[at2:at2 + length]))
        at = at2 + length
    return frames


async def test_a_socket_that_stops_reading_is_closed_at_its_bound_and_the_readers_get_every_frame(upstream):
    upstream.will(tokens=[TOKEN] * 300, rate=100)  # 60 KB in 3 s, in growth frames every 50 ms
    env = provider_env(upstream, SOCKET_MAX_UNSENT_BYTES=str(BOUND), SEND_STALL_TIMEOUT=str(GRACE))
    with daphne(env) as server:
        path = "/ws/rooms/PirateBot/"
        async with websockets.connect(f"{server.ws_url}{path}", origin=server.url) as reader:
            texts, wire = [], [0]  # the reader's frames, and their bytes on the wire

            async def read():
                async for text in reader:
                    texts.append(text)
                    wire[0] += wire_size(text.encode())

            reading = asyncio.create_task(read())
            stalled = await sync_to_async(open_stalled)(server.port, path)  # joins after the reader: its frames are the reader's
            client_port = stalled.getsockname()[1]
            try:
                async with asyncio.timeout(10):  # the room's welcome reached the stalled client: all quiet
                    while not unread(stalled):
                        await asyncio.sleep(0.01)
                start = time.monotonic()
                base = wire[0] - unread(stalled) - kernel_unsent(server.port, client_port)
                status, _, _ = await sync_to_async(Browser(server.url).post_form)(
                    "/rooms/PirateBot/", "/rooms/PirateBot/messages", {"content": "Sing me a long shanty"})
                assert status == 303
                # What the server holds for the stalled socket: what it sent the reader since (the
                # same frames), less what the stalled client's buffer and the server's kernel queue hold.
                held, largest = [], 0
                async with asyncio.timeout(20):
                    while CLOSED_LINE not in server.output():
                        held.append(wire[0] - unread(stalled) - kernel_unsent(server.port, client_port) - base)
                        largest = max([largest] + [wire_size(t.encode()) for t in texts[-3:]])
                        await asyncio.sleep(0.02)
                closed_after = time.monotonic() - start
                # Its client reads at last: whatever was sent, then the close with the documented code.
                frames = await sync_to_async(read_until_closed)(stalled, timeout=GRACE / 2)
            finally:
                stalled.close()
            _, reply = await room_rows()
            async with asyncio.timeout(20):
                while not any(finished(reply.pk)(f) for text in texts for f in parse_frames(text)):
                    await asyncio.sleep(0.05)
            reading.cancel()

    assert frames[-1][0] == 8 and struct.unpack("!H", frames[-1][1][:2])[0] == sockets.CLIENT_TOO_SLOW
    assert closed_after < 10, f"closed {closed_after:.1f} s after the reply started"
    # The bound, past the one frame being written (and a sample's frame in flight to the reader).
    assert max(held) <= BOUND + 2 * largest, (max(held), largest)
    assert max(held) > 0, "the stalled client never made the server hold anything: the test measured nothing"
    # The reader got every frame: the reply's whole text, and it finished.
    _, reply = await room_rows()
    everything = [f for text in texts for f in parse_frames(text)]
    assert reply.status == "complete"
    assert shown_text(everything, reply.pk).strip() == reply.content.strip() == (TOKEN * 300).strip()
    # What the stalled client got before its close is whole frames, the reader's own in the same order:
    # frames the kernel took part of went on where they stopped, none written into another.
    of_reply = f"message_{reply.pk}"
    stalled_got = [payload.decode() for opcode, payload in frames if opcode == 1 and of_reply.encode() in payload]
    assert stalled_got and stalled_got == [text for text in texts if of_reply in text][:len(stalled_got)]
