"""The reply job's guards: queued replies outlive a long stream, text is tidied at chunk seams."""

import asyncio

import pytest
from asgiref.sync import sync_to_async
from django.test import AsyncClient

from chat.replies import workers
from chat.replies.sweep import sweep_stale_replies
from tests.rooms import finished, frames_until, grown_text, subscribe
from tests.test_rooms import post, rows

pytestmark = pytest.mark.django_db(transaction=True)


async def sweeping(stop):
    """What every live process does: sweep for replies nobody touched lately."""
    while not stop.is_set():
        await sync_to_async(sweep_stale_replies)(exclude=workers.active_replies())
        await asyncio.sleep(0.1)


async def test_a_reply_queued_behind_a_long_one_is_not_taken_for_an_orphan(upstream, settings):
    settings.REPLY_STALE_AFTER = 0.6
    upstream.will(tokens=[f"long{i} " for i in range(60)], rate=30)  # 2 s: over three stale periods
    upstream.will(text="Second, and alive.", rate=100)
    page = await subscribe()
    stop = asyncio.Event()
    sweeper = asyncio.ensure_future(sweeping(stop))
    try:
        await post("First question")
        await post("Second question")
        _, first, _, second = await rows(room="PirateBot")
        await frames_until(page, finished(second.pk), timeout=30)
    finally:
        stop.set()
        await sweeper
    statuses = {m.pk: (m.status, m.content) for m in await rows(role="assistant")}
    assert statuses[first.pk][0] == "complete"
    assert statuses[second.pk] == ("complete", "Second, and alive.")


async def test_a_reply_waiting_for_a_streaming_slot_is_not_taken_for_an_orphan(upstream, settings):
    settings.REPLY_STALE_AFTER = 0.6
    settings.MAX_STREAMING_REPLIES = 1
    upstream.will(tokens=[f"slow{i} " for i in range(60)], rate=30)
    upstream.will(text="My turn came.", rate=100)
    one, two = await subscribe("ChatBot"), await subscribe("BelleBot")
    stop = asyncio.Event()
    sweeper = asyncio.ensure_future(sweeping(stop))
    try:
        await post("first", bot="ChatBot")
        await post("second", bot="BelleBot")
        (_, first), (_, second) = await rows(room="ChatBot"), await rows(room="BelleBot")
        await asyncio.gather(frames_until(one, finished(first.pk), timeout=30), frames_until(two, finished(second.pk), timeout=30))
    finally:
        stop.set()
        await sweeper
    (saved,) = await rows(pk=second.pk)
    assert (saved.status, saved.content) == ("complete", "My turn came.")


async def test_text_split_at_awkward_seams_is_tidied_the_same_in_the_row_and_the_page(upstream, settings):
    settings.REPLY_FLUSH_INTERVAL = 0.02
    # \r\n split over two chunks, a lone \r, an emoji's surrogate pair split over two chunks,
    # a surrogate with no other half, and a NUL: all as the JSON of an upstream may carry them.
    tokens = ["Line one\r", "\nLine two\r", "Line three ", "\ud83d", "\ude00", " half: \ud83d!", " nul\x00.", " end"]
    upstream.will(tokens=tokens, rate=40)
    page = await subscribe()
    await post("Give me awkward text")
    _, reply_row = await rows(room="PirateBot")
    frames = await frames_until(page, finished(reply_row.pk))
    (saved,) = await rows(pk=reply_row.pk)
    expected = "Line one\nLine two\nLine three \U0001F600 half: \ufffd! nul. end"
    assert (saved.status, saved.content) == ("complete", expected)
    grown = grown_text(frames, reply_row.pk)
    assert grown and expected.startswith(grown)


async def test_one_room_s_awkward_text_does_not_fail_another_room_s_reply(upstream, settings):
    upstream.will(tokens=["Broken \ud83d", " pair"] * 20, rate=80)
    upstream.will(tokens=[f"fine{i} " for i in range(40)], rate=80)
    one, two = await subscribe("ChatBot"), await subscribe("BelleBot")
    await asyncio.gather(
        AsyncClient().post("/rooms/ChatBot/messages", {"content": "a"}),
        AsyncClient().post("/rooms/BelleBot/messages", {"content": "b"}),
    )
    (_, first), (_, second) = await rows(room="ChatBot"), await rows(room="BelleBot")
    await asyncio.gather(frames_until(one, finished(first.pk)), frames_until(two, finished(second.pk)))
    saved = {m.bot: m for m in await rows(role="assistant")}
    assert {m.status for m in saved.values()} == {"complete"}
    contents = sorted(m.content for m in saved.values())
    assert contents == sorted(["Broken \ufffd pair" * 20, "".join(f"fine{i} " for i in range(40))])
