"""Benchmark: what a post into a bot's room, and a batch of streaming replies' growth, cost the
thread that makes them, this checkout beside another.

    ./parley bench-posts [--posts 300] [--replies 20] [--batches 300] [--rounds 3] [--before DIR]

Each side gets a PostgreSQL database of its own, made and migrated by its own checkout
(tests/bench_database.py). In a process of its own, running that checkout's code, each side posts
--posts messages into BelleBot through Django's test client, after 10 to warm up: the whole
middleware stack, the view, the two rows, the two partials rendered for the pages. No server runs,
so nothing streams: the replies stay pending, and the frames are rendered but not sent (a server
hands them to its event loop; here they are dropped, so that the posting thread does only what it
does in a server). Then --batches growth batches of --replies replies streaming at once, one per
room: what the growth lane writes each time the replies flush together, through the app's own
``Message.objects.append``. DEBUG is off, as in production. The sides take turns, --rounds times,
in the other order each round, so that the machine's noise falls on both.
Prints, per side and round, the queries one post (and one batch) makes and its time p50, mean and p90.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATABASE_URL = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/parley_bench_posts")
ROOM = "BelleBot"
WARM_UP = 10


def timed(call, count, connection):
    """call(i) count times after WARM_UP: the queries of one call, and its times p50, mean and p90 (ms)."""
    from django.test.utils import CaptureQueriesContext

    for i in range(WARM_UP):
        call(i)
    with CaptureQueriesContext(connection) as captured:
        call(WARM_UP)
    queries = len(captured.captured_queries)  # now: the next request clears Django's log
    times = []
    for i in range(count):
        started = time.perf_counter()
        call(i)
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return {"queries": queries, "p50": statistics.median(times), "mean": statistics.mean(times),
            "p90": times[int(0.9 * len(times))]}


def child(posts, replies, batches):
    """In the side's own code (its directory first on the path): time posts and growth batches, print one JSON line."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
    import logging

    import django

    django.setup()
    from django.db import connection
    from django.test import Client

    from chat.delivery.broadcast import suppressing_broadcasts
    from chat.models import Message

    logging.disable(logging.INFO)  # "no event loop: a server's sweep will answer", once a post
    client = Client(HTTP_HOST="127.0.0.1")

    def post(i):
        response = client.post(f"/rooms/{ROOM}/messages", {"content": f"Good evening, number {i}"},
                                HTTP_ACCEPT="text/vnd.turbo-stream.html")
        if response.status_code != 200:
            raise SystemExit(f"a post was answered {response.status_code}: {response.content[:200]!r}")

    streaming = []  # [pk, revision, room, offset] of each reply, as its writer keeps them
    for n in range(replies):
        reply = Message.objects.create(room=f"Growth{n:02d}", role=Message.Role.ASSISTANT, status=Message.Status.PENDING)
        claimed = Message.objects.claim(reply.pk, "bench")
        streaming.append([claimed.pk, claimed.revision, claimed.room, 0])

    def grow(i):
        text = f" word{i}"
        grown = Message.objects.append([(pk, revision, room, offset, text) for pk, revision, room, offset in streaming])
        if not all(grown):
            raise SystemExit("a growth did not land")
        for reply in streaming:
            reply[1] += 1
            reply[3] += len(text)

    with suppressing_broadcasts():
        result = {"post": timed(post, posts, connection), "growth": timed(grow, batches, connection)}
    import chat

    print(json.dumps({**result, "code": chat.__file__}))


def measure(side, args):
    """One round of one side, in a process of its own."""
    from tests.bench_servers import AS_PRODUCTION  # this checkout's (main put it on the path)

    env = {**os.environ, **AS_PRODUCTION, "DATABASE_URL": side.database_url, "PYTHONPATH": str(side.app_dir),
           # Every post is taken: the benchmark's one client is not a flood.
           "RATE_LIMIT_PER_CLIENT": "1000000", "RATE_LIMIT_PER_ROOM": "1000000"}
    env.pop("REDIS_URL", None)  # the in-process cache and layer: nothing here is shared
    command = [sys.executable, __file__, "--child", str(args.posts), str(args.replies), str(args.batches)]
    done = subprocess.run(command, cwd=side.app_dir, env=env, capture_output=True, text=True, check=False)
    if done.returncode:
        sys.exit(f"{side.app_dir.name}: {done.stderr.strip() or done.stdout.strip()}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if not Path(result["code"]).is_relative_to(side.app_dir):
        sys.exit(f"{side.app_dir.name}: the child ran the code in {result['code']}, not the side's")
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--posts", type=int, default=300)
    parser.add_argument("--replies", type=int, default=20, help="replies streaming at once, one per room")
    parser.add_argument("--batches", type=int, default=300, help="growth batches of all of them")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--before", type=Path, help="another checkout of Parley, measured in turn with this one")
    args = parser.parse_args()

    sys.path.insert(0, str(ROOT))
    from tests.bench_database import Side, prepare

    sides = [("this checkout", Side(ROOT, DATABASE_URL))]
    if args.before:
        sides.append((f"{args.before.resolve().name} (before)", Side(args.before.resolve(), DATABASE_URL + "_before")))
    try:
        for _, side in sides:
            prepare(side)
    except Exception as exc:  # noqa: BLE001 - any failure to reach PostgreSQL
        sys.exit(f"start PostgreSQL (or set BENCH_DATABASE_URL) to run the benchmark: {exc}")
    print(f"{args.posts} posts into {ROOM} and {args.batches} growth batches of {args.replies} replies a round, "
          f"{args.rounds} rounds, the sides in turn (ms a post, a batch)", flush=True)
    results = {label: [] for label, _ in sides}
    for round_ in range(1, args.rounds + 1):
        # Each round in the other order: drift in the machine's load falls on both sides alike.
        for label, side in (sides if round_ % 2 else sides[::-1]):
            result = measure(side, args)
            results[label].append(result)
            for kind in ("post", "growth"):
                figures = result[kind]
                print(f"  round {round_}, {label:<24} {kind:<7} queries {figures['queries']:>3}   p50 {figures['p50']:6.2f}"
                      f"   mean {figures['mean']:6.2f}   p90 {figures['p90']:6.2f}", flush=True)
    if len(sides) == 2:
        (now, _), (before, _) = sides
        for kind in ("post", "growth"):
            ratios = [a[kind]["p50"] / b[kind]["p50"] for a, b in zip(results[now], results[before], strict=True)]
            print(f"{kind} p50 this checkout / before, round by round: {', '.join(f'{r:.2f}' for r in ratios)}")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        child(*map(int, sys.argv[2:5]))
    else:
        main()
