"""Presence under a crowd: pages opening a room at once get a handful of presence frames, not one per page."""

import asyncio
import statistics

import pytest
import websockets

from tests.browser import own_presence
from tests.rooms import communicator, parse_frames
from tests.servers import daphne
from tests.test_end_to_end import provider_env

pytestmark = pytest.mark.django_db(transaction=True)

PAGES = 500
WATCH = 4.0  # seconds after the last page joined


async def presence_frames(socket, until):
    """The presence sentences a page gets until the loop's clock reads `until`."""
    said = []
    loop = asyncio.get_running_loop()
    while (left := until - loop.time()) > 0:
        try:
            text = await asyncio.wait_for(socket.recv(), timeout=left)
        except TimeoutError:
            break
        said += [html for _, target, _, html in parse_frames(text, presence=True) if target == "presence"]
    return said


async def test_five_hundred_pages_opening_a_room_at_once_get_a_handful_of_presence_frames(upstream):
    # Five hundred people, each at an address of their own (a cookie-less guest counts once per address).
    env = provider_env(upstream, TRUST_X_FORWARDED_FOR="true", **own_presence())
    with daphne(env) as server:
        url = f"{server.ws_url}/ws/rooms/PirateBot/"
        loop = asyncio.get_running_loop()
        started = loop.time()
        sockets = await asyncio.gather(*[
            websockets.connect(url, origin=server.url, open_timeout=30, additional_headers={"X-Forwarded-For": f"2001:db8::{i:x}"})
            for i in range(PAGES)
        ])
        joined = loop.time() - started
        try:
            said = await asyncio.gather(*[presence_frames(socket, loop.time() + WATCH) for socket in sockets])
        finally:
            await asyncio.gather(*[socket.close() for socket in sockets], return_exceptions=True)
        counts = [len(lines) for lines in said]
        print(f"\n{PAGES} pages joined in {joined:.2f} s; presence frames per page in the next {WATCH:.0f} s: "
              f"median {statistics.median(counts)}, max {max(counts)}, total {sum(counts)}")
        # Every page ends knowing the whole crowd, each told a handful of times at most.
        assert {lines[-1] for lines in said} == {f"{PAGES} guests here"}
        assert max(counts) <= 5


async def told(page):
    """The next presence sentence a page gets."""
    while True:
        for _, target, _, html in parse_frames(await page.receive_from(timeout=5), presence=True):
            if target == "presence":
                return html


async def guest_at(address, room="ChatBot"):
    """A connected room socket of a cookie-less guest at address."""
    client = communicator(room)
    client.scope["client"] = (address, 50000)
    connected, _ = await client.connect()
    assert connected
    return client


async def test_a_page_that_opens_as_another_closes_is_still_told_who_is_here():
    first = await guest_at("192.0.2.1")
    assert await told(first) == "1 guest here"
    await first.disconnect()
    # Same crowd as before, so the sentence did not change: the new page is told all the same.
    second = await guest_at("192.0.2.2")
    assert await told(second) == "1 guest here"
    third = await guest_at("192.0.2.3")
    assert await told(third) == "2 guests here" and await told(second) == "2 guests here"
