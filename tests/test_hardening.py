"""Hostile input and abuse: XSS in messages and model output, sockets, limits, deploy checks."""

import asyncio
import os
import re
import secrets
import subprocess
import sys
import time

import pytest
from asgiref.sync import sync_to_async
from django.test import AsyncClient

from chat.models import Message
from tests.rooms import communicator, finished, frames_until, parse_frames, subscribe
from tests.servers import ROOT
from tests.test_rooms import rows
from tests.xss import (
    PAYLOADS,
    assert_inert_socket_text,
    executable_markup,
    messages_html,
    stream_count,
)

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
    from chat.web.limits import WINDOW

    left = WINDOW - time.time() % WINDOW
    if left < 15:
        await asyncio.sleep(left + 0.1)


async def close_of(client):
    """Read a socket's output, past room frames (presence), up to its close."""
    while (output := await client.receive_output(timeout=5))["type"] != "websocket.close":
        assert output["type"] == "websocket.send"
    return output


def test_the_corpus_is_big_enough():
    assert len(set(PAYLOADS)) >= 30


def test_the_checker_catches_what_it_must():
    assert executable_markup('<img src=x onerror="alert(1)">') == ["<img>", "img[onerror]"]
    assert executable_markup('<a href=" JavaScript:alert(1)">x</a>') == ["a[href=javascript:alert(1)]"]
    assert executable_markup("<p>fine <strong>text</strong></p>") == []
    presence = '<turbo-stream action="update" target="presence"><template>1 here</template></turbo-stream>'
    assert_inert_socket_text([presence])
    with pytest.raises(AssertionError):  # a stream element the frame parser does not see
        assert_inert_socket_text([presence + "<turbo-stream action=remove target=messages></turbo-stream>"])


def test_a_message_with_a_nul_character_is_kept_without_it_never_a_500(client):
    # PostgreSQL text cannot hold NUL: it goes, as from a model's output, and the rest is kept.
    response = client.post("/rooms/PirateBot/messages", {"content": "before\x00after\r\nnext line"})
    assert response.status_code == 303
    assert Message.objects.get(role="user").content == "beforeafter\nnext line"


async def test_hostile_user_messages_are_inert_in_frames_and_pages(upstream):
    upstream.default.text = "Noted."
    page = await subscribe("ChatBot")
    client = AsyncClient()
    for payload in PAYLOADS:
        response = await client.post("/rooms/ChatBot/messages", {"content": payload})
        assert response.status_code == 303
    messages = [m for m in await rows(bot="ChatBot") if m.role == "user"]
    assert [m.content for m in messages] == [p.strip() for p in PAYLOADS]  # stored as sent
    received, texts = [], []
    while len([f for f in received if f[0] == "prepend" and 'class="message user"' in f[3]]) < len(PAYLOADS):
        texts.append(await page.receive_from(timeout=10))
        received += parse_frames(texts[-1])
    for action, target, attrs, html in received:
        assert executable_markup(html) == [], html
        assert stream_count(html) == 0, f"a message smuggled a turbo-stream element: {html}"
    assert_inert_socket_text(texts)
    room = (await client.get("/rooms/ChatBot/")).text
    assert executable_markup(messages_html(room)) == []


@pytest.mark.parametrize("payload", PAYLOADS)
async def test_hostile_model_output_split_across_chunks_is_inert(upstream, payload):
    cut = [payload[: len(payload) // 3], payload[len(payload) // 3: 2 * len(payload) // 3], payload[2 * len(payload) // 3:]]
    upstream.will(tokens=["Here you go: ", *cut, " done."], rate=100)
    page = await subscribe("BelleBot")
    client = AsyncClient()
    await client.post("/rooms/BelleBot/messages", {"content": "Say something dangerous"})
    _, reply = await rows(bot="BelleBot")
    texts = []
    received = await frames_until(page, finished(reply.pk), raw=texts)
    for action, target, attrs, html in received:
        assert executable_markup(html) == [], html
        assert stream_count(html) == 0
    assert_inert_socket_text(texts)
    (saved,) = await rows(pk=reply.pk)
    assert saved.content == "Here you go: " + payload + " done."
    # The room page renders the finished reply again, from the row: inert there too.
    room = (await client.get("/rooms/BelleBot/")).text
    assert f'id="message_{reply.pk}"' in room
    assert executable_markup(messages_html(room)) == []


async def test_a_socket_from_a_foreign_origin_is_refused():
    client = communicator("PirateBot")
    client.scope["headers"] = [(b"origin", b"https://evil.example"), (b"host", b"127.0.0.1:8000")]
    connected, _ = await client.connect()
    assert not connected


async def test_a_client_that_floods_its_socket_is_closed_and_others_carry_on(upstream):
    upstream.will(text="Still here, matey.", rate=100)
    flooder, bystander = await subscribe(), await subscribe()
    for i in range(10_000):
        await flooder.send_to(text_data=f"spam {i}")
    assert await close_of(flooder) == {"type": "websocket.close", "code": 4008}
    # The server answers the others as before.
    response = await AsyncClient().post("/rooms/PirateBot/messages", {"content": "Anyone?"})
    assert response.status_code == 303
    _, reply = await rows(bot="PirateBot")
    await frames_until(bystander, finished(reply.pk))


async def test_an_oversized_client_frame_closes_the_socket():
    client = await subscribe()
    await client.send_to(text_data="x" * 5000)
    assert await close_of(client) == {"type": "websocket.close", "code": 4008}


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

    from chat.web.limits import WINDOW, counter_key

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
    (_, first), (_, second) = await rows(bot="ChatBot"), await rows(bot="BelleBot")
    await asyncio.gather(frames_until(one, finished(first.pk)), frames_until(two, finished(second.pk)))
    a, b = upstream.exchanges
    assert b.opened_at >= a.finished_at  # queued, not dropped, not concurrent


def production_env(**overrides):
    env = {k: v for k, v in os.environ.items() if k not in {"DEBUG", "SECRET_KEY", "ALLOWED_HOSTS", "DATABASE_URL", "REDIS_URL"}}
    env.update(DEBUG="false", SECRET_KEY=secrets.token_urlsafe(50), ALLOWED_HOSTS="parley.example.com")
    env.update(overrides)
    return env


def test_deploy_checks_pass_with_production_settings():
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT, env=production_env(), capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


@pytest.mark.parametrize("missing", ["SECRET_KEY", "ALLOWED_HOSTS"])
def test_production_without_a_required_setting_says_which(missing):
    env = production_env()
    env.pop(missing)
    result = subprocess.run([sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert re.search(rf"Set {missing}\b.*required when DEBUG is off", result.stderr)


def test_the_admin_is_for_staff_only(client, django_user_model):
    assert client.get("/admin/chat/message/").status_code == 302
    user = django_user_model.objects.create_user("pat", password="pw-123-long")
    client.force_login(user)
    assert client.get("/admin/chat/message/").status_code == 302
    user.is_staff, user.is_superuser = True, True
    user.save()
    assert client.get("/admin/chat/message/").status_code == 200


def test_every_post_needs_a_csrf_token(upstream):
    from django.test import Client

    reply = Message.objects.create(bot="ChatBot", role="assistant", status="failed")
    strict = Client(enforce_csrf_checks=True)
    for path in ["/rooms/ChatBot/messages", f"/rooms/ChatBot/messages/{reply.pk}/stop",
                 f"/rooms/ChatBot/messages/{reply.pk}/retry", "/chat"]:
        assert strict.post(path, {"content": "hi"}).status_code == 403, path


async def test_ten_thousand_frames_into_a_real_daphne_socket(upstream):
    import urllib.request

    import websockets

    from tests.servers import daphne
    from tests.test_end_to_end import provider_env

    with daphne(provider_env(upstream)) as server:
        async with websockets.connect(f"{server.ws_url}/ws/rooms/PirateBot/", origin=server.url) as flooder:
            with pytest.raises(websockets.exceptions.ConnectionClosed) as closed:
                for i in range(10_000):
                    await flooder.send(f"spam {i}")
                while True:
                    await flooder.recv()  # room frames (presence), then the close
            assert closed.value.rcvd.code == 4008
        started = time.monotonic()
        status = await sync_to_async(lambda: urllib.request.urlopen(f"{server.url}/healthz", timeout=5).status)()
        assert status == 200 and time.monotonic() - started < 1.0
