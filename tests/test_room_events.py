"""Room events over SSE on two processes (PostgreSQL, Redis), read with httpx-sse: clients cut at
random points resume with Last-Event-ID on the other process, and end with exactly every row."""

import asyncio
import json
import random

import httpx
import httpx_sse
import pytest
from asgiref.sync import sync_to_async
from django.conf import settings

from chat.models import ApiKey, Message
from tests.servers import Daphne
from tests.test_end_to_end import provider_env

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.services]

REPLIES = 20
TOKENS = [f"w{i} " for i in range(400)]
CUTS = 50


class Follower:
    """One program following the room: it applies events to its copy and checks ids and offsets."""

    def __init__(self, urls, secret, rng):
        self.urls, self.rng = urls, rng
        self.headers = {"Authorization": f"Bearer {secret}"}
        self.last, self.seen, self.texts, self.status, self.cuts, self.turn = None, set(), {}, {}, 0, 0

    def apply(self, sse):
        event_id = int(sse.id)
        assert event_id not in self.seen, f"event {event_id} seen twice"
        assert self.last is None or event_id > self.last, f"event {event_id} after {self.last}"
        self.seen.add(event_id)
        self.last = event_id
        data = json.loads(sse.data)
        if sse.event == "message":
            self.texts[data["id"]], self.status[data["id"]] = data["content"], data["status"]
        elif sse.event == "delta":
            assert data["offset"] == len(self.texts[data["id"]]), f"a gap or a repeat in message {data['id']}"
            self.texts[data["id"]] += data["text"]

    def done(self, reply_ids):
        return all(self.status.get(pk) == "complete" for pk in reply_ids)

    async def follow(self, client, reply_ids, first):
        """Read, cutting the stream after a random number of events, CUTS times, alternating processes."""
        while not self.done(reply_ids):
            url = f"{self.urls[self.turn % 2]}/api/rooms/PirateBot/events"
            self.turn += 1
            headers = dict(self.headers)
            headers["Last-Event-ID"] = str(self.last if self.last is not None else first)
            cut_after = self.rng.randint(1, 8) if self.cuts < CUTS else None
            async with httpx_sse.aconnect_sse(client, "GET", url, headers=headers) as source:
                assert source.response.status_code == 200
                read = 0
                async for sse in source.aiter_sse():
                    if not sse.id:
                        continue  # the retry: field
                    self.apply(sse)
                    read += 1
                    if (cut_after and read >= cut_after) or self.done(reply_ids):
                        break
            if cut_after:
                self.cuts += 1


async def test_twenty_replies_followed_through_fifty_cuts_on_two_processes_arrive_exactly(upstream):
    _, secret = await sync_to_async(ApiKey.objects.issue)("Follower")
    for _ in range(REPLIES):
        upstream.will(tokens=TOKENS, rate=400)
    env = provider_env(upstream, REDIS_URL=settings.REDIS_URL)
    servers = [Daphne(env), Daphne(env)]
    try:
        first = await sync_to_async(Message.objects.last_event)("PirateBot")
        async with httpx.AsyncClient(timeout=30) as client:
            reply_ids = []
            for i in range(REPLIES):
                response = await client.post(
                    f"{servers[i % 2].url}/api/rooms/PirateBot/messages", json={"content": f"Question {i}"},
                    headers={"Authorization": f"Bearer {secret}"},
                )
                assert response.status_code == 202, response.text
                reply_ids += response.json()["replies"]
            followers = [Follower([s.url for s in servers[n:] + servers[:n]], secret, random.Random(n)) for n in range(2)]
            async with asyncio.timeout(180):
                await asyncio.gather(*[f.follow(client, reply_ids, first) for f in followers])
        rows = {m.pk: m for m in await sync_to_async(list)(Message.objects.filter(room="PirateBot"))}
        assert len(reply_ids) == REPLIES and all(rows[pk].content == "".join(TOKENS) for pk in reply_ids)
        for follower in followers:
            assert {pk: follower.texts[pk] for pk in rows} == {pk: row.content for pk, row in rows.items()}
            assert follower.cuts == CUTS, "the replies ended before every cut was made"
    finally:
        for server in servers:
            server.stop()
