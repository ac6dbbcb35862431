"""Every frame the broadcaster can send, as the exact HTML that goes to the pages."""

from datetime import datetime, timezone

import pytest
from django.utils import translation
from django.utils.crypto import salted_hmac

from chat.delivery import frames
from chat.delivery.presence import sentence
from chat.markdown import render_markdown
from chat.models import Message

# A reply's partial names its bot, which the registry reads from the bots' rows.
pytestmark = pytest.mark.django_db

WHEN = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)

# Who posted: a keyed hash of the author's id under the SECRET_KEY in force, so the tests hold with any key.
AUTHOR_TAG = salted_hmac("parley.author", "guest:s-7Qx").hexdigest()[:16]

USER_PARTIAL = (
    f'<div id="message_12" class="message user" data-status="complete" data-revision="3" data-id="12" data-author="Ana" data-by="{AUTHOR_TAG}" role="article" aria-labelledby="message_12_author">\n'
    '  <div class="meta">\n'
    '    <span id="message_12_author" class="author">Ana</span>\n'
    '    <time datetime="2026-01-02T03:04:05+00:00">03:04 UTC</time>\n'
    '    \n'
    '    <span class="moderation"><form method="post" action="/rooms/PirateBot/messages/12/remove"><button type="submit" class="link remove" data-i18n="text">Remove</button></form><form method="post" action="/rooms/PirateBot/messages/12/mute"><button type="submit" class="link mute" data-i18n="text">Mute author for an hour</button></form></span>\n'
    '  </div>\n'
    '  <div id="message_12_content" class="content text" data-length="8">Ahoy &lt;b&gt;</div>\n'
    '  \n'
    '  \n'
    '  \n'
    '</div>\n'
)

REPLY_PARTIAL = (
    f'<div id="message_13" class="message assistant" data-status="complete" data-revision="5" data-id="13" data-bot="PirateBot" data-asker="{AUTHOR_TAG}" role="article" aria-labelledby="message_13_author">\n'
    '  <div class="meta">\n'
    '    <span id="message_13_author" class="author">Pirate <span class="key">@PirateBot</span></span>\n'
    '    <time datetime="2026-01-02T03:04:05+00:00">03:04 UTC</time>\n'
    '    \n'
    '    <span class="moderation"><form method="post" action="/rooms/PirateBot/messages/13/remove"><button type="submit" class="link remove" data-i18n="text">Remove</button></form></span>\n'
    '  </div>\n'
    '  <div id="message_13_content" class="content markdown"><p><strong>Arr</strong> <a href="https://example.com" rel="noopener noreferrer nofollow">map</a>&lt;script&gt;x()&lt;/script&gt;</p>\n'
    '</div>\n'
    '  \n'
    '  \n'
    '  <div id="message_13_feedback" class="feedback" data-up="0" data-down="0" data-seq="0"><form method="post" action="/rooms/PirateBot/messages/13/feedback"><button type="submit" name="value" value="up" class="vote up" aria-pressed="false"><span class="visually-hidden" data-i18n="text">Good reply:</span> 0</button><button type="submit" name="value" value="down" class="vote down" aria-pressed="false"><span class="visually-hidden" data-i18n="text">Bad reply:</span> 0</button></form><span id="message_13_feedback_error" class="form-error" role="alert"></span></div>\n'
    '\n'
    '</div>\n'
)


def user_message():
    return Message(pk=12, room="PirateBot", role="user", content="Ahoy <b>", author="Ana", sender="guest:s-7Qx", revision=3, created_at=WHEN)


def reply():
    return Message(
        pk=13, room="PirateBot", bot="PirateBot", role="assistant", content="**Arr** [map](https://example.com)<script>x()</script>",
        revision=5, created_at=WHEN, reply_to=user_message(),  # Ana asked: her page shows its Stop and Retry
    )


def test_the_partial_of_a_person_s_message_escapes_their_text():
    assert frames.render_message(user_message()) == USER_PARTIAL


def test_the_partial_of_a_finished_reply_is_sanitized_markdown():
    assert frames.render_message(reply()) == REPLY_PARTIAL


def test_a_new_message_is_a_prepend_to_the_list():
    assert frames.prepend(user_message()) == (
        f'<turbo-stream action="prepend" target="messages"><template>{USER_PARTIAL}</template></turbo-stream>'
    )


def test_a_changed_message_replaces_its_element():
    assert frames.replace(reply()) == (
        f'<turbo-stream action="replace" target="message_13"><template>{REPLY_PARTIAL}</template></turbo-stream>'
    )


def test_growth_carries_only_the_new_text_escaped_with_its_offset_and_no_template():
    assert frames.grow(13, 42, "a <tag> & more") == (
        '<turbo-stream action="grow" target="message_13_content" o="42">a &lt;tag&gt; &amp; more</turbo-stream>'
    )


def test_a_growth_frame_carries_a_third_less_markup_than_turbo_s_own_append():
    markup = len(frames.grow(13, 42, ""))
    append = len(frames.turbo_stream("append", "message_13_content", "", data_offset=42))  # Turbo's own action
    assert (markup, append) == (78, 111)


def test_a_deleted_message_is_removed_with_no_template():
    assert frames.remove(user_message()) == '<turbo-stream action="remove" target="message_12"></turbo-stream>'


def test_the_whole_list_anew_is_one_update():
    assert frames.messages([reply(), user_message()]) == (
        f'<turbo-stream action="update" target="messages"><template>{REPLY_PARTIAL}{USER_PARTIAL}</template></turbo-stream>'
    )


def test_the_synced_marker_carries_the_room_s_event_number():
    assert frames.synced(42) == (
        '<turbo-stream action="replace" target="room_synced"><template>'
        '<span id="room_synced" data-after="42" hidden></span></template></turbo-stream>'
    )


def test_presence_is_a_sentence_escaped_in_every_language_the_page_picks_its_own():
    assert frames.presence({"en": "Ana & <Ben> here", "es": "Ana y <Ben> están aquí"}) == (
        '<turbo-stream action="update" target="presence"><template><span data-lines="{&quot;en&quot;: '
        '&quot;Ana &amp; &lt;Ben&gt; here&quot;, &quot;es&quot;: &quot;Ana y &lt;Ben&gt; est\\u00e1n aqu\\u00ed&quot;}">'
        'Ana &amp; &lt;Ben&gt; here</span></template></turbo-stream>'
    )


def test_a_frame_is_rendered_in_no_person_s_language_whichever_is_active():
    """A frame goes to every page of the room: the request that caused it must not set its language."""
    with translation.override("es"):
        assert frames.render_message(user_message()) == USER_PARTIAL
        assert frames.render_message(reply()) == REPLY_PARTIAL


def test_a_reply_s_error_carries_its_message_id_and_parts_for_the_page_s_catalog():
    failed = reply()
    failed.status, failed.error = Message.Status.FAILED, "The model answered with an error (HTTP 500)."
    assert (
        '<p class="error" data-i18n="text" data-msgid="The model answered with an error (HTTP %(status)s)." '
        'data-i18n-args="{&quot;status&quot;: &quot;500&quot;}">The model answered with an error (HTTP 500).</p>'
    ) in frames.render_message(failed)


def test_presence_in_spanish_agrees_in_number():
    with translation.override("es"):
        assert sentence({"a": "Ana"}) == "Ana está aquí"
        assert sentence({"a": "Ana", "g": ""}) == "Ana y 1 invitado están aquí"
        assert sentence({}) == "Aún no hay nadie"


def test_presence_names_up_to_three_people_and_counts_the_rest():
    assert sentence({}) == "Nobody here yet"
    assert sentence({"a": ""}) == "1 guest here"
    assert sentence({"a": "Ana"}) == "Ana here"
    assert sentence({"b": "ben", "a": "Ana", "g1": "", "g2": "", "g3": ""}) == "Ana, ben and 3 guests here"
    people = {str(i): name for i, name in enumerate(["Dee", "Cy", "Ana", "Ben", "Eve"])} | {"g": ""}
    assert sentence(people) == "Ana, Ben, Cy, 2 others and 1 guest here"


def test_a_vote_replaces_only_the_feedback_element():
    voted = reply()
    voted.up_votes, voted.down_votes = 2, 1
    frame = frames.feedback(voted)
    assert frame.startswith('<turbo-stream action="replace" target="message_13_feedback"><template><div id="message_13_feedback"')
    assert 'data-up="2" data-down="1"' in frame and "message_13_content" not in frame
    assert len(frame) < len(frames.replace(voted)) / 2


def test_attributes_are_escaped():
    assert frames.turbo_stream("update", "form_error", "", data_note='"quoted"') == (
        '<turbo-stream action="update" target="form_error" data-note="&quot;quoted&quot;"><template></template></turbo-stream>'
    )


def test_a_table_in_a_reply_comes_in_a_box_of_its_own_that_scrolls():
    table = "| a | b |\n|---|---|\n| 1 | 2 |\n"
    html = render_markdown(table)
    # A keyboard reaches the box (a tab stop), a screen reader hears it named, in the page's language.
    box = '<div class="table" role="group" tabindex="0" data-i18n="aria-label" data-msgid="Table" aria-label="{}"><table>'
    assert html.startswith(box.format("Table")) and html.rstrip().endswith("</table></div>")
    with translation.override("es"):
        assert render_markdown(table).startswith(box.format("Tabla"))
        # A frame is rendered in no language: the page's catalog names the box (parley.js).
        reply = Message(pk=7, room="PirateBot", bot="PirateBot", role="assistant", status="complete", content=table)
        assert box.format("Table") in frames.replace(reply)
        # The model's own markup is text, not a box, in any language.
        model = box.format("Table") + "<table>x</table></div><pre><code>y</code></pre>"
        assert "<div" not in render_markdown(model) and "<table" not in render_markdown(model)
        assert "<pre" not in render_markdown(model)
    assert render_markdown("```\nx = 1\n```").startswith('<div class="highlight"><pre class="code" tabindex="0"><code>')
