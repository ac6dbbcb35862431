"""Many processes: two Daphne processes sharing PostgreSQL and Redis behave as one Parley."""

import asyncio
import signal
import threading
import time

import pytest
import websockets
from asgiref.sync import sync_to_async
from django.conf import settings

from chat.models import Message
from tests.rooms import finished, grown_text, parse_frames, shown_text
from tests.servers import Browser, Daphne, redis_servers
from tests.test_end_to_end import provider_env, read_frames, room_rows
from tests.waiting import until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.services]

LONG = [f"plank{i} " for i in range(3000)]


def two_processes(upstream, **extra):
    """Two Daphne processes, each its own event loop and connections, sharing the database and Redis."""
    env = provider_env(upstream, REDIS_URL=settings.REDIS_URL, **extra)
    servers = [Daphne(env), Daphne(env)]
    yield servers
    for server in servers:
        server.stop()


@pytest.fixture
def pair(upstream):
    """Two processes with the default sweep: a queued reply is not taken for an orphan."""
    yield from two_processes(upstream)


@pytest.fixture
def quickly_sweeping_pair(upstream):
    """Two processes that take a reply silent for 1 s for an orphan, and sweep every 0.5 s."""
    yield from two_processes(upstream, REPLY_STALE_AFTER="1", REPLY_SWEEP_INTERVAL="0.5")


def post(server, content):
    """Post as a new guest; their browser, who alone (with moderators) may Stop and Retry the reply."""
    browser = Browser(server.url)
    status, _, _ = browser.post_form("/rooms/PirateBot/", "/rooms/PirateBot/messages", {"content": content})
    assert status == 303
    return browser


def subscribe(server, after=None):
    query = f"?after={after}" if after is not None else ""
    return websockets.connect(f"{server.ws_url}/ws/rooms/PirateBot/{query}", origin=server.url)


def latest_reply():
    return Message.objects.filter(role="assistant").order_by("-id").first()


async def test_both_processes_see_the_same_frames_and_stop_works_from_either(pair, upstream):
    first, second = pair
    upstream.will(text="Arr, the Kraken sails at dawn with forty cannon and a hold o' rum.", rate=30)
    upstream.will(tokens=LONG, rate=100)
    async with subscribe(first) as one, subscribe(second) as two:
        await sync_to_async(post)(first, "Tell me about your ship")
        reply = await until(latest_reply)
        seen = await asyncio.gather(*(read_frames(ws, finished(reply.pk)) for ws in (one, two)))
        assert seen[0] == seen[1] and len(seen[0]) > 5
        (saved,) = [m for m in await room_rows() if m.pk == reply.pk]
        growth = grown_text(seen[0], reply.pk)
        assert saved.status == "complete" and growth and saved.content.startswith(growth)
        assert shown_text(seen[0], reply.pk).strip() == saved.content.strip()

        asker = await sync_to_async(post)(first, "Now a long tale")
        long_reply = await until(lambda: (r := latest_reply()).pk != reply.pk and len(r.content) > 30 and r)
        stopped_at = time.monotonic()
        status, _, _ = await sync_to_async(Browser(second.url, cookies=asker.cookies).post_form)(
            "/rooms/PirateBot/", f"/rooms/PirateBot/messages/{long_reply.pk}/stop", {}
        )
        assert status == 303
        await asyncio.gather(*(read_frames(ws, finished(long_reply.pk, "cancelled")) for ws in (one, two)))
    exchange = upstream.exchanges[-1]
    await until(lambda: exchange.closed_at)
    # The first process notices at its next flush or idle check of the row, long before the end.
    assert exchange.closed_at >= stopped_at and len(exchange.sent) < len(LONG)
    (saved,) = [m for m in await room_rows() if m.pk == long_reply.pk]
    assert saved.status == "cancelled" and saved.content


async def test_a_killed_process_s_reply_is_swept_by_the_other(quickly_sweeping_pair, upstream):
    first, second = quickly_sweeping_pair
    upstream.will(tokens=LONG, rate=100)
    async with subscribe(second) as watcher:
        await sync_to_async(post)(first, "Tell me a long tale")
        reply = await until(lambda: (r := latest_reply()) and len(r.content) > 30 and r)
        first.stop(signal.SIGKILL)
        # Stale after 1 s of silence, swept every 0.5 s by the other process (no restart needed).
        frames = await read_frames(watcher, finished(reply.pk, "interrupted"), timeout=20)
    (saved,) = [m for m in await room_rows() if m.pk == reply.pk]
    assert saved.status == "interrupted" and saved.content and 'class="retry"' in frames[-1][3]


def post_at_once(*posts):
    """POST (server, content) pairs from threads of their own, released together once each has its form."""
    barrier = threading.Barrier(len(posts))

    def send(server, content):
        browser = Browser(server.url)
        token = browser.form_token("/rooms/PirateBot/")
        barrier.wait(timeout=20)
        status, _, _ = browser.submit("/rooms/PirateBot/", "/rooms/PirateBot/messages", token, {"content": content})
        return status

    return asyncio.gather(*(sync_to_async(send, thread_sensitive=False)(server, content) for server, content in posts))


async def test_messages_posted_at_once_through_two_processes_are_answered_in_turn(pair, upstream):
    first, second = pair
    first_answer = " ".join(f"Aye{i}" for i in range(48))  # 1.6 s at 30 tokens/s: the other post lands meanwhile
    upstream.will(text=first_answer, rate=30)
    upstream.will(text="Second answer.", rate=30)
    assert await post_at_once((first, "Question one"), (second, "Question two")) == [303, 303]
    await until(lambda: Message.objects.filter(role="assistant", status="complete").count() == 2, timeout=20)

    one, two = upstream.exchanges
    assert two.opened_at >= one.finished_at
    messages = await room_rows()
    replies = [m for m in messages if m.role == "assistant"]
    assert [r.content for r in replies] == [first_answer, "Second answer."]
    # Both questions were in the room before the first reply finished.
    assert max(m.created_at for m in messages if m.role == "user") < replies[0].updated_at
    # Each reply saw every message before it, in the order they were saved.
    for reply, exchange in zip(replies, (one, two)):
        said = [m.content if m.role == "assistant" else f"{m.author}: {m.content}" for m in messages if m.pk < reply.pk]
        assert [m["content"] for m in exchange.messages[1:]] == said


async def reconnect_and_catch_up(server, after, attempts=20):
    """Reconnect as the page does, retrying with a pause, and read the catch-up."""
    for attempt in range(attempts):
        try:
            async with subscribe(server, after=after) as socket:
                return await read_frames(socket, lambda f: f[1] == "room_synced")
        except (OSError, websockets.exceptions.WebSocketException):
            if attempt == attempts - 1:
                raise
            await asyncio.sleep(0.5)


@pytest.fixture
def own_redis():
    """A redis-server of the test's own on a spare port, to stop and start at will."""
    with redis_servers() as (server,):
        yield server.url, server.stop, server.start


def health_status(server):
    """The status /healthz answers."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(f"{server.url}/healthz", timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


async def test_redis_restarted_mid_reply_loses_nothing(upstream, own_redis):
    url, stop, start = own_redis
    upstream.will(tokens=[f"wave{i} " for i in range(200)], rate=50)
    server = Daphne(provider_env(upstream, REDIS_URL=url))
    try:
        async with subscribe(server) as socket:
            await sync_to_async(post)(server, "Sing while the storm rages")
            reply = await until(lambda: (r := latest_reply()) and len(r.content) > 20 and r)
            after = reply.seq  # the page was in step with the room up to the reply's growth read here
            await sync_to_async(stop)()
            await until(lambda: health_status(server) == 503)  # Parley has noticed Redis is gone
            await sync_to_async(start)()
            # Frames may have been lost meanwhile: when Redis is back, Parley closes the page, which
            # reconnects and catches up.
            before = []
            with pytest.raises(websockets.exceptions.ConnectionClosed):
                async with asyncio.timeout(20):
                    async for text in socket:
                        before += parse_frames(text)
        done = await until(lambda: (r := Message.objects.get(pk=reply.pk)).status == "complete" and r, timeout=20)
        frames = await reconnect_and_catch_up(server, after)
        replayed = [f for f in frames if f[0] == "prepend" and f'id="message_{reply.pk}"' in f[3]]
        assert replayed and 'data-status="complete"' in replayed[0][3]
        assert done.content == "".join(f"wave{i} " for i in range(200))
        # The page, from its first frame through the catch-up, shows the whole saved reply.
        assert shown_text(before + frames, reply.pk).strip() == done.content.strip()
    finally:
        server.stop()


def test_healthz_answers_503_while_redis_is_down_and_200_when_it_is_back(upstream, own_redis):
    import json
    import urllib.error
    import urllib.request

    url, stop, start = own_redis
    server = Daphne(provider_env(upstream, REDIS_URL=url))

    def health():
        try:
            with urllib.request.urlopen(f"{server.url}/healthz", timeout=10) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

    try:
        assert health() == (200, {"status": "ok", "database": "ok", "channel_layer": "ok"})
        stop()
        status, body = health()
        assert status == 503 and body["database"] == "ok" and body["channel_layer"].startswith("down")
        start()
        deadline = time.monotonic() + 10
        while (status := health()[0]) != 200 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert status == 200
    finally:
        server.stop()


async def test_a_process_that_stops_takes_its_presence_count_with_it(upstream):
    import uuid

    import redis

    prefix = f"presence-{uuid.uuid4().hex}"
    env = provider_env(upstream, REDIS_URL=settings.REDIS_URL, CACHE_KEY_PREFIX=prefix)
    staying, stopping = Daphne(env), Daphne(env)
    store = redis.Redis.from_url(settings.REDIS_URL)

    def shares():
        return len(store.keys(f"{prefix}:*:parley:presence:PirateBot.messages:*"))

    try:
        async with subscribe(staying) as first, subscribe(stopping) as second:
            await first.recv()
            await second.recv()
            assert await until(lambda: shares() == 2)
            await sync_to_async(stopping.stop)()  # SIGTERM: a graceful stop
            assert shares() == 1
    finally:
        staying.stop()
        stopping.stop()
