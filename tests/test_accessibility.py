"""The room for a person who listens: what its live regions announce over a streaming reply."""

import re
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from tests.accessibility import RECORD_ANNOUNCEMENTS, announcements, axe_violations
from tests.browser import own_presence, present, signed_up
from tests.servers import daphne
from tests.test_end_to_end import provider_env

pytestmark = pytest.mark.django_db(transaction=True)

# 400 tokens of the scripted upstream (ten words a sentence), 1,900 characters: longer than the 300 read out.
REPLY = " ".join(f"Sentence {i} of the long tale has a few more words." for i in range(40))
WHOLE_SENTENCES = re.compile(r"(\S[^.!?]*[.!?])(\s+\S[^.!?]*[.!?])*\s*")


async def reply_in_room(page, ask, replies=1):
    """Send ask from page's composer and wait until the room shows `replies` finished replies; return
    what was announced meanwhile."""
    await page.evaluate("window.__announced.length = 0")
    await page.fill("#content", ask)
    await page.keyboard.press("Enter")
    await page.wait_for_function(
        f"document.querySelectorAll('.message.assistant[data-status=complete]').length === {replies}", timeout=20000
    )
    # The finished reply is announced as its frame renders: give the page's queue a turn to empty.
    await page.wait_for_function("() => new Promise((done) => requestAnimationFrame(() => done(true)))")
    return await announcements(page)


async def test_a_reply_is_announced_when_it_starts_and_once_finished_or_sentence_by_sentence(upstream, browser):
    upstream.will(text=REPLY, rate=200)
    upstream.will(text=REPLY, rate=200)
    upstream.will(text="A private answer. Nothing is kept.", rate=100)
    with daphne(provider_env(upstream, **own_presence())) as server:
        context = await browser.new_context()
        await context.add_init_script(RECORD_ANNOUNCEMENTS)
        page = await context.new_page()
        await page.goto(f"{server.url}/rooms/PirateBot/")
        await present(page, 1)

        heard = await reply_in_room(page, "Tell me the long tale")
        print(f"default: {len(heard)} announcements")
        texts = [entry["text"] for entry in heard]
        assert len(texts) <= 3, texts
        assert texts[0].strip() == "Pirate is replying"
        assert texts[-1].strip() == f"Pirate: {REPLY[:300]}… reply continues in the conversation"

        # Read replies as they stream: a setting of this browser, kept across pages.
        await page.check("#read_stream")
        await page.reload()
        assert await page.is_checked("#read_stream")
        await present(page, 1)
        heard = await reply_in_room(page, "Again, as it comes", replies=2)
        print(f"streaming: {len(heard)} announcements")
        texts = [entry["text"] for entry in heard]
        assert texts[0].strip() == "Pirate is replying"
        sentences = texts[1:]
        assert len(sentences) > 3
        for text in sentences:
            assert WHOLE_SENTENCES.fullmatch(text), f"not whole sentences: {text!r}"
        assert "".join(sentences).strip() == REPLY

        # Another person's message is read once, with their name; the page's own is not read back.
        await page.goto(f"{server.url}/rooms/Lounge/")
        await present(page, 1)
        other = await (await browser.new_context()).new_page()
        await other.goto(f"{server.url}/rooms/Lounge/")
        await present(page, 2)
        await other.fill("#content", "Ahoy from over here")
        await other.keyboard.press("Enter")
        await page.wait_for_function("window.__announced.length >= 1")
        author = await page.get_attribute(".message.user", "data-author")
        await page.fill("#content", "And hello back")
        await page.keyboard.press("Enter")
        await other.wait_for_function("document.querySelectorAll('.message.user').length === 2")
        assert [entry["text"] for entry in await announcements(page)] == [f"{author}: Ahoy from over here"]

        # The direct page says its reply's start and end the same way.
        await page.goto(f"{server.url}/direct/PirateBot/")
        await page.fill("#content", "A word in private")
        await page.keyboard.press("Enter")
        await page.wait_for_function("window.__announced.length >= 2")
        await page.wait_for_selector('direct-chat .message.assistant[data-status="complete"]')
        assert [entry["text"] for entry in await announcements(page)] == [
            "Pirate is replying", "Pirate: A private answer. Nothing is kept."
        ]


WIDTHS = {"1280": {"width": 1280, "height": 800}, "390": {"width": 390, "height": 844}}


async def scan(page, label, found):
    """axe-core over page at both widths in both colour schemes; violations are added to found."""
    for width, size in WIDTHS.items():
        await page.set_viewport_size(size)
        for scheme in ("light", "dark"):
            await page.emulate_media(color_scheme=scheme)
            found += await axe_violations(page, f"{label} at {width}px, {scheme}")


# A reply whose table and code line are wider than any message: each scrolls sideways in its own
# box, which a keyboard must be able to reach (axe's scrollable-region-focusable).
WIDE = ("A short answer, matey.\n\n| " + " | ".join(f"Column_{i}_of_the_treasure_map" for i in range(8)) + " |\n|"
        + "---|" * 8 + "\n| " + " | ".join(f"doubloons_{i}" for i in range(8)) + " |\n\n```python\nchest = "
        + " + ".join(f"doubloons_{i}" for i in range(40)) + "\n```\n")


async def test_every_page_and_room_state_passes_axe_core_at_both_widths_in_both_schemes(upstream, browser):
    upstream.will(text=WIDE, rate=400)
    upstream.will(tokens=["The treasure lies ", "beneath the "], fault="drop", fault_after=2)
    upstream.will(text=REPLY, rate=20)
    found = []
    with daphne(provider_env(upstream)) as server:
        context = await browser.new_context(reduced_motion="reduce", timezone_id="America/Los_Angeles", locale="en-US")
        page = await context.new_page()
        for label, path in [("lobby", "/"), ("the Lounge", "/rooms/Lounge/"), ("direct page", "/direct/PirateBot/"),
                            ("profile form", "/profile"), ("sign-in", "/accounts/login/")]:
            await page.goto(server.url + path)
            await scan(page, label, found)

        await page.goto(f"{server.url}/rooms/PirateBot/")
        await scan(page, "empty room", found)
        # At each width the room fits the window under the header (the header wraps on a phone):
        # the box to write in is in view without scrolling the page, and nothing spills sideways.
        for size in WIDTHS.values():
            await page.set_viewport_size(size)
            fits = await page.evaluate("""() => ({
              composer: document.querySelector("#content").getBoundingClientRect().bottom <= innerHeight,
              sideways: document.documentElement.scrollWidth > document.documentElement.clientWidth})""")
            assert fits == {"composer": True, "sideways": False}, (size, fits)
        await page.fill("#content", "A short one")
        await page.keyboard.press("Enter")
        await page.wait_for_selector('.message.assistant[data-status="complete"]')
        # The boxes do overflow here, at both widths, as the page draws them.
        boxes = ".message.assistant .table, .message.assistant pre"
        for size in WIDTHS.values():
            await page.set_viewport_size(size)
            assert await page.eval_on_selector_all(boxes, "(all) => all.map((box) => box.scrollWidth > box.clientWidth)") == [True, True]
        await scan(page, "idle room", found)
        # The keyboard reaches the table's box and scrolls it sideways.
        await tab_to(page, ".message.assistant .table")
        await page.keyboard.press("ArrowRight")
        await page.wait_for_function("document.querySelector('.message.assistant .table').scrollLeft > 0")
        # Reloaded, the same reply comes from the page's own render, not a frame.
        await page.reload()
        await page.wait_for_selector('.message.assistant[data-status="complete"] .table')
        await scan(page, "idle room, reloaded", found)
        # Times as the reader's clock shows them: this browser is in Los Angeles.
        stamp = page.locator(".message.assistant time")
        when = datetime.fromisoformat(await stamp.get_attribute("datetime")).astimezone(ZoneInfo("America/Los_Angeles"))
        shown = (await stamp.inner_text()).replace("\u202f", " ")
        assert shown == f"{when.hour % 12 or 12}:{when.minute:02d} {'AM' if when.hour < 12 else 'PM'}"
        # Search (with results and without a query) and a room opened at one message.
        asked = await page.locator(".message.user").first.get_attribute("data-id")
        for label, path in [("search page", "/search"), ("search results", "/search?q=short"),
                            ("a room around a message", f"/rooms/PirateBot/?around={asked}")]:
            await page.goto(server.url + path)
            if label == "search results":
                assert await page.locator(f'[data-message-id="{asked}"]').count() == 1
            await scan(page, label, found)
        assert await page.locator('[aria-current="true"]').get_attribute("data-id") == asked

        await page.goto(f"{server.url}/rooms/BelleBot/")
        await page.fill("#content", "Where is the treasure?")
        await page.keyboard.press("Enter")
        await page.wait_for_selector('.message.assistant[data-status="failed"]', timeout=10000)
        await scan(page, "room with a failed reply", found)

        await page.goto(f"{server.url}/rooms/PirateBot/")
        await page.fill("#content", "The long tale, slowly")
        await page.keyboard.press("Enter")
        await page.wait_for_selector('.message.assistant[data-status="streaming"] .typing i')
        # The typing dots stand still for a reader who asked for less motion.
        assert await page.evaluate("getComputedStyle(document.querySelector('.typing i')).animationName") == "none"
        await scan(page, "room mid-reply", found)
        await page.click(".message.assistant button.stop")
        await page.wait_for_selector('.message.assistant[data-status="cancelled"]')

        # A person's own pages: sign-up (and its errors), a new room, a private room and its members.
        await page.goto(f"{server.url}/accounts/signup/")
        await scan(page, "sign-up", found)
        await page.fill("input[name=username]", "reader")
        await page.fill("input[name=password1]", "a-long-pass-phrase")
        await page.fill("input[name=password2]", "another-pass-phrase")
        await page.click("form.account button[type=submit]")
        await page.wait_for_selector(".errorlist")
        await scan(page, "sign-up with errors", found)
        await signed_up(page, server.url, "reader", "a-long-pass-phrase")
        await page.goto(f"{server.url}/rooms/new")
        await scan(page, "new room form", found)
        await page.fill("input[name=key]", "Readers")
        await page.fill("input[name=title]", "Readers")
        await page.select_option("select[name=visibility]", "members")
        await page.click("form.account button[type=submit]")
        await page.wait_for_url(f"{server.url}/rooms/Readers/")
        await scan(page, "private room", found)
        await page.goto(f"{server.url}/rooms/Readers/members")
        assert await page.locator("#member-username").count() == 1  # the moderator's page, not a 404
        await scan(page, "members page", found)
    assert found == [], "\n".join(found)


# Any pointer event at all fails the keyboard test (a key press on a button makes a click, never these).
COUNT_POINTER = """
window.__pointer = [];
for (const type of ["pointerdown", "pointerup", "mousedown", "mouseup", "mousemove", "wheel"]) {
  addEventListener(type, (event) => window.__pointer.push(type), true);
}
"""


async def tab_to(page, selector, limit=80):
    """Press Tab until the focus is on an element matching selector."""
    for _ in range(limit):
        if await page.evaluate("(s) => !!document.activeElement?.matches(s)", selector):
            return
        await page.keyboard.press("Tab")
    raise AssertionError(f"Tab never reached {selector}")


ROLES = {"feed", "article", "combobox", "textbox", "listbox", "option", "checkbox"}
PROPERTIES = ("expanded", "selected", "checked", "activedescendant", "multiline")


def tree_summary(nodes):
    """The accessibility tree's nodes that matter for the room, as (role, name, properties) lines."""
    lines = []
    for node in nodes:
        role = node.get("role", {}).get("value")
        if role not in ROLES or node.get("ignored"):
            continue
        props = {prop["name"]: prop["value"].get("value", prop["value"].get("relatedNodes")) for prop in node.get("properties", [])}
        shown = {name: props[name] for name in PROPERTIES if name in props}
        lines.append((role, node.get("name", {}).get("value", ""), shown))
    return lines


async def composer(cdp):
    """The message box's role and properties in the page's accessibility tree."""
    tree = tree_summary((await cdp.send("Accessibility.getFullAXTree"))["nodes"])
    found = [(role, shown) for role, name, shown in tree if name.startswith("Message to")]
    assert len(found) == 1, found
    return found[0]


async def test_the_room_by_keyboard_alone_and_its_accessibility_tree(upstream, browser):
    upstream.will(text=REPLY, rate=20)
    upstream.will(text=REPLY, rate=400)
    with daphne(provider_env(upstream, **own_presence())) as server:
        context = await browser.new_context(viewport={"width": 390, "height": 844})
        await context.add_init_script(COUNT_POINTER)
        await context.add_init_script(RECORD_ANNOUNCEMENTS)
        page = await context.new_page()
        await page.goto(f"{server.url}/rooms/PirateBot/")
        await present(page, 1)

        # A name: the "Change name" disclosure, its field, Enter.
        await tab_to(page, ".rename summary")
        await page.keyboard.press("Enter")
        await page.keyboard.press("Tab")
        await page.keyboard.type("Ana")
        await page.keyboard.press("Enter")
        await page.wait_for_function("document.getElementById('my_name').textContent === 'Ana'")

        # The mention menu: @, arrows to PirateBot, Enter. The box is a combobox only while the menu is open.
        await tab_to(page, "#content")
        cdp = await context.new_cdp_session(page)
        assert await composer(cdp) == ("textbox", {"multiline": True})
        await page.keyboard.type("@")
        await page.wait_for_selector("#mention_menu:not([hidden])")
        for _ in range(10):
            if await page.get_attribute("#content", "aria-activedescendant") == "mention_PirateBot":
                break
            await page.keyboard.press("ArrowDown")
        tree = tree_summary((await cdp.send("Accessibility.getFullAXTree"))["nodes"])
        print("\n".join(map(str, tree)))
        # The footer's language <select> is a combobox too; the composer is the one named for the room.
        composers = [line for line in tree if line[0] == "combobox" and line[1].startswith("Message to")]
        assert len(composers) == 1
        combobox = composers[0]
        assert combobox[2]["expanded"] is True and combobox[2]["activedescendant"]
        assert ("listbox", "Bots to mention", {}) in tree
        # The mention menu's options (each "@key …"; the language <select>'s options are listed too).
        selected = [line for line in tree if line[0] == "option" and line[1].startswith("@") and line[2].get("selected")]
        assert len(selected) == 1 and selected[0][1].startswith("@PirateBot"), selected
        assert ("region", "Conversation", {}) not in tree  # not a node tree_summary lists; the feed is checked below
        await page.keyboard.press("Escape")
        assert await page.is_hidden("#mention_menu")
        assert await composer(cdp) == ("textbox", {"multiline": True})
        await page.keyboard.type("P")
        await page.wait_for_selector("#mention_menu:not([hidden])")
        await page.keyboard.press("Enter")
        assert await page.input_value("#content") == "@PirateBot "

        # Send: the box empties and keeps the focus.
        await page.keyboard.type("tell me the long tale")
        await page.keyboard.press("Enter")
        await page.wait_for_selector('.message.assistant[data-status="streaming"]')
        assert await page.evaluate("document.activeElement.id") == "content"
        assert await page.input_value("#content") == ""
        tree = tree_summary((await cdp.send("Accessibility.getFullAXTree"))["nodes"])
        print("\n".join(map(str, tree)))
        assert ("feed", "Conversation", {}) in tree
        assert [line[1] for line in tree if line[0] == "article"] == ["Pirate @PirateBot", "Ana"]

        await tab_to(page, "button.stop")
        await page.keyboard.press("Enter")
        await page.wait_for_selector('.message.assistant[data-status="cancelled"]')
        await page.wait_for_function("window.__announced.some((entry) => entry.text.includes('stopped'))")
        assert [entry["text"] for entry in await announcements(page)] == ["Pirate is replying", "Pirate's reply was stopped."]
        await tab_to(page, "button.retry")
        await page.keyboard.press("Enter")
        await page.wait_for_selector('.message.assistant[data-status="complete"]', timeout=10000)
        await tab_to(page, "button.vote.up")
        await page.keyboard.press("Space")
        await page.wait_for_selector('button.vote.up[aria-pressed="true"]')

        # Scrolling back through the conversation: the list takes the focus and the page keys.
        await tab_to(page, "#messages")
        assert await page.evaluate("document.getElementById('messages').scrollHeight > document.getElementById('messages').clientHeight")
        await page.keyboard.press("PageUp")
        await page.wait_for_function("document.getElementById('messages').scrollTop < -100")
        assert await page.evaluate("window.__pointer") == []
