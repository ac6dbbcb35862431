"""The rooms API in process: keys, rooms, history pages, posting with mentions, Stop, bad bodies, the docs."""

import json

import pytest
from django.utils import timezone

from chat.models import ApiKey, Message, Mute

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def key():
    _, secret = ApiKey.objects.issue("Build bot")
    return {"HTTP_AUTHORIZATION": f"Bearer {secret}"}


def test_a_missing_wrong_or_revoked_key_gets_401_json(client, key):
    for headers in ({}, {"HTTP_AUTHORIZATION": "Bearer parley_nope"}, {"HTTP_AUTHORIZATION": "Basic abc"}):
        response = client.get("/api/rooms", **headers)
        assert response.status_code == 401 and "API key" in response.json()["error"]
    assert client.get("/api/rooms", **key).status_code == 200
    events = client.get("/api/rooms/Lounge/events", HTTP_AUTHORIZATION="Bearer parley_nope")
    assert events.status_code == 401 and "API key" in events.json()["error"]
    assert client.get("/api/rooms/Lounge/events", HTTP_LAST_EVENT_ID="soon", **key).status_code == 400
    ApiKey.objects.update(revoked_at="2026-01-01T00:00:00Z")
    assert client.get("/api/rooms", **key).status_code == 401


def test_rooms_and_a_page_of_history_newest_first(client, key):
    rooms = client.get("/api/rooms", **key).json()
    assert [(r["key"], r["bot"]) for r in rooms] == [("ChatBot", "ChatBot"), ("BelleBot", "BelleBot"), ("PirateBot", "PirateBot"), ("Lounge", None)]
    made = [Message.objects.create(room="Lounge", role="user", content=f"line {i}", author="Ana") for i in range(5)]
    page = client.get("/api/rooms/Lounge/messages?limit=2", **key).json()
    assert [m["id"] for m in page] == [made[4].pk, made[3].pk]
    older = client.get(f"/api/rooms/Lounge/messages?before={made[3].pk}&limit=10", **key).json()
    assert [m["content"] for m in older] == ["line 2", "line 1", "line 0"]
    assert set(older[0]) == {"id", "room", "role", "author", "bot", "via_api", "status", "content", "error",
                             "created", "updated", "revision", "reply_to", "up_votes", "down_votes"}
    assert client.get("/api/rooms/Nowhere/messages", **key).status_code == 404


def test_posting_starts_the_replies_its_mentions_call_and_stop_stops_one(client, key):
    response = client.post("/api/rooms/Lounge/messages", {"content": "@BelleBot and @PirateBot, report"},
                           content_type="application/json", **key)
    assert response.status_code == 202
    body = response.json()
    said = Message.objects.get(pk=body["id"])
    assert (said.author, said.via_api) == ("Build bot", True)
    assert [Message.objects.get(pk=pk).bot for pk in body["replies"]] == ["BelleBot", "PirateBot"]
    stopped = client.post(f"/api/rooms/Lounge/messages/{body['replies'][0]}/stop", **key).json()
    assert stopped["status"] == "cancelled"
    named = client.post("/api/rooms/Lounge/messages", {"content": "hello", "author": "CI"}, content_type="application/json", **key)
    assert named.status_code == 202 and named.json()["replies"] == []
    assert Message.objects.get(pk=named.json()["id"]).author == "CI"


def test_twenty_malformed_bodies_get_4xx_json_and_nothing_is_saved(client, key):
    """Each its exact status: 400 for a body that is not JSON or a value Parley refuses, 413 for a
    message too long, 422 for one that does not fit the schema (django-ninja's validation)."""
    bodies = [
        ("", 422), ("{", 400), ("[]", 422), ("null", 422), ("1", 422), ('"text"', 422), ("{}", 422),
        ('{"content": ""}', 422), ('{"content": 5}', 422), ('{"content": null}', 422), ('{"content": ["a"]}', 422),
        ('{"content": {"a": 1}}', 422), ('{"author": "x"}', 422), ('{"content": "hi", "author": ""}', 400),
        ('{"content": "hi", "author": "PirateBot"}', 400), ('{"content": "hi", "author": "<b>x</b>"}', 400),
        (json.dumps({"content": "x" * 5000}), 413), ('{"content": "   "}', 400), ('{"content": "hi", "author": 7}', 422),
        ("\xff\xfe", 400),
    ]
    for body, status in bodies:
        response = client.post("/api/rooms/Lounge/messages", body, content_type="application/json", **key)
        assert response.status_code == status, (body, response.status_code)
        assert response.json()["error"], body
    assert not Message.objects.exists()


def test_the_schema_is_served_at_api_docs(client):
    assert client.get("/api/docs").status_code == 200
    schema = client.get("/api/openapi.json").json()
    assert {"/api/rooms", "/api/rooms/{room}/messages", "/api/rooms/{room}/events"} <= set(schema["paths"])


def test_a_key_has_its_own_rate_limit_on_posts(client, key, settings):
    settings.RATE_LIMIT_PER_CLIENT = 2
    for _ in range(2):
        assert client.post("/api/rooms/Lounge/messages", {"content": "hi"}, content_type="application/json", **key).status_code == 202
    limited = client.post("/api/rooms/Lounge/messages", {"content": "hi"}, content_type="application/json", **key)
    assert limited.status_code == 429 and int(limited["Retry-After"]) > 0 and "too fast" in limited.json()["error"]
    _, other = ApiKey.objects.issue("Other")
    assert client.post("/api/rooms/Lounge/messages", {"content": "hi"}, content_type="application/json",
                       HTTP_AUTHORIZATION=f"Bearer {other}").status_code == 202


def test_a_moderator_s_mute_refuses_the_muted_key_s_posts_with_403_and_the_sentence(client, key, staff):
    posted = client.post("/api/rooms/Lounge/messages", {"content": "spam, spam"}, content_type="application/json", **key)
    assert posted.status_code == 202
    said = posted.json()["id"]
    # The moderator mutes its author from the room's page (staff signed in on the same client).
    assert staff.post(f"/rooms/Lounge/messages/{said}/mute").status_code == 303
    mute = Mute.objects.get()
    assert mute.sender == Message.objects.get(pk=said).sender
    sentence = f"A moderator muted this key until {timezone.localtime(mute.until):%H:%M %Z}."
    for body in ({"content": "let me back in"}, {"content": "not me, honest", "author": "Someone else"}):
        refused = client.post("/api/rooms/Lounge/messages", body, content_type="application/json", **key)
        assert (refused.status_code, refused.json()) == (403, {"error": sentence})
    assert list(Message.objects.values_list("pk", flat=True)) == [said]
    # Another key is not muted.
    _, other = ApiKey.objects.issue("Other")
    assert client.post("/api/rooms/Lounge/messages", {"content": "hi"}, content_type="application/json",
                       HTTP_AUTHORIZATION=f"Bearer {other}").status_code == 202

async def test_a_post_through_the_api_shows_on_the_page_marked_and_its_reply_streams_to_page_and_program(upstream):
    import httpx
    import httpx_sse
    import websockets
    from asgiref.sync import sync_to_async

    from tests.rooms import finished, shown_text
    from tests.servers import daphne
    from tests.test_end_to_end import provider_env, read_frames

    story = "Arr, the API be a fine way to hail a ship, matey, and the crew reads every word of it."
    upstream.will(text=story, rate=60)
    _, secret = await sync_to_async(ApiKey.objects.issue)("Harbour master")
    auth = {"Authorization": f"Bearer {secret}"}
    with daphne(provider_env(upstream)) as server:
        async with websockets.connect(f"{server.ws_url}/ws/rooms/PirateBot/", origin=server.url) as page, \
                httpx.AsyncClient(timeout=20) as client:
            async with httpx_sse.aconnect_sse(client, "GET", f"{server.url}/api/rooms/PirateBot/events", headers=auth) as events:
                posted = await client.post(f"{server.url}/api/rooms/PirateBot/messages", json={"content": "Any ships?"}, headers=auth)
                assert posted.status_code == 202
                (reply_id,) = posted.json()["replies"]
                frames = await read_frames(page, finished(reply_id))
                said = next(html for action, _, _, html in frames if action == "prepend" and 'class="message user"' in html)
                assert 'data-author="Harbour master"' in said and '<span class="badge" title="Posted by a program through Parley' in said
                assert shown_text(frames, reply_id).strip() == story  # the final replace is rendered Markdown
                assert len([f for f in frames if f[0] == "grow"]) > 1  # it streamed to the page
                texts, kinds = {}, []
                async for sse in events.aiter_sse():
                    if not sse.id:
                        continue  # the retry: field
                    data = json.loads(sse.data)
                    kinds.append((sse.event, data["id"]))
                    if sse.event == "message":
                        texts[data["id"]] = data["content"]
                        if data["id"] == reply_id and data["status"] == "complete":
                            break
                    elif sse.event == "delta":
                        assert data["offset"] == len(texts[data["id"]])
                        texts[data["id"]] += data["text"]
                assert texts[reply_id] == story and texts[posted.json()["id"]] == "Any ships?"
                assert ("delta", reply_id) in kinds  # it streamed to the program too
