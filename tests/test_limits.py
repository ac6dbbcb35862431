"""Rate limits and the streaming cap: 429 with Retry-After for the client or room over its limit, nobody else."""

import asyncio
import contextlib
import secrets
import time

import pytest
import websockets
from asgiref.sync import sync_to_async
from django.test import AsyncClient

from chat.models import Message
from tests.browser import own_presence
from tests.rooms import finished, frames_until, subscribe
from tests.servers import daphne
from tests.test_end_to_end import provider_env
from tests.test_rooms import rows

pytestmark = pytest.mark.django_db(transaction=True)

RUN = secrets.randbelow(250)  # fresh client addresses each run: counters live a minute in the cache


def ip(group, host):
    """A client address of its own for a limits test."""
    return f"10.{group}.{RUN}.{host}"


def as_client(address):
    """A test client that a trusted proxy says comes from address."""
    # AsyncClient's defaults become ASGI headers as they are (its headers= argument prefixes
    # HTTP_ twice in Django 5.2).
    return AsyncClient(**{"X-Forwarded-For": address})


@pytest.fixture(autouse=True)
def _behind_a_proxy(settings):
    settings.TRUST_X_FORWARDED_FOR = True


async def one_window():
    """Wait, if need be, so a limits test runs inside one counting window, not across two."""
    from chat.limits import WINDOW

    left = WINDOW - time.time() % WINDOW
    if left < 15:
        await asyncio.sleep(left + 0.1)


async def test_the_per_client_limit_answers_429_and_leaves_others_alone(settings, upstream):
    settings.RATE_LIMIT_PER_CLIENT = 3
    upstream.default.text = "Aye."
    await one_window()
    greedy = as_client(ip(9, "1"))
    await greedy.get("/rooms/PirateBot/")  # as a browser does: the page gives the guest a session
    for i in range(3):
        assert (await greedy.post("/rooms/PirateBot/messages", {"content": f"msg {i}"})).status_code == 303
    refused = await greedy.post("/rooms/PirateBot/messages", {"content": "one too many"})
    assert refused.status_code == 429
    assert 1 <= int(refused["Retry-After"]) <= 61
    assert "sending messages too fast" in refused.text and "one too many" in refused.text  # kept in the box
    turbo = await greedy.post("/rooms/PirateBot/messages", {"content": "again"}, headers={"Accept": "text/vnd.turbo-stream.html"})
    assert turbo.status_code == 429 and '<turbo-stream action="update" target="form_error">' in turbo.text
    assert await sync_to_async(Message.objects.filter(content__in=["one too many", "again"]).exists)() is False
    # Someone else, in the same room and in another, is not held up.
    assert (await as_client(ip(9, "2")).post("/rooms/PirateBot/messages", {"content": "hi"})).status_code == 303
    assert (await as_client(ip(9, "3")).post("/rooms/BelleBot/messages", {"content": "hi"})).status_code == 303


async def test_the_per_room_limit_answers_429_and_other_rooms_keep_working(settings, upstream):
    from django.core.cache import cache

    from chat.limits import WINDOW, counter_key

    settings.RATE_LIMIT_PER_ROOM = 4
    await one_window()
    window = int(time.time() // WINDOW) * WINDOW
    await sync_to_async(cache.delete_many)([counter_key(f"room:{bot}", window) for bot in ("ChatBot", "BelleBot")])
    upstream.default.text = "Aye."
    for i in range(4):
        response = await as_client(ip(8, i)).post("/rooms/ChatBot/messages", {"content": "hi"})
        assert response.status_code == 303
    refused = await as_client(ip(8, "99")).post("/rooms/ChatBot/messages", {"content": "hi"})
    assert refused.status_code == 429 and "room is busy" in refused.text
    assert 1 <= int(refused["Retry-After"]) <= 61  # at most until the next counting window
    assert (await as_client(ip(8, "99")).post("/rooms/BelleBot/messages", {"content": "hi"})).status_code == 303


async def test_the_sse_path_is_under_the_same_limits(settings, upstream):
    settings.RATE_LIMIT_PER_CLIENT = 1
    upstream.default.text = "Aye."
    await one_window()
    client = as_client(ip(7, "1"))
    query = {"bot": "PirateBot", "messages": '[{"role": "user", "content": "hi"}]'}
    first = await client.get("/chat", query)
    assert first.status_code == 200, first.content
    [chunk async for chunk in first.streaming_content]
    second = await client.get("/chat", query)
    assert second.status_code == 429 and int(second["Retry-After"]) >= 1
    assert "too fast" in second.json()["error"]


async def test_replies_over_the_streaming_cap_wait_their_turn(settings, upstream):
    settings.MAX_STREAMING_REPLIES = 1
    upstream.will(text="Room one answer, slowly given.", rate=20)
    upstream.will(text="Room two answer.", rate=50)
    one, two = await subscribe("ChatBot"), await subscribe("BelleBot")
    await AsyncClient().post("/rooms/ChatBot/messages", {"content": "first"})
    await AsyncClient().post("/rooms/BelleBot/messages", {"content": "second"})
    (_, first), (_, second) = await rows(room="ChatBot"), await rows(room="BelleBot")
    await asyncio.gather(frames_until(one, finished(first.pk)), frames_until(two, finished(second.pk)))
    a, b = upstream.exchanges
    assert b.opened_at >= a.finished_at  # queued, not dropped, not concurrent


async def test_the_per_client_limit_follows_the_session_and_the_address_holds_its_sessions_together(settings, upstream):
    settings.RATE_LIMIT_PER_CLIENT, settings.RATE_LIMIT_PER_ADDRESS = 2, 3
    upstream.default.text = "Aye."
    await one_window()
    greedy, neighbour = as_client(ip(4, "1")), as_client(ip(4, "1"))  # one address, two guests
    for client in (greedy, neighbour):
        await client.get("/rooms/BelleBot/")
        assert "sessionid" not in client.cookies  # a page view makes no session: the first post does
    for i in range(2):
        assert (await greedy.post("/rooms/BelleBot/messages", {"content": f"greedy {i}"})).status_code == 303
    assert greedy.cookies["sessionid"].value
    refused = await greedy.post("/rooms/BelleBot/messages", {"content": "greedy again"})
    assert refused.status_code == 429 and "sending messages too fast (2 a minute)" in refused.text
    # Same address, another session: its own client budget, but the address's is shared.
    assert (await neighbour.post("/rooms/BelleBot/messages", {"content": "neighbour"})).status_code == 303
    refused = await neighbour.post("/rooms/BelleBot/messages", {"content": "neighbour again"})
    assert refused.status_code == 429 and "Too many messages come from your address (3 a minute)" in refused.text
    # The greedy session from another address is still the same client.
    moved = as_client(ip(4, "2"))
    moved.cookies = greedy.cookies
    assert (await moved.post("/rooms/BelleBot/messages", {"content": "greedy moved"})).status_code == 429
    contents = await sync_to_async(lambda: set(Message.objects.filter(role="user").values_list("content", flat=True)))()
    assert contents == {"greedy 0", "greedy 1", "neighbour"}


async def test_the_address_is_the_one_the_trusted_proxy_appended_not_the_client_s(settings, upstream):
    settings.RATE_LIMIT_PER_CLIENT = settings.RATE_LIMIT_PER_ADDRESS = 1
    upstream.default.text = "Aye."
    await one_window()
    # Each client forges a different left-most entry; the proxy appended the same address to each.
    first, second = (as_client(f"{forged}, {ip(6, '1')}") for forged in ("1.1.1.1", "2.2.2.2"))
    assert (await first.post("/rooms/ChatBot/messages", {"content": "first"})).status_code == 303
    refused = await second.post("/rooms/ChatBot/messages", {"content": "second"})
    assert refused.status_code == 429 and "your address" in refused.text


async def test_the_sse_path_spends_a_budget_of_its_own_not_the_room_s(settings, upstream):
    from django.core.cache import cache

    from chat.limits import WINDOW, counter_key

    settings.RATE_LIMIT_STATELESS_PER_BOT, settings.RATE_LIMIT_PER_ROOM = 2, 2
    upstream.default.text = "Aye."
    await one_window()
    window = int(time.time() // WINDOW) * WINDOW
    await sync_to_async(cache.delete_many)([counter_key(key, window) for key in ("direct-bot:PirateBot", "room:PirateBot")])
    query = {"bot": "PirateBot", "messages": '[{"role": "user", "content": "hi"}]'}
    for i in range(2):
        response = await as_client(ip(5, i)).get("/chat", query)
        assert response.status_code == 200
        [chunk async for chunk in response.streaming_content]
    refused = await as_client(ip(5, 9)).get("/chat", query)
    assert refused.status_code == 429 and "This bot is busy (2 direct requests a minute)" in refused.json()["error"]
    # The room of the same bot still takes its own two messages a minute.
    for i in range(2):
        assert (await as_client(ip(5, 10 + i)).post("/rooms/PirateBot/messages", {"content": f"room {i}"})).status_code == 303


async def test_loopback_is_not_counted_by_address_for_sockets_either(upstream):
    # One rule for every count by address: this machine's sockets (a local proxy that did not say
    # whom it forwards for) are not capped as one address, as its messages and log-ins are not.
    with daphne(provider_env(upstream, ROOM_SOCKETS_PER_ADDRESS="2", **own_presence())) as server:
        url = f"{server.ws_url}/ws/rooms/PirateBot/"
        async with contextlib.AsyncExitStack() as stack:
            pages = [await stack.enter_async_context(websockets.connect(url, origin=server.url)) for _ in range(3)]
            for page in pages:  # each let in and told who is here: none closed with 4029
                async with asyncio.timeout(10):
                    while "guest here" not in await page.recv():
                        pass
            assert all(page.close_code is None for page in pages)
