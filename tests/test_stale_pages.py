"""A page that is out of date (signed in from another tab, so its CSRF token is old): the app's own
page says so, in the reader's language, and the message being written in the room is kept."""

import pytest
from django.test import Client
from playwright.async_api import expect

from chat.models import Message
from tests.browser import own_presence, signed_up
from tests.servers import daphne
from tests.test_accessibility import scan
from tests.test_end_to_end import provider_env

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize("language, heading, link", [
    ("en", "This page was out of date", "Reload the page and try again"),
    ("es", "Esta página estaba desactualizada", "Recarga la página y vuelve a intentarlo"),
])
def test_a_post_with_an_old_token_gets_the_app_s_page_and_its_way_back(language, heading, link):
    browser = Client(enforce_csrf_checks=True, HTTP_ACCEPT_LANGUAGE=language)
    browser.get("/rooms/Lounge/")  # a CSRF cookie, as a page gives
    answer = browser.post("/rooms/Lounge/messages", {"content": "lost?", "csrfmiddlewaretoken": "x" * 64},
                          HTTP_REFERER="http://testserver/rooms/Lounge/?around=5")
    assert answer.status_code == 403
    page = answer.content.decode()
    assert heading in page and link in page
    assert 'href="/rooms/Lounge/?around=5"' in page  # back to the page the form was on
    assert "CSRF" not in page and not Message.objects.filter(content="lost?").exists()
    # A Referer from elsewhere is not followed: the way back is the lobby.
    answer = browser.post("/rooms/Lounge/messages", {"content": "lost?"}, HTTP_REFERER="https://evil.example/rooms/")
    assert answer.status_code == 403 and '<a href="/">' in answer.content.decode()
    # Nor is a path of this site that a browser would read as another host's ("//evil.example/").
    answer = browser.post("/rooms/Lounge/messages", {"content": "lost?"}, HTTP_REFERER="http://testserver//evil.example/x")
    assert answer.status_code == 403 and 'href="/evil.example/x"' in answer.content.decode()


async def test_a_message_written_in_a_tab_that_went_out_of_date_is_kept_and_sent_after_reload(upstream, browser):
    with daphne(provider_env(upstream, **own_presence())) as server:
        context = await browser.new_context()
        room = await context.new_page()
        await room.goto(f"{server.url}/rooms/Lounge/")
        await room.fill("#content", "Written as a guest,\nsent once signed in")
        # Another tab of the same browser signs up (so in): the room's page still holds the old token.
        await signed_up(await context.new_page(), server.url, "tabby", "a-long-pass-phrase")
        await room.click("#new_message button[type=submit]")
        await room.wait_for_selector("h1:text-is('This page was out of date')")
        assert await Message.objects.filter(room="Lounge").acount() == 0
        found = []
        await scan(room, "out-of-date page", found)  # axe-core, both widths and schemes
        assert found == [], "\n".join(found)

        await room.click("main a:text-is('Reload the page and try again')")
        await room.wait_for_url(f"{server.url}/rooms/Lounge/")
        await expect(room.locator("#content")).to_have_value("Written as a guest,\nsent once signed in")
        assert await room.inner_text("#my_name") == "tabby"
        await room.click("#new_message button[type=submit]")
        await room.wait_for_selector(".message.user:has-text('sent once signed in')")
        assert await room.input_value("#content") == ""
        sent = await Message.objects.aget(room="Lounge")
        assert (sent.content, sent.author) == ("Written as a guest,\nsent once signed in", "tabby")

        # Sent, the draft is gone: a reload shows an empty box. Unsent, a reload keeps it.
        await room.reload()
        await room.wait_for_selector("#content")
        assert await room.input_value("#content") == ""
        await room.fill("#content", "half a thought")
        await room.reload()
        await expect(room.locator("#content")).to_have_value("half a thought")
