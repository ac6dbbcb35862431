"""A room reply's first words, with and without a /chat flood holding every /chat streaming slot.

    ./parley bench-budgets [--posts 5]

One real Daphne process (SQLite, in-memory layer) against the scripted upstream. Quiet: a guest
posts in PirateBot's room and a page socket times the reply's first growth frame. Flooded: the
same while /chat requests at their per-bot budget stall upstream, holding every /chat slot and
queueing for more. Both figures print side by side.
"""

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DB = Path(tempfile.mkdtemp(prefix="bench-budgets-")) / "db.sqlite3"
os.environ.update(DATABASE_URL=f"sqlite:///{DB}", DJANGO_SETTINGS_MODULE="project.settings")
os.environ.pop("REDIS_URL", None)

import django  # noqa: E402

django.setup()

import websockets  # noqa: E402

from tests.rooms import parse_frames  # noqa: E402
from tests.servers import Browser, Daphne  # noqa: E402
from tests.sse import open_stream  # noqa: E402
from tests.upstream import ScriptedUpstream  # noqa: E402

FLOOD = 8  # /chat requests: the per-bot budget below, twice the /chat slots


async def first_words(server, upstream, posts):
    """Seconds from each post to its reply's first growth frame on a page of the room."""
    timings = []
    async with websockets.connect(f"{server.ws_url}/ws/rooms/PirateBot/", origin=server.url) as page:
        for i in range(posts):
            upstream.will(text="The room's own answer sails in.")
            guest = Browser(server.url)
            token = await asyncio.to_thread(guest.form_token, "/rooms/PirateBot/")
            started = time.monotonic()
            status, _, _ = await asyncio.to_thread(guest.submit, "/rooms/PirateBot/", "/rooms/PirateBot/messages", token, {"content": f"q {i}"})
            assert status == 303, status
            while not any(action == "grow" for action, *_ in parse_frames(await page.recv())):
                pass
            timings.append(time.monotonic() - started)
    return timings


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--posts", type=int, default=5)
    posts = parser.parse_args().posts
    subprocess.run([sys.executable, "manage.py", "migrate", "--no-input", "-v0"], cwd=ROOT, check=True)
    upstream = ScriptedUpstream().start()
    upstream.default.text, upstream.default.fault, upstream.default.fault_after = "Flood words.", "stall", 1
    upstream.default.stall_seconds = 120
    env = {"LLM_PROVIDER": "openai", "OPENAI_API_KEY": "sk-bench", "OPENAI_BASE_URL": upstream.base_url, "OPENAI_MODEL": "bench",
           "OPENAI_MAX_RETRIES": "0", "DEBUG": "true", "LOG_LEVEL": "WARNING", "RATE_LIMIT_PER_CLIENT": "1000",
           "RATE_LIMIT_PER_ROOM": "1000", "RATE_LIMIT_STATELESS_PER_BOT": str(FLOOD), "MAX_STATELESS_STREAMS": str(FLOOD // 2)}
    server = Daphne(env)
    try:
        quiet = asyncio.run(first_words(server, upstream, posts))
        body = b'{"bot": "PirateBot", "messages": [{"role": "user", "content": "flood"}]}'
        flood = [open_stream(server.url, "POST", "/chat", body, {"Content-Type": "application/json"}) for _ in range(FLOOD)]
        _, refused = open_stream(server.url, "POST", "/chat", body, {"Content-Type": "application/json"})
        flooded = asyncio.run(first_words(server, upstream, posts))
        print(f"/chat flood: {FLOOD} streams answered {[r.status for _, r in flood]}, one more {refused.status}")
        print(f"{'first words (ms)':<18}{'median':>10}{'max':>10}")
        for name, timings in (("quiet", quiet), ("/chat flood", flooded)):
            print(f"{name:<18}{statistics.median(timings) * 1000:>10.1f}{max(timings) * 1000:>10.1f}")
        for connection, _ in flood:
            connection.close()
    finally:
        server.stop()
        upstream.stop()


if __name__ == "__main__":
    main()
