"""bench-history's search and scroll back figures (PostgreSQL): search p50/p99 for one to three words
and quoted phrases, as the API's call makes it, and ?before= / ?around= p99, as the query and as the view.

Seeded text is "message <n> lorem ipsum ..." and "reply <n> lorem ipsum ...": a number finds one
exchange, "reply" half the table, "lorem" all of it (the worst case: every row ranked, no target).
"""

import random
import statistics
import time

# Highest p50 / p99 allowed, in ms (issue 25): search of one to three words or a phrase; scroll back.
SEARCH_P50, SEARCH_P99, WINDOW_P99 = 20, 100, 20


def backfill(cursor):
    """Index rows seeded by raw SQL, where this checkout has search (a checkout from before has no column)."""
    cursor.execute("SELECT 1 FROM information_schema.columns WHERE table_name = 'chat_message' AND column_name = 'search_document'")
    if cursor.fetchone():
        from chat import search

        print("indexing the seeded messages for search (once)...", flush=True)
        # The GIN index built once after the update, not grown a row at a time (the migration's definition).
        cursor.execute("DROP INDEX IF EXISTS message_search")
        cursor.execute(f"UPDATE chat_message m SET search_document = to_tsvector(%s::regconfig, m.content) "
                       f"WHERE m.search_document IS NULL AND {search._indexed()}", [search_config()])
        cursor.execute("CREATE INDEX message_search ON chat_message USING gin (search_document) "
                       "WHERE search_document IS NOT NULL")


def search_config():
    from django.conf import settings

    return settings.SEARCH_CONFIG


def percentiles(label, fn, runs):
    """(p50, p99) milliseconds of fn(run) over runs calls, after two to warm up; printed."""
    fn(0), fn(1)
    samples = []
    for run in range(runs):
        started = time.perf_counter()
        fn(run)
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    p50, p99 = statistics.median(samples), samples[min(len(samples) - 1, round(len(samples) * 0.99) - 1)]
    print(f"{label:<56} p50 {p50:7.1f} ms   p99 {p99:7.1f} ms")
    return p50, p99


def figures(client, misses, runs=200):
    """Time search and scroll back; append a sentence to misses for each target missed; return the figures."""
    from bots import registry
    from chat import search
    from chat.models import Message

    rooms = [room.key for room in registry.rooms()]
    pairs = Message.objects.filter(role="assistant").count()
    ids = list(Message.objects.filter(room="PirateBot").order_by("id").values_list("id", flat=True))
    rng = random.Random(25)
    # Exchanges of the four rooms that are rows (the seed's rooms take turns, those four first; the
    # sixteen extra rooms are nobody's to search).
    numbers = [rng.randrange(pairs // 20) * 20 + rng.randrange(4) for _ in range(runs + 2)]
    picks = [rng.choice(ids[60:]) for _ in range(runs + 2)]
    found = search.find(f"reply {numbers[0]}", rooms)
    if not found or "<mark>" not in found[0].snippet:
        misses.append(f"search for 'reply {numbers[0]}' found nothing: is the seed indexed?")
    queries = {
        "search: one word (a number: one exchange)": lambda n: f"{n}",
        "search: two words": lambda n: f"reply {n}",
        "search: three words": lambda n: f"message {n} lorem",
        'search: a quoted phrase ("reply <n>")': lambda n: f'"reply {n}"',
        "search: one number or another": lambda n: f"{n} or {n + 1}",
    }
    results = {}
    for label, query in queries.items():
        results[label] = percentiles(label, lambda run, query=query: search.find(query(numbers[run]), rooms), runs)
        p50, p99 = results[label]
        if p50 > SEARCH_P50 or p99 > SEARCH_P99:
            misses.append(f"{label}: p50 {p50:.1f} ms, p99 {p99:.1f} ms, over {SEARCH_P50} / {SEARCH_P99} ms")
    # The worst case, with no target: a word in every row, all of them ranked.
    results["search: a word in every message (lorem), no target"] = percentiles(
        "search: a word in every message (lorem), no target", lambda run: search.find("lorem", rooms), 10)
    windows = {
        "scroll back: the query (Message.objects.before)": lambda run: Message.objects.before("PirateBot", picks[run]),
        "?around=: the query (Message.objects.around)": lambda run: Message.objects.around("PirateBot", picks[run]),
    }
    for label, fn in windows.items():
        results[label] = percentiles(label, fn, runs)
        if results[label][1] > WINDOW_P99:
            misses.append(f"{label}: p99 {results[label][1]:.1f} ms, over {WINDOW_P99} ms")
    frame = {"Turbo-Frame": "older"}
    results["scroll back: the view, a frame of 50 (no target)"] = percentiles(
        "scroll back: the view, a frame of 50 (no target)",
        lambda run: client.get(f"/rooms/PirateBot/?before={picks[run]}", headers=frame), runs // 4)
    results["?around=: the view, the whole page (no target)"] = percentiles(
        "?around=: the view, the whole page (no target)", lambda run: client.get(f"/rooms/PirateBot/?around={picks[run]}"), runs // 4)
    return results
