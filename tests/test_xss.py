"""Hostile text is inert: people's messages and model output in frames and pages, in Python's parser and the browser's."""


import pytest
from django.test import AsyncClient

from chat.models import Message
from tests.rooms import finished, frames_until, parse_frames, subscribe
from tests.test_rooms import rows
from tests.xss import (
    PAYLOADS,
    assert_inert_socket_text,
    executable_markup,
    messages_html,
    stream_count,
)

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_corpus_is_big_enough():
    assert len(set(PAYLOADS)) >= 30


def test_the_checker_catches_what_it_must():
    assert executable_markup('<img src=x onerror="alert(1)">') == ["<img>", "img[onerror]"]
    assert executable_markup('<a href=" JavaScript:alert(1)">x</a>') == ["a[href=javascript:alert(1)]"]
    assert executable_markup("<p>fine <strong>text</strong></p>") == []
    presence = '<turbo-stream action="update" target="presence"><template>1 here</template></turbo-stream>'
    assert_inert_socket_text([presence])
    with pytest.raises(AssertionError):  # a stream element the frame parser does not see
        assert_inert_socket_text([presence + "<turbo-stream action=remove target=messages></turbo-stream>"])


def test_a_message_with_a_nul_character_is_kept_without_it_never_a_500(client):
    # PostgreSQL text cannot hold NUL: it goes, as from a model's output, and the rest is kept.
    response = client.post("/rooms/PirateBot/messages", {"content": "before\x00after\r\nnext line"})
    assert response.status_code == 303
    assert Message.objects.get(role="user").content == "beforeafter\nnext line"


async def test_hostile_user_messages_are_inert_in_frames_and_pages(upstream):
    upstream.default.text = "Noted."
    page = await subscribe("ChatBot")
    client = AsyncClient()
    for payload in PAYLOADS:
        response = await client.post("/rooms/ChatBot/messages", {"content": payload})
        assert response.status_code == 303
    messages = [m for m in await rows(room="ChatBot") if m.role == "user"]
    assert [m.content for m in messages] == [p.strip() for p in PAYLOADS]  # stored as sent
    received, texts = [], []
    while len([f for f in received if f[0] == "prepend" and 'class="message user"' in f[3]]) < len(PAYLOADS):
        texts.append(await page.receive_from(timeout=10))
        received += parse_frames(texts[-1])
    for action, target, attrs, html in received:
        assert executable_markup(html) == [], html
        assert stream_count(html) == 0, f"a message smuggled a turbo-stream element: {html}"
    assert_inert_socket_text(texts)
    room = (await client.get("/rooms/ChatBot/")).text
    assert executable_markup(messages_html(room)) == []


@pytest.mark.parametrize("payload", PAYLOADS)
async def test_hostile_model_output_split_across_chunks_is_inert(upstream, payload):
    cut = [payload[: len(payload) // 3], payload[len(payload) // 3: 2 * len(payload) // 3], payload[2 * len(payload) // 3:]]
    upstream.will(tokens=["Here you go: ", *cut, " done."], rate=100)
    page = await subscribe("BelleBot")
    client = AsyncClient()
    await client.post("/rooms/BelleBot/messages", {"content": "Say something dangerous"})
    _, reply = await rows(room="BelleBot")
    texts = []
    received = await frames_until(page, finished(reply.pk), raw=texts)
    for action, target, attrs, html in received:
        assert executable_markup(html) == [], html
        assert stream_count(html) == 0
    assert_inert_socket_text(texts)
    (saved,) = await rows(pk=reply.pk)
    assert saved.content == "Here you go: " + payload + " done."
    # The room page renders the finished reply again, from the row: inert there too.
    room = (await client.get("/rooms/BelleBot/")).text
    assert f'id="message_{reply.pk}"' in room
    assert executable_markup(messages_html(room)) == []


# Set before any page script: every way a payload could make itself known.
TRIPWIRES = """
window.ran = [];
for (const name of ["alert", "confirm", "prompt", "print"]) window[name] = (...args) => window.ran.push([name, ...args]);
"""


async def test_the_corpus_runs_nothing_in_chromium_saved_or_streamed(upstream, browser):
    """Mutation XSS depends on the browser's own parser: the corpus as saved messages of both roles,
    then streamed by the model through the room socket (growth frames, then the final replace)."""
    from asgiref.sync import sync_to_async

    from tests.browser import own_presence, present
    from tests.servers import daphne
    from tests.test_end_to_end import provider_env

    await sync_to_async(lambda: [
        Message.objects.create(room="PirateBot", role=role, content=payload, author="Mallory")
        for payload in PAYLOADS for role in ("user", "assistant")
    ])()
    streamed = "\n\n".join(PAYLOADS)
    upstream.will(tokens=[streamed[i:i + 7] for i in range(0, len(streamed), 7)], rate=400)
    with daphne(provider_env(upstream, ROOM_PAGE_MESSAGES="500", **own_presence())) as server:
        page = await (await browser.new_context()).new_page()
        dialogs, foreign = [], []
        page.on("dialog", lambda dialog: dialogs.append(dialog.message))
        page.on("request", lambda r: foreign.append(r.url) if not r.url.startswith(server.url) else None)
        await page.add_init_script(TRIPWIRES)
        await page.goto(f"{server.url}/rooms/PirateBot/")
        await present(page, 1)
        assert await page.locator("#messages .message").count() == 2 * len(PAYLOADS)

        await page.fill("#content", "Say something nasty")
        await page.keyboard.press("Enter")
        await page.wait_for_function(
            f"document.querySelectorAll('#messages .message').length === {2 * len(PAYLOADS) + 2}"
            " && document.querySelector('#messages .message.assistant').dataset.status === 'complete'",
            timeout=30000,
        )
        await page.wait_for_load_state("networkidle")  # every image that might fire onerror has tried
        assert await page.evaluate("window.ran") == []
        assert dialogs == [] and foreign == []
        # Nothing a payload smuggled in acted on the page: the list and the form are whole.
        assert await page.locator("#messages .message").count() == 2 * len(PAYLOADS) + 2
        assert await page.locator("#new_message").count() == 1
        # The only classic script is the page's own JavaScript catalog, loaded by URL from this server.
        assert await page.locator("script:not([type=importmap]):not([type=module]):not([src^='/jsi18n/'])").count() == 0
        assert await page.locator("script[src^='/jsi18n/']").count() == 1
