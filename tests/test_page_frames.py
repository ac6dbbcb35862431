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


@sync_to_async
def asked_and_answered():
    """Two questions, the first answered: three rows, in id order."""
    first = Message.objects.create(room="PirateBot", role="user", content="Where be the rum?", author="Anne")
    reply = Message.objects.create(room="PirateBot", bot="PirateBot", role="assistant", status="pending", reply_to=first)
    claimed = Message.objects.claim(reply.pk, "scripted-model")
    reply = Message.objects.finish(reply.pk, claimed.revision, status="complete", content="Gone, all of it.")
    second = Message.objects.create(room="PirateBot", role="user", content="And the ship?", author="Anne")
    return first, reply, second


async def test_messages_keep_their_places_and_the_focus_its_control_whatever_order_frames_come_in(upstream, browser):
    first, reply, second = await asked_and_answered()
    order = f"[...document.querySelectorAll('#messages > .message')].map((m) => Number(m.dataset.id))"
    settle = "() => new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)))"
    with daphne(provider_env(upstream)) as server:
        page = await (await browser.new_context()).new_page()
        await page.goto(f"{server.url}/rooms/PirateBot/")
        assert await page.evaluate(order) == [second.pk, reply.pk, first.pk]

        # A reconnect's catch-up sent the reply and the second question; the live frames held
        # meanwhile repeat the first question's prepend: nothing moves.
        await page.evaluate(f"document.getElementById('message_{reply.pk}').remove()")  # the page missed it
        catch_up = frames.prepend(reply) + frames.prepend(second)
        await page.evaluate("(html) => Turbo.renderStreamMessage(html)", catch_up + frames.prepend(first))
        await page.evaluate(settle)
        assert await page.evaluate(order) == [second.pk, reply.pk, first.pk]

        # Someone on the reply's vote button keeps it when the reply is drawn anew.
        await page.focus(f"#message_{reply.pk} button.vote.up")
        await page.evaluate("(html) => Turbo.renderStreamMessage(html)", frames.replace(reply))
        await page.evaluate(settle)
        focused = "(() => { const at = document.activeElement; return [at.closest('.message')?.id, at.className]; })()"
        assert await page.evaluate(focused) == [f"message_{reply.pk}", "vote up"]
        assert await page.evaluate(order) == [second.pk, reply.pk, first.pk]
