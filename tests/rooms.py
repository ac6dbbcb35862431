"""What room tests share: socket clients, frame parsing, the text a page shows, the row-write counter."""

import asyncio
import html
import re
from html.parser import HTMLParser

from channels.testing import WebsocketCommunicator
from django.db import connection

from project.asgi import application

ORIGIN = [(b"origin", b"http://127.0.0.1:8000"), (b"host", b"127.0.0.1:8000")]
# A frame: its content in a <template>, or (the growth action) its escaped text in the element itself.
STREAM = re.compile(
    r'<turbo-stream action="(?P<action>[a-z]+)" target="(?P<target>[^"]+)"(?P<attrs>[^>]*)>'
    r'(?:<template>(?P<html>.*?)</template>|(?P<text>[^<]*))</turbo-stream>', re.S
)
GROW = "grow"  # Parley's growth action (static/chat/parley.js)
OFFSET = re.compile(r' o="(\d+)"')


def offset_of(attrs):
    """The offset a growth frame's attributes carry, or None."""
    found = OFFSET.search(attrs)
    return int(found[1]) if found else None


def grows(pk):
    """A predicate: a growth frame of message pk."""
    return lambda f: f[0] == GROW and f[1] == f"message_{pk}_content"


def parse_frames(text, presence=False):
    """Split a socket text frame into (action, target, attrs, html) tuples (presence counts left out)."""
    frames = [(m["action"], m["target"], m["attrs"], m["html"] or m["text"] or "") for m in STREAM.finditer(text)]
    # A presence line comes in every language (chat.delivery.frames.presence): the English one, as a page without a catalog shows it.
    frames = [(action, target, attrs, re.sub(r"<[^>]*>", "", html) if target == "presence" else html) for action, target, attrs, html in frames]
    return frames if presence else [f for f in frames if f[1] != "presence"]


OPEN = []  # communicators a test opened; the test's teardown disconnects what it left open


def communicator(room="PirateBot", query=""):
    """A room socket, as the test client Channels ships, not yet connected."""
    client = WebsocketCommunicator(application, f"/ws/rooms/{room}/{query}", headers=ORIGIN)
    OPEN.append(client)
    return client


async def subscribe(room="PirateBot", query=""):
    """A connected room socket."""
    client = communicator(room, query)
    connected, _ = await client.connect()
    assert connected
    return client


async def disconnect_all():
    """Disconnect every communicator still open, so no consumer outlives its test's event loop."""
    while OPEN:
        client = OPEN.pop()
        try:
            await client.disconnect()
        except (Exception, asyncio.CancelledError):  # noqa: BLE001 - already gone is fine
            # A cancelled consumer raises CancelledError here: a BaseException, which would skip the
            # test's other teardowns (its settings) and fail every test after it.
            pass


async def frames_until(communicator, done, timeout=20, raw=None):
    """Collect parsed frames until done(frame) holds for one of them (and each text as sent into raw, if given)."""
    collected = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        text = await communicator.receive_from(timeout=max(0.01, deadline - loop.time()))
        if raw is not None:
            raw.append(text)
        for frame in parse_frames(text):
            collected.append(frame)
            if done(frame):
                return collected


def finished(pk, status="complete"):
    """A predicate: the final replace of message pk with the given status."""
    return lambda f: f[0] == "replace" and f[1] == f"message_{pk}" and f'data-status="{status}"' in f[3]


def grown_text(frames, pk):
    """The text a page builds from the growth frames of message pk, honouring their offsets."""
    text = ""
    for action, target, attrs, body in frames:
        if action == GROW and target == f"message_{pk}_content":
            offset = offset_of(attrs)
            assert offset == len(text), f"growth frame at offset {offset} after {len(text)} characters"
            text += html.unescape(body)
    return text


VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


class ElementText(HTMLParser):
    """The text content of one element of an HTML fragment, found by id, nested elements included."""

    def __init__(self, element_id=None):
        super().__init__(convert_charrefs=True)
        self.element_id = element_id
        self.depth = 0 if element_id else 1  # open elements inside the one wanted; no id: the whole fragment
        self.found = element_id is None
        self.parts = []

    def handle_starttag(self, tag, attrs):
        if self.depth:
            self.depth += tag not in VOID
        elif not self.found and dict(attrs).get("id") == self.element_id:
            self.found, self.depth = True, 1

    def handle_startendtag(self, tag, attrs):
        pass  # <br/> and the like hold no text

    def handle_endtag(self, tag):
        if self.depth and tag not in VOID:
            self.depth -= 1

    def handle_data(self, data):
        if self.depth:
            self.parts.append(data)


def element_text(fragment, element_id=None):
    """The textContent of the element with element_id in fragment (None if absent), or of the whole fragment."""
    parser = ElementText(element_id)
    parser.feed(fragment)
    parser.close()
    return "".join(parser.parts) if parser.found else None


def shown_text(frames, pk):
    """The text a page shows for message pk after applying frames in order, as parley.js does.

    A prepend or replace carrying #message_<pk>_content sets the text; a growth frame adds only
    what is new past the page's text, and must not leave a gap (the page would repair it).
    """
    content = f"message_{pk}_content"
    text = None
    for action, target, attrs, body in frames:
        if action in ("prepend", "replace") and (found := element_text(body, content)) is not None:
            text = found
        elif action == GROW and target == content and (offset := offset_of(attrs)) is not None:
            assert text is not None, f"growth of message {pk} before the page had it"
            assert offset <= len(text), f"a gap: growth at offset {offset} after {len(text)} characters"
            text += element_text(body)[len(text) - offset:]
        elif action == "remove" and target == f"message_{pk}":
            text = None
    return text


def install_write_counter():
    """Count UPDATEs of chat_message rows in the database itself, whoever issues them."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("CREATE TABLE IF NOT EXISTS test_row_writes (message_id bigint, status text)")
            cursor.execute(
                "CREATE OR REPLACE FUNCTION test_count_write() RETURNS trigger AS $$ BEGIN "
                "INSERT INTO test_row_writes VALUES (NEW.id, NEW.status); RETURN NEW; END $$ LANGUAGE plpgsql"
            )
            cursor.execute("DROP TRIGGER IF EXISTS test_count_writes ON chat_message")
            cursor.execute(
                "CREATE TRIGGER test_count_writes AFTER UPDATE ON chat_message "
                "FOR EACH ROW EXECUTE FUNCTION test_count_write()"
            )
        else:
            cursor.execute("CREATE TABLE IF NOT EXISTS test_row_writes (message_id integer, status text)")
            cursor.execute(
                "CREATE TRIGGER IF NOT EXISTS test_count_writes AFTER UPDATE ON chat_message "
                "BEGIN INSERT INTO test_row_writes VALUES (NEW.id, NEW.status); END"
            )


def row_writes(pk):
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM test_row_writes WHERE message_id = %s", [pk])
        return cursor.fetchone()[0]


def remove_write_counter():
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("DROP TRIGGER IF EXISTS test_count_writes ON chat_message")
        else:
            cursor.execute("DROP TRIGGER IF EXISTS test_count_writes")
        cursor.execute("DROP TABLE IF EXISTS test_row_writes")
