"""Budgets that count people, not cookies, on a real Daphne: fresh sessions from one address share one
budget, a page view makes no session, /chat floods keep out of the rooms' way, mutes follow the
address, votes are limited."""

import asyncio
import re
import secrets

import pytest
import websockets
from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model
from django.contrib.sessions.models import Session

from chat.models import Feedback, Message
from tests.rooms import grows
from tests.servers import Browser, daphne
from tests.sse import open_stream
from tests.test_end_to_end import provider_env, read_frames
from tests.test_limits import one_window

pytestmark = pytest.mark.django_db(transaction=True)

RUN = secrets.randbelow(250)  # fresh addresses each run: counters live a minute in a shared cache


def address(group, host):
    """An address of its own for one test (a documentation range, as a trusted proxy reports it)."""
    return f"198.51.{RUN}.{group * 10 + host}"


class Behind(Browser):
    """A browser without JavaScript whose requests reach Parley through the trusted proxy, which
    appends the address it saw to whatever X-Forwarded-For the client sent (forged, here)."""

    def __init__(self, base_url, seen_from):
        super().__init__(base_url)
        self.forwarded = f"{secrets.randbelow(250)}.{secrets.randbelow(250)}.0.1, {seen_from}"

    def request(self, method, path, data=None, headers=None):
        return super().request(method, path, data, {**(headers or {}), "X-Forwarded-For": self.forwarded})


def env(upstream, **extra):
    """Daphne behind a trusted proxy, with counters of its own in the cache (a shared Redis keeps them a minute)."""
    return provider_env(upstream, TRUST_X_FORWARDED_FOR="true", CACHE_KEY_PREFIX=f"budgets-{secrets.token_hex(4)}", **extra)


def said(contents):
    return set(Message.objects.filter(role="user", content__in=contents).values_list("content", flat=True))


def session_cookie(headers):
    return "sessionid=" in (headers.get("Set-Cookie") or "")


async def test_six_fresh_sessions_from_one_address_are_held_to_one_client_s_budget(upstream):
    upstream.default.text = "Aye."
    await one_window()
    # RATE_LIMIT_PER_ADDRESS unset (0), as shipped: an address gets one client's budget.
    with daphne(env(upstream, RATE_LIMIT_PER_CLIENT="3", RATE_LIMIT_PER_ADDRESS="0")) as server:
        answers = []
        for i in range(6):  # each a new browser: a fresh session, the same address behind the proxy
            guest = Behind(server.url, address(1, 1))
            status, _, body = await sync_to_async(guest.post_form)("/rooms/PirateBot/", "/rooms/PirateBot/messages", {"content": f"fresh {i}"})
            answers.append((status, body))
        assert [status for status, _ in answers] == [303, 303, 303, 429, 429, 429]
        assert all("Too many messages come from your address (3 a minute)" in body for _, body in answers[3:])
        assert await sync_to_async(said)([f"fresh {i}" for i in range(6)]) == {"fresh 0", "fresh 1", "fresh 2"}
        # The address is the one the proxy appended (right-most), not what the client wrote before it.
        elsewhere = Behind(server.url, address(1, 2))
        status, _, body = await sync_to_async(elsewhere.post_form)("/rooms/PirateBot/", "/rooms/PirateBot/messages", {"content": "elsewhere"})
        assert status == 303, body


async def test_a_page_view_makes_no_session_and_a_post_from_that_page_does(upstream):
    upstream.default.text = "Aye."
    with daphne(env(upstream)) as server:
        before = await Session.objects.acount()
        guest = Behind(server.url, address(2, 1))
        for page in ("/", "/rooms/PirateBot/", "/rooms/Lounge/", "/profile", "/direct/PirateBot/"):
            status, headers, _ = await sync_to_async(guest.get)(page)
            assert status == 200 and not session_cookie(headers), (page, headers.get("Set-Cookie"))
        assert await Session.objects.acount() == before
        # The page names the guest it offers to be; posting from it (no JavaScript) makes the session, under that name.
        _, _, room = await sync_to_async(guest.get)("/rooms/PirateBot/")
        shown = re.search(r'<strong id="my_name">([^<]+)</strong>', room)[1]
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', room)[1]
        offer = re.search(r'name="guest" value="([^"]+)"', room)[1]
        status, headers, body = await sync_to_async(guest.submit)(
            "/rooms/PirateBot/", "/rooms/PirateBot/messages", token, {"content": "first words", "guest": offer})
        assert status == 303 and session_cookie(headers), body
        assert await Session.objects.acount() == before + 1
        message = await Message.objects.aget(content="first words")
        assert message.author == shown and message.sender.startswith("guest:")
        # The next page knows the guest: no new offer, the same name, no new session.
        _, headers, room = await sync_to_async(guest.get)("/rooms/PirateBot/")
        assert f'<strong id="my_name">{shown}</strong>' in room and 'name="guest"' not in room
        status, _, _ = await sync_to_async(guest.submit)("/rooms/PirateBot/", "/rooms/PirateBot/messages", token, {"content": "second words"})
        assert status == 303
        assert (await Message.objects.aget(content="second words")).sender == message.sender
        assert await Session.objects.acount() == before + 1
        # A forged offer is ignored: the guest still gets a token of their own.
        forger = Behind(server.url, address(2, 2))
        token = await sync_to_async(forger.form_token)("/rooms/PirateBot/")
        status, _, _ = await sync_to_async(forger.submit)(
            "/rooms/PirateBot/", "/rooms/PirateBot/messages", token, {"content": "forged", "guest": offer[:-3] + "abc"})
        assert status == 303
        assert (await Message.objects.aget(content="forged")).sender not in ("", message.sender)


async def test_a_chat_flood_at_its_limit_leaves_a_room_post_accepted_and_its_reply_streaming(upstream):
    # /chat callers get words and then a stall: each holds a streaming slot for a minute.
    upstream.default.text, upstream.default.fault, upstream.default.fault_after = "Flood words here.", "stall", 1
    upstream.default.stall_seconds = 60
    await one_window()
    limits = {"RATE_LIMIT_PER_ROOM": "8", "RATE_LIMIT_STATELESS_PER_BOT": "8", "MAX_STREAMING_REPLIES": "8", "MAX_STATELESS_STREAMS": "4"}
    with daphne(env(upstream, **limits)) as server:
        body = b'{"bot": "PirateBot", "messages": [{"role": "user", "content": "flood"}]}'
        headers = {"Content-Type": "application/json"}
        flood = [await sync_to_async(open_stream)(server.url, "POST", "/chat", body, headers) for _ in range(8)]
        try:
            assert [response.status for _, response in flood] == [200] * 8
            connection, refused = await sync_to_async(open_stream)(server.url, "POST", "/chat", body, headers)
            assert refused.status == 429 and "busy" in refused.read().decode()
            connection.close()
            while len(upstream.exchanges) < 4:  # the flood holds every slot /chat has
                await asyncio.sleep(0.05)
            upstream.will(text="The room's own answer sails in.")
            async with websockets.connect(f"{server.ws_url}/ws/rooms/PirateBot/", origin=server.url) as page:
                guest = Behind(server.url, address(3, 1))
                status, _, answer = await sync_to_async(guest.post_form)(
                    "/rooms/PirateBot/", "/rooms/PirateBot/messages", {"content": "Room question"})
                assert status == 303, answer
                reply = await Message.objects.filter(role="assistant").order_by("-id").afirst()
                frames = await read_frames(page, grows(reply.pk))
                assert "The" in "".join(html for action, target, _, html in frames if target == f"message_{reply.pk}_content")
        finally:
            for connection, _ in flood:
                connection.close()


async def test_a_muted_guest_s_new_session_from_the_same_address_is_still_muted(upstream):
    upstream.default.text = "Aye."
    await sync_to_async(get_user_model().objects.create_user)("mod", password="pw-mod-123", is_staff=True)
    with daphne(env(upstream)) as server:
        troll = Behind(server.url, address(4, 1))
        status, _, _ = await sync_to_async(troll.post_form)("/rooms/Lounge/", "/rooms/Lounge/messages", {"content": "spam, spam"})
        assert status == 303
        spam = await Message.objects.aget(content="spam, spam")
        moderator = Behind(server.url, address(4, 2))
        status, _, _ = await sync_to_async(moderator.post_form)("/admin/login/", "/admin/login/?next=/admin/", {"username": "mod", "password": "pw-mod-123"})
        assert status == 302
        status, _, _ = await sync_to_async(moderator.post_form)("/rooms/Lounge/", f"/rooms/Lounge/messages/{spam.pk}/mute", {})
        assert status == 303
        # A new cookie from the same address: still muted, nothing saved.
        again = Behind(server.url, address(4, 1))
        status, _, body = await sync_to_async(again.post_form)("/rooms/Lounge/", "/rooms/Lounge/messages", {"content": "spam again"})
        assert status == 403 and "A moderator muted you until" in body
        assert await sync_to_async(said)(["spam again"]) == set()
        # Another address is not held; nor is the signed-in moderator at any address.
        other = Behind(server.url, address(4, 3))
        status, _, _ = await sync_to_async(other.post_form)("/rooms/Lounge/", "/rooms/Lounge/messages", {"content": "hello"})
        assert status == 303


async def test_votes_are_limited_per_client_and_per_address(upstream):
    upstream.default.text = "Aye."
    await one_window()
    with daphne(env(upstream, RATE_LIMIT_VOTES="3")) as server:
        asker = Behind(server.url, address(5, 9))
        status, _, _ = await sync_to_async(asker.post_form)("/rooms/PirateBot/", "/rooms/PirateBot/messages", {"content": "vote on this"})
        assert status == 303
        question = await Message.objects.aget(content="vote on this")
        while not await Message.objects.filter(reply_to=question, status="complete").aexists():
            await asyncio.sleep(0.05)
        reply = await Message.objects.aget(reply_to=question)
        action = f"/rooms/PirateBot/messages/{reply.pk}/feedback"
        # One voter changing their mind: three votes a minute, the fourth refused with a sentence.
        voter = Behind(server.url, address(5, 1))
        token = await sync_to_async(voter.form_token)("/rooms/PirateBot/")
        statuses = [(await sync_to_async(voter.submit)("/rooms/PirateBot/", action, token, {"value": value}))[0]
                    for value in ("up", "down", "up", "down")]
        assert statuses == [303, 303, 303, 429]
        # Fresh sessions from another address: three votes between them, then refused.
        answers = [await sync_to_async(Behind(server.url, address(5, 2)).post_form)("/rooms/PirateBot/", action, {"value": "up"})
                   for _ in range(5)]
        assert [status for status, _, _ in answers] == [303, 303, 303, 429, 429]
        assert "Too many votes come from your address (3 a minute)" in answers[-1][2]
        assert await Feedback.objects.filter(message=reply, value=Feedback.Value.UP).acount() == 1 + 3
