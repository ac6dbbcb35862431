"""Every frame the broadcaster can send, as the exact HTML that goes to the pages."""

from datetime import datetime, timezone

from chat.delivery import frames
from chat.models import Message

WHEN = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)

USER_PARTIAL = (
    '<div id="message_12" class="message user" data-status="complete" data-revision="3" data-id="12">\n'
    '  <div class="meta">\n'
    '    <span class="author">Ana</span>\n'
    '    <time datetime="2026-01-02T03:04:05+00:00">03:04</time>\n'
    "    \n"
    "  </div>\n"
    '  <div id="message_12_content" class="content text" data-length="8">Ahoy &lt;b&gt;</div>\n'
    "  \n"
    "  \n"
    "</div>\n"
)

REPLY_PARTIAL = (
    '<div id="message_13" class="message assistant" data-status="complete" data-revision="5" data-id="13">\n'
    '  <div class="meta">\n'
    '    <span class="author">Pirate</span>\n'
    '    <time datetime="2026-01-02T03:04:05+00:00">03:04</time>\n'
    "    \n"
    "  </div>\n"
    '  <div id="message_13_content" class="content markdown"><p><strong>Arr</strong> <a href="https://example.com" '
    'rel="noopener noreferrer nofollow">map</a>&lt;script&gt;x()&lt;/script&gt;</p>\n</div>\n'
    "  \n"
    "  \n"
    "</div>\n"
)


def user_message():
    return Message(pk=12, bot="PirateBot", role="user", content="Ahoy <b>", author="Ana", revision=3, created_at=WHEN)


def reply():
    return Message(
        pk=13, bot="PirateBot", role="assistant", content="**Arr** [map](https://example.com)<script>x()</script>",
        revision=5, created_at=WHEN,
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
    append = len(frames.stream("append", "message_13_content", "", data_offset=42))  # Turbo's own action
    assert (markup, append) == (78, 111)


def test_a_deleted_message_is_removed_with_no_template():
    assert frames.remove(user_message()) == '<turbo-stream action="remove" target="message_12"></turbo-stream>'


def test_the_whole_list_anew_is_one_update():
    assert frames.messages([reply(), user_message()]) == (
        f'<turbo-stream action="update" target="messages"><template>{REPLY_PARTIAL}{USER_PARTIAL}</template></turbo-stream>'
    )


def test_the_synced_marker_carries_the_time():
    assert frames.synced(WHEN) == (
        '<turbo-stream action="replace" target="room_synced"><template>'
        '<span id="room_synced" data-since="2026-01-02T03:04:05+00:00" hidden></span></template></turbo-stream>'
    )


def test_presence_counts_pages():
    assert frames.presence(1) == '<turbo-stream action="update" target="presence"><template>1 here (you)</template></turbo-stream>'
    assert frames.presence(3) == '<turbo-stream action="update" target="presence"><template>3 here</template></turbo-stream>'


def test_attributes_are_escaped():
    assert frames.stream("update", "form_error", "", data_note='"quoted"') == (
        '<turbo-stream action="update" target="form_error" data-note="&quot;quoted&quot;"><template></template></turbo-stream>'
    )
