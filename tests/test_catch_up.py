"""Catch-up on (re)connect: what changed since the page was last in step, or the whole list anew."""

import pytest
from asgiref.sync import sync_to_async

from chat.models import Message
from tests.rooms import parse_frames, subscribe

pytestmark = pytest.mark.django_db(transaction=True)


@sync_to_async
def conversation(count):
    """count finished messages in the PirateBot room, oldest first."""
    return [Message.objects.create(room="PirateBot", role="user", content=f"line {i}", author="Ann") for i in range(count)]


@sync_to_async
def last_event():
    return Message.objects.last_event("PirateBot")


async def catch_up_frames(after):
    page = await subscribe(query=f"?after={after}")
    frames = []
    while not frames or frames[-1][1] != "room_synced":
        frames += parse_frames(await page.receive_from(timeout=10))
    return frames


async def test_a_page_a_little_behind_gets_what_changed_oldest_first(settings):
    settings.ROOM_PAGE_MESSAGES = 5
    before = await last_event()
    messages = await conversation(3)
    frames = await catch_up_frames(before)
    assert [(action, target) for action, target, _, _ in frames] == [("prepend", "messages")] * 3 + [("replace", "room_synced")]
    for (_, _, _, html), message in zip(frames, messages):
        assert f'id="message_{message.pk}"' in html and f"line {messages.index(message)}" in html


async def test_a_page_too_far_behind_gets_the_whole_list_anew(settings):
    settings.ROOM_PAGE_MESSAGES = 5
    before = await last_event()
    messages = await conversation(8)
    frames = await catch_up_frames(before)
    assert [(action, target) for action, target, _, _ in frames] == [("update", "messages"), ("replace", "room_synced")]
    html = frames[0][3]
    shown = [message for message in messages if f'id="message_{message.pk}"' in html]
    assert shown == messages[-5:]
    # Newest first in the DOM, as the room page renders it.
    assert html.index(f'id="message_{messages[-1].pk}"') < html.index(f'id="message_{messages[-5].pk}"')


async def test_a_page_that_reconnects_showing_an_old_title_or_topic_gets_the_rooms_heading():
    """A new title or topic is a frame, not a numbered event: a page that was away when it came sends
    the mark of the heading it shows, and gets the heading again only when that differs."""
    from bots.models import Room
    from chat.delivery.frames import heading_mark

    room = await sync_to_async(Room.objects.get)(key="PirateBot")
    shown = heading_mark(room)
    before = await last_event()

    async def reconnect(query):
        page = await subscribe(query=f"?after={before}{query}")
        return parse_frames(await page.receive_from(timeout=10))

    assert await reconnect(f"&heading={shown}") == [("replace", "room_synced", "", await synced_html())]
    assert len(await reconnect("")) == 1  # a script that sends no mark: the messages only
    room.title, room.topic = "The Brig", "Mind the rats"
    await sync_to_async(room.save)()
    frames = await reconnect(f"&heading={shown}")
    assert [(action, target, html) for action, target, _, html in frames[:5]] == [
        ("update", "room_name", "The Brig"), ("update", "nav_room", "The Brig"), ("update", "page_title", "The Brig · Parley"),
        ("update", "room_topic", "Mind the rats"), ("replace", "room_heading", f'<span id="room_heading" data-mark="{heading_mark(room)}" hidden></span>'),
    ]
    assert frames[5:] == [("replace", "room_synced", "", await synced_html())]
    assert await reconnect(f"&heading={heading_mark(room)}") == frames[5:]
    assert await reconnect("") == frames[5:]


async def synced_html():
    from chat import dom

    return f'<span id="{dom.IDS["synced"]}" data-after="{await last_event()}" hidden></span>'
