"""The history panel in the admin: lists, filters, search, date drill-down, transcripts, usage, actions."""

import asyncio
import re
import time
from datetime import datetime
from datetime import timezone as dt_timezone

import pytest
from django.utils import timezone

from chat.models import Feedback, Message, Mute

pytestmark = pytest.mark.django_db


def test_non_staff_are_refused_everywhere(client, django_user_model, history):
    client.force_login(django_user_model.objects.create_user("pat", password="pw-pat-123"))
    for path in ["/admin/chat/message/", "/admin/chat/message/transcript/PirateBot/", "/admin/chat/message/usage/"]:
        response = client.get(path)
        assert response.status_code == 302 and "/admin/login/" in response["Location"]


def listed(staff, query=""):
    """The ids of the messages the admin's list shows for a query string, in its order."""
    response = staff.get(f"/admin/chat/message/{query}")
    assert response.status_code == 200
    return [int(pk) for pk in re.findall(r'name="_selected_action" value="(\d+)"', response.text)]


def test_list_filters_and_search(staff, history):
    page = staff.get("/admin/chat/message/").text
    assert listed(staff) == [m.pk for m in reversed(history)]  # newest first
    assert all(f'<a href="/admin/chat/message/{m.pk}/change/">{m.pk}</a>' in page for m in history)
    assert all(m.content[:20] in page for m in history)
    failed = staff.get("/admin/chat/message/?status__exact=failed").text
    assert "Partial" in failed and "In the hold" not in failed
    room = staff.get("/admin/chat/message/?room__exact=BelleBot").text
    assert "Sweet tea?" in room and "Where be the rum?" not in room
    found = staff.get("/admin/chat/message/?q=rum").text
    assert "Where be the rum?" in found and "Sweet tea?" not in found
    by_author = staff.get("/admin/chat/message/?q=Anne").text
    assert "Where be the rum?" in by_author and "Sweet tea?" not in by_author
    assert "12 + 5" in page  # usage shown


def test_role_filter(staff, history):
    anne, pirate_reply, bo, belle_reply = history
    assert listed(staff, "?role__exact=user") == [bo.pk, anne.pk]
    assert listed(staff, "?role__exact=assistant") == [belle_reply.pk, pirate_reply.pk]


def test_status_filter(staff, history):
    anne, pirate_reply, bo, belle_reply = history
    assert listed(staff, "?status__exact=failed") == [belle_reply.pk]
    assert listed(staff, "?status__exact=complete") == [bo.pk, pirate_reply.pk, anne.pk]
    assert listed(staff, "?status__exact=streaming") == []


def test_room_and_author_filters_and_search_by_author(staff, history):
    anne, pirate_reply, bo, belle_reply = history
    assert listed(staff, "?room__exact=BelleBot") == [belle_reply.pk, bo.pk]
    assert listed(staff, "?bot__exact=PirateBot") == [pirate_reply.pk]
    assert listed(staff, "?author__exact=Anne") == [anne.pk]
    assert listed(staff, "?q=Bo") == [bo.pk]
    assert listed(staff, "?q=anne") == [anne.pk]  # search ignores case
    assert listed(staff, "?role__exact=user&q=Bo") == [bo.pk]


def test_date_hierarchy_drills_down_by_year_month_and_day(staff, history):
    def dated(content, year, month, day):
        message = Message.objects.create(room="ChatBot", role="user", content=content)
        Message.objects.filter(pk=message.pk).update(created_at=datetime(year, month, day, 12, tzinfo=dt_timezone.utc))
        return message.pk

    march_5, march_20, july_9 = dated("a", 2024, 3, 5), dated("b", 2024, 3, 20), dated("c", 2024, 7, 9)

    assert 'href="?created_at__year=2024"' in staff.get("/admin/chat/message/").text
    year = staff.get("/admin/chat/message/?created_at__year=2024").text
    assert 'href="?created_at__month=3&amp;created_at__year=2024"' in year
    assert listed(staff, "?created_at__year=2024") == [july_9, march_20, march_5]
    assert listed(staff, "?created_at__year=2024&created_at__month=3") == [march_20, march_5]
    assert listed(staff, "?created_at__year=2024&created_at__month=3&created_at__day=5") == [march_5]
    assert listed(staff, f"?created_at__year={timezone.now().year}") == [m.pk for m in reversed(history)]


def test_transcript_shows_a_room_in_order(staff, history):
    page = staff.get("/admin/chat/message/transcript/PirateBot/").text
    assert page.index("Where be the rum?") < page.index("In the hold, matey.")
    assert "Sweet tea?" not in page and "Anne" in page
    assert staff.get("/admin/chat/message/transcript/NoBot/").status_code == 404


def test_usage_table_and_chart_with_votes_per_bot_and_day(staff, history):
    _, pirate_reply, _, _ = history
    for voter, value in [("a", "up"), ("b", "up"), ("c", "down")]:
        Feedback.objects.cast(pirate_reply, voter, value)
    page = staff.get("/admin/chat/message/usage/").text.replace("\n", "")
    assert "<svg" in page
    assert "<td>PirateBot</td><td>1</td><td>12</td><td>5</td><td>2</td><td>1</td>" in page


def test_replies_filter_by_feedback_and_removal(staff, history):
    anne, pirate_reply, _, _ = history
    quiet = Message.objects.create(room="Lounge", bot="ChatBot", role="assistant", content="Hi all.")
    Feedback.objects.cast(pirate_reply, "a", "down")
    assert listed(staff, "?feedback=down") == [pirate_reply.pk]
    assert listed(staff, "?feedback=up") == []
    assert listed(staff, "?feedback=none") == [quiet.pk]
    Message.objects.remove(anne.pk, by="ops")
    assert listed(staff, "?removed_at__isempty=0") == [anne.pk]
    page = staff.get(f"/admin/chat/message/{anne.pk}/change/").text
    assert "Where be the rum?" in page and "ops" in page


def test_the_admin_lists_mutes_and_lifts_them(staff):
    from datetime import timedelta

    mute = Mute.objects.create(sender="guest:s-1", author="Troll", until=timezone.now() + timedelta(hours=1), created_by="ops")
    assert Mute.objects.until(["guest:s-1"]) == mute.until
    page = staff.get("/admin/chat/mute/").text
    assert "Troll" in page and "s-1" in page
    response = staff.post("/admin/chat/mute/", {"action": "lift", "_selected_action": [mute.pk]})
    assert response.status_code == 302
    assert Mute.objects.until(["guest:s-1"]) is None


async def settled(pk, timeout=10):
    """Message pk once it is no longer pending or streaming."""
    deadline = time.monotonic() + timeout
    while (message := await Message.objects.aget(pk=pk)).is_active:
        assert time.monotonic() < deadline, f"message {pk} still {message.status} after {timeout}s"
        await asyncio.sleep(0.05)
    return message


@pytest.mark.django_db(transaction=True)  # committed, so the reply job starts after the action
async def test_retry_action_answers_retryable_replies_again(upstream, async_client, admin_user, history):
    upstream.will(text="Sweet tea it is, sugar.", rate=100)
    await async_client.aforce_login(admin_user)
    _, complete, _, failed = history
    response = await async_client.post(
        "/admin/chat/message/", {"action": "retry_replies", "_selected_action": [failed.pk, complete.pk]}
    )
    assert response.status_code == 302
    retried = await settled(failed.pk)
    assert (retried.status, retried.content, retried.error) == ("complete", "Sweet tea it is, sugar.", "")
    untouched = await Message.objects.aget(pk=complete.pk)
    assert (untouched.status, untouched.content) == ("complete", "In the hold, matey.")
    # Only the failed reply was answered again, from its room's history.
    (exchange,) = upstream.exchanges
    assert exchange.messages[-1] == {"role": "user", "content": "Bo: Sweet tea?"}


def test_delete_action_removes_messages_and_tells_the_room(staff, history, django_capture_on_commit_callbacks):
    import asyncio

    from asgiref.sync import async_to_sync, sync_to_async
    from channels.layers import get_channel_layer

    def delete():
        with django_capture_on_commit_callbacks(execute=True):
            return staff.post("/admin/chat/message/", {
                "action": "delete_selected", "_selected_action": [history[0].pk], "post": "yes",
            })

    async def delete_while_a_page_listens():
        # One event loop for the listening page: a pub/sub layer's channels belong to one loop.
        layer = get_channel_layer()
        page = await layer.new_channel()
        await layer.group_add("PirateBot.messages", page)
        response = await sync_to_async(delete)()
        return response, await asyncio.wait_for(layer.receive(page), 10)

    response, message = async_to_sync(delete_while_a_page_listens)()
    assert response.status_code == 302
    assert not Message.objects.filter(pk=history[0].pk).exists()
    assert message["frame"] == f'<turbo-stream action="remove" target="message_{history[0].pk}"></turbo-stream>'
