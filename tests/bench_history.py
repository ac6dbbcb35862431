"""Benchmark: the room page and the admin list on a table of a million messages (PostgreSQL).

    ./parley bench-history [--messages 1000000]

Uses DATABASE_URL if it names PostgreSQL, else postgres://postgres@127.0.0.1:5432/parley_bench
(created and migrated on first use, seeded once). Prints timings and the query plans, and exits
1, saying why, when a target is missed: a page that does not answer 200, a median over
TARGET_MS, or a plan of the room page or the filtered admin list that scans the whole table.
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
    os.environ["DATABASE_URL"] = "postgres://postgres@127.0.0.1:5432/parley_bench"
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
os.environ.setdefault("ALLOWED_HOSTS", "testserver")

import django  # noqa: E402
import psycopg  # noqa: E402


def ensure_database(url):
    name = url.rsplit("/", 1)[1]
    with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as admin:
        if not admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            admin.execute(f'CREATE DATABASE "{name}"')


def seed(count):
    from django.db import connection

    from chat.models import Message

    have = Message.objects.count()
    if have >= count:
        return have
    print(f"seeding {count - have:,} messages (once)...", flush=True)
    bots = ["ChatBot", "BelleBot", "PirateBot"] + [f"Bench{i}" for i in range(17)]
    with connection.cursor() as cursor:
        # One INSERT ... SELECT from generate_series: a million rows in seconds, not minutes.
        cursor.execute(
            """
            INSERT INTO chat_message (bot, role, content, status, error, author, model,
                                      prompt_tokens, completion_tokens, created_at, updated_at)
            SELECT (%s::text[])[1 + g %% %s],
                   CASE WHEN g %% 2 = 0 THEN 'user' ELSE 'assistant' END,
                   'message ' || g || ' ' || repeat('lorem ipsum ', 10),
                   CASE WHEN g %% 97 = 0 THEN 'failed' ELSE 'complete' END, '', 'Guest ' || (g %% 500), '',
                   NULL, NULL,
                   now() - (%s - g) * interval '1 second', now() - (%s - g) * interval '1 second'
            FROM generate_series(1, %s) AS g
            """,
            [bots, len(bots), count - have, count - have, count - have],
        )
        cursor.execute("ANALYZE chat_message")
    return Message.objects.count()


TARGET_MS = 1000  # slowest median allowed on a million rows


def timed(label, fn, runs=20):
    """Median milliseconds of fn() over runs calls, after one call to warm up."""
    fn()
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1000)
    print(f"{label:<48} p50 {statistics.median(samples):7.1f} ms   max {max(samples):7.1f} ms")
    return statistics.median(samples)


def page(client, path, misses):
    """A GET of path for timing; an answer other than 200 is a miss (a fast error page proves nothing)."""

    def get():
        response = client.get(path)
        if response.status_code != 200 and f"GET {path} answered {response.status_code}" not in misses:
            misses.append(f"GET {path} answered {response.status_code}")
        return response

    return get


def plans(label, fn):
    """Run fn once, then EXPLAIN ANALYZE and print each query on chat_message it made; return the plans."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        fn()
    found = []
    for query in captured.captured_queries:
        if "chat_message" not in query["sql"]:
            continue  # sessions, users
        with connection.cursor() as cursor:
            cursor.execute("EXPLAIN ANALYZE " + query["sql"])
            plan = "\n".join(row[0] for row in cursor.fetchall())
        print(f"\n-- plan: {label}\n{query['sql']}\n{plan}")
        found.append(plan)
    return found


def check_plans(label, found, misses):
    """Every query must find its rows through an index: a Seq Scan reads all million."""
    if not found:
        misses.append(f"{label}: no query on chat_message was captured, nothing to check")
    for plan in found:
        if "Seq Scan" in plan or "Index" not in plan:
            misses.append(f"{label}: a query scans the table instead of an index:\n{plan}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1_000_000)
    args = parser.parse_args()
    ensure_database(os.environ["DATABASE_URL"])
    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.test import Client

    from chat.models import Message

    call_command("migrate", verbosity=0)
    total = seed(args.messages)
    print(f"chat_message rows: {total:,}\n")
    user, _ = get_user_model().objects.get_or_create(username="bench", defaults={"is_staff": True, "is_superuser": True})
    client = Client()
    client.force_login(user)
    misses = []

    room_page = page(client, "/rooms/PirateBot/", misses)
    filtered_list = page(client, "/admin/chat/message/?bot__exact=PirateBot&status__exact=failed", misses)
    results = {
        "room page GET /rooms/PirateBot/": timed("room page GET /rooms/PirateBot/", room_page),
        "admin list GET /admin/chat/message/": timed("admin list GET /admin/chat/message/", page(client, "/admin/chat/message/", misses)),
        "admin list ?bot=PirateBot&status=failed": timed("admin list ?bot=PirateBot&status=failed", filtered_list),
        "catch-up (updated in the last minute)": timed("catch-up (updated in the last minute)", lambda: list(
            Message.objects.filter(bot="PirateBot", updated_at__gte=Message.objects.latest("id").updated_at).order_by("id")[:50]
        )),
    }
    check_plans("room page", plans("room page", room_page), misses)
    check_plans("admin list filtered", plans("admin list filtered", filtered_list), misses)
    check_plans("pending replies of a room", plans("pending replies of a room", lambda: list(
        Message.objects.filter(bot="PirateBot", role="assistant", status="pending").order_by("id")[:1]
    )), misses)
    if len(Message.objects.recent("PirateBot")) != 50:
        misses.append("the room page's query did not return 50 messages")
    for label, median in results.items():
        if median > TARGET_MS:
            misses.append(f"{label}: median {median:.1f} ms, over the {TARGET_MS} ms target")
    slowest = max(results.values())
    print(f"\nslowest median: {slowest:.1f} ms on {total:,} messages")
    if misses:
        print("\nMISSED:", *misses, sep="\n- ", file=sys.stderr)
        sys.exit(1)
    print("every target met")


if __name__ == "__main__":
    main()
