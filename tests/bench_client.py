"""The streaming benchmark's load client: S sockets in each room, in a process of its own.

Started by tests/bench_stream.py, which drives it with JSON lines on stdin and reads JSON lines
from stdout. Every socket parses every frame it gets, the way a page applies it, and keeps the
text it would show; nothing is shared between sockets of a room.
  {"cmd": "reply"}              count the next reply in each room; answers {"ok": true}
  {"cmd": "collect", "timeout"} wait until every socket saw its room's reply end; answers per socket
  {"cmd": "probe", "seconds"}   time timestamped frames for that long; answers count and latencies
"""

import asyncio
import html
import json
import re
import sys
import time

from websockets.asyncio.client import connect

STREAM = re.compile(
    r'<turbo-stream action="([a-z]+)" target="([^"]+)"([^>]*)>(?:<template>(.*?)</template>|([^<]*))</turbo-stream>', re.S
)
# Growth frames: Parley's `grow` action with ` o=`; before it, Turbo's `append` with `data-offset=`
# (the client reads both, for bench-stream --before an older checkout).
GROWTH = {"grow", "append"}
OFFSET = re.compile(r' (?:o|data-offset)="(\d+)"')
GROWTH_TEXT = re.compile(r'<turbo-stream action="grow" [^>]*>([^<]*)</turbo-stream>')
ASSISTANT = re.compile(r'<div id="message_(\d+)" class="message assistant"')
STATUS = re.compile(r'data-status="([a-z]+)"')
CONTENT = re.compile(r'<div id="message_\d+_content"[^>]*>(.*?)</div>', re.S)
TAG = re.compile(r"<[^>]+>")
ENDED = {"complete", "failed", "cancelled", "interrupted"}
ENDED_MARKERS = [f'class="message assistant" data-status="{status}"' for status in ENDED]


def shown_text(partial):
    """The text a page shows for a message partial."""
    return html.unescape(TAG.sub("", CONTENT.search(partial)[1])).strip()


class Subscriber:
    """One page: what it received since the last command, and the reply's text as it would show it."""

    def __init__(self, room):
        self.room = room
        self.start("idle")

    def start(self, mode):
        self.mode = mode
        self.reply = None  # the reply's message id, from its prepend
        self.text = ""
        self.status = None
        self.frames = self.bytes = 0  # everything this socket got
        self.reply_frames = self.reply_bytes = 0  # what concerned the reply
        self.progress = []  # (monotonic time, characters of the reply shown)
        self.latencies = []  # probe mode: seconds from the sender's stamp to here
        self.received = []  # reply mode: (monotonic time, text frame) as they came
        self.ended = asyncio.Event()

    def on_frame(self, raw, now):
        # Only the arrival is noted now; frames are parsed after the run, so the client's own
        # parsing never delays the next frame's timestamp.
        if self.mode == "probe":
            # Under load the fan-out joins several frames into one socket message: each counts.
            # The probe's frames are growth frames whose text is the time they were sent.
            for stamp in GROWTH_TEXT.findall(raw):
                self.frames += 1
                self.latencies.append(now - float(stamp))
        elif self.mode == "reply":
            self.received.append((now, raw))
            if any(marker in raw for marker in ENDED_MARKERS):
                self.ended.set()

    def _apply(self, match, now):
        action, target, attrs, template, text = match.groups()
        body = template if template is not None else text
        if self.reply is None and action == "prepend" and (found := ASSISTANT.search(body or "")):
            self.reply = found[1]
        if self.reply is None or target not in {f"message_{self.reply}", f"message_{self.reply}_content", "messages"}:
            return
        if action == "prepend" and f'id="message_{self.reply}"' not in body:
            return  # another message's prepend
        self.reply_frames += 1
        self.reply_bytes += len(match[0].encode())
        if action in GROWTH:
            offset = int(OFFSET.search(attrs)[1])
            if offset <= len(self.text):
                self.text = self.text[:offset] + html.unescape(body)
        elif action in {"replace", "prepend"}:
            self.text = shown_text(body)
            self.status = STATUS.search(body)[1]
        if not self.progress or len(self.text) > self.progress[-1][1]:
            self.progress.append((now, len(self.text)))

    def report(self):
        for now, raw in self.received:
            self.frames += 1
            self.bytes += len(raw.encode())
            for match in STREAM.finditer(raw):
                self._apply(match, now)
        return {
            "room": self.room, "reply": self.reply, "status": self.status, "text": self.text,
            "frames": self.frames, "bytes": self.bytes, "reply_frames": self.reply_frames,
            "reply_bytes": self.reply_bytes, "progress": self.progress,
        }


async def listen(url, origin, subscriber, opened, gate):
    async with gate:  # open sockets a few at a time, as pages arrive
        socket = await connect(url, origin=origin, compression=None, max_size=None, open_timeout=60)
    opened.release()
    async with socket:
        async for raw in socket:
            subscriber.on_frame(raw, time.monotonic())


async def main(bases, rooms, per_room):
    """bases: the servers' ws:// URLs, comma-separated; the sockets are dealt among them in turn."""
    bases = bases.split(",")
    subscribers = [Subscriber(room) for room in rooms for _ in range(per_room)]
    opened, gate = asyncio.Semaphore(0), asyncio.Semaphore(25)
    failed = []

    async def guarded(subscriber, base):
        try:
            origin = base.replace("ws://", "http://")
            await listen(f"{base}/ws/rooms/{subscriber.room}/", origin, subscriber, opened, gate)
        except Exception as exc:  # noqa: BLE001 - reported, and the run fails on its counts
            failed.append(f"{subscriber.room}: {exc!r}")
            opened.release()

    tasks = [asyncio.create_task(guarded(s, bases[i % len(bases)])) for i, s in enumerate(subscribers)]
    for _ in subscribers:
        await opened.acquire()
    say({"ready": len(subscribers) - len(failed), "failed": failed[:5]})

    reader = asyncio.StreamReader()
    await asyncio.get_running_loop().connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := await reader.readline():
        command = json.loads(line)
        if command["cmd"] == "reply":
            for subscriber in subscribers:
                subscriber.start("reply")
            say({"ok": True})
        elif command["cmd"] == "collect":
            try:
                async with asyncio.timeout(command["timeout"]):
                    await asyncio.gather(*(s.ended.wait() for s in subscribers))
            except TimeoutError:
                pass
            say({"subscribers": [s.report() for s in subscribers]})
        elif command["cmd"] == "probe":
            for subscriber in subscribers:
                subscriber.start("probe")
            say({"ok": True})
            await asyncio.sleep(command["seconds"])
            latencies = sorted(x for s in subscribers for x in s.latencies)
            for subscriber in subscribers:
                subscriber.start("idle")
            say({"received": len(latencies), "latencies": latencies[:: max(1, len(latencies) // 20000)],
                 "p50": pick(latencies, 0.5), "p99": pick(latencies, 0.99), "max": latencies[-1] if latencies else None})
    for task in tasks:
        task.cancel()


def pick(ordered, share):
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else None


def say(payload):
    sys.stdout.write(json.dumps(payload) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2].split(","), int(sys.argv[3])))
