"""A room of people's own, end to end: a signed-in person makes it from the lobby with a bot of its
own (a row reaching the scripted upstream with a key from the server's environment), a post streams
its reply into two pages, and the admin shows the room and its members."""

import asyncio
import html
import os
import re

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model

from bots.models import Bot, Room
from tests.browser import own_presence
from tests.servers import Browser, daphne
from tests.test_access_browser import sign_up
from tests.test_end_to_end import provider_env

pytestmark = pytest.mark.django_db(transaction=True)

PERSONA = "You are HelpBot, the help desk of a small team. Answer in one short paragraph."
# Set for the Daphne process alone: this test's own process never has it.
KEY_VARIABLE = "PARLEY_HELPBOT_TEST_KEY"
SECRET = "sk-helpbot-from-the-environment"
REPLY = "Open Settings, choose Password, and type the new one twice. Then sign in again."


def helpbot(upstream):
    """A bot made as a row, on its own model, reaching the upstream with its own key variable."""
    bot = Bot(key="HelpBot", name="Help Desk", persona=PERSONA, provider="openai", model="helpdesk-13b",
              base_url=upstream.base_url, api_key_env=KEY_VARIABLE)
    bot.full_clean()
    bot.save()
    return bot


def admin_as_staff(server):
    """A cookie-keeping client signed in to the admin over HTTP as a staff superuser."""
    get_user_model().objects.create_superuser("ops", password="pw-ops-123")
    staff = Browser(server.url)
    status, headers, _ = staff.post_form("/admin/login/", "/admin/login/?next=/admin/",
                                         {"username": "ops", "password": "pw-ops-123", "next": "/admin/"})
    assert (status, headers["Location"]) == (302, "/admin/")
    return staff


async def reply_streams_into(page):
    """Wait until HelpBot's reply in page is seen streaming with part of its text, then complete with all of it."""
    reply = '.message.assistant[data-bot="HelpBot"]'
    await page.wait_for_selector(f'{reply}[data-status="streaming"]', timeout=15000)
    await page.wait_for_selector(f'{reply}[data-status="complete"]', timeout=15000)
    return await page.inner_text(f"{reply} .content")


async def test_a_room_made_from_the_lobby_with_its_own_bot_streams_into_two_pages_and_shows_in_the_admin(upstream, browser):
    assert KEY_VARIABLE not in os.environ  # the key can only come from the server's environment
    await sync_to_async(helpbot)(upstream)
    with daphne(provider_env(upstream, **{KEY_VARIABLE: SECRET}, **own_presence())) as server:
        ada, bea = [await sign_up(browser, server, name) for name in ("ada", "bea")]

        await ada.click("text=New room")
        await ada.fill("#id_key", "helpdesk")
        await ada.fill("#id_title", "Help desk")
        await ada.fill("#id_topic", "Questions for HelpBot")
        await ada.select_option("#id_visibility", "members")
        await ada.select_option("#id_bot", "HelpBot")
        await ada.click("form.account button[type=submit]")
        await ada.wait_for_url(f"{server.url}/rooms/helpdesk/")

        await ada.goto(f"{server.url}/rooms/helpdesk/members")
        await ada.fill("#member-username", "bea")
        await ada.click("form.account button:text-is('Add')")
        await ada.wait_for_selector(".members li:has-text('bea')")

        for page in (ada, bea):
            await page.goto(f"{server.url}/rooms/helpdesk/")
        for page in (ada, bea):
            # Both pages' sockets have joined the room once each page names both people.
            await page.wait_for_function("document.getElementById('presence').textContent === 'ada and bea here'",
                                         timeout=15000)

        # Slow enough that both pages see it grow before it finishes.
        upstream.will(text=REPLY, rate=8)
        await bea.fill("#content", "How do I change my password?")
        await bea.keyboard.press("Enter")
        texts = await asyncio.gather(reply_streams_into(ada), reply_streams_into(bea))
        assert [text.strip() for text in texts] == [REPLY, REPLY]

        # The upstream was asked by the room's own bot, with its model, persona and the key from its variable.
        (exchange,) = upstream.exchanges
        assert exchange.authorization == f"Bearer {SECRET}"
        assert exchange.body["model"] == "helpdesk-13b"
        assert exchange.messages[0] == {"role": "system", "content": PERSONA}
        assert exchange.messages[-1]["content"].endswith("How do I change my password?")

        # The admin, over HTTP as staff: the room in the list, and on its page its bot and both members by role.
        staff = await sync_to_async(admin_as_staff)(server)
        status, _, listing = await sync_to_async(staff.get)("/admin/bots/room/")
        assert status == 200
        assert re.search(r'<a href="/admin/bots/room/\d+/change/">helpdesk</a>', listing)
        room = await Room.objects.aget(key="helpdesk")
        status, _, change = await sync_to_async(staff.get)(f"/admin/bots/room/{room.pk}/change/")
        assert status == 200
        text = html.unescape(change)
        assert 'value="Help desk"' in text and 'value="members" selected' in text
        bot = await Bot.objects.aget(key="HelpBot")
        assert re.search(rf'<option value="{bot.pk}" selected>HelpBot</option>', text)
        # Each saved membership row of the inline: its user (the raw id's label) and the role selected.
        memberships = re.findall(
            r'name="memberships-(\d+)-user" value="\d+".*?<a href="/admin/auth/user/\d+/change/">(\w+)</a>'
            r'.*?name="memberships-\1-role".*?<option value="(\w+)" selected', text, re.S)
        assert sorted((user, role) for _, user, role in memberships) == [("ada", "moderator"), ("bea", "member")]
        assert re.search(r'name="created_by" value="\d+".*?<a href="/admin/auth/user/\d+/change/">ada</a>', text, re.S)
