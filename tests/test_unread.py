"""Unread and "Catch me up" on one real Daphne: lobby counts and mentions (one query for every room),
the divider, marking read from a page and its socket, a guest's positions in their session, and a
summary of exactly the unread messages that reaches the asker alone and writes no row."""

import asyncio
import json
import re

import pytest
import websockets
from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext

from bots.models import Room
from chat.models import ApiKey, Message, ReadPosition
from chat.replies.summary import left_out
from tests.browser import own_presence, signed_in
from tests.servers import Browser, daphne
from tests.sse import events, open_stream
from tests.test_end_to_end import provider_env

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "tidal-lantern-5521"
SUMMARY = "Bo asked about the ferry; Cy answered."
# Small enough that a dozen long lines overflow it, large enough for a dozen short ones.
HISTORY_CHARS = 600


@pytest.fixture(scope="module")
def server(upstream_server, django_db_setup):
    env = provider_env(upstream_server, PROMPT_HISTORY_CHARS=str(HISTORY_CHARS), READ_MARK_INTERVAL="0.3", **own_presence())
    with daphne(env) as running:
        yield running


@sync_to_async
def person(server, username):
    """A signed-in browser session (no JavaScript) of a new account username."""
    get_user_model().objects.create_user(username, password=PASSWORD)
    browser = Browser(server.url)
    token = browser.form_token("/accounts/login/")
    status, _, body = browser.submit("/accounts/login/", "/accounts/login/", token, {"username": username, "password": PASSWORD})
    assert status == 302, body
    return browser


def csrf(browser):
    return next(c.value for c in browser.cookies if c.name == "csrftoken")


def lobby_links(browser):
    """{room key: (data-unread, mentioned)} from the lobby as browser sees it."""
    status, _, html = browser.get("/")
    assert status == 200, html
    found = re.findall(r'<a href="/rooms/([^/]+)/" data-unread="(\d+)"( data-mentioned)?>', html)
    return {key: (int(unread), bool(mentioned)) for key, unread, mentioned in found}


@sync_to_async
def said(room, lines):
    """Messages said in room, oldest first: (author, content) pairs; a bot's reply when author is a bot key."""
    rows = []
    for author, content in lines:
        if author.endswith("Bot"):
            rows.append(Message.objects.create(room=room, role="assistant", bot=author, content=content, status="complete"))
        else:
            rows.append(Message.objects.create(room=room, role="user", author=author, sender=f"guest:{author}", content=content))
    return rows


def rows():
    return list(Message.objects.order_by("id").values_list("id", "status", "content", "revision", "seq"))


async def test_counts_mentions_divider_and_reading_from_the_page_and_its_socket(server):
    ana = await person(server, "ana")
    assert (await sync_to_async(lobby_links)(ana))["Lounge"] == (0, False)
    await sync_to_async(ana.get)("/rooms/Lounge/")  # a first visit to an empty room
    first = await said("Lounge", [("Bo", f"line {n}") for n in range(3)])
    removed = (await said("Lounge", [("Bo", "gone")]))[0]
    await sync_to_async(Message.objects.filter(pk=removed.pk).update)(removed_at=removed.created_at)
    await said("Lounge", [("Cy", "hello @ana, are you there?"), ("Bo", "mail to @anatole is not for her")])
    await said("PirateBot", [("Bo", "@ana ahoy")])

    links = await sync_to_async(lobby_links)(ana)
    assert links["Lounge"] == (5, True)  # the removed one is not counted
    assert links["PirateBot"] == (1, True) and links["BelleBot"] == (0, False)

    # The room opens with the divider just above the first unread message (DOM order is newest first).
    status, _, html = await sync_to_async(ana.get)("/rooms/Lounge/")
    assert status == 200
    order = re.findall(r'id="(message_\d+|unread_divider)"', html)
    assert order[order.index("unread_divider") - 1] == f"message_{first[0].pk}"
    assert 'id="catch_up"' not in html  # fewer than ten new
    assert '<meta name="parley-handle" content="ana">' in html
    assert (await sync_to_async(lobby_links)(ana))["Lounge"] == (0, False)  # opening it marked it read
    _, _, again = await sync_to_async(ana.get)("/rooms/Lounge/")
    assert 'id="unread_divider"' not in again

    # A frame on the open page's socket, then the page's read mark: the new message is read.
    cookie = "; ".join(f"{c.name}={c.value}" for c in ana.cookies)
    async with websockets.connect(f"{server.ws_url}/ws/rooms/Lounge/", origin=server.url,
                                  additional_headers={"Cookie": cookie}) as socket:
        bo = Browser(server.url)
        status, _, _ = await sync_to_async(bo.post_form)("/rooms/Lounge/", "/rooms/Lounge/messages", {"content": "fresh news"})
        assert status == 303
        async with asyncio.timeout(10):
            while "fresh news" not in await socket.recv():
                pass
        assert (await sync_to_async(lobby_links)(ana))["Lounge"] == (1, False)
        status, _, _ = await sync_to_async(ana.request)("POST", "/rooms/Lounge/read", {}, {"X-CSRFToken": csrf(ana), "Referer": server.url})
        assert status == 204
    assert (await sync_to_async(lobby_links)(ana))["Lounge"] == (0, False)

    # A guest keeps theirs in the session (made by their post): the room, read after the 303, counts no more.
    assert (await sync_to_async(lobby_links)(bo))["Lounge"] == (6, False)
    await sync_to_async(bo.get)("/rooms/Lounge/")
    assert (await sync_to_async(lobby_links)(bo))["Lounge"] == (0, False)
    await said("Lounge", [("Cy", "one more")])
    assert (await sync_to_async(lobby_links)(bo))["Lounge"] == (1, False)
    assert await sync_to_async(ReadPosition.objects.filter(reader__startswith="guest").count)() == 0
    # A guest with no session yet has no positions: nothing counted, nothing kept.
    assert set((await sync_to_async(lobby_links)(Browser(server.url))).values()) == {(0, False)}

    # Bad input: a read mark of a room that does not exist, or by GET.
    status, _, _ = await sync_to_async(ana.request)("POST", "/rooms/nowhere/read", {}, {"X-CSRFToken": csrf(ana), "Referer": server.url})
    assert status == 404
    assert (await sync_to_async(ana.get)("/rooms/Lounge/read"))[0] == 405


def test_the_lobby_counts_every_room_in_one_query(client, django_user_model):
    user = django_user_model.objects.create_user("dee", password=PASSWORD)
    client.force_login(user)
    for n in range(6):
        Room.objects.create(key=f"extra{n}", title=f"Extra {n}")
        Message.objects.create(room=f"extra{n}", role="user", author="Bo", content=f"@dee look {n}")
    ReadPosition.objects.mark(f"user:{user.pk}", "extra0", Message.objects.last_event("extra0"))
    with CaptureQueriesContext(connection) as queries:
        html = client.get("/").content.decode()
    messages = [q["sql"] for q in queries.captured_queries if "chat_message" in q["sql"]]
    assert len(messages) == 2, messages  # when each room last spoke, and what is new in each
    assert 'href="/rooms/extra0/" data-unread="0">' in html
    assert all(f'href="/rooms/extra{n}/" data-unread="1" data-mentioned>' in html for n in range(1, 6))


def summary_request(browser, room, after):
    """The page's "Catch me up" as its script sends it: (status, [(event, data)])."""
    connection_, response = open_stream(browser.base_url, "POST", f"/rooms/{room}/catch-up", f"after={after}", {
        "Content-Type": "application/x-www-form-urlencoded", "X-CSRFToken": csrf(browser), "Referer": browser.base_url,
        "Cookie": "; ".join(f"{c.name}={c.value}" for c in browser.cookies),
    })
    try:
        if response.status != 200:
            return response.status, response.read().decode()
        return 200, [(name, data) for name, data, _ in events(response) if name != "comment"]
    finally:
        connection_.close()


async def test_catch_up_summarizes_exactly_the_unread_messages_for_the_asker_alone(server, upstream):
    ana = await person(server, "ana")
    await sync_to_async(ana.get)("/rooms/Lounge/")
    await said("Lounge", [("Bo", "before")])
    await sync_to_async(ana.get)("/rooms/Lounge/")
    seen = await sync_to_async(Message.objects.last_event)("Lounge")
    lines = [("Bo", f"when is the ferry {n}?") for n in range(5)] + [("PirateBot", "At dawn, matey.")]
    lines += [("Cy", f"it leaves at {n}") for n in range(5)]
    await said("Lounge", lines)
    status, _, html = await sync_to_async(ana.get)("/rooms/Lounge/")
    assert f'data-after="{seen}"' in html and "Catch me up on 11 new messages" in html

    # Bo's page is open in the room; the summary must not reach it (nor Ana's own socket).
    sockets = [await websockets.connect(f"{server.ws_url}/ws/rooms/Lounge/", origin=server.url,
                                        additional_headers={"Cookie": "; ".join(f"{c.name}={c.value}" for c in b.cookies)})
               for b in (ana, Browser(server.url))]
    try:
        before = await sync_to_async(rows)()
        upstream.will(text=SUMMARY)
        status, got = await sync_to_async(summary_request)(ana, "Lounge", seen)
        assert status == 200, got
        assert "".join(data["text"] for name, data in got if name == "text") == SUMMARY
        assert got[-1] == ("done", {})
        sent = upstream.exchanges[-1].messages
        assert sent[0]["role"] == "system" and "who said what" in sent[0]["content"]
        names = {"PirateBot": "Pirate"}
        assert sent[1:] == [{"role": "user", "content": f"{names.get(who, who)}: {text}"} for who, text in lines]
        assert await sync_to_async(rows)() == before  # nothing saved

        # A message posted after it is the last thing either socket gets: nothing of the summary came before.
        status, _, _ = await sync_to_async(Browser(server.url).post_form)("/rooms/Lounge/", "/rooms/Lounge/messages", {"content": "marker 7731"})
        for socket in sockets:
            frames = ""
            async with asyncio.timeout(10):
                while "marker 7731" not in frames:
                    frames += await socket.recv()
            assert "ferry; Cy" not in frames
    finally:
        for socket in sockets:
            await socket.close()

    # Bad input: after missing or not a number; a room that is not there.
    assert (await sync_to_async(summary_request)(ana, "Lounge", "soon"))[0] == 400
    assert (await sync_to_async(summary_request)(ana, "nowhere", seen))[0] == 404


async def test_catch_up_for_programs_keeps_the_newest_that_fit_and_moves_the_keys_position(server, upstream):
    user = await sync_to_async(get_user_model().objects.create_user)("eve", password=PASSWORD)
    _, secret = await sync_to_async(ApiKey.objects.issue)("Eve's script", user=user)
    long = [("Bo", f"{n:02d} " + "a long line about the harbour and its many boats " * 2) for n in range(12)]
    await said("Lounge", long)

    def call(query=""):
        connection_, response = open_stream(server.url, "POST", f"/api/rooms/Lounge/catch-up{query}", None,
                                            {"Authorization": f"Bearer {secret}"})
        try:
            if response.status != 200:
                return response.status, json.loads(response.read())
            return 200, [(name, data) for name, data, _ in events(response) if name != "comment"]
        finally:
            connection_.close()

    upstream.will(text=SUMMARY)
    status, got = await sync_to_async(call)()  # from the key's own position: none yet, so everything
    assert status == 200, got
    sent = upstream.exchanges[-1].messages[1:]
    kept = len(sent)
    assert 0 < kept < len(long)
    assert sent == [{"role": "user", "content": f"{who}: {text}"} for who, text in long[-kept:]]  # the newest, in order
    note = left_out(len(long) - kept)
    assert got[0] == ("text", {"text": note + "\n\n"}) and note in upstream.exchanges[-1].messages[0]["content"]
    assert "".join(data["text"] for name, data in got[1:] if name == "text") == SUMMARY

    # Read: the next call finds nothing new and asks no model; ?after= reads from there instead.
    status, got = await sync_to_async(call)()
    assert got == [("text", {"text": "Nothing is new here since then."}), ("done", {})]
    assert len(upstream.exchanges) == 1
    upstream.will(text=SUMMARY)
    last = await sync_to_async(Message.objects.filter(room="Lounge").order_by("-id").first)()
    status, got = await sync_to_async(call)(f"?after={last.number - 1}")
    assert upstream.exchanges[-1].messages[1:] == [{"role": "user", "content": f"Bo: {long[-1][1]}"}]

    assert (await sync_to_async(call)("?after=-1"))[0] == 400
    assert (await sync_to_async(call)("?after=soon"))[0] == 422
    assert (await sync_to_async(call)("?after=99999999999999999999999"))[0] in (400, 422)


async def test_in_chromium_counts_divider_mention_and_a_summary_for_one_page(server, upstream, browser):
    await sync_to_async(get_user_model().objects.create_user)("ana", password=PASSWORD)
    ana = await signed_in(await browser.new_page(), server.url, "ana", PASSWORD, "/rooms/Lounge/")
    lines = [("Bo", f"the ferry is late {n}") for n in range(11)] + [("Cy", "@ana, your ferry left")]
    said_rows = await said("Lounge", lines)
    await ana.goto(f"{server.url}/")
    link = ana.locator('a[data-unread][href="/rooms/Lounge/"]')
    assert await link.get_attribute("data-unread") == "12"
    assert await link.get_attribute("data-mentioned") is not None
    assert "12 new" in await link.inner_text()

    bo = await browser.new_page()
    await bo.goto(f"{server.url}/rooms/Lounge/")
    await link.click()  # Turbo's visit, as a person goes from the lobby to a room
    await ana.locator("#unread_divider").wait_for(state="visible")
    assert await ana.evaluate("document.getElementById('unread_divider').previousElementSibling.id") == f"message_{said_rows[0].pk}"
    await ana.wait_for_function(f"document.getElementById('message_{said_rows[-1].pk}').classList.contains('mentioned')")
    assert await ana.locator(".message.mentioned").count() == 1
    assert await bo.locator(".message.mentioned").count() == 0  # a guest is no one's @ana

    upstream.will(text=SUMMARY, rate=50)
    await ana.click("#catch_up button")
    await ana.wait_for_function("document.getElementById('catch_up_summary').dataset.status === 'complete'")
    assert await ana.locator("#catch_up_summary").inner_text() == SUMMARY
    assert [m["content"] for m in upstream.exchanges[-1].messages[1:]] == [f"{who}: {text}" for who, text in lines]

    # Bo's page gets the next message and nothing of the summary; Ana's page, visible, reads it.
    await bo.fill("#content", "marker 4242")
    await bo.keyboard.press("Enter")
    for page in (ana, bo):
        await page.locator(".message", has_text="marker 4242").wait_for()
    assert SUMMARY not in await bo.inner_text("body")
    marker = await sync_to_async(Message.objects.get)(content="marker 4242")
    reader = f"user:{await sync_to_async(lambda: get_user_model().objects.get(username='ana').pk)()}"

    def read_past_marker():
        return ReadPosition.objects.filter(reader=reader, room="Lounge", seen__gte=marker.number).exists()

    async with asyncio.timeout(10):  # the page's read mark comes within READ_MARK_INTERVAL of the frame
        while not await sync_to_async(read_past_marker)():
            await asyncio.sleep(0.1)
    await ana.goto(f"{server.url}/")
    assert await link.get_attribute("data-unread") == "0"


def test_catch_up_spends_the_budget_of_model_calls(client, settings, django_user_model):
    from django.core.cache import cache

    cache.clear()  # budgets counted by earlier tests in this minute are not this test's
    settings.RATE_LIMIT_STATELESS_PER_BOT = 1
    _, secret = ApiKey.objects.issue("Ivy's script", user=django_user_model.objects.create_user("ivy", password=PASSWORD))
    Message.objects.create(room="Lounge", role="user", author="Bo", sender="guest:Bo", content="hi")
    headers = {"Authorization": f"Bearer {secret}"}
    assert client.post("/api/rooms/Lounge/catch-up?after=0", headers=headers).status_code == 200
    refused = client.post("/api/rooms/Lounge/catch-up?after=0", headers=headers)
    assert refused.status_code == 429 and refused.json()["error"].startswith("This bot is busy (1 direct requests a minute)")
    assert refused["Retry-After"]
