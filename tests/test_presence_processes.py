"""Presence across processes: the registry of live processes loses no one, a page of one process names
the people on another, and a killed process's people leave every page of the others within 20 s."""

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid

import pytest
import redis
import websockets
from asgiref.sync import sync_to_async
from django.conf import settings

from tests.browser import own_presence
from tests.rooms import parse_frames
from tests.servers import ROOT, Browser, Daphne
from tests.test_end_to_end import provider_env

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.services]

REGISTRATIONS = 200
# A process of its own that registers REGISTRATIONS process ids, once the test says go.
REGISTER = f"""
import sys
import django
django.setup()
from chat.delivery import presence
print("ready", flush=True)
sys.stdin.readline()
for number in range({REGISTRATIONS}):
    presence.register(f"{{sys.argv[1]}}-{{number}}")
print("done", flush=True)
"""


def test_two_processes_registering_at_once_lose_no_process():
    prefix = f"presence-{uuid.uuid4().hex}"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "project.settings", "REDIS_URL": settings.REDIS_URL,
           "CACHE_KEY_PREFIX": prefix}
    processes = [
        subprocess.Popen([sys.executable, "-c", REGISTER, tag], cwd=ROOT, env=env, stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE)
        for tag in ("a", "b")
    ]
    try:
        for process in processes:
            assert process.stdout.readline().strip() == b"ready"
        for process in processes:  # released together
            process.stdin.write(b"go\n")
            process.stdin.flush()
        for process in processes:
            assert process.stdout.readline().strip() == b"done"
            assert process.wait(timeout=30) == 0
    finally:
        for process in processes:
            process.kill()
            process.wait()
    store = redis.Redis.from_url(settings.REDIS_URL)
    key = f"{prefix}:1:parley:presence:live"
    try:
        registered = {member.decode(): score for member, score in store.zrange(key, 0, -1, withscores=True)}
    finally:
        store.delete(key)
    assert set(registered) == {f"{tag}-{number}" for tag in ("a", "b") for number in range(REGISTRATIONS)}
    # They did register at once: each one's registrations overlap the other's in time.
    spans = [[registered[f"{tag}-{number}"] for number in range(REGISTRATIONS)] for tag in ("a", "b")]
    assert max(min(span) for span in spans) < min(max(span) for span in spans)


async def said(socket, wanted, timeout):
    """The first presence sentence the page gets for which wanted(sentence) holds."""
    async with asyncio.timeout(timeout):
        while True:
            for _, target, _, html in parse_frames(await socket.recv(), presence=True):
                if target == "presence" and wanted(html):
                    return html


async def test_a_page_names_people_of_another_process_and_forgets_them_when_it_is_killed(upstream):
    env = provider_env(upstream, REDIS_URL=settings.REDIS_URL, **own_presence())
    staying, dying = await asyncio.gather(*(sync_to_async(Daphne, thread_sensitive=False)(env) for _ in range(2)))
    try:
        ana = Browser(dying.url)
        status, _, _ = await sync_to_async(ana.post_form)("/profile", "/profile", {"name": "Ana"})
        assert status == 303
        cookie = "; ".join(f"{c.name}={c.value}" for c in ana.cookies)
        room = "/ws/rooms/ChatBot/"
        async with (websockets.connect(staying.ws_url + room, origin=staying.url) as first,
                    websockets.connect(staying.ws_url + room, origin=staying.url) as second,
                    websockets.connect(dying.ws_url + room, origin=dying.url, additional_headers={"Cookie": cookie})):
            # Ana's socket is on the other process; both pages here name her.
            for page in (first, second):
                assert await said(page, lambda line: "Ana" in line, timeout=10) == "Ana and 1 guest here"
            killed_at = time.monotonic()
            await sync_to_async(dying.stop)(signal.SIGKILL)
            gone = await asyncio.gather(*(said(page, lambda line: "Ana" not in line, timeout=20) for page in (first, second)))
            took = time.monotonic() - killed_at
        assert gone == ["1 guest here", "1 guest here"]
        print(f"\nkill -9 of a process: its people left the other process's pages after {took:.1f} s")
    finally:
        for server in (staying, dying):
            await sync_to_async(server.stop)()
