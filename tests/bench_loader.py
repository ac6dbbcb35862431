"""The mixed-load benchmark's loader: page loads, posts and socket joins at a steady rate, in a process of its own.

Started by tests/bench_mixed.py with the server's URL, the rate (requests a second), the rooms whose
pages it opens and sockets it joins, and the room it posts in (one without a bot: a post costs a
request, never a reply). Requests leave on a fixed schedule whether or not earlier ones answered
(an open loop: a slow server gets no breather). It answers {"ready": true} once its people have
their cookies, starts on any line on stdin, stops on the next, and answers the timings in ms.
"""

import asyncio
import itertools
import json
import re
import sys
import time

import httpx
from websockets.asyncio.client import connect

PEOPLE = 8  # guests, each with its own session and CSRF token, taking turns
TOKEN = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
APP_TIME = re.compile(r"app;dur=([\d.]+)")  # the server's Server-Timing: how long the app held the request
# Of every five requests: two page loads, two posts, one socket that joins its room and leaves.
MIX = ("page", "post", "page", "post", "join")


class Person:
    """One guest: a client with its session cookie and the form token of the posting room's page."""

    def __init__(self, base):
        self.client = httpx.AsyncClient(base_url=base, timeout=30, follow_redirects=False)
        self.token = None

    async def enter(self, post_room):
        page = await self.client.get(f"/rooms/{post_room}/")
        page.raise_for_status()
        self.token = TOKEN.search(page.text)[1]


class Loader:
    """The schedule and what each kind of request took."""

    def __init__(self, base, rate, rooms, post_room):
        self.base, self.rate, self.rooms, self.post_room = base, rate, rooms, post_room
        self.people = [Person(base) for _ in range(PEOPLE)]
        # (when it left on the monotonic clock, which every process here shares, ms): the bench splits the run
        self.timings = {kind: [] for kind in set(MIX)}
        self.in_app = {"page": [], "post": []}  # the app's share of each answer (Server-Timing)
        self.errors = {}
        self.sent = 0

    async def one(self, kind, person, room, serial):
        started = time.monotonic()
        try:
            if kind == "page":
                response = await person.client.get(f"/rooms/{room}/")
                ok = response.status_code == 200
            elif kind == "post":
                response = await person.client.post(
                    f"/rooms/{self.post_room}/messages",
                    data={"csrfmiddlewaretoken": person.token, "content": f"Passing by, number {serial}"},
                    headers={"Referer": f"{self.base}/rooms/{self.post_room}/"},
                )
                ok = response.status_code == 303
            else:
                origin, url = self.base, self.base.replace("http://", "ws://") + f"/ws/rooms/{room}/"
                async with connect(url, origin=origin, compression=None, max_size=None, open_timeout=30):
                    ok = True  # joined; leaving is the context's close
            if not ok:
                self.errors[f"{kind} {response.status_code}"] = self.errors.get(f"{kind} {response.status_code}", 0) + 1
                return
            timing = APP_TIME.search(response.headers.get("server-timing", "")) if kind in self.in_app else None
            if timing:  # a server before Server-Timing has none: its column stays empty
                self.in_app[kind].append((started, float(timing[1])))
        except Exception as exc:  # noqa: BLE001 - counted and reported: the run shows them
            self.errors[f"{kind} {type(exc).__name__}"] = self.errors.get(f"{kind} {type(exc).__name__}", 0) + 1
            return
        self.timings[kind].append((started, (time.monotonic() - started) * 1000))

    async def run(self, stop):
        loop, tasks = asyncio.get_running_loop(), set()
        start = loop.time()
        for serial in itertools.count():
            if stop.is_set():
                break
            kind = MIX[serial % len(MIX)]
            task = asyncio.create_task(self.one(kind, self.people[serial % PEOPLE], self.rooms[serial % len(self.rooms)], serial))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            self.sent += 1
            # The next request's time is fixed by the schedule, not by when this one answers.
            delay = start + (serial + 1) / self.rate - loop.time()
            try:
                await asyncio.wait_for(stop.wait(), timeout=max(0.0, delay))
            except TimeoutError:
                pass
        seconds = loop.time() - start
        await asyncio.gather(*tasks, return_exceptions=True)
        return seconds


async def main(base, rate, rooms, post_room):
    loader = Loader(base, rate, rooms, post_room)
    await asyncio.gather(*(person.enter(post_room) for person in loader.people))
    say({"ready": True})
    reader = asyncio.StreamReader()
    await asyncio.get_running_loop().connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    await reader.readline()
    stop = asyncio.Event()
    running = asyncio.create_task(loader.run(stop))
    await reader.readline()
    stop.set()
    seconds = await running
    say({"seconds": seconds, "sent": loader.sent, "rate": loader.sent / max(seconds, 1e-9),
         "timings": loader.timings, "in_app": loader.in_app, "errors": loader.errors})
    for person in loader.people:
        await person.client.aclose()


def say(payload):
    sys.stdout.write(json.dumps(payload) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], float(sys.argv[2]), sys.argv[3].split(","), sys.argv[4]))
