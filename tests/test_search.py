"""Search on the database the run uses (pass 1: SQLite's FTS5; pass 2: PostgreSQL's full-text):
exact result sets for words, other scripts, phrases, or and -word; what is never found (removed,
streaming, a retried reply's old text, a room the reader may not read); bad input; no drift after
random changes from two processes; writes behind the app's back kept in step by the database's
triggers; and a growth write that does no search work."""

import html
import io
import multiprocessing
import random
import re
import time

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError
from django.db import connection, connections, transaction
from django.test.utils import CaptureQueriesContext

from bots.models import Membership, Room
from chat import search
from chat.models import ApiKey, Message

ROOM, VAULT = "Lounge", "vault"


def post(content, room=ROOM, author="Ann"):
    return Message.objects.create(room=room, role="user", content=content, author=author, sender="guest:0a1b2c3d4e5f")


def reply(content, status="complete", room=ROOM):
    return Message.objects.create(room=room, bot="PirateBot", role="assistant", content=content, status=status)


@pytest.fixture
def corpus(db):
    """Messages with known words in a public room, and one in a members room; returns their ids by name."""
    mia = get_user_model().objects.create_user("mia", password="quiet-harbour-7731")
    vault = Room.objects.create(key=VAULT, title="The Vault", visibility="members", created_by=mia)
    Membership.objects.create(room=vault, user=mia, role="moderator")
    ids = {
        "fox": post("The quick brown fox jumps over the lazy dog").pk,
        "fuchs": post("Der schnelle braune Fuchs springt über den faulen Hund").pk,
        "lisa": post("Быстрая коричневая лиса прыгает через собаку").pk,
        "bear": reply("A brown bear sleeps all winter, **arr**").pk,
        "markup": post('<b>bold</b> & brown "quotes" <script>alert(1)</script>').pk,
        "streaming": reply("brown words still streaming", status="streaming").pk,
        "vault": post("brown vault secret", room=VAULT, author="mia").pk,
    }
    removed = post("brown but removed")
    Message.objects.remove(removed.pk, by="mod")
    ids["removed"] = removed.pk
    # A reply that failed with one text, was retried and finished with another.
    retried = reply("old zebra text", status="failed")
    Message.objects.retry(retried.pk)
    claimed = Message.objects.claim(retried.pk, "model")
    Message.objects.finish(retried.pk, claimed.revision, status="complete", content="new giraffe text")
    ids["retried"] = retried.pk
    return ids


def found(query, rooms=(ROOM,)):
    return {result.id for result in search.find(query, list(rooms))}


def test_words_phrases_or_and_minus_find_exactly_the_expected_messages(corpus):
    ids = corpus
    assert found("brown") == {ids["fox"], ids["bear"], ids["markup"]}
    assert found("BROWN fox") == {ids["fox"]}
    assert found('"brown fox"') == {ids["fox"]}
    assert found('"fox brown"') == set()
    assert found("brown -fox") == {ids["bear"], ids["markup"]}
    assert found('brown -"lazy dog" -bold') == {ids["bear"]}
    assert found("fox or bear") == {ids["fox"], ids["bear"]}
    assert found("fuchs über") == {ids["fuchs"]}
    assert found("HUND") == {ids["fuchs"]}
    assert found("лиса") == {ids["lisa"]}
    assert found('"коричневая лиса"') == {ids["lisa"]}
    assert found("arr") == {ids["bear"]}  # the reply's text, not its Markdown
    assert found("nothing-like-this") == set()


def test_removed_streaming_and_a_retried_replys_old_text_are_never_found(corpus):
    ids = corpus
    assert ids["removed"] not in found("removed") | found("brown")
    assert ids["streaming"] not in found("streaming") | found("brown")
    assert found("zebra") == set()
    assert found("giraffe") == {ids["retried"]}


def test_best_first_and_snippets_carry_only_mark(corpus):
    post("brown brown brown, all brown")
    results = search.find("brown", [ROOM])
    assert results[0].snippet.count("<mark>") >= 3  # the densest match ranks first
    markup = next(result for result in results if result.id == corpus["markup"])
    assert set(re.findall(r"<[^>]*>", markup.snippet)) == {"<mark>", "</mark>"}
    # (PostgreSQL's headline drops what its parser takes for tags; SQLite's keeps them, escaped.)
    assert "&amp;" in markup.snippet and "&quot;quotes" in markup.snippet and "<mark>brown</mark>" in markup.snippet


def test_punctuation_alone_finds_nothing_without_asking_the_database(corpus):
    with CaptureQueriesContext(connection) as captured:
        assert search.find("!!! ... ?? -- ''", [ROOM]) == []
    assert captured.captured_queries == []


def test_the_page_shows_only_readable_rooms_and_links_to_the_message(corpus, client):
    page = client.get("/search", {"q": "brown"})
    assert page.status_code == 200
    shown = {int(pk) for pk in re.findall(r'data-message-id="(\d+)"', page.text)}
    assert shown == {corpus["fox"], corpus["bear"], corpus["markup"]}  # the vault's is not the guest's
    assert "secret" not in page.text
    assert f'href="/rooms/{ROOM}/?around={corpus["fox"]}#message_{corpus["fox"]}"' in page.text
    assert f'data-room="{ROOM}"' in page.text
    assert client.get("/search").status_code == 200  # the form
    assert 'href="/search"' in client.get("/").text and 'href="/search"' in client.get(f"/rooms/{ROOM}/").text
    client.login(username="mia", password="quiet-harbour-7731")
    mine = client.get("/search", {"q": "brown", "room": VAULT})
    assert re.findall(r'data-message-id="(\d+)"', mine.text) == [str(corpus["vault"])]


@pytest.mark.parametrize(("query", "sentence"), [
    ({"q": ""}, "Type something to search for."),
    ({"q": "x" * 201}, "at most 200 characters; this one has 201"),
    ({"q": "brown\x00"}, "characters that are not text"),
    ({"q": "-brown"}, "needs a word to find"),
    ({"q": "brown", "room": "no-such-room"}, "There is no room called 'no-such-room'."),
    ({"q": "brown", "room": VAULT}, "There is no room called 'vault'."),  # not theirs: the same sentence
    ({"q": "brown", "limit": "0"}, "limit is a whole number from 1 to 50."),
    ({"q": "brown", "limit": "51"}, "limit is a whole number from 1 to 50."),
    ({"q": "brown", "limit": "ten"}, "limit is a whole number from 1 to 50."),
])
def test_bad_input_gets_400_with_a_sentence(corpus, client, query, sentence):
    key = ApiKey.objects.issue("script")[1]
    answer = client.get("/api/search", query, headers={"Authorization": f"Bearer {key}"})
    assert answer.status_code == 400 and sentence in answer.json()["error"]
    if "limit" not in query:
        page = client.get("/search", query)
        assert page.status_code == 400 and sentence in html.unescape(page.content.decode())


def test_the_api_answers_json_best_first_for_the_keys_rooms(corpus, client):
    key = ApiKey.objects.issue("script")[1]
    headers = {"Authorization": f"Bearer {key}"}
    answer = client.get("/api/search", {"q": "brown", "limit": "2"}, headers=headers)
    assert answer.status_code == 200
    rows = answer.json()
    assert len(rows) == 2 and set(rows[0]) == {"id", "room", "author", "bot", "created", "snippet"}
    everything = client.get("/api/search", {"q": "brown"}, headers=headers).json()
    assert {row["id"] for row in everything} == {corpus["fox"], corpus["bear"], corpus["markup"]}
    bear = next(row for row in everything if row["id"] == corpus["bear"])
    assert (bear["bot"], bear["author"], bear["room"]) == ("PirateBot", "", ROOM)
    assert client.get("/api/search", {"q": "brown"}).status_code == 401
    mias = ApiKey.objects.issue("mia's script", user=get_user_model().objects.get(username="mia"))[1]
    theirs = client.get("/api/search", {"q": "vault"}, headers={"Authorization": f"Bearer {mias}"}).json()
    assert [row["id"] for row in theirs] == [corpus["vault"]]
    assert client.get("/api/search", {"q": "vault"}, headers=headers).json() == []


def test_a_growth_write_does_no_search_work_and_a_finish_no_second_write(db):
    asked = post("question")
    pending = reply("", status="pending")
    claimed = Message.objects.claim(pending.pk, "model")
    with CaptureQueriesContext(connection) as growth:
        assert Message.objects.append([(pending.pk, claimed.revision, ROOM, 0, "growing walrus")]) == [True]
    assert growth.captured_queries and not [q for q in growth.captured_queries if "search" in q["sql"]]
    assert found("walrus") == set() and search.drift(connection) == []
    with CaptureQueriesContext(connection) as finish:
        Message.objects.finish(pending.pk, claimed.revision + 1, status="complete", content="growing walrus done")
    # The entry is the trigger's, in the row's own write: no statement of the app's writes it.
    touched = [q["sql"] for q in finish.captured_queries if "chat_message" in q["sql"] and not q["sql"].startswith("SELECT")]
    assert len(touched) == 1 and touched[0].startswith('UPDATE "chat_message"')
    assert not [q for q in finish.captured_queries if "search" in q["sql"]]
    assert found("walrus") == {pending.pk} and asked.pk not in found("walrus")
    assert search.drift(connection) == []


def test_writes_behind_the_app_s_back_keep_the_index_in_step(corpus):
    """The index follows the rows whoever writes them: a model's save (as the admin saves), a bulk
    update, raw SQL, a delete."""
    Message.objects.filter(pk=corpus["fox"]).update(content="The quick brown vixen")  # an edit
    saved = Message.objects.get(pk=corpus["fuchs"])
    saved.content = "Der schnelle braune Luchs"
    saved.save()
    Message.objects.bulk_create([Message(room=ROOM, role="user", content="bulk pelican", author="Ann", seq=900, number=900)])
    Message.objects.filter(pk=corpus["streaming"]).update(status="complete")  # finished by hand
    with connection.cursor() as cursor:
        cursor.execute("UPDATE chat_message SET removed_at = CURRENT_TIMESTAMP WHERE id = %s", [corpus["bear"]])
    Message.objects.filter(pk=corpus["retried"]).delete()
    assert found("fox") == set() and found("vixen") == {corpus["fox"]}
    assert len(found("pelican")) == 1 and found("still") == {corpus["streaming"]}
    assert found("luchs") == {corpus["fuchs"]} and found("fuchs") == set()
    assert corpus["bear"] not in entries() and corpus["retried"] not in entries()  # find() itself skips such rows
    assert search.drift(connection) == []


def entries():
    """Ids of the messages the index holds an entry for, read from the index itself."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT id FROM chat_message WHERE search_document IS NOT NULL")
        else:
            cursor.execute("SELECT rowid FROM chat_message_search")
        return {pk for (pk,) in cursor.fetchall()}


@pytest.mark.skipif("connection.vendor != 'postgresql'", reason="SEARCH_CONFIG is PostgreSQL's")
def test_rebuild_search_points_the_triggers_at_a_new_search_config(corpus, settings):
    from django.core.management import call_command

    settings.SEARCH_CONFIG = "english"
    # The setting takes effect when rebuild_search runs: until then writes and searches alike split "simple".
    early = post("The foxes were jumping").pk
    assert found("jump") == set() and found("foxes") == {early} and search.drift(connection) == []
    call_command("rebuild_search", stdout=io.StringIO())
    jumping = post("Foxes jumped").pk  # written after: by the trigger, now with "english"
    assert search.drift(connection) == []
    assert found("jump") == found("fox") == {corpus["fox"], early, jumping}
    settings.SEARCH_CONFIG = "simple"
    call_command("rebuild_search", stdout=io.StringIO())
    assert search.drift(connection) == [] and found("jump") == set()
    settings.SEARCH_CONFIG = "no_such_config"  # a sentence, and the triggers left as they were
    with pytest.raises(CommandError, match="'no_such_config': text search configuration"), transaction.atomic():
        call_command("rebuild_search", stdout=io.StringIO())
    assert found("jumping") == {early} and search.drift(connection) == []


WORDS = ["otter", "heron", "lynx", "moss", "fern", "delta"]


def churn(seed, steps):
    """steps random changes of messages, as the app makes them: posts, replies finished, failed, stopped,
    retried, removed, pruned (run in a process of its own)."""
    connections.close_all()  # a forked process opens its own connection
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:  # no wait for the disk at each commit: a test's rows need no durability
            cursor.execute("SET synchronous_commit TO OFF")
    rng = random.Random(seed)
    mine = []
    for _ in range(steps):
        text = " ".join(rng.choices(WORDS, k=3))
        action = rng.random()
        if action < 0.35 or not mine:
            mine.append(post(text).pk)
        elif action < 0.6:
            pk = reply("", status="pending").pk
            claimed = Message.objects.claim(pk, "model")
            Message.objects.append([(pk, claimed.revision, ROOM, 0, text)])
            end = rng.choice(["finish", "fail", "stop", "leave"])
            if end == "finish":
                Message.objects.finish(pk, claimed.revision + 1, status="complete", content=text + " done")
            elif end == "fail":
                Message.objects.fail(pk, "upstream broke")
            elif end == "stop":
                Message.objects.stop(pk)
            mine.append(pk)
        elif action < 0.75:
            Message.objects.retry(rng.choice(mine))
        elif action < 0.9:
            Message.objects.remove(rng.choice(mine), by="mod")
        else:
            gone = rng.sample(mine, min(2, len(mine)))
            Message.objects.filter(pk__in=gone).delete()  # pruning, as prune_history deletes
            mine = [pk for pk in mine if pk not in gone]
    connections.close_all()


@pytest.mark.django_db(transaction=True)
def test_no_drift_after_a_thousand_random_changes_from_two_processes():
    started = time.monotonic()
    context = multiprocessing.get_context("fork")
    connections.close_all()
    workers = [context.Process(target=churn, args=(seed, 500)) for seed in (1, 2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
        assert worker.exitcode == 0
    assert Message.objects.count() > 200
    assert search.drift(connection) == []
    # And what search answers is what the rows say, word by word.
    shown = Message.objects.shown().exclude(status__in=Message.ACTIVE)
    for word in WORDS:
        expected = {m.pk for m in shown.filter(room=ROOM) if word in m.content.split()}
        assert _all(word) == expected
    print(f"no-drift churn: {time.monotonic() - started:.1f} s")


def _all(word):
    """Every message search finds for word (past the API's limit: the module's own call)."""
    return {r.id for r in search.find(word, [ROOM], limit=100_000)}


def test_drift_is_seen_and_rebuild_search_repairs_it(corpus):
    from django.core.management import call_command

    with connection.cursor() as cursor:  # an entry lost behind the app's back
        if connection.vendor == "postgresql":
            cursor.execute("UPDATE chat_message SET search_document = NULL WHERE id = %s", [corpus["fox"]])
        else:
            cursor.execute("DELETE FROM chat_message_search WHERE rowid = %s", [corpus["fox"]])
    assert search.drift(connection) == [corpus["fox"]] and found("fox") == set()
    out = io.StringIO()
    call_command("rebuild_search", batch_size=3, stdout=out)
    assert "(1 were out of step)" in out.getvalue()
    assert search.drift(connection) == [] and found("fox") == {corpus["fox"]}
