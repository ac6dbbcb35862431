"""Live rooms: the frames every page of a room gets while a reply streams, stop, and the queue."""

import asyncio
import time

import pytest
from asgiref.sync import ThreadSensitiveContext, sync_to_async
from django.db import connections
from django.test import AsyncClient

from chat.models import Message
from tests.rooms import (
    GROW,
    communicator,
    finished,
    frames_until,
    grown_text,
    grows,
    install_write_counter,
    offset_of,
    remove_write_counter,
    row_writes,
    shown_text,
    subscribe,
)

pytestmark = pytest.mark.django_db(transaction=True)

SHIP = "Arr, me ship be the Salty Kraken: three masts, forty cannon, and a hold full o' rum."


@sync_to_async
def rows(**filters):
    return list(Message.objects.filter(**filters).order_by("id"))


async def post(content, bot="PirateBot", client=None):
    response = await (client or AsyncClient()).post(f"/rooms/{bot}/messages", {"content": content})
    assert response.status_code == 303
    assert response["Location"] == f"/rooms/{bot}/"
    return response


def test_shown_text_applies_frames_as_a_page_does():
    streaming = '<div id="message_7" data-status="streaming"><div id="message_7_content" data-length="2">Ah</div></div>'
    final = (
        '<div id="message_7" data-status="complete"><div id="message_7_content" class="content markdown">'
        "<p>Ahoy, <strong>matey</strong> &amp; crew</p>\n<ul><li>one<br>two</li></ul></div>"
        '<p class="error">not the content</p></div>'
    )
    frames = [
        ("prepend", "messages", "", streaming),
        ("grow", "message_7_content", ' o="2"', "oy, m"),
        ("grow", "message_7_content", ' o="4"', ", matey &amp;"),  # a repeat: only the new part counts
    ]
    assert shown_text(frames, 7) == "Ahoy, matey &"
    assert shown_text([*frames, ("replace", "message_7", "", final)], 7) == "Ahoy, matey & crew\nonetwo"
    with pytest.raises(AssertionError, match="a gap"):
        shown_text([*frames, ("grow", "message_7_content", ' o="99"', "lost")], 7)


async def test_two_pages_get_the_same_frames_in_order(upstream):
    upstream.will(text=SHIP, rate=50)  # about 0.4 s: several flushes, even on a busy machine
    first, second = await subscribe(), await subscribe()

    await post("Tell me about your ship")
    user, reply = await rows(room="PirateBot")
    seen = [await frames_until(page, finished(reply.pk)) for page in (first, second)]

    assert seen[0] == seen[1]
    frames = seen[0]
    assert frames[0][:2] == ("prepend", "messages")
    assert f'id="message_{user.pk}" class="message user" data-status="complete"' in frames[0][3]
    assert "Tell me about your ship" in frames[0][3]
    assert frames[1][:2] == ("prepend", "messages")
    assert f'id="message_{reply.pk}" class="message assistant" data-status="pending"' in frames[1][3]
    assert frames[2][:2] == ("replace", f"message_{reply.pk}") and 'data-status="streaming"' in frames[2][3]
    growth = frames[3:-1]
    assert len(growth) >= 2 and all(grows(reply.pk)(f) for f in growth)
    assert finished(reply.pk)(frames[-1])
    (saved,) = await rows(pk=reply.pk)
    assert saved.status == "complete" and saved.content == SHIP
    growth = grown_text(frames, reply.pk)
    assert growth and saved.content.startswith(growth)
    # SHIP has no Markdown syntax, so the rendered final partial shows exactly the saved text.
    assert shown_text(frames, reply.pk).strip() == saved.content.strip()
    assert (saved.model, saved.completion_tokens) == ("scripted-model", len(upstream.exchanges[0].sent))


async def test_growth_frames_build_exactly_the_saved_text(upstream, settings):
    settings.REPLY_FLUSH_INTERVAL = 0.02
    text = "".join(f"word{i} " for i in range(120))
    upstream.will(text=text, rate=300)
    page = await subscribe()
    await post("Count for me")
    _, reply = await rows(room="PirateBot")
    frames = await frames_until(page, finished(reply.pk))
    # Growth frames are contiguous (grown_text checks offsets), several, and a prefix of the text;
    # what had not been written when the stream ended rides in the final replace with the whole
    # content (how much that is depends on how fast the database writes: not asserted).
    built = grown_text(frames, reply.pk)
    growths = [frame for frame in frames if frame[0] == GROW and frame[1] == f"message_{reply.pk}_content"]
    assert len(growths) >= 3 and built and text.startswith(built)
    (saved,) = await rows(pk=reply.pk)
    assert saved.content == text


async def test_row_writes_are_bounded_by_the_flush_interval(upstream, settings):
    settings.REPLY_FLUSH_INTERVAL = 0.05
    await sync_to_async(install_write_counter)()
    try:
        upstream.will(tokens=[f"t{i} " for i in range(500)], rate=1000)
        page = await subscribe()
        await post("Five hundred tokens, please")
        _, reply = await rows(room="PirateBot")
        await frames_until(page, finished(reply.pk))
        sent = upstream.exchanges[0].sent
        duration = sent[-1][0] - sent[0][0]
        writes = await sync_to_async(row_writes)(reply.pk)
        # Growth at most once an interval (and the first at once), plus the claim, the finish and,
        # on SQLite, the event number the new row gets once its insert holds the write lock (search's
        # document is set by the database's triggers within these writes, never one of its own).
        bound = duration / settings.REPLY_FLUSH_INTERVAL + 5
        print(f"500 chunks over {duration:.3f}s: {writes} row updates (bound {bound:.1f})")
        assert 3 <= writes <= bound
        (saved,) = await rows(pk=reply.pk)
        assert saved.content == "".join(f"t{i} " for i in range(500))
    finally:
        await sync_to_async(remove_write_counter)()


async def test_stop_from_a_second_connection_closes_the_upstream(upstream, settings):
    settings.REPLY_FLUSH_INTERVAL = 0.05
    upstream.will(tokens=[f"arr{i} " for i in range(2000)], rate=100)
    page = await subscribe()
    asker = AsyncClient()
    await post("Tell me a very long tale", client=asker)
    _, reply = await rows(room="PirateBot")
    frames = await frames_until(page, lambda f: grows(reply.pk)(f) and offset_of(f[2]) > 40)

    stopped_at = time.monotonic()
    response = await asker.post(f"/rooms/PirateBot/messages/{reply.pk}/stop")  # the asker's, a connection of its own
    assert response.status_code == 303
    frames += await frames_until(page, finished(reply.pk, "cancelled"))

    exchange = upstream.exchanges[0]
    deadline = time.monotonic() + 10
    while not exchange.closed_at and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    assert exchange.closed_at is not None, "the upstream connection stayed open after Stop"
    # Closed by the Stop, long before the 20-second reply would have ended (speed is for benchmarks).
    assert exchange.closed_at >= stopped_at
    assert len(exchange.sent) < 2000
    (saved,) = await rows(pk=reply.pk)
    assert saved.status == "cancelled"
    assert saved.content and saved.content == grown_text(frames, reply.pk)
    assert 'class="retry"' in frames[-1][3] and 'class="stop"' not in frames[-1][3]


async def post_on_a_thread_of_its_own(content):
    """Post as Django's ASGI handler serves each request: the sync view on a thread of its own."""
    async with ThreadSensitiveContext():
        try:
            return await post(content)
        finally:
            # That thread's connection: left open, it keeps the test database in use.
            await sync_to_async(connections.close_all)()


async def test_messages_posted_together_are_answered_in_turn(upstream):
    first_answer = " ".join(f"Arr{i}" for i in range(48))  # 1.2 s at 40 tokens/s: the other post lands meanwhile
    upstream.will(text=first_answer, rate=40)
    upstream.will(text="Second answer, matey.", rate=100)
    page = await subscribe()
    await asyncio.gather(post_on_a_thread_of_its_own("First question"), post_on_a_thread_of_its_own("Second question"))
    replies = [m for m in await rows(room="PirateBot") if m.role == "assistant"]
    frames = await frames_until(page, finished(replies[1].pk))

    messages = await rows(room="PirateBot")
    replies = [m for m in messages if m.role == "assistant"]
    assert [r.content for r in replies] == [first_answer, "Second answer, matey."]
    # Both questions reached the room while the first reply was still streaming.
    first_done = next(i for i, f in enumerate(frames) if finished(replies[0].pk)(f))
    questions = [(i, f[3][:80]) for i, f in enumerate(frames) if f[0] == "prepend" and 'class="message user"' in f[3]]
    assert len(questions) == 2 and max(i for i, _ in questions) < first_done, (questions, [m.pk for m in messages])
    # One at a time: the second request began only after the first answer was finished.
    first, second = upstream.exchanges
    assert second.opened_at >= first.finished_at
    # Each reply saw every message before it in the room, in order.
    for reply, exchange in zip(replies, (first, second)):
        said = [m.content if m.role == "assistant" else f"{m.author}: {m.content}" for m in messages if m.pk < reply.pk]
        assert [m["content"] for m in exchange.messages[1:]] == said


async def test_a_page_that_reconnects_mid_reply_catches_up(upstream):
    upstream.will(tokens=[f"yo{i} " for i in range(200)], rate=100)
    page = await subscribe()
    await post("Sing a shanty")
    _, reply = await rows(room="PirateBot")
    await frames_until(page, lambda f: f[0] == GROW)
    # In step with the room up to just before the asker's message: it and the reply come again.
    (asked,) = await rows(pk=reply.pk - 1)

    again = await subscribe(query=f"?after={asked.seq - 1}")
    frames = await frames_until(again, lambda f: f[1] == "room_synced")
    # The catch-up comes first: live frames of the streaming reply wait until it has gone out.
    assert [f[0] for f in frames] == ["prepend"] * (len(frames) - 1) + ["replace"]
    replayed = [f for f in frames if f[0] == "prepend"]
    assert [f'id="message_{reply.pk - 1}"' in replayed[0][3], f'id="message_{reply.pk}"' in replayed[1][3]] == [True, True]
    assert 'data-status="streaming"' in replayed[1][3]
    frames += await frames_until(again, finished(reply.pk))
    (saved,) = await rows(pk=reply.pk)
    assert saved.status == "complete" and saved.content == "".join(f"yo{i} " for i in range(200))
    # Before the final replace, the catch-up and the live growth after it (repeats dropped, no
    # gap) build the start of the row; at the end the reconnected page shows the row.
    streamed = shown_text(frames[:-1], reply.pk)
    assert streamed and saved.content.startswith(streamed)
    assert shown_text(frames, reply.pk).strip() == saved.content.strip()


async def test_unknown_bot_socket_is_refused():
    connected, _ = await communicator("NoSuchBot").connect()
    assert not connected


async def test_the_first_words_go_out_at_once_not_one_interval_later(upstream, settings):
    settings.REPLY_FLUSH_INTERVAL = 5  # long enough that waiting one interval could not pass
    upstream.will(tokens=["Ahoy", " there", " matey"], rate=1)
    page = await subscribe()
    await post("Hello")
    _, reply = await rows(room="PirateBot")
    await frames_until(page, grows(reply.pk))
    arrived = time.monotonic()
    first_sent = upstream.exchanges[0].sent[0][0]
    # The upstream wrote its first token, then the page had it, well inside the 5-second interval.
    assert first_sent <= arrived < first_sent + 2.5
    await frames_until(page, finished(reply.pk), timeout=30)
