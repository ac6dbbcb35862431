"""Frames the page must not apply: a message older than the one it shows, in a real browser."""

import pytest
from asgiref.sync import sync_to_async

from chat.delivery import frames
from chat.models import Message
from tests.servers import daphne
from tests.test_end_to_end import provider_env

pytestmark = pytest.mark.django_db(transaction=True)


@sync_to_async
def finished_reply():
    """A reply that streamed and completed: its row has moved on a few revisions."""
    reply = Message.objects.create(room="PirateBot", bot="PirateBot", role="assistant", status="pending")
    claimed = Message.objects.claim(reply.pk, "scripted-model")
    return Message.objects.finish(reply.pk, claimed.revision, status="complete", content="The final word.")


def frame_as(reply, revision, content, status):
    """The replace frame the broadcaster rendered when the row stood at revision."""
    reply.revision, reply.content, reply.status = revision, content, status
    return frames.replace(reply)


async def test_a_replace_older_than_the_shown_message_is_dropped_and_a_newer_one_applied(upstream, browser):
    reply = await finished_reply()
    assert reply.revision == 2
    with daphne(provider_env(upstream)) as server:
        page = await (await browser.new_context()).new_page()
        await page.goto(f"{server.url}/rooms/PirateBot/")
        content = page.locator(f"#message_{reply.pk}_content")
        assert (await content.inner_text()).strip() == "The final word."

        # A repair answer fetched mid-stream that arrives after the final frame, then the final
        # frame again, in one socket message: the stale one must not win.
        stale = frame_as(reply, 1, "The fin", "streaming")
        final = frame_as(reply, 2, "The final word.", "complete")
        await page.evaluate("(html) => Turbo.renderStreamMessage(html)", final + stale)
        await page.evaluate("() => new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)))")
        assert (await content.inner_text()).strip() == "The final word."
        assert await page.locator(f"#message_{reply.pk}").get_attribute("data-status") == "complete"

        newer = frame_as(reply, 3, "Edited afterwards.", "complete")
        await page.evaluate("(html) => Turbo.renderStreamMessage(html)", newer)
        await page.wait_for_function(
            f"document.getElementById('message_{reply.pk}_content').textContent.trim() === 'Edited afterwards.'"
        )
