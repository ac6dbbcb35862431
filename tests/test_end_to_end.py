"""End to end: a real Daphne process, real WebSocket clients, real HTTP posts with CSRF tokens."""

import asyncio
import re
import time

import pytest
import websockets
from asgiref.sync import sync_to_async

from bots.providers.local import default_model_path
from chat.markdown import render_markdown
from chat.models import Message
from tests.rooms import (
    element_text,
    finished,
    grown_text,
    grows,
    parse_frames,
    shown_text,
)
from tests.servers import Browser, daphne

pytestmark = pytest.mark.django_db(transaction=True)

SHIP = "Arr! The Salty Kraken be a three-masted brig, swift as a gull and twice as loud."


def provider_env(upstream, **extra):
    return {
        "LLM_PROVIDER": "openai", "OPENAI_API_KEY": "sk-scripted", "OPENAI_BASE_URL": upstream.base_url,
        "OPENAI_MODEL": "scripted-model", "OPENAI_MAX_RETRIES": "0",
        "RATE_LIMIT_PER_CLIENT": "10000", "RATE_LIMIT_PER_ROOM": "10000",
        # Every test's server sees one address (loopback): tests of the address budgets set their own.
        "RATE_LIMIT_PER_ADDRESS": "10000", "RATE_LIMIT_VOTES": "10000", "RATE_LIMIT_STATELESS_PER_BOT": "10000",
        # Short scripted replies still grow in several frames.
        "REPLY_FLUSH_INTERVAL": "0.05", **extra,
    }


async def read_frames(socket, done, timeout=20):
    frames = []
    async with asyncio.timeout(timeout):
        async for text in socket:
            for frame in parse_frames(text):
                frames.append(frame)
                if done(frame):
                    return frames


@sync_to_async
def room_rows(room="PirateBot"):
    return list(Message.objects.filter(room=room).order_by("id"))


async def test_a_reply_streams_into_two_pages_served_by_daphne(upstream_server, upstream):
    upstream.will(text=SHIP, rate=40)  # about 0.4 s: several flushes, even on a busy machine
    with daphne(provider_env(upstream)) as server:
        origin = server.url
        async with websockets.connect(f"{server.ws_url}/ws/rooms/PirateBot/", origin=origin) as one, \
                websockets.connect(f"{server.ws_url}/ws/rooms/PirateBot/", origin=origin) as two:
            browser = Browser(server.url)
            status, headers, _ = await sync_to_async(browser.post_form)(
                "/rooms/PirateBot/", "/rooms/PirateBot/messages", {"content": "Tell me about your ship"}
            )
            assert (status, headers["Location"]) == (303, "/rooms/PirateBot/")
            user, reply = await room_rows()
            seen = await asyncio.gather(*(read_frames(ws, finished(reply.pk)) for ws in (one, two)))

        assert seen[0] == seen[1]
        frames = seen[0]
        assert [f[0] for f in frames[:3]] == ["prepend", "prepend", "replace"]
        assert f'id="message_{user.pk}"' in frames[0][3] and f'id="message_{reply.pk}"' in frames[1][3]
        assert all(grows(reply.pk)(f) for f in frames[3:-1]) and len(frames) > 5
        (saved,) = [m for m in await room_rows() if m.pk == reply.pk]
        assert saved.status == "complete" and saved.content == SHIP
        growth = grown_text(frames, reply.pk)
        assert growth and saved.content.startswith(growth)
        # SHIP has no Markdown syntax: the page shows exactly the saved text.
        assert shown_text(frames, reply.pk).strip() == saved.content.strip()

        # Without JavaScript: the room page shows the conversation after the redirect.
        status, _, page = await sync_to_async(browser.get)("/rooms/PirateBot/")
        assert status == 200 and "Tell me about your ship" in page and "Salty Kraken" in page


async def test_a_post_without_a_csrf_token_is_refused(upstream):
    with daphne(provider_env(upstream)) as server:
        status, _, _ = await sync_to_async(Browser(server.url).request)(
            "POST", "/rooms/PirateBot/messages", {"content": "no token"}
        )
    assert status == 403
    assert await room_rows() == []


async def test_every_answer_says_how_long_the_app_held_it(upstream):
    # Server-Timing's app duration: what a slow answer spent in the app (the wait for a view
    # thread included), told apart from what it spent before and after (the bench reports both).
    # The tests' servers run with DEBUG, under which it is on.
    answers = [("GET", "/rooms/PirateBot/", 200), ("POST", "/rooms/PirateBot/messages", 403),
               ("GET", "/rooms/NoSuchRoom/", 404), ("GET", "/static/chat/parley.js", 200)]
    with daphne(provider_env(upstream)) as server:
        browser = Browser(server.url)
        for method, path, expected in answers:
            started = time.perf_counter()
            status, headers, _ = await sync_to_async(browser.request)(method, path, {} if method == "POST" else None)
            took_ms = (time.perf_counter() - started) * 1000
            assert status == expected, path
            timing = {name.lower(): value for name, value in headers.items()}["server-timing"]
            app_ms = float(re.fullmatch(r"app;dur=([\d.]+)", timing)[1])
            assert 0 < app_ms <= took_ms, (path, app_ms, took_ms)
    # Off, as in production by default: no client learns the app's time.
    with daphne(provider_env(upstream, SERVER_TIMING="false")) as server:
        status, headers, _ = await sync_to_async(Browser(server.url).get)("/rooms/PirateBot/")
    assert status == 200 and "server-timing" not in {name.lower() for name in headers}


async def test_a_socket_for_an_unknown_bot_is_refused(upstream):
    with daphne(provider_env(upstream)) as server:
        with pytest.raises(websockets.exceptions.InvalidStatus) as refused:
            async with websockets.connect(f"{server.ws_url}/ws/rooms/NoSuchBot/", origin=server.url):
                pass
    assert refused.value.response.status_code == 403


@pytest.mark.slow
async def test_the_embedded_model_answers_in_a_room_served_by_daphne():
    # The default provider: no provider named, no API key, SmolLM2 run in the server process.
    env = {"LLM_PROVIDER": None, "OPENAI_API_KEY": None, "OPENAI_BASE_URL": None, "LOCAL_MODEL_PATH": None,
           "REPLY_MAX_TOKENS": "48", "REPLY_FLUSH_INTERVAL": "0.05"}
    with daphne(env) as server:
        room = f"{server.ws_url}/ws/rooms/PirateBot/"
        async with websockets.connect(room, origin=server.url) as one, websockets.connect(room, origin=server.url) as two:
            status, _, _ = await sync_to_async(Browser(server.url).post_form)(
                "/rooms/PirateBot/", "/rooms/PirateBot/messages", {"content": "Tell me about your ship"}
            )
            assert status == 303
            user, reply = await room_rows()
            seen = await asyncio.gather(*(read_frames(ws, finished(reply.pk), timeout=60) for ws in (one, two)))

    assert seen[0] == seen[1]
    frames = seen[0]
    assert (frames[-1][0], frames[-1][1]) == ("replace", f"message_{reply.pk}") and 'data-status="complete"' in frames[-1][3]
    (saved,) = [m for m in await room_rows() if m.pk == reply.pk]
    assert saved.status == "complete" and saved.content.strip() and saved.model == default_model_path().stem
    assert 0 < saved.completion_tokens <= 48
    growth = grown_text(frames, reply.pk)
    print(f"{len(frames)} frames; SmolLM2 said: {saved.content!r}")
    assert growth and saved.content.startswith(growth)
    # The model may write Markdown, which the finished message shows rendered: the page's text is
    # the saved content as rendered.
    assert shown_text(frames, reply.pk).strip() == element_text(render_markdown(saved.content)).strip()
