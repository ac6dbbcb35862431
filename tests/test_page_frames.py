"""Frames in a real browser: the page drops what is older than it shows, keeps places and focus, and
marks what frames add (copy buttons, local times, mentions)."""

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model

from chat.delivery import frames
from chat.models import Message
from tests.browser import signed_in
from tests.servers import daphne
from tests.test_end_to_end import provider_env
from tests.test_unread import PASSWORD

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


def unsaved(pk, **fields):
    """A message of the PirateBot room as a frame would carry it, with no row behind it."""
    return Message(pk=pk, id=pk, room="PirateBot", number=pk, seq=pk, **fields)


@sync_to_async
def ana_and_a_finished_reply():
    """A person who can be mentioned (@ana), and a reply in her room."""
    get_user_model().objects.create_user("ana", password=PASSWORD)
    return finished_reply.func()


async def test_what_frames_add_gets_its_copy_button_local_time_and_mention_mark(upstream, browser):
    reply = await ana_and_a_finished_reply()
    settle = "() => new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)))"
    render = "(html) => Turbo.renderStreamMessage(html)"
    with daphne(provider_env(upstream)) as server:
        page = await signed_in(await browser.new_page(), server.url, "ana", PASSWORD, "/rooms/PirateBot/")

        # A new message naming her, and one that does not: each as its own prepend. (Frames of rows
        # never saved: the server has nothing to answer or sweep.)
        called = unsaved(9001, role="user", content="Ahoy @ana!", author="Bo")
        other = unsaved(9002, role="user", content="Ahoy @anabel!", author="Bo")
        # (Turbo draws a frame at the next animation frame: the waits below allow for its absence.)
        await page.evaluate(render, frames.prepend(called) + frames.prepend(other))
        await page.wait_for_function(f"document.getElementById('message_{called.pk}')?.classList.contains('mentioned')")
        assert await page.locator(f"#message_{called.pk} time[data-local]").count() == 1

        # One scrolled back to: it comes in an older-messages frame, not straight in the list.
        older = unsaved(9000, role="user", content="Long ago, @ana said aye.", author="Cy")
        scrolled_back = f'<turbo-frame id="older_9000" class="older">{frames.render_message(older)}</turbo-frame>'
        await page.evaluate(render, frames.turbo_stream("append", "messages", scrolled_back))
        await page.wait_for_function("document.getElementById('message_9000')?.classList.contains('mentioned')")

        # A reply that names her only once its text has grown so far.
        streaming = unsaved(9003, bot="PirateBot", role="assistant", status="streaming")
        await page.evaluate(render, frames.prepend(streaming))
        await page.evaluate(render, frames.grow(streaming.pk, 0, "Aye, @an"))
        await page.evaluate(settle)
        assert "mentioned" not in await page.get_attribute(f"#message_{streaming.pk}", "class")
        await page.evaluate(render, frames.grow(streaming.pk, 8, "a, aye."))
        await page.wait_for_function(f"document.getElementById('message_{streaming.pk}')?.classList.contains('mentioned')")

        # A code block that arrives in a reply drawn anew gets its copy button.
        reply.revision, reply.content = reply.revision + 1, "Here:\n\n```python\nprint('rum')\n```"
        await page.evaluate(render, frames.replace(reply))
        await page.locator(f"#message_{reply.pk} .highlight .copy").wait_for()
        await page.evaluate(settle)
        assert await page.locator(".message.mentioned").count() == 3
        assert "mentioned" not in await page.get_attribute(f"#message_{other.pk}", "class")
