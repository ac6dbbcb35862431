"""People in a real browser, at desktop and phone widths: a name, the mention menu, thumbs, and Remove
(screenshots saved under artifacts/)."""

import pytest
from asgiref.sync import sync_to_async

from chat.models import Message
from tests.browser import own_presence
from tests.servers import daphne
from tests.test_browser import ARTIFACTS
from tests.test_end_to_end import provider_env
from tests.test_page_ui import SIZES

pytestmark = pytest.mark.django_db(transaction=True)


@sync_to_async
def make_moderator():
    from django.contrib.auth import get_user_model

    get_user_model().objects.create_user("mod", password="pw-mod-123", is_staff=True)


async def says(page, text):
    await page.wait_for_function(f"document.getElementById('presence').textContent === {text!r}", timeout=15000)


@pytest.mark.parametrize("size", list(SIZES))
async def test_names_mentions_thumbs_and_remove_in_the_lounge(size, upstream, browser):
    upstream.will(text="Why, how do you do, Ana? Charmed, I am sure.", rate=40)
    await make_moderator()
    ARTIFACTS.mkdir(exist_ok=True)
    with daphne(provider_env(upstream, **own_presence())) as server:
        room = f"{server.url}/rooms/Lounge/"
        ana = await (await browser.new_context(viewport=SIZES[size])).new_page()
        await ana.goto(room)
        await says(ana, "1 guest here")

        # A name, from the form under the composer: shown at once, and in presence once the page rejoins.
        await ana.click(".rename summary")
        await ana.fill("#name", "Ana")
        await ana.click(".rename button[type=submit]")
        await ana.wait_for_function("document.getElementById('my_name').textContent === 'Ana'")
        await says(ana, "Ana here")

        staff = await (await browser.new_context(viewport=SIZES[size])).new_page()
        await staff.goto(f"{server.url}/admin/login/?next=/rooms/Lounge/")
        await staff.fill("#id_username", "mod")
        await staff.fill("#id_password", "pw-mod-123")
        await staff.click("input[type=submit]")
        await staff.wait_for_url(room)
        for page in (ana, staff):
            await says(page, "Ana and mod here")

        # The mention menu: "@" offers every bot; typing narrows it; arrows and Enter pick one.
        box = ana.locator("#content")
        await box.click()
        assert await box.get_attribute("role") is None  # a plain text box until the menu opens
        await box.type("@")
        menu = ana.locator("#mention_menu")
        await menu.wait_for(state="visible")
        assert await menu.locator('[role="option"]:visible').count() == 3
        assert await box.get_attribute("aria-expanded") == "true"
        await box.type("b")
        assert await menu.locator('[role="option"]:visible').all_inner_texts() == [
            "@BelleBot Southern Belle: Answers with the charm and mannerisms of a Southern Belle."
        ]
        await ana.screenshot(path=ARTIFACTS / f"people-mention-menu-{size}.png")
        await ana.keyboard.press("Enter")  # picks the option: it does not send
        assert await box.input_value() == "@BelleBot "
        await menu.wait_for(state="hidden")
        assert await box.get_attribute("role") is None and await box.get_attribute("aria-expanded") is None
        # The mouse works as well: a second mention, picked by a click.
        await box.type("and @")
        await menu.locator("#mention_PirateBot").click()
        assert await box.input_value() == "@BelleBot and @PirateBot "
        await box.fill("@BelleBot how do you do?")
        await ana.keyboard.press("Escape")
        await ana.keyboard.press("Enter")

        mine = '.message.user[data-author="Ana"]'
        reply = '.message.assistant[data-bot="BelleBot"][data-status="complete"]'
        for page in (ana, staff):
            await page.wait_for_selector(mine)
            await page.wait_for_selector(reply, timeout=15000)
        assert await ana.locator(".message.assistant").count() == 1
        # Ana's own message sits on the right, in her colour; on the moderator's page it is someone else's.
        assert await ana.locator(mine).evaluate("e => getComputedStyle(e).alignSelf") == "flex-end"
        assert await staff.locator(mine).evaluate("e => getComputedStyle(e).alignSelf") == "flex-start"

        # Thumbs: Ana's vote reaches the moderator's page; pressing it again takes it back.
        up = f"{reply} button.vote.up"
        await ana.click(up)
        await staff.wait_for_selector(f'{reply} .feedback[data-up="1"][data-down="0"]')
        await ana.wait_for_selector(f'{up}[aria-pressed="true"]')
        await ana.screenshot(path=ARTIFACTS / f"people-room-{size}.png")
        await ana.click(up)
        await staff.wait_for_selector(f'{reply} .feedback[data-up="0"]')
        await ana.wait_for_selector(f'{up}[aria-pressed="false"]')
        await ana.click(f"{reply} button.vote.down")
        await staff.wait_for_selector(f'{reply} .feedback[data-down="1"]')

        # Remove: only the moderator sees it; the message leaves both pages and stays in the admin.
        assert not await ana.locator(f"{mine} .moderation button.remove").is_visible()
        assert await staff.locator(f"{mine} .moderation button.mute").is_visible()
        await staff.screenshot(path=ARTIFACTS / f"people-staff-{size}.png")
        await staff.click(f"{mine} .moderation button.remove")
        for page in (ana, staff):
            await page.wait_for_selector(mine, state="detached")
        removed = await sync_to_async(Message.objects.get)(room="Lounge", role="user")
        assert removed.removed_at is not None and removed.removed_by == "mod"
    for name in ["people-mention-menu", "people-room", "people-staff"]:
        assert (ARTIFACTS / f"{name}-{size}.png").stat().st_size > 5000
