"""Benchmark: the room page and the admin list on a table of a million messages (PostgreSQL).

    ./parley bench-history [--messages 1000000]

Uses DATABASE_URL if it names PostgreSQL, else postgres://postgres@127.0.0.1:5432/parley_bench
(created and migrated on first use, seeded once). Prints timings and the query plans.
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


def timed(label, fn, runs=20):
    fn()  # warm
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1000)
    print(f"{label:<48} p50 {statistics.median(samples):7.1f} ms   max {max(samples):7.1f} ms")
    return statistics.median(samples)


def explain(label, queryset):
    print(f"\n-- plan: {label}")
    print(queryset.explain(analyze=True))


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
    from chat.room import recent_messages

    call_command("migrate", verbosity=0)
    total = seed(args.messages)
    print(f"chat_message rows: {total:,}\n")
    user, _ = get_user_model().objects.get_or_create(username="bench", defaults={"is_staff": True, "is_superuser": True})
    client = Client()
    client.force_login(user)

    results = {
        "room page (HTTP, 50 newest of PirateBot)": timed("room page GET /rooms/PirateBot/", lambda: client.get("/rooms/PirateBot/")),
        "admin list": timed("admin list GET /admin/chat/message/", lambda: client.get("/admin/chat/message/")),
        "admin list, room + status filter": timed(
            "admin list ?bot=PirateBot&status=failed",
            lambda: client.get("/admin/chat/message/?bot__exact=PirateBot&status__exact=failed"),
        ),
        "catch-up query": timed("catch-up (updated in the last minute)", lambda: list(
            Message.objects.filter(bot="PirateBot", updated_at__gte=Message.objects.latest("id").updated_at).order_by("id")[:50]
        )),
    }
    explain("room page", Message.objects.filter(bot="PirateBot").order_by("-id")[:50])
    explain("admin list filtered", Message.objects.filter(bot="PirateBot", status="failed").order_by("-id")[:50])
    explain("pending replies of a room", Message.objects.filter(bot="PirateBot", role="assistant", status="pending").order_by("id")[:1])
    assert len(recent_messages("PirateBot")) == 50
    slowest = max(results.values())
    print(f"\nslowest median: {slowest:.1f} ms on {total:,} messages ({'OK' if slowest < 1000 else 'TOO SLOW'})")


if __name__ == "__main__":
    main()
