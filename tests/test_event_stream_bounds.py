"""Room event streams under hostile clients, against real Daphne: a resume too far behind gets
`event: reset`, a client that reads nothing holds bounded memory and is closed, streams per key are
capped, and a revoked key's stream ends (and only a revoked key's). Runs in both passes."""

import asyncio
import json
import socket
import threading
import time

import httpx
import pytest
from asgiref.sync import sync_to_async
from django.utils import timezone

from chat.api.followers import Followers
from chat.models import ApiKey, Message
from chat.models.events import RoomClock
from tests.servers import daphne
from tests.test_end_to_end import provider_env
from tests.test_room_event_stream import Stream

pytestmark = pytest.mark.django_db(transaction=True)

ROOM = "BelleBot"
ROWS = 20_000
STALL = 2  # the servers' SEND_STALL_TIMEOUT, seconds
STREAMS_PER_KEY = 3
RSS_BOUND_MIB = 20  # what a non-reading client may cost the process, at most


@sync_to_async
def seed(count=ROWS, size=2000):
    """count finished messages of size characters in ROOM, numbered as events 1..count: the bytes of the replay."""
    text = ("Arr, the tide be turning. " * (size // 26 + 1))[:size]
    Message.objects.bulk_create(
        [Message(room=ROOM, role="user", author="Anne", content=f"{i} {text}", seq=i + 1) for i in range(count)],
        batch_size=2000,
    )
    RoomClock.objects.update_or_create(room=ROOM, defaults={"last": count})
    return count * size


@sync_to_async
def new_key(name="Follower"):
    return ApiKey.objects.issue(name)


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


@pytest.fixture(scope="module")
def replaying(upstream_server, django_db_setup):
    """A server that replays any resume in full (no reset), closes clients stalled STALL seconds,
    and lets a key hold STREAMS_PER_KEY streams."""
    env = provider_env(upstream_server, SEND_STALL_TIMEOUT=str(STALL), EVENT_REPLAY_MAX="10000000",
                       EVENT_STREAMS_PER_KEY=str(STREAMS_PER_KEY), SSE_KEEPALIVE="0.5")
    with daphne(env) as running:
        yield running


@pytest.fixture(scope="module")
def standard(upstream_server, django_db_setup):
    """A server on the default bounds."""
    with daphne(provider_env(upstream_server)) as running:
        yield running


def api_client(server, secret):
    return httpx.AsyncClient(base_url=server.url, headers={"Authorization": f"Bearer {secret}"}, timeout=10)


async def test_a_resume_too_far_behind_gets_one_reset_then_the_live_stream(standard):
    await seed(size=50)
    _, secret = await new_key()
    async with api_client(standard, secret) as api:
        async with Stream(api, room=ROOM, last=0) as stream:
            reset = await stream.block()
            assert reset["event"] == "reset" and reset["id"] == str(ROWS)
            data = json.loads(reset["data"])
            assert data["last"] == ROWS and data["history"] == f"/api/rooms/{ROOM}/messages"
            assert f"GET /api/rooms/{ROOM}/messages" in data["error"]
            said = (await api.post(f"/api/rooms/{ROOM}/messages", json={"content": "after the reset"})).json()["id"]
            events = await stream.events_until(lambda e: e[2]["id"] == said)
        assert [(number, name) for number, name, _ in events] == [(ROWS + 1, "message")]
        # A resume within the bound is replayed as before.
        async with Stream(api, room=ROOM, last=ROWS - 2) as stream:
            events = await stream.events_until(lambda e: e[2]["id"] == said)
        assert [number for number, _, _ in events] == [ROWS - 1, ROWS, ROWS + 1]


async def test_a_client_that_reads_nothing_costs_bounded_memory_and_is_closed(replaying):
    replay_bytes = await seed()
    _, secret = await new_key()
    # Warm the process up with a reading client, so the baseline holds what any stream loads.
    async with api_client(replaying, secret) as api:
        async with Stream(api, room=ROOM, last=ROWS - 3) as stream:
            await stream.events_until(lambda e: e[0] == ROWS)
    pid = replaying.process.pid
    before = rss_mib(pid)
    closed_line = f"a client read nothing for {float(STALL)} s: closed"
    seen_before = replaying.output().count(closed_line)

    client = socket.socket()
    client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # the kernel takes little of it off the server
    client.connect(("127.0.0.1", replaying.port))
    client.sendall(f"GET /api/rooms/{ROOM}/events HTTP/1.1\r\nHost: 127.0.0.1:{replaying.port}\r\n"
                   f"Authorization: Bearer {secret}\r\nLast-Event-ID: 0\r\n\r\n".encode())
    peak = before
    deadline = time.monotonic() + 60
    while replaying.output().count(closed_line) == seen_before:  # the server gave up on it
        assert time.monotonic() < deadline, "the non-reading client was never closed"
        peak = max(peak, rss_mib(pid))
        await asyncio.sleep(0.05)
    peak = max(peak, rss_mib(pid))

    received = 0
    client.settimeout(10)
    try:
        while chunk := client.recv(1 << 16):
            received += len(chunk)
    except ConnectionResetError:
        pass  # aborted: what it had not read is gone with it
    client.close()
    print(f"\nnon-reading client: RSS {before:.1f} -> peak {peak:.1f} MiB; read {received} of {replay_bytes}+ bytes")
    assert peak - before < RSS_BOUND_MIB
    assert received < replay_bytes / 2
    # The server still serves.
    async with api_client(replaying, secret) as api:
        assert (await api.get(f"/api/rooms/{ROOM}/messages?limit=1")).status_code == 200


async def test_streams_per_key_are_capped_and_a_closed_one_frees_its_place(replaying):
    _, secret = await new_key()
    _, other = await new_key("Other")
    async with api_client(replaying, secret) as api, api_client(replaying, other) as other_api:
        streams = [Stream(api, room=ROOM) for _ in range(STREAMS_PER_KEY)]
        for stream in streams:
            await stream.__aenter__()
        refused = await api.get(f"/api/rooms/{ROOM}/events")
        assert refused.status_code == 429
        assert refused.json() == {"error": f"This key already has {STREAMS_PER_KEY} event streams open here; "
                                           "close one before opening another."}
        assert refused.headers["Retry-After"] == "5"
        # Another key is not held to this one's share.
        async with Stream(other_api, room=ROOM):
            pass
        await streams.pop().__aexit__(None, None, None)
        async with asyncio.timeout(10):  # the server notices the disconnect at its next write
            while True:
                request = api.build_request("GET", f"/api/rooms/{ROOM}/events")
                response = await api.send(request, stream=True)
                if response.status_code == 200:
                    await response.aclose()
                    break
                assert response.status_code == 429
                await response.aclose()
                await asyncio.sleep(0.1)
        for stream in streams:
            await stream.__aexit__(None, None, None)


async def test_a_revoked_key_s_open_stream_ends_within_two_seconds(replaying):
    key, secret = await new_key()
    async with api_client(replaying, secret) as api:
        async with Stream(api, room=ROOM) as stream:
            await ApiKey.objects.filter(pk=key.pk).aupdate(revoked_at=timezone.now())
            revoked_at = time.monotonic()
            async with asyncio.timeout(2):
                blocks = []
                async for block in stream.blocks:  # to the stream's end
                    if block != {"comment": "keep-alive"}:
                        blocks.append(block)
            ended = time.monotonic() - revoked_at
        assert blocks == [{"event": "error", "data": json.dumps({"error": "This API key was revoked."})}]
        print(f"\nrevoked key's stream ended {ended:.2f} s after the revocation")
        assert (await api.get(f"/api/rooms/{ROOM}/events")).status_code == 401


class Open:
    """An open event stream, as the key watcher sees one."""

    revoked = False

    def revoke(self):
        self.revoked = True


async def test_a_stream_opened_while_the_keys_are_looked_up_is_not_taken_for_revoked():
    (first, _), (second, _) = await new_key("First"), await new_key("Second")
    watched, early, late = Followers(), Open(), Open()
    assert watched.admit(first, early)
    # Hold the one thread the look's query runs on, so that the second key's first stream opens
    # after the look took its keys and before their answer.
    entered, release = threading.Event(), threading.Event()

    def hold():
        entered.set()
        release.wait(10)

    held = asyncio.ensure_future(sync_to_async(hold)())
    async with asyncio.timeout(5):
        while not entered.is_set():
            await asyncio.sleep(0.01)
    look = asyncio.create_task(watched.look())
    await asyncio.sleep(0)  # its first step: the keys to ask about
    assert watched.admit(second, late) and not look.done()
    release.set()
    await held
    await look
    assert not early.revoked and not late.revoked
    # The next look asks about both, and ends the stream of the one revoked meanwhile.
    await ApiKey.objects.filter(pk=second.pk).aupdate(revoked_at=timezone.now())
    await watched.look()
    assert late.revoked and not early.revoked
