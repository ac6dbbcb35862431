"""Several Redis hosts: three Daphne processes share two, the rooms sharded over them; one host away
costs only the rooms it carries, which catch up exactly when it returns."""

import asyncio
import json
import time
import urllib.error
import urllib.request

import pytest
import websockets
from asgiref.sync import sync_to_async

from chat.delivery.layer import RoomLayer
from chat.models import Message
from tests.rooms import grown_text, parse_frames, shown_text
from tests.servers import Browser, Daphne, redis_servers
from tests.test_end_to_end import provider_env
from tests.waiting import until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.services]

TIDE = [f"tide{i} " for i in range(600)]  # 15 s at 40 tokens a second: it outlasts the outage
OUTAGE = 10.0  # seconds the second Redis host stays away


def health(server):
    """/healthz's status and body."""
    try:
        with urllib.request.urlopen(f"{server.url}/healthz", timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def page(server, room, after=None):
    query = f"?after={after}" if after is not None else ""
    return websockets.connect(f"{server.ws_url}/ws/rooms/{room}/{query}", origin=server.url)


def post(server, room, content):
    status, _, _ = Browser(server.url).post_form(f"/rooms/{room}/", f"/rooms/{room}/messages", {"content": content})
    assert status == 303


def reply_in(room):
    return Message.objects.filter(room=room, role="assistant").order_by("-id").first()


def complete(pk):
    """A predicate: a frame that shows message pk complete (a live final replace, or a catch-up's)."""
    return lambda f: f'id="message_{pk}"' in f[3] and 'data-status="complete"' in f[3] and f[0] in ("replace", "prepend")


async def read(socket, done, timeout=30):
    """(arrival time, frame) pairs until done(frame); ends early, without error, if the server closes the page."""
    seen = []
    try:
        async with asyncio.timeout(timeout):
            async for text in socket:
                for frame in parse_frames(text):
                    seen.append((time.monotonic(), frame))
                    if done(frame):
                        return seen, None
    except websockets.exceptions.ConnectionClosed as closed:
        return seen, closed.rcvd.code if closed.rcvd else None
    return seen, None


async def catch_up(server, room, after, done, attempts=40):
    """Reconnect as the page does (retrying while its room's host is away) and read on until done."""
    for attempt in range(attempts):
        try:
            async with page(server, room, after) as socket:
                seen, closed = await read(socket, done)
                if closed is None:
                    return [frame for _, frame in seen]
        except (OSError, websockets.exceptions.InvalidStatus):
            pass
        assert attempt < attempts - 1, "the page never caught up"
        await asyncio.sleep(0.5)


async def test_one_redis_host_away_costs_only_the_rooms_it_carries(upstream):
    with redis_servers(2) as (first, second):
        # channels-redis's own hash puts BelleBot's frames on the first host, PirateBot's on the second.
        layer = RoomLayer(hosts=[first.url, second.url])
        assert layer.host_of("BelleBot.messages") == first.name
        assert layer.host_of("PirateBot.messages") == second.name
        env = provider_env(upstream, REDIS_URL=f"{first.url},{second.url}")
        servers = await asyncio.gather(*(sync_to_async(Daphne, thread_sensitive=False)(env) for _ in range(3)))
        try:
            await run_the_outage(upstream, servers, second)
        finally:
            for server in servers:
                await sync_to_async(server.stop)()


async def run_the_outage(upstream, servers, second):
    upstream.will(tokens=TIDE, rate=40)
    upstream.will(tokens=TIDE, rate=40)
    async with (page(servers[0], "BelleBot") as b0, page(servers[1], "BelleBot") as b1, page(servers[2], "BelleBot") as b2,
                page(servers[0], "PirateBot") as p0, page(servers[1], "PirateBot") as p1, page(servers[2], "PirateBot") as p2):
        # Both replies stream from one process: the host away must not hold up the other host's frames there.
        await asyncio.gather(sync_to_async(post)(servers[1], "BelleBot", "Tell me of the tide"),
                             sync_to_async(post)(servers[1], "PirateBot", "Tell me of the tide"))
        belle = await until(lambda: (r := reply_in("BelleBot")) and len(r.content) > 20 and r)
        pirate = await until(lambda: (r := reply_in("PirateBot")) and len(r.content) > 20 and r)
        after = pirate.seq  # the pirate pages were in step with the room up to here
        belle_pages = [asyncio.create_task(read(socket, complete(belle.pk))) for socket in (b0, b1, b2)]
        pirate_pages = [asyncio.create_task(read(socket, complete(pirate.pk))) for socket in (p0, p1, p2)]

        stopped_at = time.monotonic()
        await sync_to_async(second.stop)()
        # The process streaming PirateBot's reply gave a frame up after its retries: that room's
        # pages will catch up. /healthz names the host away, and only that one.
        await until(lambda: "could not send a frame to PirateBot" in servers[1].output())
        status, body = await sync_to_async(health)(servers[2])
        assert status == 503 and body["database"] == "ok"
        assert body["channel_layer"].startswith("down") and second.name in body["channel_layer"]
        assert body["channel_layer"].count("127.0.0.1:") == 1
        # The outage's length is the scenario (a host away 10 s mid-reply), not a wait for a condition.
        await asyncio.sleep(max(0.0, OUTAGE - (time.monotonic() - stopped_at)))
        outage = time.monotonic() - stopped_at
        await sync_to_async(second.start)()
        restarted_at = time.monotonic()

        belle_seen = await asyncio.gather(*belle_pages)
        pirate_seen = await asyncio.gather(*pirate_pages)
        belle_saved = await sync_to_async(Message.objects.get)(pk=belle.pk)
        # Which scripted answer each reply got does not matter: both say the same.
        assert belle_saved.status == "complete" and belle_saved.content == "".join(TIDE)
        for seen, closed in belle_seen:
            frames = [frame for _, frame in seen]
            # Never closed, every growth frame in order with no gap (grown_text asserts it), the final text exact.
            assert closed is None
            assert belle_saved.content.startswith(grown_text(frames, belle.pk))
            assert shown_text(frames, belle.pk).strip() == belle_saved.content.strip()
            # And the room carried on while the other host was away, with no pause as long as the
            # retries of the frames to the host away (3.6 s).
            during = [at for at, _ in seen if stopped_at < at < restarted_at]
            assert during and max(b - a for a, b in zip([stopped_at, *during], [*during, restarted_at])) < 2

        done = await until(lambda: (r := Message.objects.get(pk=pirate.pk)).status == "complete" and r, timeout=30)
        assert done.content == "".join(TIDE)
        for server, (seen, closed) in zip(servers, pirate_seen):
            # Closed when its host came back (4012: reconnect and catch up), then in step again.
            assert closed == 4012
            before = [frame for _, frame in seen]
            frames = await catch_up(server, "PirateBot", after, complete(pirate.pk))
            assert shown_text(before + frames, pirate.pk).strip() == done.content.strip()
    print(f"\nsecond Redis host away for {outage:.1f} s; BelleBot's pages got "
          f"{[sum(stopped_at < at < restarted_at for at, _ in seen) for seen, _ in belle_seen]} frames meanwhile")
