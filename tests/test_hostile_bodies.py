"""Hostile bodies against a real Daphne: a huge form post, a chunked flood, a trickle of headers,
and the 413 each endpoint answers in its own shape, with no traceback logged."""

import asyncio
import inspect
import json
import time

import pytest
import websockets
from daphne import server as daphne_server
from twisted.web import http

from tests.servers import daphne
from tests.test_end_to_end import provider_env

pytestmark = pytest.mark.django_db(transaction=True)

MIB = 1024 * 1024
FORM = b"a=1&" * (16 * 1024)  # 64 KiB of many small fields: what Twisted's form parser chokes on


def rss_bytes(pid):
    """The process's resident memory, from /proc/<pid>/status."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS line")


async def exchange(server, head, body=b"", chunks=None, timeout=10):
    """Send head (and body, or a stream of `chunks`, until the answer comes); (status, headers, body, bytes sent)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    sent = 0

    async def send():
        nonlocal sent
        writer.write(head + body)
        sent += len(body)
        for chunk in chunks or ():
            writer.write(chunk)
            sent += len(chunk)
            await writer.drain()

    sender = asyncio.create_task(send())
    try:
        async with asyncio.timeout(timeout):
            answer = await reader.readuntil(b"\r\n\r\n")
            sent_then = sent
            lines = answer.decode("latin-1").split("\r\n")
            headers = {name.lower(): value for name, _, value in (line.partition(": ") for line in lines[1:] if line)}
            content = await reader.readexactly(int(headers.get("content-length", 0)))
    finally:
        sender.cancel()
        writer.close()
    return int(lines[0].split()[1]), headers, content, sent_then


def post_head(path, length=None, content_type="application/x-www-form-urlencoded", extra=b""):
    framing = b"Transfer-Encoding: chunked" if length is None else b"Content-Length: %d" % length
    return (b"POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: %s\r\n%s\r\n%s\r\n"
            % (path.encode(), content_type.encode(), framing, extra))


def test_the_private_hooks_this_relies_on_are_where_they_were():
    """Daphne's server builds its factory from the module name `HTTPFactory`, Twisted's factory wraps a
    channel in `_GenericHTTPChannelProtocol` and keeps the request's target in `_path`: if one moves,
    this fails before the bounds silently stop holding."""
    import project.asgi  # noqa: F401 - installs the bounded factory
    from chat.server.protocol import BoundedHTTPFactory

    assert daphne_server.HTTPFactory is BoundedHTTPFactory
    assert "HTTPFactory" in daphne_server.Server.run.__code__.co_names
    assert callable(http._GenericHTTPChannelProtocol)
    assert "self._path = request" in inspect.getsource(http.HTTPChannel.lineReceived)
    assert "parsePOSTFormSubmission" in inspect.signature(http.Request.__init__).parameters


async def test_a_100_mib_form_post_is_answered_at_once_and_the_server_does_not_grow(upstream):
    with daphne(provider_env(upstream)) as server:
        before = rss_bytes(server.process.pid)
        started = time.monotonic()
        status, headers, content, sent = await exchange(
            server, post_head("/healthz", 100 * MIB), chunks=(FORM for _ in range(100 * MIB // len(FORM)))
        )
        answered = time.monotonic() - started
        grown = rss_bytes(server.process.pid) - before
        assert status == 413 and b"327680" in content
        assert sent < 16 * MIB, "answered before the body was read, not after"
        assert answered < 1, f"answered after {answered:.2f}s"
        assert grown < 20 * MIB, f"grew {grown / MIB:.1f} MiB"
        assert "Traceback" not in server.output()


async def test_a_chunked_body_is_cut_off_at_the_cap(upstream):
    chunk = b"%x\r\n%s\r\n" % (len(FORM), FORM)
    with daphne(provider_env(upstream, MAX_BODY_BYTES="65536")) as server:
        status, headers, content, sent = await exchange(
            server, post_head("/chat", content_type="application/json"), chunks=(chunk for _ in range(1600))
        )
        assert (status, headers["content-type"]) == (413, "application/json")
        assert json.loads(content) == {"error": "The body is over 65536 bytes, the limit."}
        assert sent < 16 * MIB
        assert "Traceback" not in server.output()


async def test_a_body_within_the_cap_still_reaches_its_endpoint(upstream):
    """The cap is over what /chat takes: a body between the two gets /chat's own sentence."""
    with daphne(provider_env(upstream, SSE_MAX_BODY="1000", MAX_BODY_BYTES="2000")) as server:
        body = json.dumps({"bot": "ChatBot", "messages": [{"role": "user", "content": "x" * 1500}]}).encode()
        status, _, content, _ = await exchange(server, post_head("/chat", len(body), "application/json"), body)
        assert (status, json.loads(content)) == (413, {"error": f"The body has {len(body)} bytes; the limit is 1000."})


TOO_BIG = "The body has 400000 bytes; the limit is 327680."


@pytest.mark.parametrize("path, content_type, expected", [
    ("/chat", "application/json", {"error": TOO_BIG}),
    ("/api/rooms/Lounge/messages", "application/json", {"error": TOO_BIG}),
    ("/v1/chat/completions", "application/json",
     {"error": {"message": TOO_BIG, "type": "invalid_request_error", "param": None, "code": None}}),
    ("/rooms/Lounge/messages", "application/x-www-form-urlencoded", None),
    ("/rooms/Lounge/messages", "multipart/form-data; boundary=x", None),
])
async def test_each_endpoint_says_413_in_its_own_shape_without_a_traceback(upstream, path, content_type, expected):
    with daphne(provider_env(upstream)) as server:
        # Only the head is sent, with Expect: 100-continue: no body is asked for, the answer comes at once.
        status, headers, content, _ = await exchange(server, post_head(path, 400_000, content_type, b"Expect: 100-continue\r\n"))
        assert status == 413
        assert headers["connection"] == "close"
        if expected is None:
            assert headers["content-type"].startswith("text/html")
            assert TOO_BIG in content.decode()
        else:
            assert headers["content-type"] == "application/json"
            assert json.loads(content) == expected
        log = server.output()
        assert f"413 for {path}" in log and "Traceback" not in log


async def trickle(server, first, every, limit):
    """Send `first`, then one header byte every `every` seconds until the server closes the
    connection; the seconds that took, and the bytes it accepted meanwhile."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    started, sent = time.monotonic(), 0
    writer.write(first)
    try:
        async with asyncio.timeout(limit):
            while True:
                try:
                    if await asyncio.wait_for(reader.read(1024), every) == b"":
                        break  # the server closed it
                except TimeoutError:
                    writer.write(b"x")
                    await writer.drain()
                    sent += 1
    except ConnectionError:
        pass  # a reset is a close too
    finally:
        writer.close()
    return time.monotonic() - started, sent


async def test_a_trickle_of_header_bytes_is_closed_by_the_header_timeout_and_sockets_stay(upstream):
    with daphne(provider_env(upstream, HTTP_HEADER_TIMEOUT="1.5")) as server:
        async with websockets.connect(f"{server.ws_url}/ws/rooms/Lounge/", origin=server.url) as socket:
            took, sent = await trickle(server, b"GET /healthz HTTP/1.1\r\nX-Slow: ", every=0.25, limit=10)
            assert 1.4 < took < 4, f"closed after {took:.1f}s"
            assert sent >= 4, "the client kept sending while the deadline ran"
            # A room socket is past its head: no deadline holds it, it outlived the trickle.
            pong = await socket.ping()
            async with asyncio.timeout(5):
                await pong


async def test_a_trickle_of_body_bytes_is_closed_by_the_body_timeout(upstream):
    with daphne(provider_env(upstream, HTTP_BODY_TIMEOUT="1.5")) as server:
        took, sent = await trickle(server, post_head("/chat", 1000, "application/json"), every=0.25, limit=10)
        assert 1.4 < took < 4, f"closed after {took:.1f}s"
        assert sent >= 4
