"""A bot speaks only for itself: stop sequences from the room's other speakers, the reply cut where
the model starts another speaker's line, its own label stripped at the opening."""

import pytest
from asgiref.sync import sync_to_async
from django.test import AsyncClient
from hypothesis import given, settings as hypothesis_settings, strategies as st

from chat.models import Message
from chat.replies.reading import SPOKE_FOR_OTHERS
from chat.replies.speakers import Guard
from tests.rooms import finished, frames_until, grown_text, shown_text, subscribe
from tests.test_rooms import post, rows

pytestmark = pytest.mark.django_db(transaction=True)


@sync_to_async
def earlier(*lines):
    """Lines already said in the Lounge: (author, content) for people, (bot key, content) for bots' replies."""
    for who, content in lines:
        if who.endswith("Bot"):
            Message.objects.create(room="Lounge", role="assistant", bot=who, content=content, status="complete")
        else:
            Message.objects.create(room="Lounge", role="user", author=who, content=content)


async def ask(content, name="Ana", status="complete", answers=1):
    """Post content in the Lounge as name; the first reply row once a page saw the last of answers
    replies end (the first in status), and the page's frames."""
    client = AsyncClient()
    assert (await client.post("/profile", {"name": name})).status_code in (200, 302, 303)
    page = await subscribe("Lounge")
    already = len(await rows(room="Lounge", role="assistant"))
    await post(content, bot="Lounge", client=client)
    new = (await rows(room="Lounge", role="assistant"))[already:]
    assert len(new) == answers
    # One wait for every reply's end: one socket message may carry both, in either order.
    ends = [finished(new[0].pk, status)] + ([finished(new[-1].pk)] if answers > 1 else [])
    seen = set()

    def all_ended(frame):
        seen.update(i for i, end in enumerate(ends) if end(frame))
        return len(seen) == len(ends)

    frames = await frames_until(page, all_ended, timeout=30)
    (reply,) = await rows(pk=new[0].pk)
    return reply, frames


async def test_the_reply_is_cut_exactly_where_another_speakers_line_starts(upstream):
    await earlier(("Cy", "Evening, all."), ("PirateBot", "Arr, evenin'."))
    tokens = ["Why", " hello", ", sugar.", "\n", "Pir", "ateBot", ":", " Arr", " matey", " and", " more"]
    upstream.will(tokens=tokens, rate=20)

    reply, frames = await ask("@BelleBot say hi")

    assert (reply.status, reply.content) == ("complete", "Why hello, sugar.")
    # What the page was shown as the reply grew is what the reply kept: nothing shown, then taken back.
    assert reply.content.startswith(grown_text(frames, reply.pk))
    assert shown_text(frames, reply.pk).strip() == "Why hello, sugar."  # as Markdown renders it
    (exchange,) = upstream.exchanges
    # The other speakers as the prompt labels them, most recent first; the bot's own label is not one.
    assert exchange.body["stop"] == ["\nAna:", "\nPirateBot:", "\nCy:"]
    assert [m["content"] for m in exchange.messages[1:]] == ["Cy: Evening, all.", "PirateBot: Arr, evenin'.", "Ana: @BelleBot say hi"]
    # Reading stopped at the cut: the upstream's connection was closed before its last words.
    assert exchange.closed_at is not None
    assert len(exchange.sent) < len(tokens)


async def test_the_request_carries_the_four_most_recent_other_speakers(upstream):
    await earlier(("Eve", "one"), ("Dan", "two"), ("Cy", "three"), ("Bo", "four @ChatBot"), ("ChatBot", "five"))
    upstream.will(text="Hello there.")

    reply, _ = await ask("@PirateBot ahoy")

    assert reply.content == "Hello there."
    (exchange,) = upstream.exchanges
    assert exchange.body["stop"] == ["\nAna:", "\nChatBot:", "\nBo:", "\nCy:"]


async def test_a_mentioned_bot_yet_to_answer_is_a_speaker_too(upstream):
    upstream.will(tokens=["Howdy", " y'all.", " PirateBot", ":", " Arr!"])
    upstream.will(tokens=["Arr", " ye", " lot!", " **BelleBot:**", " Howdy"])

    reply, _ = await ask("@BelleBot @PirateBot say hi in one line each", answers=2)

    assert reply.bot == "BelleBot" and reply.content == "Howdy y'all."
    (pirate,) = await rows(room="Lounge", bot="PirateBot")
    assert pirate.content == "Arr ye lot!"
    assert [exchange.body["stop"] for exchange in upstream.exchanges] == [["\nAna:", "\nPirateBot:"], ["\nBelleBot:", "\nAna:"]]


async def test_a_reply_does_not_open_with_its_own_label(upstream):
    upstream.will(tokens=["Belle", "Bot", ":", " Why", ",", " hello", " Ana."])

    reply, frames = await ask("@BelleBot hi")

    assert reply.content == "Why, hello Ana."
    assert grown_text(frames, reply.pk) in ("", "Why", "Why,", "Why, hello", "Why, hello Ana.")


async def test_a_label_the_stop_sequences_would_miss_still_cuts(upstream):
    # Emphasis, another case, a space before the colon: no stop sequence matches these exactly.
    upstream.will(tokens=["Sure", " thing.", " **", "ana", "**", " :", " me", " too"])

    reply, _ = await ask("@ChatBot hi")

    assert reply.content == "Sure thing."


async def test_a_reply_labelled_with_the_askers_name_keeps_its_words(upstream):
    # What SmolLM2 does in the Lounge: it labels its own line, with the name of the one it answers.
    upstream.will(tokens=["An", "a:", " Arr", ",", " matey", "!", " Ana", ":", " what?"])

    reply, _ = await ask("@PirateBot hi")

    assert reply.content == "Arr, matey!"


async def test_a_reply_with_nothing_of_its_own_gets_one_fresh_draw(upstream):
    await earlier(("Cy", "Evening."))
    upstream.will(tokens=["Ana", ":", " ", "\n", "Cy", ":", " hi"])
    upstream.will(text="Arr, ahoy there.")

    reply, frames = await ask("@PirateBot hi")

    assert (reply.status, reply.content) == ("complete", "Arr, ahoy there.")
    assert shown_text(frames, reply.pk).strip() == "Arr, ahoy there."
    assert len(upstream.exchanges) == 2


async def test_a_reply_with_nothing_of_its_own_twice_fails_with_a_sentence(upstream):
    upstream.will(tokens=["Ana:", " ", "\n", "Ana", ":", " hi"])
    upstream.will(tokens=["\n", "Ana", ":", "\n", "Ana:", " hi", " again"])

    reply, _ = await ask("@PirateBot hi", status="failed")

    assert (reply.status, reply.content, reply.error) == ("failed", "", SPOKE_FOR_OTHERS)
    assert len(upstream.exchanges) == 2


async def test_a_person_named_like_a_word_does_not_cut_the_word(upstream):
    upstream.will(tokens=["Bananas", " are", " Ana's", " favourite:", " yes."])

    reply, _ = await ask("@ChatBot fruit?")

    assert reply.content == "Bananas are Ana's favourite: yes."


SPEECH = "Why hello there, sugar. It's a fine evening in the Lounge"
SPOKEN = "Ana: **PirateBot**: " + SPEECH + " **PirateBot**: Arr, matey."  # labels at the opening are the reply's own


@given(cuts=st.sets(st.integers(min_value=1, max_value=len(SPOKEN) - 1)))
@hypothesis_settings(max_examples=200, deadline=None)
def test_however_the_stream_is_split_the_cut_is_the_same_and_nothing_shown_is_taken_back(cuts):
    text = SPOKEN
    bounds = [0, *sorted(cuts), len(text)]
    guard, shown = Guard(["BelleBot", "Southern Belle"], ["Ana", "PirateBot"]), ""
    for start, end in zip(bounds, bounds[1:], strict=False):
        shown += guard.feed(text[start:end])
        assert SPEECH.startswith(shown)
        if guard.cut:
            break
    shown += guard.end()
    assert guard.cut and shown == SPEECH


@pytest.mark.parametrize("label", ["{asker}: ", "**{asker}:** ", "Guest 1234:\n"])
async def test_an_unnamed_askers_guest_label_at_the_opening_is_stripped(upstream, label):
    client = AsyncClient()  # a guest who never chose a name: the room shows them as "Guest NNNN"
    await post("evening", bot="Lounge", client=client)  # the Lounge has no bot of its own: no reply
    (said,) = await rows(room="Lounge", role="user")
    assert said.author.startswith("Guest ") and said.author != "Guest 1234"
    # The asker's label as SmolLM2 writes it, in emphasis, or with a number of its own making.
    upstream.will(tokens=[*label.format(asker=said.author), "Hello", " there."])
    page = await subscribe("Lounge")

    await post("@ChatBot hi", bot="Lounge", client=client)

    (reply,) = await rows(room="Lounge", role="assistant")
    await frames_until(page, finished(reply.pk), timeout=30)
    (reply,) = await rows(pk=reply.pk)
    assert (reply.status, reply.content) == ("complete", "Hello there.")


async def test_a_guest_named_like_a_link_s_scheme_does_not_cut_the_link(upstream):
    await earlier(("https", "Where are the docs?"), ("Note", "Thanks."))
    upstream.will(tokens=["See", " https", ":", "//", "example.org", " at", " 10", ":", "30.", " Note:", "x", " holds.",
                          "\n", "https", ":", " more"])

    reply, _ = await ask("@ChatBot docs?")

    # A colon a space or a line's end does not follow is no label: only the last line is someone's.
    assert (reply.status, reply.content) == ("complete", "See https://example.org at 10:30. Note:x holds.")
