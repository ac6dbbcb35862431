"""Room sockets under abuse: foreign origins, floods, oversized frames, and a torrent of frames to one page."""

import asyncio
import urllib.request

import pytest
import websockets
from asgiref.sync import sync_to_async
from django.test import AsyncClient
from websockets.exceptions import InvalidStatus

from tests.browser import own_presence
from tests.rooms import communicator, finished, frames_until, parse_frames, subscribe
from tests.servers import daphne
from tests.test_end_to_end import provider_env
from tests.test_rooms import rows

pytestmark = pytest.mark.django_db(transaction=True)


async def close_of(client):
    """Read a socket's output, past room frames (presence), up to its close."""
    while (output := await client.receive_output(timeout=5))["type"] != "websocket.close":
        assert output["type"] == "websocket.send"
    return output


async def handshake(client):
    """The application's answer to a socket's handshake: its first output."""
    await client.send_input({"type": "websocket.connect"})
    return await client.receive_output(timeout=5)


# Refused before accept: a close with no code, which Daphne answers as HTTP 403 to the handshake.
REFUSED = {"type": "websocket.close"}


async def test_a_socket_from_a_foreign_origin_is_refused():
    client = communicator("PirateBot")
    client.scope["headers"] = [(b"origin", b"https://evil.example"), (b"host", b"127.0.0.1:8000")]
    assert await handshake(client) == REFUSED


async def test_a_socket_to_no_room_is_refused():
    assert await handshake(communicator("Nowhere")) == REFUSED


async def test_a_socket_without_an_origin_is_refused(upstream):
    """Browsers always send Origin; a client that sends none (a script on another site's server
    replaying a cookie) is refused at the handshake, in process and by a real Daphne (403), as are
    a foreign origin and a room that does not exist."""
    client = communicator("PirateBot")
    client.scope["headers"] = [(b"host", b"127.0.0.1:8000")]
    assert await handshake(client) == REFUSED
    with daphne(provider_env(upstream)) as server:
        for path, origin in [("PirateBot", None), ("PirateBot", "https://evil.example"), ("Nowhere", server.url)]:
            with pytest.raises(InvalidStatus) as refused:
                async with websockets.connect(f"{server.ws_url}/ws/rooms/{path}/", origin=origin):
                    pass
            assert refused.value.response.status_code == 403, (path, origin)


async def test_a_client_that_floods_its_socket_is_closed_and_others_carry_on(upstream):
    upstream.will(text="Still here, matey.", rate=100)
    flooder, bystander = await subscribe(), await subscribe()
    for i in range(10_000):
        await flooder.send_to(text_data=f"spam {i}")
    assert await close_of(flooder) == {"type": "websocket.close", "code": 4008}
    # The server answers the others as before.
    response = await AsyncClient().post("/rooms/PirateBot/messages", {"content": "Anyone?"})
    assert response.status_code == 303
    _, reply = await rows(room="PirateBot")
    await frames_until(bystander, finished(reply.pk))


async def test_an_oversized_client_frame_closes_the_socket():
    client = await subscribe()
    await client.send_to(text_data="x" * 5000)
    assert await close_of(client) == {"type": "websocket.close", "code": 4008}


async def test_ten_thousand_frames_into_a_real_daphne_socket(upstream):
    """A client writing up to ten thousand frames as fast as it can, reading as every client does."""
    with daphne(provider_env(upstream)) as server:
        async with websockets.connect(f"{server.ws_url}/ws/rooms/PirateBot/", origin=server.url) as flooder:
            with pytest.raises(websockets.exceptions.ConnectionClosed) as closed:
                for i in range(10_000):
                    await flooder.send(f"spam {i}")
                    if i % 20 == 0:
                        # Let the client read: it sees the server's close, answers it and stops
                        # writing. (A client that wrote on without reading could have the close
                        # frame thrown away by the TCP reset that follows the server's end.)
                        await asyncio.sleep(0)
                while True:
                    await flooder.recv()  # room frames (presence), then the close
            # The server closed it with 4008, and the client answered with the same code.
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 4008
            assert closed.value.sent is not None and closed.value.sent.code == 4008
            assert closed.value.rcvd_then_sent is True, "the client closed it, not the server"
        # Daphne logs the socket's end once its side is done with it, a moment after the client's.
        async with asyncio.timeout(10):
            while "WSDISCONNECT /ws/rooms/PirateBot/" not in server.output():
                await asyncio.sleep(0.05)
        # The server still answers (how fast is the benchmarks' business).
        status = await sync_to_async(lambda: urllib.request.urlopen(f"{server.url}/healthz", timeout=10).status)()
        assert status == 200


@pytest.mark.parametrize("origin, host, ok", [
    ("http://127.0.0.1:8000", "127.0.0.1:8000", True),
    ("http://localhost", "localhost:80", True),  # the scheme's default port, written or not
    ("http://127.0.0.1:8001", "127.0.0.1:8000", False),  # another port of the same host
    ("https://127.0.0.1:8000", "127.0.0.1:8000", False),  # another scheme
    ("http://127.0.0.1:8000", "evil.example:8000", False),  # a host not allowed
    ("http://chat.example.com:8443", "127.0.0.1:8000", True),  # trusted, as for forms
    ("http://chat.example.com", "127.0.0.1:8000", False),
    ("null", "127.0.0.1:8000", False),
])
async def test_the_origin_must_be_the_socket_s_own_scheme_host_and_port_or_a_trusted_one(settings, origin, host, ok):
    settings.CSRF_TRUSTED_ORIGINS = ["http://chat.example.com:8443"]
    client = communicator("PirateBot")
    client.scope["headers"] = [(b"origin", origin.encode()), (b"host", host.encode())]
    answer = await handshake(client)
    assert answer == ({"type": "websocket.accept", "subprotocol": None} if ok else REFUSED)


async def test_a_socket_from_another_port_of_the_same_host_is_refused_by_daphne(upstream):
    with daphne(provider_env(upstream, **own_presence())) as server:
        for origin in (f"http://127.0.0.1:{server.port + 1}", f"https://127.0.0.1:{server.port}"):
            with pytest.raises(InvalidStatus) as refused:
                async with websockets.connect(f"{server.ws_url}/ws/rooms/PirateBot/", origin=origin):
                    pass
            assert refused.value.response.status_code == 403, origin
        async with websockets.connect(f"{server.ws_url}/ws/rooms/PirateBot/", origin=server.url) as page:
            assert "guest here" in await asyncio.wait_for(page.recv(), 10)


SOCKETS = 1000
PER_ADDRESS = 50  # the default ROOM_SOCKETS_PER_ADDRESS
ONE_ADDRESS = {"X-Forwarded-For": "198.51.100.7"}


async def fate(socket):
    """What became of a socket that opened: ("open", its first frame) or ("closed", the code)."""
    try:
        return "open", await asyncio.wait_for(socket.recv(), 20)
    except websockets.exceptions.ConnectionClosed as closed:
        return "closed", closed.rcvd.code if closed.rcvd else None


async def test_a_thousand_sockets_from_one_address_are_capped_and_counted_as_one_guest(upstream):
    # One address that is not loopback (loopback is not counted by address), as a trusted proxy says.
    # Daphne drops a handshake its application has not accepted within --websocket_connect_timeout
    # (5 s; autobahn's timer rounds it down to whole seconds, so 4 s at worst) with no HTTP answer. Here
    # a wave of fifty takes 0.05 s, 0.3 s with both cores busy; on CI a shared machine once took 2 s a
    # wave and left one handshake over 4 s. The cap is what this test is about, not that deadline.
    options = ("--websocket_connect_timeout", "30")
    with daphne(provider_env(upstream, TRUST_X_FORWARDED_FOR="true", **own_presence()), options=options) as server:
        url = f"{server.ws_url}/ws/rooms/PirateBot/"

        def connect():
            return websockets.connect(url, origin=server.url, open_timeout=30, additional_headers=ONE_ADDRESS)

        # In waves of fifty, not a thousand at once, so the server's accept queue (fifty) never overflows.
        sockets = []
        for _ in range(SOCKETS // 50):
            sockets += await asyncio.gather(*[connect() for _ in range(50)])
        try:
            fates = await asyncio.gather(*[fate(socket) for socket in sockets])
            admitted = [first for what, first in fates if what == "open"]
            assert len(admitted) == PER_ADDRESS
            assert [code for what, code in fates if what == "closed"] == [4029] * (SOCKETS - PER_ADDRESS)
            # However many sockets it holds, the address's cookie-less guest is one guest: the
            # presence sentence, each page's first frame, never changed from that.
            lines = {html for first in admitted for _, target, _, html in parse_frames(first, presence=True) if target == "presence"}
            assert lines == {"1 guest here"}
        finally:
            await asyncio.gather(*[socket.close() for socket in sockets], return_exceptions=True)
        # A closed socket gives its place back.
        async with asyncio.timeout(10):
            while True:
                async with connect() as again:
                    if (await fate(again))[0] == "open":
                        break
