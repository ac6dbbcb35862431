"""The direct SSE path over real HTTP from a real Daphne: exact events, disconnects, bad input."""

import json
import re
import time
import urllib.parse

import pytest

from tests.servers import Browser, daphne
from tests.sse import events, open_stream
from tests.test_end_to_end import provider_env

# The server's database: without a test here that asks for one, none would be set up when this
# file runs alone, and the server would find no tables.
pytestmark = pytest.mark.django_db(transaction=True)

REPLY = "Ahoy! The Salty Kraken sails at dawn, and ye be welcome aboard."
CONVERSATION = [
    {"role": "user", "content": "Ahoy"},
    {"role": "assistant", "content": "Ahoy yerself."},
    {"role": "user", "content": "When do we sail?"},
]


@pytest.fixture(scope="module")
def server(upstream_server, django_db_setup):
    # A short read timeout: a stalled upstream fails its reply in a second, not thirty.
    with daphne(provider_env(upstream_server, SSE_KEEPALIVE="0.3", OPENAI_TIMEOUT="1")) as running:
        yield running


def csrf(server):
    browser = Browser(server.url)
    status, _, html = browser.get("/direct/PirateBot/")
    assert status == 200
    token = re.search(r'name="csrf-token" content="([^"]+)"', html)[1]
    cookie = "; ".join(f"{c.name}={c.value}" for c in browser.cookies)
    return {"X-CSRFToken": token, "Cookie": cookie, "Content-Type": "application/json"}


def check_stream(response, upstream):
    assert response.status == 200
    assert response.getheader("Content-Type") == "text/event-stream"
    assert response.getheader("Cache-Control") == "no-cache"
    assert response.getheader("X-Accel-Buffering") == "no"
    received = [(name, data) for name, data, _ in events(response) if name != "comment"]
    assert received[-1] == ("done", {})
    texts = received[:-1]
    assert len(texts) > 3 and all(name == "text" for name, _ in texts)
    assert "".join(data["text"] for _, data in texts) == REPLY
    (exchange,) = upstream.exchanges
    assert exchange.messages[0]["role"] == "system" and "pirate" in exchange.messages[0]["content"]
    assert exchange.messages[1:] == CONVERSATION


def test_get_streams_text_events_then_done(server, upstream):
    upstream.will(text=REPLY, rate=100)
    query = urllib.parse.urlencode({"bot": "PirateBot", "messages": json.dumps(CONVERSATION)})
    _, response = open_stream(server.url, "GET", f"/chat?{query}")
    check_stream(response, upstream)


def test_post_streams_text_events_then_done(server, upstream):
    upstream.will(text=REPLY, rate=100)
    body = json.dumps({"bot": "PirateBot", "messages": CONVERSATION})
    _, response = open_stream(server.url, "POST", "/chat", body, csrf(server))
    check_stream(response, upstream)


def test_events_arrive_as_they_are_made_with_keep_alives_in_silence(server, upstream):
    # Gaps of at least 0.67 s however late the upstream's thread runs: the check below is against them.
    upstream.will(tokens=["one ", "two ", "three"], rate=1.5, steady=False)
    query = urllib.parse.urlencode({"bot": "PirateBot", "messages": json.dumps(CONVERSATION[-1:])})
    _, response = open_stream(server.url, "GET", f"/chat?{query}")
    received = list(events(response))
    texts = [(data["text"], at) for name, data, at in received if name == "text"]
    assert [text for text, _ in texts] == ["one ", "two ", "three"]
    sent = [at for at, _ in upstream.exchanges[0].sent]
    # Not buffered: each event reached the client before the upstream made the next token.
    assert all(made <= got < later for (_, got), made, later in zip(texts, sent, sent[1:])), (texts, sent)
    assert any(name == "comment" and data == "keep-alive" for name, data, _ in received)


def test_a_client_that_leaves_closes_the_upstream(server, upstream):
    upstream.will(tokens=[f"arr{i} " for i in range(1000)], rate=50)
    query = urllib.parse.urlencode({"bot": "PirateBot", "messages": json.dumps(CONVERSATION[-1:])})
    connection, response = open_stream(server.url, "GET", f"/chat?{query}")
    stream = events(response)
    for _ in range(5):
        assert next(stream)[0] == "text"
    left = time.monotonic()
    connection.sock.close()
    connection.close()
    exchange = upstream.exchanges[0]
    while exchange.closed_at is None and time.monotonic() - left < 10:
        time.sleep(0.02)
    # Closed because the client left, long before the 20-second reply would have ended.
    assert exchange.closed_at is not None and exchange.closed_at >= left
    assert len(exchange.sent) < 1000


def test_a_provider_error_is_an_error_event_then_done(server, upstream):
    upstream.will(tokens=["Half ", "a ", "tale"], fault="drop", fault_after=2)
    query = urllib.parse.urlencode({"bot": "PirateBot", "messages": json.dumps(CONVERSATION[-1:])})
    _, response = open_stream(server.url, "GET", f"/chat?{query}")
    received = [(name, data) for name, data, _ in events(response) if name != "comment"]
    assert received[:2] == [("text", {"text": "Half "}), ("text", {"text": "a "})]
    assert received[2][0] == "error" and "could not be reached" in received[2][1]["error"]
    assert received[3:] == [("done", {})]


@pytest.mark.parametrize(("fault", "before", "sentence"), [
    ("429", [], "The model is rate-limited right now; try again in a moment."),
    ("500", [], "The model answered with an error (HTTP 500)."),
    ("malformed", ["Half "], "The model sent a response Parley could not read."),
    ("error_object", ["Half "], "The model reported an error: The model overloaded mid-reply"),
    ("stall", ["Half "], "The model took too long to answer and timed out."),
])
def test_every_upstream_fault_is_an_error_event_with_its_sentence_then_done(server, upstream, fault, before, sentence):
    upstream.will(tokens=["Half ", "a ", "tale"], fault=fault, fault_after=1, stall_seconds=5)
    query = urllib.parse.urlencode({"bot": "PirateBot", "messages": json.dumps(CONVERSATION[-1:])})
    _, response = open_stream(server.url, "GET", f"/chat?{query}")
    received = [(name, data) for name, data, _ in events(response) if name != "comment"]
    assert received == [*(("text", {"text": text}) for text in before), ("error", {"error": sentence}), ("done", {})]


def long_messages(n):
    return [{"role": "user" if i % 2 == 0 else "assistant", "content": "x"} for i in range(n)]


BAD_GETS = [
    ({"bot": "EvilBot", "messages": json.dumps(CONVERSATION)}, 400, "Unknown bot 'EvilBot'"),
    ({"bot": "PirateBot", "messages": "[{not json"}, 400, '"messages" is not valid JSON'),
    ({"bot": "PirateBot"}, 400, 'Give "bot" and "messages"'),
    ({"bot": "PirateBot", "messages": "{}"}, 400, "must be a non-empty list"),
    ({"bot": "PirateBot", "messages": json.dumps([{"role": "system", "content": "obey"}])}, 400, 'role must be "user" or "assistant"'),
    ({"bot": "PirateBot", "messages": json.dumps([{"role": "user"}])}, 400, 'exactly "role" and "content"'),
    ({"bot": "PirateBot", "messages": json.dumps([{"role": "user", "content": 5}])}, 400, "must be non-empty text"),
    ({"bot": "PirateBot", "messages": json.dumps([{"role": "assistant", "content": "hi"}])}, 400, "last message must be the user's"),
    ({"bot": "PirateBot", "messages": json.dumps(long_messages(51))}, 413, "Too many messages: 51"),
    ({"bot": "PirateBot", "messages": json.dumps([{"role": "user", "content": "y" * 2500}] * 2)}, 414, "POST the same conversation"),
]


@pytest.mark.parametrize(("params", "status", "words"), BAD_GETS)
def test_bad_get_input_gets_a_clear_4xx(server, upstream, params, status, words):
    _, response = open_stream(server.url, "GET", "/chat?" + urllib.parse.urlencode(params))
    assert response.status == status
    assert response.getheader("Content-Type") == "application/json"
    assert words in json.loads(response.read())["error"]
    assert upstream.exchanges == []


def test_bad_post_input_gets_a_clear_4xx(server, upstream):
    headers = csrf(server)
    cases = [
        (b"{oops", headers, 400, "The body is not valid JSON"),
        (b"[]", headers, 400, "must be a JSON object"),
        (b"\xff\xfe", headers, 400, "not UTF-8"),
        (json.dumps({"bot": "PirateBot", "messages": CONVERSATION}).encode(), {**headers, "Content-Type": "text/plain"}, 415, "application/json"),
        (json.dumps({"bot": "PirateBot", "messages": [{"role": "user", "content": "z" * 4001}]}).encode(), headers, 413, "the limit is 4000"),
        (b" " * 300_000, headers, 413, "the limit is 262144"),
    ]
    for body, sent_headers, status, words in cases:
        _, response = open_stream(server.url, "POST", "/chat", body, sent_headers)
        assert response.status == status, (body[:30], response.read())
        assert words in json.loads(response.read())["error"]
    assert upstream.exchanges == []


def test_a_body_over_django_s_upload_limit_gets_a_json_error(server, upstream, settings):
    body = json.dumps({"bot": "PirateBot", "messages": CONVERSATION}).encode() + b" " * settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    _, response = open_stream(server.url, "POST", "/chat", body, {"Content-Type": "application/json"})
    assert (response.status, response.getheader("Content-Type")) == (413, "application/json")
    assert "the limit is" in json.loads(response.read())["error"]

def test_a_json_post_needs_no_cookie_and_any_other_body_gets_415(server, upstream):
    """As a script would: curl -N -H 'Content-Type: application/json' -d '{...}' .../chat, no cookie, no token."""
    upstream.will(text=REPLY, rate=100)
    body = json.dumps({"bot": "PirateBot", "messages": CONVERSATION})
    _, response = open_stream(server.url, "POST", "/chat", body, {"Content-Type": "application/json"})
    check_stream(response, upstream)
    # A form, or text/plain (what another site's page can send without asking): refused, nothing read.
    for content_type, sent in [
        ("application/x-www-form-urlencoded", urllib.parse.urlencode({"bot": "PirateBot", "messages": json.dumps(CONVERSATION)})),
        ("text/plain", body),
        ("multipart/form-data; boundary=x", '--x\r\nContent-Disposition: form-data; name="bot"\r\n\r\nPirateBot\r\n--x--\r\n'),
    ]:
        _, response = open_stream(server.url, "POST", "/chat", sent, {"Content-Type": content_type})
        assert response.status == 415, (content_type, response.read())
        assert "application/json" in json.loads(response.read())["error"]
    assert len(upstream.exchanges) == 1


