"""Rooms people make and run: /rooms/new, the members page, the moderators' powers, bad input
refused with a sentence, and a member removed mid-reply cut off within a second."""

import asyncio
import html
import json
import threading
import time

import pytest
import websockets
from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model
from channels.testing import WebsocketCommunicator
from django.core.cache import cache
from django.db import connection, connections, transaction
from django.test import AsyncClient, Client
from websockets.exceptions import ConnectionClosed, InvalidStatus

from bots.models import Bot, Membership, Room
from chat import limits
from chat.delivery import fanout
from chat.delivery.frames import heading_mark
from chat.models import ApiKey, Message
from project.asgi import application
from tests.rooms import OPEN, ORIGIN, grows, parse_frames
from tests.servers import Browser, daphne
from tests.sse import open_stream
from tests.test_end_to_end import provider_env

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "quiet-harbour-7731"
TALE = " ".join(f"word{n}" for n in range(80))  # at 20 tokens a second: about 8 s of reply


def people(*names, staff=()):
    return {name: get_user_model().objects.create_user(name, password=PASSWORD, is_staff=name in staff) for name in names}


def signed_in(client, user):
    client.force_login(user)
    return client


def new_room(client, REMOTE_ADDR="127.0.0.1", **fields):
    return client.post("/rooms/new", {"key": "den", "title": "The Den", "topic": "Plans", "visibility": "members",
                                      "bot": "", **fields}, REMOTE_ADDR=REMOTE_ADDR)


def test_a_signed_in_person_makes_a_room_and_moderates_it(client):
    ada = people("ada")["ada"]
    assert client.get("/rooms/new")["Location"].startswith("/accounts/login/")  # guests sign in first
    assert new_room(client).status_code == 302 and not Room.objects.filter(key="den").exists()
    signed_in(client, ada)
    assert 'href="/rooms/new"' in client.get("/").text
    response = new_room(client, bot="PirateBot")
    assert response.status_code == 302 and response["Location"] == "/rooms/den/"
    room = Room.objects.get(key="den")
    assert (room.title, room.topic, room.visibility, room.bot.key, room.created_by) == ("The Den", "Plans", "members", "PirateBot", ada)
    assert list(Membership.objects.filter(room=room).values_list("user__username", "role")) == [("ada", "moderator")]
    page = client.get("/rooms/den/")
    assert page.status_code == 200 and 'class="staff"' in page.text  # a moderator's page shows Remove and Mute
    lobby = client.get("/").text
    assert "/rooms/den/" in lobby and "Plans" in lobby


@pytest.mark.parametrize(("fields", "sentence"), [
    ({"key": "has space"}, "A room&#x27;s key is 1 to 40 letters"),
    ({"key": "x" * 41}, "at most 40 characters"),
    ({"key": "LOUNGE"}, "The key &#x27;LOUNGE&#x27; is not available; choose another."),
    ({"key": "New"}, "The key &#x27;New&#x27; is not available; choose another."),
    ({"key": "members"}, "The key &#x27;members&#x27; is not available; choose another."),
    ({"visibility": "secret"}, "Visibility is &quot;public&quot; or &quot;members&quot;."),
    ({"bot": "NoSuchBot"}, "There is no active bot with that key"),
    ({"bot": "SleepyBot"}, "There is no active bot with that key"),
    ({"title": ""}, "This field is required."),
])
def test_a_new_room_refuses_bad_input_with_a_sentence_and_saves_nothing(client, fields, sentence):
    Bot.objects.create(key="SleepyBot", name="Sleepy", persona="You sleep.", active=False)
    signed_in(client, people("ada")["ada"])
    rooms = Room.objects.count()
    response = new_room(client, **fields)
    assert response.status_code == 400
    assert sentence in response.text
    assert Room.objects.count() == rooms and not Membership.objects.exists()


def test_a_taken_key_reads_the_same_whether_or_not_its_room_may_be_read(client):
    users = people("ada", "bea")
    signed_in(client, users["ada"])
    assert new_room(client, key="hidden").status_code == 302  # ada's members room: bea may not read it
    signed_in(client, users["bea"])
    answers = {key: new_room(client, key=key) for key in ("hidden", "HIDDEN", "Lounge", "search")}
    assert {key: answer.status_code for key, answer in answers.items()} == dict.fromkeys(answers, 400)
    for key, answer in answers.items():
        # One sentence for a room bea cannot read, one she can, and a reserved word: nothing tells them apart.
        assert f"The key &#x27;{key}&#x27; is not available; choose another." in answer.text
        assert "exists" not in answer.text
    assert client.get("/rooms/hidden/").status_code == 404
    assert new_room(client, key="hidden2").status_code == 302  # another key is hers to take


def test_room_creation_has_a_budget_per_account_and_address(client, settings):
    settings.ROOM_CREATIONS_PER_HOUR = 2
    if (left := limits.ROOM_WINDOW - time.time() % limits.ROOM_WINDOW) < 15:
        time.sleep(left + 0.1)  # inside one counting window, not across two
    cache.clear()  # accounts' ids come again in every test: no count left from an earlier one
    users = people("ada", "bea")
    signed_in(client, users["ada"])
    assert new_room(client, key="den1", REMOTE_ADDR="10.0.3.1").status_code == 302
    assert new_room(client, key="Lounge", REMOTE_ADDR="10.0.3.2").status_code == 400  # a refused try counts too
    refused = new_room(client, key="den3", REMOTE_ADDR="10.0.3.3")
    assert refused.status_code == 429 and 0 < int(refused["Retry-After"]) <= 3601
    assert "You are creating rooms too fast (2 tries an hour); try again in" in refused.text
    # Another account from another address has its own budget; from ada's first address, not any more.
    signed_in(client, users["bea"])
    assert new_room(client, key="den4", REMOTE_ADDR="10.0.3.9").status_code == 302
    assert new_room(client, key="den5", REMOTE_ADDR="10.0.3.9").status_code == 302
    signed_in(client, people("cy")["cy"])
    from_there = new_room(client, key="den6", REMOTE_ADDR="10.0.3.9")
    assert from_there.status_code == 429 and "Too many rooms are being created from your address" in from_there.text
    assert sorted(Room.objects.filter(key__startswith="den").values_list("key", flat=True)) == ["den1", "den4", "den5"]


def test_room_creation_follows_the_setting(client, settings):
    users = people("ada", "ops", staff=("ops",))
    signed_in(client, users["ada"])
    settings.ROOM_CREATION = "staff"
    response = new_room(client)
    assert response.status_code == 403 and "Only staff can create rooms here." in response.text
    assert 'href="/rooms/new"' not in client.get("/").text
    signed_in(client, users["ops"])
    assert new_room(client).status_code == 302
    settings.ROOM_CREATION = "off"
    assert new_room(client, key="den2").status_code == 404 and client.get("/rooms/new").status_code == 404
    assert list(Room.objects.filter(key__startswith="den").values_list("key", flat=True)) == ["den"]


def test_a_guest_at_a_rooms_address_is_offered_to_log_in_and_a_member_who_does_gets_in(client):
    """A members room's link opened logged out: the not-found page (the same for a room that does not
    exist: it tells nothing) offers to log in, and back to the room."""
    users = people("ada", "otto")
    signed_in(client, users["ada"])
    assert new_room(client).status_code == 302
    client.logout()
    offer = 'href="/accounts/login/?next=/rooms/{}/">Log in</a>'
    for key in ("den", "nowhere"):
        response = client.get(f"/rooms/{key}/")
        assert response.status_code == 404 and offer.format(key) in response.text, key
    elsewhere = client.get("/direct/NoSuchBot/")  # another page's not-found: nothing about rooms
    assert elsewhere.status_code == 404 and "A members room shows only" not in elsewhere.text
    signed_in(client, users["otto"])  # logged in, and still not a member: nothing to offer
    response = client.get("/rooms/den/")
    assert response.status_code == 404 and "/accounts/login/" not in response.text
    client.logout()
    logged_in = client.post("/accounts/login/?next=/rooms/den/", {"username": "ada", "password": PASSWORD, "next": "/rooms/den/"})
    assert logged_in.status_code == 302 and logged_in["Location"] == "/rooms/den/"
    assert client.get("/rooms/den/").status_code == 200


def test_a_member_leaves_a_room_and_its_last_moderator_cannot(client):
    users = people("ada", "bea", "otto")
    signed_in(client, users["ada"])
    assert new_room(client).status_code == 302
    assert client.post("/rooms/den/members", {"action": "add", "username": "bea"}).status_code == 303
    leave = {"action": "leave"}
    refused = client.post("/rooms/den/members", leave)  # ada, its one moderator
    assert refused.status_code == 400 and "A room keeps at least one moderator" in refused.text
    signed_in(client, users["bea"])
    page = client.get("/rooms/den/").text
    assert 'value="leave"' in page and 'href="/rooms/den/members"' not in page  # a member leaves; she does not run it
    left = client.post("/rooms/den/members", leave)
    assert left.status_code == 303 and left["Location"] == "/"
    assert client.get("/rooms/den/").status_code == 404  # a members room: gone for her
    assert list(Membership.objects.values_list("user__username", flat=True)) == ["ada"]
    lounge = client.post("/rooms/Lounge/members", leave)  # a room she never belonged to
    assert lounge.status_code == 400 and "bea is not a member of this room." in lounge.text
    assert 'value="leave"' not in client.get("/rooms/Lounge/").text
    client.logout()
    guest = client.post("/rooms/Lounge/members", leave)
    assert guest.status_code == 400 and "Only a room&#x27;s members can leave it." in guest.text
    assert client.post("/rooms/den/members", leave).status_code == 404  # not even there, to a guest


def test_moderators_add_and_remove_members_and_change_the_room(client):
    users = people("ada", "bea", "cal")
    signed_in(client, users["ada"])
    assert new_room(client).status_code == 302
    members = "/rooms/den/members"
    assert client.post(members, {"action": "add", "username": "bea"}).status_code == 303
    settings_of = {"action": "room", "title": "The Den", "topic": "Plans", "visibility": "members"}
    assert client.post(members, {**settings_of, "topic": "  Plans for spring "}).status_code == 303
    page = client.get(members).text
    assert "bea" in page and 'value="Plans for spring"' in page
    refusals = [
        ({"action": "add", "username": "nobody"}, "There is no one called &#x27;nobody&#x27; here"),
        ({"action": "add", "username": ""}, "Type a username."),
        ({"action": "add", "username": "bea"}, "bea is already a member of this room."),
        ({"action": "add", "username": "cal", "role": "king"}, "Role is &quot;member&quot; or &quot;moderator&quot;."),
        ({"action": "remove", "username": "cal"}, "cal is not a member of this room."),
        ({"action": "remove", "username": "ada"}, "A room keeps at least one moderator"),
        ({"action": "promote", "username": "cal"}, "Send action &quot;add&quot;, &quot;remove&quot;, &quot;role&quot; or &quot;room&quot;."),
        ({"action": "role", "username": "bea"}, "Role is &quot;member&quot; or &quot;moderator&quot;."),
        ({"action": "role", "username": "cal", "role": "moderator"}, "cal is not a member of this room."),
        ({"action": "role", "username": "ada", "role": "member"}, "A room keeps at least one moderator"),
        ({**settings_of, "topic": "x" * 301}, "Ensure this value has at most 300 characters (it has 301)."),
        ({**settings_of, "title": "  "}, "This field is required."),
        ({**settings_of, "title": "Den\x00"}, "Null characters are not allowed."),
        ({**settings_of, "title": "x" * 81}, "Ensure this value has at most 80 characters (it has 81)."),
        ({**settings_of, "visibility": "secret"}, "Visibility is &quot;public&quot; or &quot;members&quot;."),
    ]
    for fields, sentence in refusals:
        response = client.post(members, fields)
        assert response.status_code == 400 and sentence in response.text, fields
    assert sorted(Membership.objects.values_list("user__username", "role")) == [("ada", "moderator"), ("bea", "member")]
    assert Room.objects.get(key="den").topic == "Plans for spring"
    # Renamed; the key stays (it is the room's address).
    assert client.post(members, {**settings_of, "title": "The Big Den", "key": "lair"}).status_code == 303
    assert Room.objects.filter(key="den").values_list("title", "topic", "visibility").get() == ("The Big Den", "Plans", "members")
    # A member made a moderator; the first moderator, no longer the last, steps down; and back again.
    assert client.post(members, {"action": "role", "username": "bea", "role": "moderator"}).status_code == 303
    stepped_down = client.post(members, {"action": "role", "username": "ada", "role": "member"})
    assert stepped_down.status_code == 303 and stepped_down["Location"] == "/rooms/den/"  # this page is no longer hers
    assert sorted(Membership.objects.values_list("user__username", "role")) == [("ada", "member"), ("bea", "moderator")]
    assert client.post(members, {"action": "add", "username": "cal"}).status_code == 403  # ada no longer runs it
    assert client.post(members, {"action": "role", "username": "ada", "role": "moderator"}).status_code == 403
    signed_in(client, users["bea"])
    # The visible words first, then whom: a voice naming what it sees reaches the button.
    assert 'Make a moderator<span class="visually-hidden"> (ada)</span>' in client.get(members).text
    assert client.post(members, {"action": "role", "username": "ada", "role": "moderator"}).status_code == 303
    assert client.post(members, {"action": "role", "username": "bea", "role": "member"}).status_code == 303
    assert sorted(Membership.objects.values_list("user__username", "role")) == [("ada", "moderator"), ("bea", "member")]
    # A member who is not a moderator reads the room but does not run it.
    signed_in(client, users["bea"])
    assert client.get("/rooms/den/").status_code == 200
    response = client.post(members, {"action": "add", "username": "cal"})
    assert response.status_code == 403 and "Only the room&#x27;s moderators" in response.text
    assert client.post(members, {"action": "role", "username": "bea", "role": "moderator"}).status_code == 403
    # Removed, the room is gone for them.
    signed_in(client, users["ada"])
    assert client.post(members, {"action": "remove", "username": "bea"}).status_code == 303
    signed_in(client, users["bea"])
    assert client.get("/rooms/den/").status_code == 404 and "/rooms/den/" not in client.get("/").text
    # Opened to everyone by its moderator: anyone reads it again, under its new title.
    signed_in(client, users["ada"])
    assert client.post(members, {**settings_of, "title": "The Big Den", "visibility": "public"}).status_code == 303
    signed_in(client, users["bea"])
    assert "<h1 id=\"room-title\"><span id=\"room_name\">The Big Den</span>" in client.get("/rooms/den/").text


def test_a_rooms_moderator_removes_and_mutes_in_their_own_room_only(client):
    users = people("ada", "bea")
    signed_in(client, users["ada"])
    new_room(client, visibility="public")
    mine = Message.objects.create(room="den", role="user", content="spam", author="bea", sender=f"user:{users['bea'].pk}")
    theirs = Message.objects.create(room="Lounge", role="user", content="spam too", author="bea", sender=f"user:{users['bea'].pk}")
    assert client.post(f"/rooms/den/messages/{mine.pk}/remove").status_code == 303
    assert client.post(f"/rooms/den/messages/{mine.pk}/mute").status_code == 303
    mine.refresh_from_db()
    assert mine.removed_at is not None and mine.removed_by == "ada"
    response = client.post(f"/rooms/Lounge/messages/{theirs.pk}/remove")
    assert response.status_code == 403 and "Only moderators can remove messages." in response.text
    theirs.refresh_from_db()
    assert theirs.removed_at is None
    # The mute holds in Ada's room, not in every room: anyone signed in may make a room.
    signed_in(client, users["bea"])
    muted = client.post("/rooms/den/messages", {"content": "still here?"})
    assert muted.status_code == 403 and "A moderator muted you until" in muted.text
    assert client.post("/rooms/Lounge/messages", {"content": "hello Lounge"}).status_code == 303
    assert Message.objects.filter(room="Lounge", content="hello Lounge").exists()
    assert not Message.objects.filter(room="den", content="still here?").exists()


@sync_to_async
def members_room():
    users = people("olga", "mia")
    room = Room.objects.create(key="vault", title="The Vault", visibility="members", bot=Bot.objects.get(key="PirateBot"))
    Membership.objects.create(room=room, user=users["olga"], role="moderator")
    Membership.objects.create(room=room, user=users["mia"], role="member")
    return ApiKey.objects.issue("mia's script", user=users["mia"])[1]


@sync_to_async
def sign_in(server, username):
    browser = Browser(server.url)
    token = browser.form_token("/accounts/login/")
    status, _, _ = browser.submit("/accounts/login/", "/accounts/login/", token, {"username": username, "password": PASSWORD})
    assert status == 302
    return browser


def cookie_of(browser):
    return "; ".join(f"{c.name}={c.value}" for c in browser.cookies)


def csrf_of(browser):
    return next(c.value for c in browser.cookies if c.name == "csrftoken")


async def test_a_member_removed_mid_reply_is_closed_within_a_second_and_gets_nothing_more(upstream):
    key = await members_room()
    upstream.will(text=TALE, rate=20)
    with daphne(provider_env(upstream)) as server:
        olga, mia = await sign_in(server, "olga"), await sign_in(server, "mia")
        url = f"{server.ws_url}/ws/rooms/vault/"
        events_connection, events = await sync_to_async(open_stream)(
            server.url, "GET", "/api/rooms/vault/events", None, {"Authorization": f"Bearer {key}"})
        assert events.status == 200
        async with websockets.connect(url, origin=server.url, additional_headers={"Cookie": cookie_of(olga)}) as olgas, \
                websockets.connect(url, origin=server.url, additional_headers={"Cookie": cookie_of(mia)}) as mias:
            status, _, _ = await sync_to_async(olga.request)(
                "POST", "/rooms/vault/messages", {"csrfmiddlewaretoken": csrf_of(olga), "content": "Tell a long tale"})
            assert status == 303
            reply = await Message.objects.aget(room="vault", role="assistant")
            mias_frames = []
            async with asyncio.timeout(10):  # until the reply is streaming into Mia's page
                while not any(grows(reply.pk)(f) for f in mias_frames):
                    mias_frames += parse_frames(await mias.recv())

            status, _, body = await sync_to_async(olga.request)(
                "POST", "/rooms/vault/members", {"csrfmiddlewaretoken": csrf_of(olga), "action": "remove", "username": "mia"})
            assert status == 303, body
            removed_at = time.monotonic()
            with pytest.raises(ConnectionClosed) as closed:
                async with asyncio.timeout(5):
                    while True:
                        mias_frames += parse_frames(await mias.recv())
            assert time.monotonic() - removed_at < 1.0
            assert closed.value.rcvd.code == 4403
            # Her key's event stream ends too (a read that never ended would time out).
            await sync_to_async(_read_to_end)(events_connection, events)
            assert time.monotonic() - removed_at < 2.0
            events_connection.close()

            # The reply goes on for Olga, to its end; Mia saw only its beginning, and cannot come back.
            olgas_frames = []
            async with asyncio.timeout(15):
                while not any(f[0] == "replace" and f[1] == f"message_{reply.pk}" and 'data-status="complete"' in f[3]
                              for f in olgas_frames):
                    olgas_frames += parse_frames(await olgas.recv())
            seen_by_mia = max(int(f[2].split('o="')[1].split('"')[0]) + len(f[3]) for f in mias_frames if grows(reply.pk)(f))
            await reply.arefresh_from_db()
            assert reply.status == "complete" and seen_by_mia < len(reply.content)
            with pytest.raises(InvalidStatus) as refused:
                async with websockets.connect(url, origin=server.url, additional_headers={"Cookie": cookie_of(mia)}):
                    pass
            assert refused.value.response.status_code == 403
            status, _, _ = await sync_to_async(mia.get)("/rooms/vault/")
            assert status == 404


def _read_to_end(connection, response):
    """What is left of an event stream until the server ends it (a timeout if it never does)."""
    connection.sock.settimeout(2)
    return response.read().decode()


def test_the_api_lists_a_members_room_only_to_its_members_keys(client):
    users = people("mia", "otto")
    room = Room.objects.create(key="vault", title="The Vault", visibility="members")
    Membership.objects.create(room=room, user=users["mia"])
    keys = {name: ApiKey.objects.issue(name, user=users.get(name))[1] for name in ("mia", "otto", "none")}

    def listed(name):
        response = client.get("/api/rooms", HTTP_AUTHORIZATION=f"Bearer {keys[name]}")
        return [entry["key"] for entry in json.loads(response.content)]

    assert "vault" in listed("mia") and "vault" not in listed("otto") and "vault" not in listed("none")
    assert "Lounge" in listed("none")


async def test_a_save_making_a_room_members_only_has_its_pages_checked_and_a_new_title_or_topic_reaches_them():
    """Only a save that makes the room members-only has its pages check again; only a new title or
    topic sends the pages a frame (to the heading, the switcher's link and the window's title; to the
    element under the title); other saves send the room nothing."""
    from channels.layers import get_channel_layer

    layer = get_channel_layer()
    listener = await layer.new_channel()
    await layer.group_add("den.messages", listener)  # where every process's fan-out hears the room
    row = await sync_to_async(Room.objects.create)(key="den", title="The Den", visibility="public")
    marker = {"type": "room.frame", "group": "den.messages", "frame": "marker"}

    async def sent_by(save):
        """What the layer carries to the room after save runs, up to a marker sent behind it."""
        await sync_to_async(save)()
        await layer.group_send("den.messages", marker)
        carried = []
        async with asyncio.timeout(10):
            while (message := await layer.receive(listener)) != marker:
                carried.append((message["type"], message.get("frame")))
        return carried

    def edit(**fields):
        def save():
            for name, value in fields.items():
                setattr(row, name, value)
            row.save()
        return save

    def update(target, text):
        return f'<turbo-stream action="update" target="{target}"><template>{text}</template></turbo-stream>'

    def mark(title, topic):
        shown = heading_mark(Room(title=title, topic=topic))
        return f'<turbo-stream action="replace" target="room_heading"><template><span id="room_heading" data-mark="{shown}" hidden></span></template></turbo-stream>'

    def topic(text, title="The Den"):
        return ("room.frame", update("room_topic", html.escape(text)) + mark(title, text))

    assert await sent_by(edit(topic="Plans & more")) == [topic("Plans & more")]  # public, stays public
    assert await sent_by(edit(visibility="members")) == [("room.recheck", None)]
    title = update("room_name", "Den") + update("nav_room", "Den") + update("page_title", "Den · Parley")
    assert await sent_by(edit(topic="Other plans", title="Den")) == [("room.frame", title + topic("Other plans", "Den")[1])]
    assert await sent_by(edit(visibility="members")) == []  # members already
    assert await sent_by(lambda: Room.objects.get(pk=row.pk).save(update_fields=["title", "visibility"])) == []  # the same title
    assert await sent_by(lambda: Room.objects.filter(pk=row.pk).update(visibility="public")) == []  # no signal
    assert await sent_by(lambda: Room.objects.get(pk=row.pk).save(update_fields=["topic"])) == []  # the same topic
    assert await sent_by(edit(visibility="members")) == [("room.recheck", None)]


@sync_to_async
def session_cookie(username):
    """The Cookie header of a signed-in session of username's."""
    client = Client()
    client.force_login(get_user_model().objects.get(username=username))
    return f"sessionid={client.cookies['sessionid'].value}".encode()


def remove_mia():
    try:
        Membership.objects.filter(room__key="vault", user__username="mia").delete()
    finally:
        connection.close()  # a thread of its own: its connection goes with it


async def removed_while_joining(room_group, way_in):
    """Start way_in (a coroutine) while this process's fan-out cannot yet join room_group (its own
    lock held), remove Mia from the vault once way_in waits to join, then let it join; way_in's result.
    The removal's message goes out while no one here listens: only a check after the join sees it."""
    joining = fanout.rooms()
    async with joining.lock:
        entering = asyncio.create_task(way_in)
        async with asyncio.timeout(10):
            while not joining.rooms.get(room_group):  # checked once, now waiting to join
                await asyncio.sleep(0.01)
        # Not on the thread shared with requests: the one way_in makes holds it while it waits to join.
        await sync_to_async(remove_mia, thread_sensitive=False)()
    async with asyncio.timeout(10):
        return await entering


async def test_a_member_removed_while_their_socket_joins_the_room_is_refused_and_hears_nothing():
    await members_room()
    mia = WebsocketCommunicator(application, "/ws/rooms/vault/", headers=[*ORIGIN, (b"cookie", await session_cookie("mia"))])
    OPEN.append(mia)

    connected, _ = await removed_while_joining("vault.messages", mia.connect())

    assert connected is False  # refused at the handshake, as a room that does not exist is
    assert not fanout.rooms().rooms.get("vault.messages")  # and no longer handed the room's frames
    olga = WebsocketCommunicator(application, "/ws/rooms/vault/", headers=[*ORIGIN, (b"cookie", await session_cookie("olga"))])
    OPEN.append(olga)
    assert (await olga.connect())[0] is True  # a member still gets in


async def test_a_key_removed_while_its_event_stream_joins_the_room_gets_the_missing_rooms_404():
    key = await members_room()
    client = AsyncClient()

    response = await removed_while_joining("vault.messages", client.get("/api/rooms/vault/events", headers={"Authorization": f"Bearer {key}"}))

    missing = await client.get("/api/rooms/no-such-room/events", headers={"Authorization": f"Bearer {key}"})
    assert (response.status_code, missing.status_code) == (404, 404)
    assert response.content == missing.content.replace(b"no-such-room", b"vault")
    assert not fanout.rooms().rooms.get("vault.messages")


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_two_moderators_stepping_each_other_down_at_once_leave_one():
    """A change of members locks the room's row before it counts moderators: a second change waits,
    then counts what the first left. Here the first holds the lock while it steps bea down; bea's
    own request to step ada down (bea a moderator still when it passed the door) waits, then is refused."""
    users = people("ada", "bea")
    room = Room.objects.create(key="den", title="Den", visibility="members")
    for name in ("ada", "bea"):
        Membership.objects.create(room=room, user=users[name], role="moderator")
    locked, failures = threading.Event(), []

    def first_change():
        """Another request's change, holding the room's lock until bea's request waits for it."""
        try:
            with transaction.atomic():
                Room.objects.select_for_update().get(pk=room.pk)
                Membership.objects.filter(room=room, user=users["bea"]).update(role="member")
                locked.set()
                with connection.cursor() as cursor:
                    for _ in range(1000):  # a row lock's waiter shows in PostgreSQL's activity view
                        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'")
                        if cursor.fetchone()[0]:
                            break
                        time.sleep(0.01)
                    else:
                        failures.append("bea's request never waited for the room's lock")
        finally:
            locked.set()
            connections.close_all()

    holder = threading.Thread(target=first_change)
    holder.start()
    assert locked.wait(30)
    client = Client()
    signed_in(client, users["bea"])
    response = client.post("/rooms/den/members", {"action": "role", "username": "ada", "role": "member"})
    holder.join(30)
    assert failures == []
    assert response.status_code == 400 and "A room keeps at least one moderator" in response.text
    assert sorted(Membership.objects.values_list("user__username", "role")) == [("ada", "moderator"), ("bea", "member")]
