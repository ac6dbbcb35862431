"""Growth writes in one statement: each growth lands only on its reply at the revision it names."""

import pytest

from chat.models import Message, RoomClock

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


def test_each_growth_of_a_batch_takes_its_own_room_s_next_number_in_the_order_listed():
    beta, alpha, gamma = streaming(room="BelleBot"), streaming(room="ChatBot"), streaming(room="PirateBot")
    alpha_next, beta_next = (RoomClock.objects.get(room=room).last + 1 for room in ("ChatBot", "BelleBot"))
    # Rooms out of key order, one reply growing twice (its second growth at the next revision, next round).
    grown = Message.objects.append([
        (alpha.pk, alpha.revision, "ChatBot", 0, "two"),
        (beta.pk, beta.revision, "BelleBot", 0, "one"),
        (beta.pk, beta.revision + 1, "BelleBot", 3, " three"),
    ])
    assert grown == [True, True, True]
    rows = {m.pk: m for m in Message.objects.filter(pk__in=[alpha.pk, beta.pk, gamma.pk])}
    assert (rows[beta.pk].content, rows[beta.pk].seq) == ("one three", beta_next + 1)
    assert (rows[alpha.pk].content, rows[alpha.pk].seq) == ("two", alpha_next)
    assert rows[gamma.pk].seq == gamma.seq  # not in the batch
