"""Races between processes: a reply stopped and retried elsewhere is no longer its first job's to write."""

import time

import pytest
from asgiref.sync import sync_to_async
from django.conf import settings

from chat.models import Message
from tests.rooms import finished
from tests.servers import Browser, Daphne
from tests.test_end_to_end import provider_env, read_frames
from tests.test_scale_out import post, subscribe, until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.services]

FRESH = [f"fresh{i} " for i in range(200)]


@pytest.fixture
def slow_flushing_pair(upstream):
    """Two processes that write a streaming reply's row only every 2 s: a wide window for races."""
    env = provider_env(upstream, REDIS_URL=settings.REDIS_URL, REPLY_FLUSH_INTERVAL="2")
    servers = [Daphne(env), Daphne(env)]
    yield servers
    for server in servers:
        server.stop()


async def test_a_reply_stopped_and_retried_through_another_process_keeps_only_the_new_answer(slow_flushing_pair, upstream):
    first, second = slow_flushing_pair
    upstream.will(tokens=[f"old{i} " for i in range(3000)], rate=100)
    upstream.will(tokens=FRESH, rate=50)  # 4 s: still streaming when the first job next writes
    async with subscribe(second) as watcher:
        asker = await sync_to_async(post)(first, "Tell me a long tale")
        reply = await until(lambda: (r := Message.objects.filter(role="assistant").first()) and r.content and r, timeout=15)
        # Right after the first process's write: it will not look at the row again for 2 s.
        browser = Browser(second.url, cookies=asker.cookies)  # the asker, on the other process
        asked_at = time.monotonic()
        for action in ("stop", "retry"):
            status, _, _ = await sync_to_async(browser.post_form)(
                "/rooms/PirateBot/", f"/rooms/PirateBot/messages/{reply.pk}/{action}", {}
            )
            assert status == 303
        frames = await read_frames(watcher, finished(reply.pk), timeout=20)
    old, fresh = upstream.exchanges
    saved = await sync_to_async(Message.objects.get)(pk=reply.pk)
    assert (saved.status, saved.content) == ("complete", "".join(FRESH))
    assert "old" not in frames[-1][3]
    # The first job found the row no longer its own at its next write, and let its upstream go
    # (after the Stop, long before its 30-second reply would have ended).
    assert old.closed_at is not None and old.closed_at >= asked_at and len(old.sent) < 3000
    assert fresh.opened_at > old.opened_at
