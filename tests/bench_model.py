"""The web process while the embedded model works: is the event loop still quick?

    ./parley bench-model [--app-dir DIR] [--seconds 20] [--sockets 50]

One real Daphne process on the local model (Redis channel layer, PostgreSQL), 50 sockets in
BelleBot's room held by the load client (tests/bench_client.py). Measured twice, with the model
idle and with it generating replies in PirateBot's room back to back: the latency of GET /healthz
and of a frame sent to the BelleBot room's group from another process, as a second server would.
`--app-dir` serves another checkout of Parley (say, a worktree of an older commit) with this
environment, so two designs are measured side by side in one run.
"""

import argparse
import http.client
import os
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.bench_capacity import probe  # noqa: E402
from tests.bench_servers import AS_PRODUCTION  # noqa: E402
from tests.bench_stream import DATABASE_URL, NOW, Client, cpu_seconds, percentile, prepare  # noqa: E402

ROOM, BUSY_ROOM = "BelleBot", "PirateBot"
FRAMES_PER_SECOND = 500  # to the room's sockets: 10 group messages a second to 50 sockets


def server_env(app_dir):
    return {
        **AS_PRODUCTION,
        "DATABASE_URL": DATABASE_URL, "REDIS_URL": os.environ["REDIS_URL"], "LOG_LEVEL": "WARNING", "LLM_PROVIDER": None, "OPENAI_API_KEY": None,
        "REPLY_MAX_TOKENS": "512", "RATE_LIMIT_PER_CLIENT": "100000", "RATE_LIMIT_PER_ROOM": "100000",
        "PYTHONPATH": str(app_dir),
    }


def healthz_latencies(port, seconds):
    """GET /healthz every 20 ms for `seconds`; each answer's time in seconds."""
    latencies, end = [], time.monotonic() + seconds
    while time.monotonic() < end:
        started = time.monotonic()
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        connection.request("GET", "/healthz")
        assert connection.getresponse().status == 200
        connection.close()
        latencies.append(time.monotonic() - started)
        time.sleep(0.02)
    return sorted(latencies)


class Chatter(threading.Thread):
    """Keeps the model generating: a new message in the busy room whenever the last reply ended."""

    def __init__(self, server):
        super().__init__(daemon=True)
        from tests.servers import Browser

        self.browser, self.stopping = Browser(server.url), threading.Event()
        self.page = f"/rooms/{BUSY_ROOM}/"

    def run(self):
        from chat.models import Message

        while not self.stopping.is_set():
            self.browser.post_form(self.page, f"{self.page}messages", {"content": "Tell me a very long story about your ship"})
            while not self.stopping.wait(0.2):
                if not Message.objects.filter(room=BUSY_ROOM, status__in=["pending", "streaming"]).exists():
                    break


def measure(server, client, seconds, sockets):
    """healthz and frame latencies over `seconds`, and the server's CPU meanwhile."""
    cpu = cpu_seconds(server.process.pid)
    health = healthz_latencies(server.port, seconds / 2)
    frames = [probe(server, client, [ROOM], FRAMES_PER_SECOND, sockets) for _ in range(max(1, int(seconds / 2 / 5.5)))]
    return {
        "healthz_p50_ms": percentile(health, 0.5) * 1000, "healthz_p99_ms": percentile(health, 0.99) * 1000,
        "frame_p50_ms": max(f["p50_ms"] for f in frames), "frame_p99_ms": max(f["p99_ms"] for f in frames),
        "frames_lost": sum(f["lost"] for f in frames), "server_cpu_s": cpu_seconds(server.process.pid) - cpu,
    }


def run(app_dir, seconds, sockets):
    import django

    from tests.servers import Daphne

    django.setup()
    from chat.models import Message

    Message.objects.all().delete()
    server = Daphne(server_env(app_dir), cwd=app_dir)
    try:
        client = Client(server, [ROOM], sockets)
        idle = measure(server, client, seconds, sockets)
        chatter = Chatter(server)
        chatter.start()
        deadline = time.monotonic() + 60
        while not Message.objects.filter(room=BUSY_ROOM, status="streaming").exists():
            assert time.monotonic() < deadline, "the model never started streaming"
            time.sleep(0.1)
        busy = measure(server, client, seconds, sockets)
        chatter.stopping.set()
        chatter.join(30)
        replies = Message.objects.filter(room=BUSY_ROOM, role="assistant", status="complete").count()
        client.close()
    finally:
        server.stop()
    return idle, busy, replies


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--app-dir", type=Path, default=ROOT, help="the checkout of Parley to serve")
    parser.add_argument("--seconds", type=float, default=20, help="seconds measured idle, and again busy")
    parser.add_argument("--sockets", type=int, default=50)
    args = parser.parse_args()
    prepare(NOW)  # migrated by this checkout, as before: this process reads it with this checkout's models
    idle, busy, replies = run(args.app_dir.resolve(), args.seconds, args.sockets)
    print(f"\n{args.app_dir.name}: {replies} replies generated while busy; {args.sockets} sockets in {ROOM}'s room\n")
    print("| | model idle | model generating | generating / idle |")
    print("|---|---:|---:|---:|")
    for label, key in [("GET /healthz p50 (ms)", "healthz_p50_ms"), ("GET /healthz p99 (ms)", "healthz_p99_ms"),
                       ("frame to 50 sockets p50 (ms)", "frame_p50_ms"), ("frame to 50 sockets p99 (ms)", "frame_p99_ms"),
                       ("frames lost", "frames_lost"), ("web process CPU (s)", "server_cpu_s")]:
        ratio = f"{busy[key] / idle[key]:.1f}x" if idle[key] else "-"
        print(f"| {label} | {idle[key]:.1f} | {busy[key]:.1f} | {ratio} |")


if __name__ == "__main__":
    main()
