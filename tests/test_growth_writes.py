"""Growth writes in one statement: each growth lands only on its reply at the revision it names."""

import pytest

from chat.models import Message

pytestmark = pytest.mark.django_db


def streaming(text="", room="PirateBot"):
    reply = Message.objects.create(room=room, bot=room, role="assistant", status="pending")
    return Message.objects.claim(reply.pk, "m")


def test_a_batch_grows_every_reply_still_streaming_at_its_revision_and_no_other():
    one, two, stopped = streaming(), streaming(room="BelleBot"), streaming(room="ChatBot")
    Message.objects.stop(stopped.pk)
    grown = Message.objects.append([
        (one.pk, one.revision, "PirateBot", 0, "Ahoy, "),
        (two.pk, two.revision + 5, "BelleBot", 0, "stale"),  # a revision the row is not at
        (stopped.pk, stopped.revision, "ChatBot", 0, "too late"),
    ])
    assert grown == [True, False, False]
    rows = {m.pk: m for m in Message.objects.filter(pk__in=[one.pk, two.pk, stopped.pk])}
    assert (rows[one.pk].content, rows[one.pk].revision) == ("Ahoy, ", one.revision + 1)
    assert (rows[two.pk].content, rows[two.pk].revision) == ("", two.revision)
    assert rows[stopped.pk].content == "" and rows[stopped.pk].status == "cancelled"


def test_two_growths_of_one_reply_in_a_batch_answer_each_for_itself():
    reply = streaming()
    grown = Message.objects.append([
        (reply.pk, reply.revision, "PirateBot", 0, "first"),
        (reply.pk, reply.revision, "PirateBot", 5, "second"),  # the same revision: only one can land
    ])
    assert grown.count(True) == 1
    assert Message.objects.get(pk=reply.pk).content in {"first", "second"}


def test_text_with_quotes_and_unicode_is_kept_exactly_and_an_empty_batch_is_nothing():
    reply = streaming()
    text = "It's \"quoted\" -- 第一 ☠ \\n; DROP TABLE chat_message; --"
    assert Message.objects.append([(reply.pk, reply.revision, "PirateBot", 0, text)]) == [True]
    assert Message.objects.get(pk=reply.pk).content == text
    assert Message.objects.append([]) == []
