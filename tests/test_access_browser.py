"""Members rooms in a real browser: sign up, make a members room, add a member who finds it in the
lobby and posts; an outsider's lobby lacks it and its address shows the not-found page."""

import asyncio

import pytest

from tests.browser import own_presence, signed_up
from tests.servers import daphne
from tests.test_end_to_end import provider_env

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "quiet-harbour-7731"


async def sign_up(browser, server, username):
    return await signed_up(await (await browser.new_context()).new_page(), server.url, username, PASSWORD)


async def test_a_members_room_from_sign_up_to_a_members_post(upstream, browser):
    # As deployed (DEBUG off): an outsider gets the product's not-found page, not Django's debug page.
    production = {"DEBUG": "false", "SECRET_KEY": "a-test-only-secret-for-this-server", "ALLOWED_HOSTS": "127.0.0.1",
                  "SECURE_SSL_REDIRECT": "false", "SECURE_COOKIES": "false", "SECURE_HSTS_SECONDS": "0"}
    with daphne(provider_env(upstream, **own_presence(), **production)) as server:
        ada, bea, otto = [await sign_up(browser, server, name) for name in ("ada", "bea", "otto")]

        await ada.click("text=New room")
        await ada.fill("#id_key", "den")
        await ada.fill("#id_title", "The Den")
        await ada.fill("#id_topic", "Where plans are made")
        await ada.select_option("#id_visibility", "members")
        await ada.select_option("#id_bot", "")
        await ada.click("form.account button[type=submit]")
        await ada.wait_for_url(f"{server.url}/rooms/den/")

        await ada.click("text=Members and settings")  # the room's moderator finds its members page from the room
        await ada.wait_for_url(f"{server.url}/rooms/den/members")
        await ada.fill("#member-username", "bea")
        await ada.click("form.account button:text-is('Add')")
        await ada.wait_for_selector(".members li:has-text('bea')")
        await ada.goto(f"{server.url}/rooms/den/")

        await bea.goto(f"{server.url}/")
        await bea.wait_for_selector("text=Where plans are made")
        await bea.click("a[href='/rooms/den/']")
        await bea.wait_for_url(f"{server.url}/rooms/den/")
        await bea.fill("#content", "Hello, den")
        await bea.keyboard.press("Enter")
        for page in (ada, bea):
            await page.wait_for_selector('.message.user[data-author="bea"]:has-text("Hello, den")', timeout=15000)
        # A new title and topic, set on the members page, reach the room's open pages: the heading,
        # the switcher's link, the window's title and the line under the heading.
        assert await bea.inner_text("#room_topic") == "Where plans are made"
        assert await bea.locator("a[href='/rooms/den/members']").count() == 0  # a member does not run it
        members = await ada.context.new_page()
        await members.goto(f"{server.url}/rooms/den/members")
        await members.fill("#id_title", "The Burrow")
        await members.fill("#id_topic", "Plans, made")
        await members.click("form.account button:text-is('Save the room')")
        await members.wait_for_url(f"{server.url}/rooms/den/members")
        for page in (ada, bea):
            await page.wait_for_selector("#room_topic:text-is('Plans, made')", timeout=15000)
            assert await page.inner_text("#room_name") == "The Burrow"
            assert await page.inner_text("#nav_room") == "The Burrow"
            assert await page.title() == "The Burrow · Parley"
        # A page that was away when the title changed (its socket closed) shows the new one when it is back.
        await bea.evaluate("window.parked = document.querySelector('room-stream'); window.parked.remove()")
        await members.fill("#id_title", "The Sett")
        await members.click("form.account button:text-is('Save the room')")
        await ada.wait_for_selector("#room_name:text-is('The Sett')", timeout=15000)
        assert await bea.inner_text("#room_name") == "The Burrow"
        await bea.evaluate("document.querySelector('section.room').append(window.parked)")
        await bea.wait_for_selector("#room_name:text-is('The Sett')", timeout=15000)
        assert await bea.title() == "The Sett · Parley"

        await otto.goto(f"{server.url}/")
        assert await otto.locator("a[href='/rooms/den/']").count() == 0
        assert "Where plans are made" not in await otto.content()
        response = await otto.goto(f"{server.url}/rooms/den/")
        assert response.status == 404
        text = await otto.inner_text("body")
        assert "There is no room called 'den'" in text and "Hello, den" not in text

        # Removed while her page is open: it closes and shows what an outsider sees, and knocks no more.
        await members.get_by_role("button", name="Remove bea", exact=True).click()
        await members.wait_for_selector(".members li:has-text('ada')")
        await bea.wait_for_selector("text=There is no room called 'den'", timeout=15000)
        assert "Hello, den" not in await bea.inner_text("body")
        assert await bea.locator("room-stream").count() == 0

        # A member leaves of their own accord, after saying yes to the question.
        await members.fill("#member-username", "otto")
        await members.click("form.account button:text-is('Add')")
        await members.wait_for_selector(".members li:has-text('otto')")
        await otto.goto(f"{server.url}/rooms/den/")
        questions = []
        otto.on("dialog", lambda dialog: (questions.append(dialog.message), asyncio.ensure_future(dialog.accept())))
        await otto.click("button:text-is('Leave the room')")
        await otto.wait_for_url(f"{server.url}/")
        assert questions == ["Leave The Sett? A moderator can add you again."]
        assert await otto.locator("a[href='/rooms/den/']").count() == 0
