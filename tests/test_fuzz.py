"""Property-based tests: random bytes, unicode, JSON and parameters at every endpoint and the socket.
Never a 500, never an unescaped payload stored or sent."""

import json
import urllib.parse

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from chat.models import Message
from project.asgi import application
from tests.rooms import ORIGIN, parse_frames
from tests.xss import (
    PAYLOADS,
    assert_inert_socket_text,
    executable_markup,
    messages_html,
)

pytestmark = pytest.mark.django_db

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

garbage = st.one_of(
    st.text(max_size=300),
    st.binary(max_size=300).map(lambda b: b.decode("latin-1")),
    st.sampled_from(PAYLOADS),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=50).map(lambda t: t * 100),
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5),
    max_leaves=20,
)
messages = st.lists(
    st.fixed_dictionaries({"role": st.sampled_from(["user", "assistant", "system", "tool", ""]), "content": garbage}),
    max_size=4,
)
bots = st.one_of(st.sampled_from(["ChatBot", "BelleBot", "PirateBot"]), st.text(max_size=30))
# Well-formed conversations of anything, ending with the user's turn: these get answered (200).
answerable = st.builds(
    lambda history, last: [*history, {"role": "user", "content": last}],
    st.lists(st.fixed_dictionaries({"role": st.sampled_from(["user", "assistant"]), "content": garbage.filter(str.strip)}), max_size=3),
    garbage.filter(str.strip),
)


def quoted(text):
    return urllib.parse.quote(text, safe="")


async def _body(response):
    return "".join([chunk.decode() async for chunk in response.streaming_content])


def assert_answered(response, upstream):
    """Read a 200 from /chat to its end: text events that carry the scripted answer, then done."""
    assert response["Content-Type"].startswith("text/event-stream")
    blocks = [b for b in async_to_sync(_body)(response).split("\n\n") if b and not b.startswith(":")]
    events = []
    for block in blocks:
        fields = dict(line.split(": ", 1) for line in block.split("\n"))
        events.append((fields["event"], json.loads(fields["data"])))
    assert events[-1] == ("done", {}), events
    assert {name for name, _ in events[:-1]} == {"text"}, events
    assert "".join(data["text"] for _, data in events[:-1]) == upstream.default.text


@FUZZ
@given(bot=bots, content=garbage)
def test_posting_anything_to_a_room(client, bot, content):
    before = Message.objects.count()
    response = client.post(f"/rooms/{quoted(bot)}/messages", {"content": content})
    assert response.status_code in {303, 404, 422}
    if response.status_code == 303:
        user = Message.objects.filter(role="user").latest("id")
        # Stored as sent but for what no row or page can keep as it is: NUL, and CR newlines.
        assert user.content == content.replace("\x00", "").replace("\r\n", "\n").replace("\r", "\n").strip()
        page = client.get(f"/rooms/{quoted(bot)}/").content.decode()
        assert executable_markup(messages_html(page)) == []
    else:
        assert Message.objects.count() == before


@FUZZ
@given(bot=bots, pk=st.integers(min_value=-5, max_value=10**12), action=st.sampled_from(["stop", "retry", ""]))
def test_stop_retry_and_message_urls_with_any_parameters(client, bot, pk, action):
    path = f"/rooms/{quoted(bot)}/messages/{pk}" + (f"/{action}" if action else "")
    response = client.post(path) if action else client.get(path)
    assert response.status_code in {303, 403, 404, 200}  # 403: a reply someone else asked for


@FUZZ
@given(path=st.text(max_size=80))
def test_any_page_path(client, path):
    assert client.get("/" + quoted(path)).status_code < 500
    assert client.get("/rooms/" + quoted(path) + "/").status_code in {200, 404}


@FUZZ
@given(bot=bots, raw=st.one_of(garbage, messages.map(json.dumps), json_values.map(json.dumps), answerable.map(json.dumps)))
def test_sse_get_with_anything(client, upstream, bot, raw):
    response = client.get("/chat", {"bot": bot, "messages": raw})
    event(f"status {response.status_code}")
    if response.status_code == 200:
        assert_answered(response, upstream)
    else:
        assert 400 <= response.status_code < 500
        assert isinstance(response.json()["error"], str) and response.json()["error"]


@FUZZ
@given(
    body=st.one_of(
        st.binary(max_size=400),
        json_values.map(lambda v: json.dumps(v).encode()),
        st.builds(lambda b, m: json.dumps({"bot": b, "messages": m}).encode(), bots, st.one_of(messages, answerable)),
    ),
    content_type=st.sampled_from(["application/json", "application/json", "text/plain", "application/x-www-form-urlencoded", ""]),
)
def test_sse_post_with_anything(client, upstream, body, content_type):
    response = client.post("/chat", body, content_type=content_type)
    event(f"status {response.status_code}")
    if response.status_code == 200:
        assert_answered(response, upstream)
    else:
        assert 400 <= response.status_code < 500, response.content
        assert response.json()["error"]


async def _socket_session(path, query, frames):
    communicator = WebsocketCommunicator(application, f"/ws/rooms/{path}/?{query}", headers=ORIGIN)
    connected, _ = await communicator.connect(timeout=5)
    outputs = []
    if connected:
        for frame in frames:
            if isinstance(frame, bytes):
                await communicator.send_to(bytes_data=frame)
            else:
                await communicator.send_to(text_data=frame)
        while not await communicator.receive_nothing(timeout=0.05):
            outputs.append(await communicator.receive_output())
    await communicator.disconnect()
    return connected, outputs


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    path=st.one_of(bots, st.text(max_size=20)),
    query=st.one_of(st.just(""), st.text(max_size=60).map(lambda t: "after=" + quoted(t)), st.integers(min_value=-5, max_value=2**70).map(lambda n: f"after={n}")),
    frames=st.lists(st.one_of(garbage.filter(bool), st.binary(min_size=1, max_size=200)), max_size=30),
)
def test_the_socket_takes_anything(transactional_db, path, query, frames):
    connected, outputs = async_to_sync(_socket_session)(quoted(path), query, frames)
    assert connected == (path in {"ChatBot", "BelleBot", "PirateBot"})
    for output in outputs:
        # The server only ever closes politely or sends room frames; nothing a client sent comes back.
        if output["type"] == "websocket.close":
            assert output["code"] == 4008
        else:
            assert output["type"] == "websocket.send"
            for _, _, _, html in parse_frames(output["text"]):
                assert executable_markup(html) == []
            assert_inert_socket_text([output["text"]])
