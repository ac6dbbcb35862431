"""Who may Stop and Retry a reply, end to end on a real Daphne: the person or key that asked and the
room's moderators, nobody else and nobody muted (votes neither); a Retry spends the budget."""

import json
import re
import secrets
import urllib.error
import urllib.request
from datetime import timedelta

import pytest
import websockets
from asgiref.sync import sync_to_async
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from chat.models import ApiKey, Message, Mute
from chat.steering import NOT_YOURS
from chat.templatetags.chat_tags import author_tag
from tests.browser import own_presence
from tests.rooms import finished
from tests.servers import daphne
from tests.test_end_to_end import provider_env, read_frames
from tests.test_limits import one_window
from tests.test_people import Person, moderator, rows_after, signed_in_moderator
from tests.test_scale_out import until
from tests.upstream import Script

pytestmark = pytest.mark.django_db(transaction=True)

LONG = [f"arr{i} " for i in range(3000)]  # 30 s at 100 a second: still streaming while the test steers it
ROOM = "/rooms/PirateBot/"


class Program:
    """A program with an API key of its own, calling the rooms API over HTTP."""

    def __init__(self, server, name, address=None):
        self.key, self.secret = ApiKey.objects.issue(name)
        self.url, self.address = server.url, address

    def call(self, path, body=None):
        """POST path (JSON body if any): (status, headers, the JSON answer)."""
        headers = {"Authorization": f"Bearer {self.secret}", "Content-Type": "application/json"}
        if self.address:
            headers["X-Forwarded-For"] = self.address
        data = json.dumps(body or {}).encode()
        request = urllib.request.Request(f"{self.url}/api{path}", data=data, method="POST", headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, dict(response.headers), json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, dict(error.headers), json.loads(error.read())

    def ask(self, content):
        """Post content into PirateBot's room: its one reply's id."""
        status, _, body = self.call("/rooms/PirateBot/messages", {"content": content})
        assert status == 202, body
        (reply,) = body["replies"]
        return reply

    def steer(self, action, pk):
        return self.call(f"/rooms/PirateBot/messages/{pk}/{action}")


def form(person, path, headers=None, **fields):
    """A person's form post from the room's page, with headers of its own: (status, headers, body)."""
    fields["csrfmiddlewaretoken"] = person.token
    return person.browser.request("POST", path, fields, {"Referer": person.browser.base_url + ROOM, **(headers or {})})


def steer(person, action, pk, headers=None):
    """A person's Stop or Retry of reply pk."""
    return form(person, f"{ROOM}messages/{pk}/{action}", headers)


@sync_to_async
def status_of(pk):
    return Message.objects.get(pk=pk).status


async def streaming(pk):
    """Wait until reply pk streams its first words."""
    return await until(lambda: (m := Message.objects.get(pk=pk)).status == "streaming" and m.content and m)


async def last_reply(since):
    replies = [m for m in await rows_after(since) if m.role == "assistant"]
    return replies[-1].pk


async def test_a_person_s_reply_is_stopped_and_retried_by_them_and_moderators_only(upstream_server, upstream, django_user_model):
    for script in ({"tokens": LONG}, {"text": "A fresh answer, matey."}, {"tokens": LONG}, {"text": "Again, and gladly."}):
        upstream.will(rate=100, **script)
    await sync_to_async(moderator)(django_user_model)
    with daphne(provider_env(upstream)) as server:
        async with websockets.connect(f"{server.ws_url}/ws/rooms/PirateBot/", origin=server.url) as page:
            ana, ben = await sync_to_async(Person)(server), await sync_to_async(Person)(server)
            mod = await sync_to_async(signed_in_moderator)(server)
            program = await sync_to_async(Program)(server, "Other program")

            await ana.say("Tell me a long tale")
            reply = await last_reply(0)
            await streaming(reply)
            # Another guest and another key are refused, with the sentence; the reply streams on.
            status, _, body = await sync_to_async(steer)(ben, "stop", reply)
            assert (status, body) == (403, NOT_YOURS)
            status, _, body = await sync_to_async(program.steer)("stop", reply)
            assert (status, body) == (403, {"error": NOT_YOURS})
            assert await status_of(reply) == "streaming"
            # The asker stops it.
            assert (await sync_to_async(steer)(ana, "stop", reply))[0] == 303
            await read_frames(page, finished(reply, "cancelled"))
            # Nobody else retries it; a moderator does.
            status, _, body = await sync_to_async(steer)(ben, "retry", reply)
            assert (status, body) == (403, NOT_YOURS)
            status, _, body = await sync_to_async(program.steer)("retry", reply)
            assert (status, body) == (403, {"error": NOT_YOURS})
            assert await status_of(reply) == "cancelled" and len(upstream.exchanges) == 1
            assert (await sync_to_async(steer)(mod, "retry", reply))[0] == 303
            await read_frames(page, finished(reply))
            assert len(upstream.exchanges) == 2

            # A moderator stops someone's reply; the asker retries it.
            await ana.say("Another long one")
            second = await last_reply(reply)
            await streaming(second)
            assert (await sync_to_async(steer)(mod, "stop", second))[0] == 303
            await read_frames(page, finished(second, "cancelled"))
            assert (await sync_to_async(steer)(ana, "retry", second))[0] == 303
            await read_frames(page, finished(second))
            assert (await sync_to_async(Message.objects.get)(pk=second)).content == "Again, and gladly."


async def test_a_key_s_reply_is_stopped_and_retried_by_that_key_and_moderators_only(upstream_server, upstream, django_user_model):
    for script in ({"tokens": LONG}, {"text": "Retried by the key."}, {"tokens": LONG}, {"text": "Retried by a moderator."}):
        upstream.will(rate=100, **script)
    await sync_to_async(moderator)(django_user_model)
    with daphne(provider_env(upstream)) as server:
        builder, other = await sync_to_async(Program)(server, "Build bot"), await sync_to_async(Program)(server, "Other bot")
        guest, mod = await sync_to_async(Person)(server), await sync_to_async(signed_in_moderator)(server)

        reply = await sync_to_async(builder.ask)("Report, @PirateBot")
        await streaming(reply)
        for action in ("stop", "retry"):
            if action == "retry":  # the key that asked stops it first
                status, _, body = await sync_to_async(builder.steer)("stop", reply)
                assert (status, body["id"], body["status"]) == (200, reply, "cancelled")
            status, _, body = await sync_to_async(other.steer)(action, reply)
            assert (status, body) == (403, {"error": NOT_YOURS})
            status, _, body = await sync_to_async(steer)(guest, action, reply)
            assert (status, body) == (403, NOT_YOURS)
        assert await status_of(reply) == "cancelled"
        status, _, body = await sync_to_async(builder.steer)("retry", reply)
        assert (status, body["id"], body["status"], body["content"]) == (202, reply, "pending", "")
        await until(lambda: Message.objects.get(pk=reply).content == "Retried by the key.")
        status, _, body = await sync_to_async(builder.steer)("retry", reply)
        assert status == 409 and "complete" in body["error"]

        second = await sync_to_async(builder.ask)("Another report, @PirateBot")
        await streaming(second)
        assert (await sync_to_async(steer)(mod, "stop", second))[0] == 303
        assert await status_of(second) == "cancelled"
        assert (await sync_to_async(steer)(mod, "retry", second))[0] == 303
        await until(lambda: Message.objects.get(pk=second).content == "Retried by a moderator.")


async def test_a_mute_covers_stop_retry_and_votes(upstream_server, upstream, django_user_model):
    upstream.default = Script(tokens=LONG, rate=100)
    await sync_to_async(moderator)(django_user_model)
    voted_on = await sync_to_async(Message.objects.create)(
        room="PirateBot", bot="PirateBot", role="assistant", content="Arr.", status="complete"
    )
    with daphne(provider_env(upstream)) as server:
        ana, ben = await sync_to_async(Person)(server), await sync_to_async(Person)(server)
        mod = await sync_to_async(signed_in_moderator)(server)
        program = await sync_to_async(Program)(server, "Muted bot")

        await ana.say("Tell me a long tale")
        question = (await rows_after(voted_on.pk))[0].pk
        reply = await last_reply(voted_on.pk)
        await streaming(reply)
        keys_reply = await sync_to_async(program.ask)("And me, @PirateBot")  # waits its turn, pending
        assert (await sync_to_async(mod.post)(f"{ROOM}messages/{question}/mute"))[0] == 303
        await sync_to_async(Mute.objects.create)(
            sender=f"key:{program.key.pk}", author="Muted bot", until=timezone.now() + timedelta(hours=1)
        )

        status, _, body = await sync_to_async(steer)(ana, "stop", reply)
        assert status == 403 and re.fullmatch(r"A moderator muted you until \d\d:\d\d \w+\.", body)
        status, _, body = await sync_to_async(ana.post)(f"{ROOM}messages/{voted_on.pk}/feedback", value="up")
        assert status == 403 and re.fullmatch(r"A moderator muted you until \d\d:\d\d \w+\.", body)
        status, _, body = await sync_to_async(program.steer)("stop", keys_reply)
        assert status == 403 and re.fullmatch(r"A moderator muted this key until \d\d:\d\d \w+\.", body["error"])
        assert (await status_of(reply), await status_of(keys_reply)) == ("streaming", "pending")

        for pk in (reply, keys_reply):
            assert (await sync_to_async(steer)(mod, "stop", pk))[0] == 303
        status, _, body = await sync_to_async(steer)(ana, "retry", reply)
        assert status == 403 and "muted you" in body
        status, _, body = await sync_to_async(program.steer)("retry", keys_reply)
        assert status == 403 and "muted this key" in body["error"]
        assert (await status_of(reply), await status_of(keys_reply)) == ("cancelled", "cancelled")
        # Someone not muted still votes.
        assert (await sync_to_async(ben.post)(f"{ROOM}messages/{voted_on.pk}/feedback", value="up"))[0] == 303
        await voted_on.arefresh_from_db()
        assert (voted_on.up_votes, voted_on.down_votes) == (1, 0)


async def test_a_retry_past_the_budget_gets_429(upstream_server, upstream):
    upstream.default = Script(tokens=LONG, rate=100)
    address = f"10.77.{secrets.randbelow(250)}.{secrets.randbelow(250)}"  # counters live a minute in a shared cache
    forwarded = {"X-Forwarded-For": address}
    await one_window()
    with daphne(provider_env(upstream, RATE_LIMIT_PER_CLIENT="2", TRUST_X_FORWARDED_FOR="true")) as server:
        ana = await sync_to_async(Person)(server)
        program = await sync_to_async(Program)(server, "Thrifty bot", address=address)

        # A person: the post is the first message of two a minute, the first Retry the second.
        assert (await sync_to_async(form)(ana, f"{ROOM}messages", forwarded, content="Tell me"))[0] == 303
        reply = await last_reply(0)
        for action, expected in (("stop", 303), ("retry", 303), ("stop", 303)):
            assert (await sync_to_async(steer)(ana, action, reply, forwarded))[0] == expected
        status, headers, body = await sync_to_async(steer)(ana, "retry", reply, forwarded)
        assert status == 429 and body.endswith(" s.") and 1 <= int(headers["Retry-After"]) <= 61
        assert await status_of(reply) == "cancelled"

        # A key: the same.
        reply = await sync_to_async(program.ask)("Report, @PirateBot")
        for action, expected in (("stop", 200), ("retry", 202), ("stop", 200)):
            assert (await sync_to_async(program.steer)(action, reply))[0] == expected
        status, headers, body = await sync_to_async(program.steer)("retry", reply)
        assert status == 429 and body["error"].endswith(" s.") and 1 <= int(headers["Retry-After"]) <= 61
        assert await status_of(reply) == "cancelled"


async def test_the_page_shows_stop_and_retry_to_the_asker_and_moderators_only(upstream, browser, django_user_model):
    upstream.will(tokens=LONG, rate=100)
    await sync_to_async(moderator)(django_user_model)
    with daphne(provider_env(upstream, **own_presence())) as server:
        ana, ben, mod = [await (await browser.new_context()).new_page() for _ in range(3)]
        await mod.goto(f"{server.url}/admin/login/?next={ROOM}")
        await mod.fill("#id_username", "mod")
        await mod.fill("#id_password", "pw-mod-123")
        await mod.click("input[type=submit]")
        await mod.wait_for_url(f"{server.url}{ROOM}")
        for page in (ana, ben):
            await page.goto(f"{server.url}{ROOM}")
        # Every page's socket has joined the room (presence comes only over it).
        await ana.wait_for_function("document.getElementById('presence').textContent === 'mod and 2 guests here'")
        await ana.fill("#content", "Tell me a long tale")
        await ana.keyboard.press("Enter")

        stop, retry = ".message.assistant button.stop", ".message.assistant button.retry"
        for page in (ana, ben, mod):
            await page.wait_for_selector('.message.assistant[data-status="streaming"]')
        # Every page got the same frame, button included; only the asker's and the moderator's show it.
        assert [await page.locator(stop).count() for page in (ana, ben, mod)] == [1, 1, 1]
        assert [await page.locator(stop).is_visible() for page in (ana, ben, mod)] == [True, False, True]
        await ana.click(stop)
        for page in (ana, ben, mod):
            await page.wait_for_selector('.message.assistant[data-status="cancelled"]')
        assert [await page.locator(retry).is_visible() for page in (ana, ben, mod)] == [True, False, True]
        # The page as the server renders it, on a reload, shows them the same way.
        for page in (ana, ben):
            await page.reload()
            await page.wait_for_selector('.message.assistant[data-status="cancelled"]')
        assert [await page.locator(retry).is_visible() for page in (ana, ben)] == [True, False]


def test_a_page_of_replies_names_their_askers_with_no_query_per_reply(client):
    def ask(n):
        for i in range(n):
            question = Message.objects.create(room="PirateBot", role="user", content=f"q{i}", author="Ana", sender=f"guest:a{i}")
            Message.objects.create(room="PirateBot", bot="PirateBot", role="assistant", status="failed", reply_to=question)

    def queries_of_the_page():
        with CaptureQueriesContext(connection) as captured:
            page = client.get(ROOM)
        assert page.status_code == 200
        return len(captured), page.content.decode()

    client.get(ROOM)  # the guest's session is made once, not counted below
    ask(1)
    one, _ = queries_of_the_page()
    ask(5)
    six, page = queries_of_the_page()
    assert six == one
    assert page.count('data-bot="PirateBot" data-asker="') == 6 and f'data-asker="{author_tag("guest:a4")}"' in page
