"""The room page as people use it, in a real browser: reloads, no JavaScript, presence, code,
and screenshots of the lobby and rooms at desktop and phone widths (saved under artifacts/)."""

import asyncio
import time

import pytest
from asgiref.sync import sync_to_async

from chat.models import Message
from tests.browser import own_presence, present
from tests.servers import daphne
from tests.test_browser import ARTIFACTS
from tests.test_end_to_end import provider_env

pytestmark = pytest.mark.django_db(transaction=True)

TALE = " ".join(f"Yo-ho{i}!" for i in range(150))
SIZES = {"desktop": {"width": 1280, "height": 800}, "phone": {"width": 390, "height": 844}}


async def test_a_page_reloaded_mid_reply_shows_the_partial_text_and_goes_on(upstream, browser):
    upstream.will(text=TALE, rate=40)
    with daphne(provider_env(upstream)) as server:
        page = await (await browser.new_context()).new_page()
        await page.goto(f"{server.url}/rooms/PirateBot/")
        await page.fill("#content", "A long tale, please")
        await page.keyboard.press("Enter")
        await page.wait_for_function(
            "document.querySelector('.message.assistant .content')?.textContent.length > 60", timeout=10000
        )
        await page.reload()
        shown = await page.locator(".message.assistant .content").inner_text()
        assert len(shown) > 60 and TALE.startswith(shown.strip())
        assert await page.locator(".message.assistant").get_attribute("data-status") == "streaming"
        await page.wait_for_selector('.message.assistant[data-status="complete"]', timeout=20000)
        assert (await page.locator(".message.assistant .content").inner_text()).strip() == TALE


async def test_without_javascript_the_form_posts_and_a_reload_shows_the_reply(upstream, browser):
    upstream.will(text="Plain old HTML, matey.", rate=100)
    with daphne(provider_env(upstream)) as server:
        page = await (await browser.new_context(java_script_enabled=False)).new_page()
        await page.goto(f"{server.url}/rooms/PirateBot/")
        await page.fill("#content", "Do ye work without scripts?")
        async with page.expect_navigation():
            await page.click("button[type=submit]")
        assert page.url == f"{server.url}/rooms/PirateBot/"
        assert "Do ye work without scripts?" in await page.locator("#messages").inner_text()
        # Without a socket nothing changes until the person reloads: reload until the reply is done.
        reply = page.locator(".message.assistant")
        deadline = time.monotonic() + 10
        while await reply.get_attribute("data-status") != "complete":
            assert time.monotonic() < deadline, f"the reply is still {await reply.get_attribute('data-status')}"
            await asyncio.sleep(0.2)
            await page.reload()
        assert await reply.locator(".content").inner_text() == "Plain old HTML, matey."


async def test_presence_counts_pages_and_code_blocks_get_a_copy_button(upstream, browser):
    upstream.will(text="Here be code:\n\n```python\nprint('arr')\n```\n", rate=100)
    with daphne(provider_env(upstream, **own_presence())) as server:
        context = await browser.new_context()
        await context.grant_permissions(["clipboard-read", "clipboard-write"])
        first = await context.new_page()
        await first.goto(f"{server.url}/rooms/PirateBot/")
        await present(first, 1)
        # Another person (a second tab of the same one would not count twice).
        second = await (await browser.new_context()).new_page()
        await second.goto(f"{server.url}/rooms/PirateBot/")
        await present(first, 2)
        await second.close()
        await present(first, 1)

        await first.fill("#content", "Show me code")
        await first.keyboard.press("Enter")
        await first.wait_for_selector('.message.assistant[data-status="complete"] .highlight .copy', timeout=10000)
        await first.click(".highlight .copy")
        assert await first.evaluate("navigator.clipboard.readText()") == "print('arr')\n"


async def screenshot(browser, url, name, prepare=None):
    for size_name, size in SIZES.items():
        page = await (await browser.new_context(viewport=size)).new_page()
        await page.goto(url)
        if prepare:
            await prepare(page)
        await page.screenshot(path=ARTIFACTS / f"{name}-{size_name}.png")
        await page.close()


async def test_screenshots_of_the_lobby_and_rooms(upstream, browser):
    ARTIFACTS.mkdir(exist_ok=True)
    upstream.will(text="Fair winds! " + TALE, rate=30)
    upstream.will(tokens=["The treasure lies ", "beneath the "], fault="drop", fault_after=2)
    with daphne(provider_env(upstream)) as server:
        await screenshot(browser, f"{server.url}/", "lobby")

        page = await (await browser.new_context()).new_page()
        await page.goto(f"{server.url}/rooms/PirateBot/")
        await page.fill("#content", "Tell me about your ship")
        await page.keyboard.press("Enter")
        await page.wait_for_function("document.querySelector('.message.assistant .content')?.textContent.length > 80")
        await screenshot(browser, f"{server.url}/rooms/PirateBot/", "room-mid-reply")
        await page.click(".message.assistant button.stop")
        await page.wait_for_selector('.message.assistant[data-status="cancelled"]')

        await page.goto(f"{server.url}/rooms/BelleBot/")
        await page.fill("#content", "Where is the treasure?")
        await page.keyboard.press("Enter")
        await page.wait_for_selector('.message.assistant[data-status="failed"]', timeout=10000)
        await screenshot(browser, f"{server.url}/rooms/BelleBot/", "room-failed")
        failed = await sync_to_async(Message.objects.get)(room="BelleBot", role="assistant")
        assert failed.content == "The treasure lies beneath the " and failed.error
    for name in ["lobby", "room-mid-reply", "room-failed"]:
        for size_name in SIZES:
            assert (ARTIFACTS / f"{name}-{size_name}.png").stat().st_size > 5000


async def test_the_view_follows_the_stream_a_reader_can_scroll_up_and_jump_back_and_send_meanwhile(upstream, browser):
    story = "\n\n".join(f"Chapter {i}: the crew sailed on." for i in range(80))
    upstream.will(text=story, rate=80)
    upstream.will(text="Second answer.", rate=100)
    with daphne(provider_env(upstream)) as server:
        page = await (await browser.new_context(viewport=SIZES["phone"])).new_page()
        await page.goto(f"{server.url}/rooms/PirateBot/")
        await page.fill("#content", "Tell me the whole story")
        await page.keyboard.press("Enter")
        scroll = "document.getElementById('messages').scrollTop"
        await page.wait_for_function("document.getElementById('messages').scrollHeight > 2 * document.getElementById('messages').clientHeight", timeout=15000)
        assert abs(await page.evaluate(scroll)) < 2  # following: the newest end stays in view

        await page.evaluate(f"{scroll} = -400")
        await page.wait_for_selector("#jump", state="visible")
        grown = "document.querySelector('.message.assistant .content').textContent.length"
        await page.wait_for_function(f"{grown} > {await page.evaluate(grown)} + 200", timeout=15000)
        # The reader stays where they are while the reply grows below them.
        assert await page.evaluate(scroll) < -400
        await page.click("#jump")
        await page.wait_for_function(f"Math.abs({scroll}) < 2")
        await page.wait_for_selector("#jump", state="hidden")

        # Shift+Enter adds a line; Enter sends, even while the first reply is still streaming.
        await page.fill("#content", "And then?")
        await page.keyboard.press("Shift+Enter")
        await page.keyboard.type("Tell me more.")
        assert await page.input_value("#content") == "And then?\nTell me more."
        await page.keyboard.press("Enter")
        # The question and its reply come as two frames, drawn in turn: both, before the reply is read.
        await page.wait_for_function("document.querySelectorAll('.message.user').length === 2"
                                     " && document.querySelectorAll('.message.assistant').length === 2")
        assert await page.locator(".message.assistant").first.get_attribute("data-status") == "pending"
        await page.wait_for_function(
            "[...document.querySelectorAll('.message.assistant')].every(m => m.dataset.status === 'complete')", timeout=30000
        )
        assert await page.locator(".message.assistant .content").first.inner_text() == "Second answer."
