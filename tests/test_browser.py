"""The room page in a real browser: a reply streams into two open pages, Stop and Retry work."""

import asyncio
from pathlib import Path

import pytest
from asgiref.sync import sync_to_async

from chat.models import Message
from tests.browser import own_presence, present
from tests.servers import daphne
from tests.test_end_to_end import provider_env

pytestmark = pytest.mark.django_db(transaction=True)

ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"
TALE = " ".join(f"Yo-ho{i}!" for i in range(60))


# Notes the streaming reply's text length in the page at every change of the message list.
WATCH_GROWTH = """() => {
  window.growth = [];
  new MutationObserver(() => {
    const reply = document.querySelector('.message.assistant[data-status="streaming"] .content');
    if (reply) window.growth.push(reply.textContent.length);
  }).observe(document.getElementById("messages"), { childList: true, subtree: true, characterData: true });
}"""


async def test_a_reply_streams_into_two_browser_pages(upstream, browser):
    upstream.will(text=TALE, rate=40)
    with daphne(provider_env(upstream, **own_presence())) as server:
        pages = [await (await browser.new_context()).new_page() for _ in range(2)]
        for page in pages:
            await page.goto(f"{server.url}/rooms/PirateBot/")
        for page in pages:
            await present(page, 2)
            await page.evaluate(WATCH_GROWTH)
        await pages[0].fill("#content", "Tell me about your ship")
        await pages[0].keyboard.press("Enter")

        reply = ".message.assistant"
        for page in pages:
            await page.wait_for_selector(f'{reply}[data-status="complete"]', timeout=15000)
            # It grew in place, in several steps, never backwards, before it was complete.
            lengths = await page.evaluate("window.growth")
            assert lengths == sorted(lengths) and len(set(lengths)) >= 3, f"text did not grow: {lengths}"
            assert (await page.locator(f"{reply} .content").inner_text()).strip() == TALE
            assert await page.locator(".message.user .content").inner_text() == "Tell me about your ship"
        assert await pages[0].input_value("#content") == ""
        ARTIFACTS.mkdir(exist_ok=True)
        await pages[1].screenshot(path=ARTIFACTS / "room-complete.png")


async def test_stop_and_retry_from_the_page(upstream, browser):
    upstream.will(text=TALE * 5, rate=30)
    upstream.will(text="A fresh answer, matey.", rate=50)
    with daphne(provider_env(upstream, **own_presence())) as server:
        page = await (await browser.new_context()).new_page()
        await page.goto(f"{server.url}/rooms/PirateBot/")
        await present(page, 1)
        await page.fill("#content", "Tell me a long tale")
        await page.click("button[type=submit]")
        await page.wait_for_function(
            "document.querySelector('.message.assistant .content')?.textContent.length > 20", timeout=10000
        )
        await page.click(".message.assistant button.stop")
        await page.wait_for_selector('.message.assistant[data-status="cancelled"]', timeout=5000)
        (reply,) = await sync_to_async(list)(Message.objects.filter(role="assistant"))
        assert reply.status == "cancelled" and reply.content
        assert (await page.locator(".message.assistant .content").inner_text()).strip() == reply.content.strip()

        await page.click(".message.assistant button.retry")
        await page.wait_for_selector('.message.assistant[data-status="complete"]', timeout=10000)
        assert (await page.locator(".message.assistant .content").inner_text()).strip() == "A fresh answer, matey."


async def test_the_direct_page_streams_over_get_then_post_when_long(upstream, browser):
    upstream.will(text="Why, hello, sugar.", rate=50)
    upstream.will(text="A long answer for a long talk.", rate=50)
    with daphne(provider_env(upstream)) as server:
        page = await (await browser.new_context()).new_page()
        requests = []
        page.on("request", lambda r: requests.append((r.method, r.url.split("?")[0])) if "/chat?" in r.url or r.url.endswith("/chat") else None)
        await page.goto(f"{server.url}/direct/BelleBot/")
        await page.fill("#content", "Hello")
        await page.keyboard.press("Enter")
        await page.wait_for_selector('.message.assistant[data-status="complete"]', timeout=10000)
        assert await page.locator(".message.assistant .content").inner_text() == "Why, hello, sugar."

        await page.fill("#content", "Tell me everything. " * 200)  # too long for a query string
        await page.keyboard.press("Enter")
        await page.wait_for_function(
            "[...document.querySelectorAll('.message.assistant')].every(m => m.dataset.status === 'complete')"
            " && document.querySelectorAll('.message.assistant').length === 2", timeout=10000,
        )
        assert await page.locator(".message.assistant .content").first.inner_text() == "A long answer for a long talk."
        assert requests == [("GET", f"{server.url}/chat"), ("POST", f"{server.url}/chat")]
        # The second request carried the whole conversation kept in the tab.
        assert [m["content"][:5] for m in upstream.exchanges[1].messages[1:]] == ["Hello", "Why, ", "Tell "]


async def test_on_a_touch_screen_enter_adds_a_line_and_send_sends(upstream, browser):
    """An on-screen keyboard has no Shift+Enter: there Enter makes a new line, in a room and on the
    direct page, and the box's hint leaves the keys out."""
    upstream.will(text="Arr, two lines.", rate=50)
    upstream.will(text="Aye, two.", rate=50)
    with daphne(provider_env(upstream)) as server:
        context = await browser.new_context(viewport={"width": 390, "height": 844}, has_touch=True, is_mobile=True)
        for path, hint in (("/rooms/PirateBot/", "Message Pirate… (@ calls a bot)"), ("/direct/PirateBot/", "Message Pirate…")):
            page = await context.new_page()
            await page.goto(server.url + path)
            await page.wait_for_function(f"document.getElementById('content').placeholder === {hint!r}")
            await page.fill("#content", "Ahoy")
            await page.keyboard.press("Enter")
            await page.keyboard.type("matey")
            assert await page.input_value("#content") == "Ahoy\nmatey", path
            await page.tap("form:has(#content) button[type=submit]")
            await page.wait_for_selector('.message.assistant[data-status="complete"]', timeout=10000)
            # One message of two lines (a room's prompt puts its author's name first).
            assert upstream.exchanges[-1].messages[-1]["content"].endswith("Ahoy\nmatey"), path


async def test_stop_on_the_direct_page_ends_the_reply_and_its_upstream(upstream, browser):
    upstream.will(tokens=[f"word{i} " for i in range(2000)], rate=50)
    upstream.will(text="Short and sweet.", rate=50)
    with daphne(provider_env(upstream)) as server:
        page = await (await browser.new_context()).new_page()
        await page.goto(f"{server.url}/direct/BelleBot/")
        await page.fill("#content", "Talk for a long while")
        await page.keyboard.press("Enter")
        reply = page.locator(".message.assistant")
        await page.wait_for_function(
            "document.querySelector('.message.assistant .content').textContent.length > 20", timeout=10000
        )
        assert await page.locator("direct-chat button[type=submit]").is_disabled()  # one reply at a time
        await reply.locator("button.stop").click()
        stopped_at = asyncio.get_running_loop().time()
        assert await reply.get_attribute("data-status") == "cancelled"
        assert await reply.locator("button.stop").count() == 0
        exchange = upstream.exchanges[0]
        while exchange.closed_at is None and asyncio.get_running_loop().time() - stopped_at < 2:
            await asyncio.sleep(0.02)
        assert exchange.closed_at is not None and len(exchange.sent) < 2000

        # The stopped text stays in the conversation, and the next turn streams as usual.
        await page.fill("#content", "Now briefly")
        await page.keyboard.press("Enter")
        await page.wait_for_selector('.message.assistant[data-status="complete"]', timeout=10000)
        assert await reply.first.locator(".content").inner_text() == "Short and sweet."
        sent = upstream.exchanges[1].messages
        assert [m["role"] for m in sent[1:]] == ["user", "assistant", "user"]
        assert sent[2]["content"].startswith("word0 word1")


async def test_the_direct_page_says_why_a_turn_was_refused_and_starts_over_mid_reply(upstream, browser):
    upstream.will(text="First answer.", rate=50)
    upstream.will(tokens=[f"word{i} " for i in range(2000)], rate=50)
    with daphne(provider_env(upstream, SSE_MAX_MESSAGES="2")) as server:
        page = await (await browser.new_context()).new_page()
        await page.goto(f"{server.url}/direct/PirateBot/")
        await page.fill("#content", "Hello")
        await page.keyboard.press("Enter")
        await page.wait_for_selector('.message.assistant[data-status="complete"]', timeout=10000)

        # A third message is one too many: refused before any token is paid for.
        long_question = "Tell me everything. " * 200  # long enough to go as a POST
        await page.fill("#content", long_question)
        await page.keyboard.press("Enter")
        await page.wait_for_function("document.querySelector('direct-chat [data-role=error]').textContent.length > 0")
        assert "Too many messages" in await page.locator("direct-chat [data-role=error]").inner_text()
        assert await page.input_value("#content") == long_question.strip()
        assert await page.locator("direct-chat .message").count() == 2  # the refused turn left no bubbles
        assert len(upstream.exchanges) == 1

        # Start over while a reply streams: the page is ready for a new conversation at once.
        await page.click("[data-role=clear]")
        await page.fill("#content", "Talk a while")
        await page.click("direct-chat button[type=submit]")
        await page.wait_for_function(
            "document.querySelector('.message.assistant .content')?.textContent.length > 20", timeout=10000
        )
        await page.click("[data-role=clear]")
        assert await page.locator("direct-chat .message").count() == 0
        assert not await page.locator("direct-chat button[type=submit]").is_disabled()
        assert await page.evaluate("sessionStorage.getItem('parley-direct-PirateBot')") == "[]"


async def test_a_page_that_loses_growth_frames_repairs_itself(upstream, browser):
    upstream.will(text=TALE * 3, rate=60)
    with daphne(provider_env(upstream, **own_presence())) as server:
        page = await (await browser.new_context()).new_page()
        dropped, repairs = [], []

        def lossy(socket):
            upstream_side = socket.connect_to_server()

            def forward(frame):
                # The channel layer may drop messages under load: lose every third growth frame.
                if 'action="grow"' in frame:
                    dropped.append(frame)
                    if len(dropped) % 3 == 0:
                        return
                socket.send(frame)

            upstream_side.on_message(forward)

        await page.route_web_socket("**/ws/rooms/**", lossy)
        page.on("request", lambda r: repairs.append(r.url) if "/messages/" in r.url and r.method == "GET" else None)
        await page.goto(f"{server.url}/rooms/PirateBot/")
        await present(page, 1)
        await page.fill("#content", "Tell me a tale")
        await page.keyboard.press("Enter")
        await page.wait_for_selector('.message.assistant[data-status="streaming"]', timeout=10000)
        # Mid-stream, the page's text is always the start of the row's text: gaps get repaired, not kept.
        # Looked at after each of five growths of the text, as the page shows it.
        for _ in range(5):
            shown = await page.locator(".message.assistant .content").inner_text()
            await page.wait_for_function(
                "(shown) => { const c = document.querySelector('.message.assistant .content');"
                " return c.closest('.message').dataset.status !== 'streaming' || c.innerText.length > shown; }",
                arg=len(shown), timeout=10000,
            )
            shown = await page.locator(".message.assistant .content").inner_text()
            (row,) = await sync_to_async(list)(Message.objects.filter(role="assistant"))
            assert (TALE * 3).startswith(shown.rstrip()) and len(shown.rstrip()) <= len(row.content) + 200
        await page.wait_for_selector('.message.assistant[data-status="complete"]', timeout=20000)
        (row,) = await sync_to_async(list)(Message.objects.filter(role="assistant"))
        assert (await page.locator(".message.assistant .content").inner_text()).strip() == row.content.strip()
        assert len(dropped) >= 6 and repairs, "no frame was lost, or no repair was asked for"


# Notes when the streaming reply's text changed in the page, in milliseconds.
WATCH_CHANGES = """() => {
  window.changes = [];
  let shown = -1;
  new MutationObserver(() => {
    const reply = document.querySelector('.message.assistant[data-status="streaming"] .content');
    if (reply && reply.textContent.length !== shown) {
      shown = reply.textContent.length;
      window.changes.push(performance.now());
    }
  }).observe(document.getElementById("messages"), { childList: true, subtree: true, characterData: true });
}"""


async def test_a_reply_at_fifty_tokens_a_second_changes_the_page_at_least_five_times_a_second(upstream, browser):
    upstream.will(tokens=[f" word{i}" for i in range(150)], rate=50)  # 3 seconds of streaming
    # The default flush interval, as a user runs Parley (the other tests shorten it).
    with daphne(provider_env(upstream, REPLY_FLUSH_INTERVAL=None, **own_presence())) as server:
        page = await (await browser.new_context()).new_page()
        await page.goto(f"{server.url}/rooms/PirateBot/")
        await present(page, 1)
        await page.evaluate(WATCH_CHANGES)
        await page.fill("#content", "Talk to me")
        await page.keyboard.press("Enter")
        await page.wait_for_selector('.message.assistant[data-status="complete"]', timeout=20000)
        changes = await page.evaluate("window.changes")
    seconds = (changes[-1] - changes[0]) / 1000
    per_second = (len(changes) - 1) / seconds
    print(f"{len(changes)} changes of the text in {seconds:.2f} s: {per_second:.1f} a second")
    assert seconds > 2 and per_second >= 5, f"{len(changes)} changes in {seconds:.2f} s"
