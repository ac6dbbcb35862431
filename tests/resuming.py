"""Clients that lose their connection and resume, as Parley's own do: a room page following
static/chat/parley.js (reconnect with back-off, catch-up after the room's event number, gap repair
by offset, stale replaces dropped by revision) and a room event follower resuming with Last-Event-ID.

Both keep what they would show, and what resuming cost them; neither imports Django, so the drops
benchmark runs hundreds of them in a process of its own.
"""

import asyncio
import html
import json
import random
import re
import time
from urllib.parse import quote

import httpx
from websockets.asyncio.client import connect
from websockets.exceptions import WebSocketException

from tests.sse import blocks

STREAM = re.compile(
    r'<turbo-stream action="([a-z]+)" target="([^"]+)"([^>]*)>(?:<template>(.*?)</template>|([^<]*))</turbo-stream>', re.S
)
PARTIAL = re.compile(r'<div id="message_(\d+)" class="message [a-z]+" data-status="([a-z]+)" data-revision="(\d+)"')
CONTENT = re.compile(r'<div id="message_\d+_content" class="content [a-z]+"(?: data-length="(\d+)")?>(.*?)</div>', re.S)
OFFSET = re.compile(r' o="(\d+)"')
# The page's marker: the room's event number it is in step with (or, before it, a time: bench-drops --before).
MARKER = re.compile(r'data-(after|since)="([^"]+)"')
START = re.compile(r'<room-stream [^>]* (after|since)="([^"]+)"')
TAG = re.compile(r"<[^>]+>")
DROPPED = (OSError, WebSocketException, asyncio.IncompleteReadError)


def partials(markup):
    """Each message partial in markup as (pk, status, revision, shown text, data-length or None)."""
    contents = CONTENT.findall(markup)
    for (pk, status, revision), (length, inner) in zip(PARTIAL.findall(markup), contents, strict=True):
        text = html.unescape(TAG.sub("", inner))
        yield int(pk), status, int(revision), text, None if length == "" else int(length)


class Page:
    """One room page: its messages as shown ({pk: [status, revision, text, length]}) and its marker."""

    def __init__(self, base, room, snapshots=False):
        self.base, self.room = base, room  # base: the page's http:// origin
        self.mark = None  # (after, N) from load() and each catch-up's marker
        self.shown = {}
        self.retries = 0
        self.closed = False
        self.repairing = set()
        self.reconnects = self.repairs = 0
        self.attempts = self.opened = 0  # sockets tried, and of them handshakes the server completed
        self.failures = {}  # why sockets ended, by exception name
        self.catch_up_bytes = []  # per reconnect: the catch-up's bytes (its one text frame)
        self.in_step = []  # per reconnect: seconds from the new socket's connect to the marker applied
        self.dark = []  # per reconnect: seconds from the drop to the marker applied
        self.snapshots = [] if snapshots else None  # (pk, text) after each growth, to find skipped text
        self.http = httpx.AsyncClient(base_url=base, timeout=10)

    async def load(self, attempts=10):
        """GET the room page (again while the connection is cut) and take its messages and marker."""
        for _ in range(attempts):
            try:
                answer = await self.http.get(f"/rooms/{self.room}/")
            except httpx.HTTPError:
                continue
            answer.raise_for_status()
            self.mark = START.search(answer.text).groups()
            self.apply_partials(answer.text)
            return self
        raise AssertionError(f"the room page of {self.room} never loaded through the drops")

    async def run(self):
        """Open the socket, and after every close wait as parley.js does and open it again."""
        dropped_at = None
        while not self.closed:
            try:
                await self._open(dropped_at)
            except DROPPED as exc:
                name = type(exc).__name__
                self.failures[name] = self.failures.get(name, 0) + 1
            if self.closed:
                break
            dropped_at = time.monotonic()
            delay = min(10000, 500 * 2 ** self.retries) * (0.5 + random.random() / 2)
            self.retries += 1
            await asyncio.sleep(delay / 1000)

    async def close(self):
        self.closed = True
        await self.http.aclose()

    async def _open(self, dropped_at):
        started = time.monotonic()
        url = f"{self.base.replace('http', 'ws', 1)}/ws/rooms/{self.room}/?{self.mark[0]}={quote(self.mark[1])}"
        self.attempts += 1
        async with connect(url, origin=self.base, compression=None, max_size=None, open_timeout=10) as socket:
            self.opened += 1
            first = True
            async for raw in socket:
                if first:
                    self.retries, first = 0, False
                if dropped_at is not None and 'target="room_synced"' in raw:
                    now = time.monotonic()
                    self.reconnects += 1
                    self.catch_up_bytes.append(len(raw.encode()))
                    self.in_step.append(now - started)
                    self.dark.append(now - dropped_at)
                    dropped_at = None
                self.apply(raw)

    def apply(self, raw):
        """Apply a text frame's <turbo-stream> elements in order, as Turbo and parley.js do."""
        for action, target, attrs, template, text in STREAM.findall(raw):
            if action == "grow":
                self._grow(target, int(OFFSET.search(attrs)[1]), html.unescape(text))
            elif action in {"prepend", "replace"} and target != "room_synced":
                self.apply_partials(template)
            elif action == "replace":
                self.mark = MARKER.search(template).groups()
            elif action == "update" and target == "messages":
                self.shown = {pk: [status, revision, shown, length] for pk, status, revision, shown, length in partials(template)}
            elif action == "remove" and target.startswith("message_"):
                self.shown.pop(int(target.removeprefix("message_")), None)

    def apply_partials(self, markup):
        """Each message partial in markup replaces its element, unless older than what is shown."""
        for pk, status, revision, shown, length in partials(markup):
            have = self.shown.get(pk)
            if have is None or have[1] <= revision:
                self.shown[pk] = [status, revision, shown, length]

    def _grow(self, target, offset, text):
        pk = int(target.removeprefix("message_").removesuffix("_content"))
        have = self.shown.get(pk)
        if have is None or have[3] is None:
            return
        if offset > have[3]:
            asyncio.get_running_loop().create_task(self.repair(pk))
            return
        fresh = text[have[3] - offset:]
        have[2] += fresh
        have[3] = max(have[3], offset + len(text))
        if self.snapshots is not None:
            self.snapshots.append((pk, have[2]))

    async def repair(self, pk):
        """A growth frame past the page's text: fetch the whole message (one repair at a time per message)."""
        if pk in self.repairing:
            return
        self.repairing.add(pk)
        self.repairs += 1
        try:
            answer = await self.http.get(f"/rooms/{self.room}/messages/{pk}", headers={"Accept": "text/vnd.turbo-stream.html"})
            if answer.status_code == 200:
                self.apply(answer.text)
        except httpx.HTTPError:
            pass  # offline: the socket's reconnect and catch-up bring the page back in step
        finally:
            self.repairing.discard(pk)


class Follower:
    """One room event stream: its messages ({pk: [status, content]}), and what was wrong with the events."""

    def __init__(self, base, room, secret, last):
        self.base, self.room, self.secret = base, room, secret
        self.messages = {}
        self.last = last  # the last event id seen (to start with: the room's, read before anything happens)
        self.retry = 1.0
        self.closed = False
        self.reconnects = 0
        self.failures = {}  # why streams ended or were refused, by exception name or status
        self.faults = []  # event ids twice or out of order, deltas that skip, resets

    async def run(self):
        async with httpx.AsyncClient(base_url=self.base, timeout=httpx.Timeout(10, read=30)) as client:
            while not self.closed:
                try:
                    await self._follow(client)
                except (httpx.HTTPError, OSError) as exc:
                    name = type(exc).__name__
                    self.failures[name] = self.failures.get(name, 0) + 1
                if not self.closed:
                    await asyncio.sleep(self.retry)

    async def _follow(self, client):
        headers = {"Authorization": f"Bearer {self.secret}", "Last-Event-ID": str(self.last)}
        async with client.stream("GET", f"/api/rooms/{self.room}/events", headers=headers) as response:
            if response.status_code == 429:
                self.failures[429] = self.failures.get(429, 0) + 1
                self.retry = float(response.headers.get("Retry-After", 1))
                return
            response.raise_for_status()
            self.reconnects += 1
            async for block in blocks(response.aiter_lines()):
                if "retry" in block:
                    self.retry = int(block["retry"]) / 1000
                if "data" in block:
                    self.apply(int(block["id"]), block.get("event", "message"), json.loads(block["data"]))

    def apply(self, number, name, data):
        if number <= self.last:
            self.faults.append(f"event {number} after {self.last}")
        self.last = number
        if name == "message":
            self.messages[data["id"]] = [data["status"], data["content"]]
        elif name == "delta":
            have = self.messages.get(data["id"])
            if have is None or data["offset"] != len(have[1]):
                self.faults.append(f"delta of {data['id']} at {data['offset']} onto {None if have is None else len(have[1])}")
            else:
                have[1] += data["text"]
        elif name == "removed":
            self.messages.pop(data["id"], None)
        else:
            self.faults.append(f"event {name} at {number}")
