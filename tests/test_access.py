"""One access check on every way in: the ways into a room are read from the URLconf and the rooms
API's OpenAPI schema (plus the room socket and its event stream), and each is tried, on a real
Daphne, by four outsiders and a member of a members-only room. Outsiders get exactly what a room
that does not exist gets, and nothing of the room; the member gets in. A route with a room that
this test does not know how to call fails it."""

import asyncio
import json
import re
from dataclasses import dataclass, field

import pytest
import websockets
from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone
from websockets.exceptions import InvalidStatus

from bots.models import Membership, Room
from chat.api.rooms import api
from chat.models import ApiKey, Feedback, Message, Mute
from tests.servers import Browser, daphne
from tests.sse import open_stream

pytestmark = pytest.mark.django_db(transaction=True)

CANARY = "The heron flies at dawn, 4417"
ROOM, MISSING = "vault", "no-such-room"
PASSWORD = "quiet-harbour-7731"
# No model: the provider points at a closed port (nothing here needs a reply's words).
NO_MODEL = {"LLM_PROVIDER": "openai", "OPENAI_API_KEY": "sk-none", "OPENAI_BASE_URL": "http://127.0.0.1:9/v1"}

# How to call each page route with a room, by URL name: (method, which message its pk names, form fields).
PAGE_CALLS = {
    "chat:room": [("GET", None, None)],
    "chat:members": [("GET", None, None), ("POST", None, {"action": "add", "username": "otto"})],
    "chat:post": [("POST", None, {"content": "Let me in"})],
    "chat:message": [("GET", "asked", None)],
    "chat:stop": [("POST", "reply", {})],
    "chat:retry": [("POST", "reply", {})],
    "chat:feedback": [("POST", "reply", {"value": "up"})],
    "chat:remove": [("POST", "asked", {})],
    "chat:mute": [("POST", "asked", {})],
    "chat:read": [("POST", None, {})],
    "programs:catch-up": [("POST", None, {"after": "0"})],
    # Staff only: everyone else is sent to the admin's log-in, for any room key.
    "admin:chat_message_transcript": [("GET", None, None)],
}
# How to call each rooms API operation with a room, by (method, OpenAPI path): its JSON body.
API_CALLS = {
    ("get", "/api/rooms/{room}/messages"): None,
    ("post", "/api/rooms/{room}/messages"): {"content": "Let me in"},
    ("post", "/api/rooms/{room}/messages/{message_id}/stop"): None,
    ("post", "/api/rooms/{room}/messages/{message_id}/retry"): None,
    ("get", "/api/rooms/{room}/events"): None,
    ("post", "/api/rooms/{room}/catch-up"): None,
}

# Ways in that name a room in the query string, not the path: search, as a page and for programs.
# Outsiders get for the room what a room that does not exist gets (400, the same sentence) and,
# searching everywhere, nothing of it.
SEARCH_CALLS = ["/search?q=heron&room={room}", "/api/search?q=heron&room={room}"]
SEARCH_EVERYWHERE = ["/search?q=heron", "/api/search?q=heron"]


def unmasked(page):
    """A page without its CSRF token, which Django masks afresh for every response."""
    return re.sub(r'(name="csrf-token" content|name="csrfmiddlewaretoken" value)="[^"]*"', "", page)


def ways_in():
    """Every URL pattern with a room in it, as (URL name, route), read from the URLconf."""
    def walk(patterns, prefix="", namespace=""):
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                inner = f"{namespace}{pattern.namespace}:" if pattern.namespace else namespace
                yield from walk(pattern.url_patterns, prefix + str(pattern.pattern), inner)
            elif isinstance(pattern, URLPattern):
                yield f"{namespace}{pattern.name}", prefix + str(pattern.pattern)
    return [(name, route) for name, route in walk(get_resolver().url_patterns) if "room>" in route]


def api_operations():
    """Every rooms API operation with a room in it, as (method, path), read from its OpenAPI schema."""
    paths = api.get_openapi_schema()["paths"]
    return [(method, path) for path, operations in paths.items() if "{room}" in path for method in operations]


@dataclass
class Person:
    """Who knocks: a browser session (signed in or not) and the API key its programs send."""

    name: str
    browser: Browser
    key: str = ""
    seen: list = field(default_factory=list)  # every body and frame they got

    def headers(self):
        return {"Authorization": f"Bearer {self.key}"} if self.key else {}

    def page(self, method, path, fields=None):
        fields = None if fields is None else {"csrfmiddlewaretoken": self.csrf(), **fields}
        status, headers, body = self.browser.request(method, path, fields, {**self.headers(), "Referer": self.browser.base_url})
        self.seen.append(body + json.dumps(headers))
        return status, headers, body

    def csrf(self):
        return next(c.value for c in self.browser.cookies if c.name == "csrftoken")


@sync_to_async
def world():
    """A members room with a moderator, a member and a member just removed; its canary message and
    reply; the people's keys, a key of another account, a key of none, a revoked key."""
    users = {name: get_user_model().objects.create_user(name, password=PASSWORD) for name in ("olga", "mia", "otto", "kim", "remi")}
    room = Room.objects.create(key=ROOM, title="The Vault", topic=CANARY, visibility="members", created_by=users["olga"])
    for name, role in (("olga", "moderator"), ("mia", "member"), ("remi", "member")):
        Membership.objects.create(room=room, user=users[name], role=role)
    asked = Message.objects.create(room=ROOM, role="user", content=CANARY, author="olga", sender=f"user:{users['olga'].pk}")
    reply = Message.objects.create(room=ROOM, bot="PirateBot", role="assistant", content=f"{CANARY}, matey",
                                   status="complete", reply_to=asked)
    keys = {name: ApiKey.objects.issue(f"{name}'s script", user=users.get(name))[1] for name in ("mia", "otto", "kim", "remi", "nobody")}
    revoked, keys["revoked"] = ApiKey.objects.issue("mia's old script", user=users["mia"])
    ApiKey.objects.filter(pk=revoked.pk).update(revoked_at=timezone.now())
    Membership.objects.filter(room=room, user=users["remi"]).delete()
    return {"asked": asked.pk, "reply": reply.pk}, keys


@sync_to_async
def sign_in(server, username):
    browser = Browser(server.url)
    token = browser.form_token("/accounts/login/")
    if username:
        status, _, body = browser.submit("/accounts/login/", "/accounts/login/", token, {"username": username, "password": PASSWORD})
        assert status == 302, body
    return browser


@sync_to_async
def state():
    """Everything a way in could change in the room."""
    return (list(Message.objects.filter(room=ROOM).values_list("id", "status", "content", "removed_at")),
            Feedback.objects.count(), Mute.objects.count(),
            sorted(Membership.objects.filter(room__key=ROOM).values_list("user__username", "role")))


def page_calls(route_name, pks):
    """(method, path for the room, path for a room that does not exist, fields) of a page route."""
    if route_name not in PAGE_CALLS:
        pytest.fail(f"The access matrix does not know how to call {route_name!r}: add it to PAGE_CALLS.")
    for method, which, fields in PAGE_CALLS[route_name]:
        kwargs = {} if which is None else {"pk": pks[which]}
        yield method, reverse(route_name, kwargs={"room": ROOM, **kwargs}), reverse(route_name, kwargs={"room": MISSING, **kwargs}), fields


def api_call(person, method, path, pks, room):
    """One rooms API call as person: (status, body); an event stream is read until the canary or a moment of quiet."""
    if (method, path) not in API_CALLS:
        pytest.fail(f"The access matrix does not know how to call {method.upper()} {path}: add it to API_CALLS.")
    url = path.format(room=room, message_id=pks["reply"]) + ("?after=0" if path.endswith("/events") else "")
    body = API_CALLS[(method, path)]
    headers = {**person.headers(), "Content-Type": "application/json"}
    connection, response = open_stream(person.browser.base_url, method.upper(), url,
                                       None if body is None else json.dumps(body), headers)
    try:
        if response.getheader("Content-Type", "").startswith("text/event-stream"):
            connection.sock.settimeout(2)
            text = ""
            try:
                while CANARY not in text:
                    line = response.readline()
                    if not line:
                        break
                    text += line.decode()
            except TimeoutError:
                pass
        else:
            text = response.read().decode()
    finally:
        connection.close()
    person.seen.append(text)
    return response.status, text


async def knock(server, person):
    """The room socket as person: ("refused", status) or ("open", the frames it got in a moment)."""
    cookie = "; ".join(f"{c.name}={c.value}" for c in person.browser.cookies)
    try:
        async with websockets.connect(f"{server.ws_url}/ws/rooms/{ROOM}/", origin=server.url,
                                      additional_headers={"Cookie": cookie} if cookie else {}) as socket:
            frames = []
            try:
                async with asyncio.timeout(1):
                    async for frame in socket:
                        frames.append(frame)
            except TimeoutError:
                pass
            person.seen.extend(frames)
            return "open", frames
    except InvalidStatus as refused:
        return "refused", refused.response.status_code


async def test_every_way_in_is_closed_to_outsiders_and_open_to_members():
    pks, keys = await world()
    routes = ways_in()
    operations = api_operations()
    # The enumeration found what it must: the room page, its forms, the members page, the API's history and events.
    names = {name for name, _ in routes}
    assert {"chat:room", "chat:post", "chat:members", "chat:stop", "chat:retry", "chat:feedback"} <= names
    assert ("get", "/api/rooms/{room}/events") in operations and ("get", "/api/rooms/{room}/messages") in operations
    assert reverse("chat:search") == "/search" and "/api/search" in api.get_openapi_schema()["paths"]
    with daphne(NO_MODEL) as server:
        people = {
            "guest": Person("guest", await sign_in(server, None), keys["nobody"]),
            "other user": Person("other user", await sign_in(server, "otto"), keys["otto"]),
            "another user's key": Person("another user's key", await sign_in(server, None), keys["kim"]),
            "removed member": Person("removed member", await sign_in(server, "remi"), keys["remi"]),
        }
        member = Person("member", await sign_in(server, "mia"), keys["mia"])
        before = await state()
        for person in people.values():
            for route_name, route in routes:
                if route.startswith("api/"):
                    continue  # the API's operations are tried below, from its schema
                for method, path, missing_path, fields in page_calls(route_name, pks):
                    got = await sync_to_async(person.page)(method, path, fields)
                    expected = await sync_to_async(person.page)(method, missing_path, fields)
                    where = f"{person.name}: {method} {path}"
                    assert got[0] == expected[0], where
                    assert got[2].replace(ROOM, MISSING) == expected[2], where
                    if not route.startswith("admin/"):
                        assert got[0] == 404, where
            for method, path in operations:
                got = await sync_to_async(api_call)(person, method, path, pks, ROOM)
                expected = await sync_to_async(api_call)(person, method, path, pks, MISSING)
                where = f"{person.name}: {method.upper()} {path}"
                assert got[0] == expected[0] == 404, where
                assert got[1].replace(ROOM, MISSING) == expected[1], where
            for call in SEARCH_CALLS:
                got = await sync_to_async(person.page)("GET", call.format(room=ROOM))
                expected = await sync_to_async(person.page)("GET", call.format(room=MISSING))
                assert got[0] == expected[0] == 400, (person.name, call)
                assert unmasked(got[2]).replace(ROOM, MISSING) == unmasked(expected[2]), (person.name, call)
            for call in SEARCH_EVERYWHERE:
                status, _, _ = await sync_to_async(person.page)("GET", call)
                assert status == 200, (person.name, call)  # answered, and (below) nothing of the room in it
            assert await knock(server, person) == ("refused", 403), person.name
            # Nor does the room show up anywhere they can look.
            for listing in ("/", "/rooms/Lounge/"):
                _, _, body = await sync_to_async(person.page)("GET", listing)
                assert f"/rooms/{ROOM}/" not in body, (person.name, listing)
            _, listed = await sync_to_async(api_call_rooms)(person)
            assert ROOM not in [room["key"] for room in listed], person.name
            assert not [seen for seen in person.seen if CANARY in seen], person.name
        # A revoked key gets what it gets for a room that does not exist.
        revoked = Person("revoked key", people["guest"].browser, keys["revoked"])
        for method, path in operations:
            got = await sync_to_async(api_call)(revoked, method, path, pks, ROOM)
            assert got == await sync_to_async(api_call)(revoked, method, path, pks, MISSING), path
            assert got[0] == 401
        assert await state() == before  # and nothing any outsider sent changed a thing

        # The member gets in everywhere: no not-found answer, and the canary where the room is read.
        for route_name, route in routes:
            if route.startswith("api/"):
                continue
            for method, path, _, fields in page_calls(route_name, pks):
                status, _, body = await sync_to_async(member.page)(method, path, fields)
                if route.startswith("admin/"):
                    assert status == 302, path  # not staff: the admin's log-in, as for any room
                else:
                    assert status != 404, (method, path, body[:200])
        for method, path in operations:
            status, body = await sync_to_async(api_call)(member, method, path, pks, ROOM)
            # In: never the not-found answer; what it reads, it reads (Stop and Retry then ask whose reply it is).
            assert status != 404 and (method != "get" or status == 200), (method, path, body[:200])
        for call in [*(call.format(room=ROOM) for call in SEARCH_CALLS), *SEARCH_EVERYWHERE]:
            status, _, body = await sync_to_async(member.page)("GET", call)
            assert status == 200 and str(pks["asked"]) in body and "<mark>heron</mark>" in body, call
        assert (await knock(server, member))[0] == "open"
        _, _, room_page = await sync_to_async(member.page)("GET", f"/rooms/{ROOM}/")
        assert CANARY in room_page
        _, _, lobby = await sync_to_async(member.page)("GET", "/")
        assert f"/rooms/{ROOM}/" in lobby and CANARY in lobby  # listed, with its topic
        _, listed = await sync_to_async(api_call_rooms)(member)
        assert ROOM in [room["key"] for room in listed]


def api_call_rooms(person):
    connection, response = open_stream(person.browser.base_url, "GET", "/api/rooms", None, person.headers())
    try:
        body = response.read().decode()
    finally:
        connection.close()
    person.seen.append(body)
    return response.status, json.loads(body)


def test_a_new_route_with_a_room_is_found_by_the_enumeration(settings):
    """The enumeration reads the URLconf: a route added with a room in it is among the ways in,
    and the matrix refuses to pass without knowing how to call it."""
    from django.urls import clear_url_caches, path

    from project import urls as project_urls

    class Added:
        urlpatterns = [path("rooms/<str:room>/secrets", lambda request, room: None, name="secrets"),
                       *project_urls.urlpatterns]

    settings.ROOT_URLCONF = Added
    clear_url_caches()
    try:
        assert ("secrets", "rooms/<str:room>/secrets") in ways_in()
        with pytest.raises(pytest.fail.Exception, match="does not know how to call 'secrets'"):
            list(page_calls("secrets", {}))
    finally:
        clear_url_caches()
