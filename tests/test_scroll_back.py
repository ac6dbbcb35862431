"""Scroll back and ?around= through Django's test client: the frame a room page's lazy loader asks
for, the page a browser without JavaScript gets, and bad ids."""

import re

import pytest

from chat.models import Message

pytestmark = pytest.mark.django_db
ROOM = "Lounge"


@pytest.fixture
def history():
    """120 messages in the room, oldest first."""
    return [Message.objects.create(room=ROOM, role="user", content=f"line {n}", author="Ann").pk for n in range(120)]


def shown(page):
    return [int(pk) for pk in re.findall(r'<div id="message_(\d+)"', page)]


def test_the_room_page_ends_with_a_lazy_frame_of_older_messages(client, history):
    page = client.get(f"/rooms/{ROOM}/").text
    assert shown(page) == history[:-51:-1]
    oldest = history[-50]
    assert (f'<turbo-frame id="older_{oldest}" class="older" src="/rooms/{ROOM}/?before={oldest}" loading="lazy"'
            in page)
    assert f'<a class="older-link" href="/rooms/{ROOM}/?before={oldest}">Older messages</a>' in page


def test_the_frame_holds_the_fifty_before_and_the_next_frame(client, history):
    oldest = history[-50]
    frame = client.get(f"/rooms/{ROOM}/", {"before": oldest}, headers={"Turbo-Frame": f"older_{oldest}"}).text
    assert frame.startswith(f'<turbo-frame id="older_{oldest}"') and "<html" not in frame
    assert shown(frame) == history[-51:-101:-1]
    last = client.get(f"/rooms/{ROOM}/", {"before": history[20]}, headers={"Turbo-Frame": f"older_{history[20]}"}).text
    assert shown(last) == history[19::-1] and "older-link" not in last  # the start of the room: no further frame


def test_without_javascript_older_messages_is_a_page(client, history):
    page = client.get(f"/rooms/{ROOM}/", {"before": history[-50]}).text
    assert shown(page) == history[-51:-101:-1]
    assert 'id="messages"' in page and "Back to the latest messages" in page
    assert f"?before={history[-100]}" in page


def test_around_marks_the_message_with_as_many_on_each_side(client, history):
    target = history[60]
    page = client.get(f"/rooms/{ROOM}/", {"around": target}).text
    assert shown(page) == history[85:35:-1]
    marked = re.findall(r'<div id="message_(\d+)"[^>]*aria-current="true"', page)
    assert marked == [str(target)]


def test_bad_and_unknown_ids(client, history):
    for query in ({"before": "abc"}, {"around": "-3"}, {"before": "1" * 30}):
        answer = client.get(f"/rooms/{ROOM}/", query)
        assert answer.status_code == 400 and "takes a message&#x27;s number" in answer.text
    assert client.get(f"/rooms/{ROOM}/", {"around": 10**9}).status_code == 404
    elsewhere = Message.objects.create(room="PirateBot", role="user", content="hi", author="Ann")
    assert client.get(f"/rooms/{ROOM}/", {"around": elsewhere.pk}).status_code == 404
    Message.objects.remove(history[60], by="mod")
    assert client.get(f"/rooms/{ROOM}/", {"around": history[60]}).status_code == 404
    assert client.get(f"/rooms/{ROOM}/", {"before": history[60]}).status_code == 200  # scroll back from a removed one
