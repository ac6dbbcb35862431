"""Pages and form endpoints through Django's test client: what a browser without JavaScript gets."""

import datetime

import pytest
from django.utils import timezone

from chat.models import Message

pytestmark = pytest.mark.django_db


def test_lobby_links_every_bot(client):
    response = client.get("/")
    assert response.status_code == 200
    for key, name in [("ChatBot", "Default"), ("BelleBot", "Southern Belle"), ("PirateBot", "Pirate")]:
        assert f'href="/rooms/{key}/"' in response.text and name in response.text


def test_room_page_shows_messages_newest_first_with_the_form(client):
    older = Message.objects.create(room="BelleBot", role="user", content="Good morning", author="Ann")
    newer = Message.objects.create(room="BelleBot", bot="BelleBot", role="assistant", content="Why, **hello** there")
    response = client.get("/rooms/BelleBot/")
    assert response.status_code == 200
    page = response.text
    assert page.index(f'id="message_{newer.pk}"') < page.index(f'id="message_{older.pk}"')
    assert "<strong>hello</strong>" in page and 'id="messages"' in page
    assert 'action="/rooms/BelleBot/messages"' in page and 'name="csrfmiddlewaretoken"' in page
    assert 'socket="/ws/rooms/BelleBot/"' in page


def test_unknown_room_is_404(client):
    assert client.get("/rooms/EvilBot/").status_code == 404
    assert client.post("/rooms/EvilBot/messages", {"content": "hi"}).status_code == 404


@pytest.mark.parametrize(
    ("content", "problem"),
    [("", "Write a message"), ("   ", "Write a message"), ("x" * 4001, "limited to 4000 characters")],
)
def test_bad_messages_get_a_clear_4xx_and_nothing_is_saved(client, content, problem):
    response = client.post("/rooms/ChatBot/messages", {"content": content})
    assert response.status_code == 422
    assert problem in response.text
    assert not Message.objects.exists()


def test_turbo_form_posts_get_a_stream_answer(client):
    response = client.post("/rooms/ChatBot/messages", {"content": ""}, headers={"Accept": "text/vnd.turbo-stream.html"})
    assert response.status_code == 422
    assert response["Content-Type"] == "text/vnd.turbo-stream.html"
    assert '<turbo-stream action="update" target="form_error">' in response.text


def test_stop_and_retry_of_finished_replies_change_nothing(staff):
    done = Message.objects.create(room="ChatBot", bot="ChatBot", role="assistant", content="Done.", status="complete")
    assert staff.post(f"/rooms/ChatBot/messages/{done.pk}/stop").status_code == 303
    assert staff.post(f"/rooms/ChatBot/messages/{done.pk}/retry").status_code == 303
    done.refresh_from_db()
    assert (done.status, done.content) == ("complete", "Done.")


def test_stop_and_retry_need_post_and_a_reply_of_that_room(client):
    reply = Message.objects.create(room="ChatBot", bot="ChatBot", role="assistant", status="streaming")
    assert client.get(f"/rooms/ChatBot/messages/{reply.pk}/stop").status_code == 405
    assert client.post(f"/rooms/PirateBot/messages/{reply.pk}/stop").status_code == 404
    assert client.post(f"/rooms/ChatBot/messages/{reply.pk + 99}/stop").status_code == 404


def test_message_frame_repairs_one_message(client):
    reply = Message.objects.create(room="ChatBot", bot="ChatBot", role="assistant", status="streaming", content="Half a")
    response = client.get(f"/rooms/ChatBot/messages/{reply.pk}")
    assert response["Content-Type"] == "text/vnd.turbo-stream.html"
    assert response.text.startswith(f'<turbo-stream action="replace" target="message_{reply.pk}">')
    assert f'<div id="message_{reply.pk}_content" class="content text" data-length="6">Half a</div>' in response.text


def test_healthz_answers_when_database_and_channel_layer_do(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "channel_layer": "ok"}


def test_django_s_500_page_is_the_app_s_in_the_reader_s_language_without_a_query():
    from django.template.loader import render_to_string
    from django.test import RequestFactory
    from django.utils import translation
    from django.views.defaults import server_error

    with translation.override("es"):
        page = server_error(RequestFactory().get("/")).content.decode()  # it renders with no context
    assert '<html lang="es">' in page and "<h1>Algo salió mal</h1>" in page and 'href="/"' in page
    assert "/static/chat/parley.css" in page
    assert "Back in a moment" in render_to_string("503.html", {"back": "/rooms/Lounge/"})


def test_user_text_is_escaped_and_reply_markdown_is_sanitized(client):
    Message.objects.create(room="ChatBot", role="user", content="<script>alert(1)</script>")
    Message.objects.create(room="ChatBot", bot="ChatBot", role="assistant", content='[x](javascript:alert(1)) <img src=x onerror=alert(1)>')
    page = client.get("/rooms/ChatBot/").text
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;" in page
    assert "href=\"javascript:" not in page and "<img" not in page


def test_the_lobby_asks_the_same_queries_for_three_rooms_as_for_thirteen(client, django_user_model):
    """Each listed room's last message and unread count come from a query each for all of them, and the rooms a person may
    enter are read once for the lobby and the switcher: no query per room."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from bots.models import Membership, Room

    ada = django_user_model.objects.create_user("ada", password="pw-ada-123")
    client.force_login(ada)

    def lobby():
        client.get("/")  # the registry reads changed rows once, on the first look after a change: not the lobby's own
        with CaptureQueriesContext(connection) as captured:
            response = client.get("/")
        assert response.status_code == 200
        return response.text, [query["sql"] for query in captured.captured_queries]

    _, few = lobby()
    for i in range(10):
        room = Room.objects.create(key=f"team{i}", title=f"Team {i}", visibility="members")
        Membership.objects.create(room=room, user=ada)
        Message.objects.create(room=room.key, role="user", content=f"hello {i}", author="Ada")
    Room.objects.create(key="secret", title="Not Ada's", visibility="members")
    page, many = lobby()
    assert len(many) == len(few)
    # When each room last spoke, and what is new to Ada in each (chat.unread): one query each for all rooms.
    assert len([sql for sql in many if "chat_message" in sql]) == 2
    assert len([sql for sql in many if "bots_membership" in sql]) == 1
    assert all(f'href="/rooms/team{i}/"' in page for i in range(10)) and "/rooms/secret/" not in page
    assert page.count("Last message just now") == 10 and page.count("No messages yet") == 4
    # An hour later: timesince's words ("0 minutes ago" was what a room that had just spoken said).
    Message.objects.filter(room__startswith="team").update(created_at=timezone.now() - datetime.timedelta(hours=1))
    assert lobby()[0].count("Last message 1\xa0hour ago") == 10


@pytest.mark.django_db(transaction=True)
def test_a_post_and_its_reply_are_saved_in_one_transaction_with_no_savepoint(client):
    """Each row takes its room's number and is inserted in the post's own transaction: no savepoint
    round trips around either (a post into a bot room made 13 queries with them, 9 without)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        response = client.post("/rooms/ChatBot/messages", {"content": "Ahoy"})
    assert response.status_code == 303
    sql = [query["sql"] for query in captured.captured_queries]
    assert len([q for q in sql if q.startswith('INSERT INTO "chat_message"')]) == 2
    assert not [q for q in sql if "SAVEPOINT" in q.upper()]
    said, reply = Message.objects.order_by("id")
    assert (said.content, reply.reply_to_id, reply.status) == ("Ahoy", said.pk, "pending")
    assert reply.seq == said.seq + 1


def test_kept_partials_carry_each_page_s_own_token_and_vote_and_the_row_as_it_stands():
    """A room page's messages come from partials kept per state of their row: each page still gets
    forms with its own token (a vote posted with it is taken), its own vote, and the counts after it."""
    import re

    from django.test import Client

    from chat.delivery import frames

    reply = Message.objects.create(room="ChatBot", bot="ChatBot", role="assistant", content="Ahoy.", status="complete")
    voter, other = Client(enforce_csrf_checks=True), Client(enforce_csrf_checks=True)
    feedback = re.compile(rf'<div id="message_{reply.pk}_feedback".*?</div>', re.S)
    token = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')

    page = voter.get("/rooms/ChatBot/").text
    (form_token,) = token.findall(feedback.search(page)[0])
    voted = voter.post(f"/rooms/ChatBot/messages/{reply.pk}/feedback", {"csrfmiddlewaretoken": form_token, "value": "up"},
                       headers={"Referer": "http://testserver/rooms/ChatBot/"})
    assert voted.status_code == 303

    mine, theirs = feedback.search(voter.get("/rooms/ChatBot/").text)[0], feedback.search(other.get("/rooms/ChatBot/").text)[0]
    assert 'data-up="1"' in mine and 'data-mine="up"' in mine and 'aria-pressed="true"' in mine
    assert 'data-up="1"' in theirs and "data-mine" not in theirs and 'aria-pressed="true"' not in theirs
    assert token.findall(mine) != token.findall(theirs)  # each page its own session's token
    reply.refresh_from_db()
    assert "csrfmiddlewaretoken" not in frames.replace(reply)  # frames go to everyone: no one's token
