"""Dropped connections: pages and event followers behind a proxy that cuts every connection every
1 to 3 s (mid-frame too) end with every reply exactly, while replies stream in three rooms."""

import asyncio
import contextlib
import time

import pytest
from asgiref.sync import sync_to_async
from django.conf import settings

from chat.models import ApiKey, Message
from tests.drops import DroppingProxy
from tests.resuming import Follower, Page
from tests.servers import Browser, Daphne
from tests.test_end_to_end import provider_env

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.services]

ROOMS = ["ChatBot", "BelleBot", "PirateBot"]
PAGES_PER_ROOM = 10
BROWSER_ROOMS = ["BelleBot", "PirateBot"]
REPLIES_PER_ROOM = 2
WORDS, RATE = 160, 50  # each reply: 160 words at 50 tokens a second, about 3 s



def script(n):
    """Reply n's text: plain words, so the page shows exactly the row's content (no Markdown to render)."""
    return " ".join(f"drop{n}w{i}" for i in range(WORDS))


@sync_to_async
def replies():
    return {m.pk: m for m in Message.objects.filter(role="assistant")}


@sync_to_async
def followers_start():
    """One key a room (a key's streams are capped), and each room's last event number before anything."""
    return [(room, ApiKey.objects.issue(f"Follower {room}")[1], Message.objects.last_event(room)) for room in ROOMS]


async def until(predicate, timeout):
    deadline = time.monotonic() + timeout
    while not (value := await predicate()):
        assert time.monotonic() < deadline, f"timed out waiting for {predicate.__name__}"
        await asyncio.sleep(0.2)
    return value


def shown(page, pk):
    """A reply as a Python page shows it: [status, text]."""
    status, _, text, _ = page.shown.get(pk, [None, None, "", None])
    return [status, text.strip()]


async def browser_page(browser, base, room, attempts=5):
    """A Chromium page of the room, loaded again if a cut broke its load (as a person would)."""
    page = await (await browser.new_context()).new_page()
    for _ in range(attempts):
        with contextlib.suppress(Exception):
            await page.goto(f"{base}/rooms/{room}/")
            await page.wait_for_function("() => customElements.get('room-stream') !== undefined", timeout=5000)
            return page
    raise AssertionError(f"Chromium never loaded {room} through the drops")


async def browser_shows(page, pk):
    return await page.evaluate(
        "(pk) => { const m = document.getElementById(`message_${pk}`);"
        " return m && [m.dataset.status, document.getElementById(`message_${pk}_content`).textContent.trim()]; }", pk)


async def test_pages_and_followers_end_with_every_reply_exactly_through_drops(upstream, browser):
    server = Daphne(provider_env(upstream, REDIS_URL=settings.REDIS_URL))
    proxy = DroppingProxy(server.port, seed=24).start()
    texts = [script(n) for n in range(len(ROOMS) * REPLIES_PER_ROOM)]
    for text in texts:
        upstream.will(text=text, rate=RATE)
    pages = [Page(proxy.url, room, snapshots=True) for room in ROOMS for _ in range(PAGES_PER_ROOM)]
    followers = [Follower(proxy.url, room, secret, last) for room, secret, last in await followers_start()]
    tasks = []
    try:
        for page in pages:
            await page.load()
        chromium = {room: await browser_page(browser, proxy.url, room) for room in BROWSER_ROOMS}
        tasks = [asyncio.create_task(client.run()) for client in (*pages, *followers)]
        for room in ROOMS:  # posted straight to the server: the drops are the readers'
            for n in range(REPLIES_PER_ROOM):
                status, _, _ = await sync_to_async(Browser(server.url).post_form)(
                    f"/rooms/{room}/", f"/rooms/{room}/messages", {"content": f"Tell tale {n}"})
                assert status == 303

        async def all_replies_finished():
            rows = await replies()
            return len(rows) == len(texts) and all(m.status == "complete" for m in rows.values()) and rows

        rows = await until(all_replies_finished, timeout=60)
        expected = {room: {pk: ["complete", m.content] for pk, m in rows.items() if m.room == room} for room in ROOMS}

        async def everyone_in_step():
            browsers = {room: [await browser_shows(chromium[room], pk) for pk in expected[room]] for room in BROWSER_ROOMS}
            return (all({pk: shown(page, pk) for pk in expected[page.room]} == expected[page.room] for page in pages)
                    and all({pk: f.messages.get(pk) for pk in expected[f.room]} == expected[f.room] for f in followers)
                    and all(browsers[room] == list(expected[room].values()) for room in BROWSER_ROOMS))

        await until(everyone_in_step, timeout=30)
    finally:
        for client in (*pages, *followers):
            client.closed = True
        for task in tasks:
            task.cancel()
        for page in pages:
            await page.close()
        proxy.stop()
        server.stop()

    assert sorted(m.content for m in rows.values()) == sorted(texts)
    # No page ever showed a reply's text with a hole in it (a growth frame past the text is repaired).
    for page in pages:
        assert all(rows[pk].content.startswith(text) for pk, text in page.snapshots if pk in rows)
    # No event id twice or out of order, no delta onto other text than the follower had.
    assert [f.faults for f in followers] == [[]] * len(followers)
    # The drops were real: every page and follower lost its connection, some in the middle of a frame.
    assert proxy.mid_frame > 0 and proxy.cuts > 2 * len(pages)
    assert all(page.reconnects >= 1 for page in pages) and all(f.reconnects >= 2 for f in followers)
