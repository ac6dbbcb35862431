"""Scroll back and search in a real Chromium: scrolling to the top loads older messages and keeps the
reader's place; a search result opens the room at its message."""

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model

from chat.models import Message
from tests.browser import own_presence
from tests.servers import daphne

pytestmark = pytest.mark.django_db(transaction=True)

ROOM = "Lounge"
# No model: the provider points at a closed port (nothing here asks a bot).
NO_MODEL = {"LLM_PROVIDER": "openai", "OPENAI_API_KEY": "sk-none", "OPENAI_BASE_URL": "http://127.0.0.1:9/v1"}


PASSWORD = "quiet-harbour-7731"


@sync_to_async
def history():
    """130 messages in the room, oldest first; the eleventh mentions a narwhal."""
    return [Message.objects.create(room=ROOM, role="user", author="Ann",
                                   content="I saw a narwhal today" if n == 10 else f"line {n}").pk for n in range(130)]


async def test_scrolling_to_the_top_loads_older_messages_and_keeps_the_place(browser):
    ids = await history()
    await sync_to_async(get_user_model().objects.create_user)("sam", password=PASSWORD, is_staff=True)
    with daphne({**NO_MODEL, **own_presence()}) as server:
        page = await browser.new_page(viewport={"width": 900, "height": 700})
        # As staff, who see Remove on every message.
        await page.goto(f"{server.url}/admin/login/?next=/rooms/{ROOM}/")
        await page.fill("#id_username", "sam")
        await page.fill("#id_password", PASSWORD)
        await page.click("input[type=submit]")
        await page.wait_for_url(f"{server.url}/rooms/{ROOM}/")
        anchor = f"#message_{ids[-50]}"  # the oldest the page shows at first
        await page.wait_for_selector(anchor)
        assert await page.locator(f"#message_{ids[-51]}").count() == 0
        # Scrolled to the top and measured in one turn of the page's script: no frame can land in between.
        where = await page.evaluate("() => { const list = document.getElementById('messages'); list.scrollTop = -list.scrollHeight;"
                                    f" return document.querySelector('{anchor}').getBoundingClientRect().top; }}")
        await page.wait_for_selector(f"#message_{ids[-51]}", state="attached")
        await page.wait_for_selector(f"#message_{ids[-100]}", state="attached")
        moved = await page.evaluate(f"() => document.querySelector('{anchor}').getBoundingClientRect().top")
        assert abs(moved - where) < 4, f"the place moved from {where} to {moved}"
        # Shown in order: older above newer, the frames laid out as the list is.
        tops = await page.evaluate(f"() => [{ids[-49]}, {ids[-50]}, {ids[-51]}, {ids[-52]}].map("
                                   "(pk) => document.getElementById(`message_${pk}`).getBoundingClientRect().top)")
        assert tops == sorted(tops, reverse=True), tops
        # The loaded messages work as the others: Remove on one, and the room's frame takes it away.
        await page.click(f"#message_{ids[-60]} button.remove")
        await page.wait_for_selector(f"#message_{ids[-60]}", state="detached")
        assert await page.locator(f"#message_{ids[-61]}").count() == 1


async def test_a_search_result_opens_the_room_at_the_message(browser):
    ids = await history()
    with daphne({**NO_MODEL, **own_presence()}) as server:
        page = await browser.new_page(viewport={"width": 900, "height": 700})
        await page.goto(f"{server.url}/")
        await page.click("a.search-link")
        await page.fill("#q", "narwhal")
        await page.click("form.search button[type=submit]")
        result = page.locator(f'.result[data-message-id="{ids[10]}"]')
        await result.wait_for()
        assert await result.locator("mark").inner_text() == "narwhal"
        await result.locator("a").click()
        marked = page.locator('#messages [aria-current="true"]')
        await marked.wait_for()
        assert await marked.get_attribute("id") == f"message_{ids[10]}"
        await page.wait_for_function(
            "() => { const m = document.querySelector('#messages [aria-current]').getBoundingClientRect();"
            " const list = document.getElementById('messages').getBoundingClientRect();"
            " return m.top >= list.top && m.bottom <= list.bottom; }")
