"""A room's event stream (GET /api/rooms/<room>/events) from one real Daphne, read line by line as
sent: `retry:` first, a comment on an idle stream, "now" without a resume point, `?after=` as
Last-Event-ID, a moderator's removal, votes, and event numbers never handed out twice after
messages are deleted or pruned. Runs in both passes (SQLite and in-memory layer; PostgreSQL and
Redis)."""

import asyncio
import io
import json
import time

import httpx
import pytest
from asgiref.sync import sync_to_async
from django.core.management import call_command

from chat.models import ApiKey, Message
from tests.servers import daphne
from tests.sse import blocks
from tests.test_end_to_end import provider_env
from tests.test_people import Person, moderator, signed_in_moderator

pytestmark = pytest.mark.django_db(transaction=True)

KEEPALIVE = 0.5  # the server's SSE_KEEPALIVE: seconds of silence before a comment


@pytest.fixture(scope="module")
def server(upstream_server, django_db_setup):
    with daphne(provider_env(upstream_server, SSE_KEEPALIVE=str(KEEPALIVE))) as running:
        yield running


@pytest.fixture
async def api(server):
    """An HTTP client of the server with a fresh API key."""
    _, secret = await sync_to_async(ApiKey.objects.issue)("Follower")
    async with httpx.AsyncClient(base_url=server.url, headers={"Authorization": f"Bearer {secret}"}, timeout=10) as client:
        yield client


class Stream:
    """One program following a room's events; entering it reads the first block, which must be `retry: 1000`."""

    def __init__(self, api, room="Lounge", query="", last=None):
        headers = {} if last is None else {"Last-Event-ID": str(last)}
        self.request = api.build_request("GET", f"/api/rooms/{room}/events{query}", headers=headers)
        self.api = api

    async def __aenter__(self):
        self.response = await self.api.send(self.request, stream=True)
        assert self.response.status_code == 200, await self.response.aread()
        assert self.response.headers["Content-Type"] == "text/event-stream"
        self.blocks = blocks(self.response.aiter_lines())
        assert await self.block() == {"retry": "1000"}
        return self

    async def __aexit__(self, *exc):
        await self.response.aclose()

    async def block(self, timeout=10):
        """The next block, within timeout seconds."""
        async with asyncio.timeout(timeout):
            return await anext(self.blocks)

    async def events_until(self, done, timeout=10):
        """Events as (id, name, data), keep-alive comments left out, up to the first for which done() holds."""
        got = []
        async with asyncio.timeout(timeout):
            while True:
                block = await anext(self.blocks)
                if block == {"comment": "keep-alive"}:
                    continue
                assert set(block) == {"id", "event", "data"}, block
                got.append((int(block["id"]), block["event"], json.loads(block["data"])))
                if done(got[-1]):
                    return got


def about(pk, name="message"):
    """A predicate: an event of that name about message pk."""
    return lambda event: event[1] == name and event[2]["id"] == pk


def brief(events):
    """Events as (id, name, message id)."""
    return [(number, name, data["id"]) for number, name, data in events]


async def post(api, content, room="Lounge"):
    response = await api.post(f"/api/rooms/{room}/messages", json={"content": content})
    assert response.status_code == 202, response.text
    return response.json()


@sync_to_async
def number_of(pk):
    """The event number of message pk's latest change."""
    return Message.objects.values_list("seq", flat=True).get(pk=pk)


@sync_to_async
def last_event(room="Lounge"):
    return Message.objects.last_event(room)


async def test_the_stream_starts_with_retry_and_an_idle_stream_gets_a_keep_alive_comment(api):
    async with Stream(api) as stream:  # entering it read `retry: 1000`
        opened = time.monotonic()
        comments = []
        for _ in range(2):
            comments.append((await stream.block(timeout=KEEPALIVE + 5), time.monotonic()))
    assert [block for block, _ in comments] == [{"comment": "keep-alive"}] * 2
    # After SSE_KEEPALIVE seconds of silence each (the server starts waiting after this client's clock started).
    assert comments[0][1] - opened >= KEEPALIVE - 0.05
    assert comments[1][1] - comments[0][1] >= KEEPALIVE - 0.05


async def test_without_a_resume_point_the_stream_starts_now(api):
    older = (await post(api, "said before the stream opened"))["id"]
    async with Stream(api) as stream:
        newer = (await post(api, "said after"))["id"]
        events = await stream.events_until(about(newer))
    assert brief(events) == [(await number_of(newer), "message", newer)]
    data = events[0][2]
    assert {k: data[k] for k in ("room", "role", "author", "bot", "via_api", "status", "content", "reply_to")} == {
        "room": "Lounge", "role": "user", "author": "Follower", "bot": None, "via_api": True, "status": "complete",
        "content": "said after", "reply_to": None,
    }
    assert await number_of(older) < events[0][0]


async def test_after_resumes_exactly_as_last_event_id_does(api):
    first, second, third = [(await post(api, f"line {i}"))["id"] for i in range(3)]
    resume = await number_of(first)
    async with Stream(api, query=f"?after={resume}") as by_query:
        resumed = await by_query.events_until(about(third))
    async with Stream(api, last=resume) as by_header:
        assert await by_header.events_until(about(third)) == resumed
    assert brief(resumed) == [(resume + 1, "message", second), (resume + 2, "message", third)]


async def test_a_moderator_s_removal_is_a_removed_event_live_and_on_resume(server, api, django_user_model):
    await sync_to_async(moderator)(django_user_model)
    mod = await sync_to_async(signed_in_moderator)(server, "Lounge")
    said = (await post(api, "something rude"))["id"]
    created = await number_of(said)
    async with Stream(api) as stream:
        status, _, _ = await sync_to_async(mod.post)(f"/rooms/Lounge/messages/{said}/remove")
        assert status == 303
        live = await stream.events_until(about(said, "removed"))
    removed = await number_of(said)
    assert live == [(removed, "removed", {"id": said})] and removed > created
    # A program that last saw the message's creation gets only its removal.
    async with Stream(api, last=created) as stream:
        assert await stream.events_until(about(said, "removed")) == live


async def vote(server, reply, value):
    """A new person votes on reply from the room's page."""
    person = await sync_to_async(Person)(server)
    status, _, _ = await sync_to_async(person.post)(f"/rooms/PirateBot/messages/{reply}/feedback", value=value)
    assert status == 303


async def a_finished_reply(api, upstream, stream):
    """Post into PirateBot and follow the stream until the bot's reply is complete: its id."""
    upstream.will(text="Arr, no sail in sight.")
    (reply,) = (await post(api, "Any ships?", room="PirateBot"))["replies"]
    done = await stream.events_until(lambda e: about(reply)(e) and e[2]["status"] == "complete")
    assert done[-1][2]["content"] == "Arr, no sail in sight."
    return reply


async def test_each_vote_is_a_message_event_of_the_reply(server, api, upstream):
    async with Stream(api, room="PirateBot") as stream:
        reply = await a_finished_reply(api, upstream, stream)
        finished = await number_of(reply)
        seen = []
        for value in ("up", "down"):
            await vote(server, reply, value)
            seen += await stream.events_until(about(reply))
    first, second = seen
    assert brief(seen) == [(first[0], "message", reply), (second[0], "message", reply)]
    assert finished < first[0] < second[0] == await number_of(reply)
    assert first[2]["status"] == second[2]["status"] == "complete"


async def test_a_vote_s_message_event_carries_the_new_counts(server, api, upstream):
    async with Stream(api, room="PirateBot") as stream:
        reply = await a_finished_reply(api, upstream, stream)
        await vote(server, reply, "up")
        (_, _, data), = await stream.events_until(about(reply))
    assert (data["up_votes"], data["down_votes"]) == (1, 0)


async def test_event_numbers_are_never_handed_out_again_after_messages_are_deleted_or_pruned(api):
    before = await last_event()
    said = [(await post(api, f"line {i}"))["id"] for i in range(3)]
    async with Stream(api, last=before) as stream:
        seen = await stream.events_until(about(said[-1]))
    top = before + 3
    assert brief(seen) == [(before + 1, "message", said[0]), (before + 2, "message", said[1]), (top, "message", said[2])]

    # The newest message deleted, as the admin's delete action does: its number is not given again.
    await Message.objects.filter(pk=said[-1]).adelete()
    after_delete = (await post(api, "after a delete"))["id"]
    async with Stream(api, last=top) as stream:
        assert brief(await stream.events_until(about(after_delete))) == [(top + 1, "message", after_delete)]

    # Every message pruned: numbers still go on from the highest ever handed out.
    await sync_to_async(call_command)("prune_history", older_than="0d", stdout=io.StringIO())
    assert not await Message.objects.filter(room="Lounge").aexists()
    after_prune = (await post(api, "after a prune"))["id"]
    async with Stream(api, last=top + 1) as stream:
        assert brief(await stream.events_until(about(after_prune))) == [(top + 2, "message", after_prune)]
    assert await last_event() == top + 2
