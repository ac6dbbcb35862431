"""People in rooms, end to end on a real Daphne with real sockets: mentions, the Lounge, names, votes, moderation."""

import asyncio
import re

import pytest
import websockets
from asgiref.sync import sync_to_async

from bots import registry
from chat.models import Message
from tests.rooms import finished, grows, parse_frames
from tests.servers import Browser, daphne
from tests.test_end_to_end import provider_env, read_frames

pytestmark = pytest.mark.django_db(transaction=True)

ATTRIBUTE = re.compile(r'([\w-]+)="([^"]*)"')


def attributes(fragment):
    """The attributes of a fragment's first element."""
    return dict(ATTRIBUTE.findall(re.match(r"\s*<[\w-]+([^>]*)>", fragment)[1]))


@sync_to_async
def rows_after(pk, room="PirateBot"):
    return list(Message.objects.filter(room=room, id__gt=pk).order_by("id"))


@sync_to_async
def latest_id():
    return Message.objects.order_by("-id").values_list("id", flat=True).first() or 0


class Person:
    """Someone with a browser session in a room (no JavaScript: forms and their CSRF token)."""

    def __init__(self, server, room="PirateBot"):
        self.browser = Browser(server.url)
        self.page = f"/rooms/{room}/"
        self.token = self.browser.form_token(self.page)

    def post(self, action, **fields):
        return self.browser.submit(self.page, action, self.token, fields)

    async def say(self, content, expect=303):
        status, _, body = await sync_to_async(self.post)(f"{self.page}messages", content=content)
        assert status == expect, body
        return body


async def answered(page, since, count, room="PirateBot"):
    """Wait until `count` replies after message `since` have finished on the page; the rows and the page's frames."""
    frames = []
    while True:
        replies = [m for m in await rows_after(since, room) if m.role == "assistant"]
        if len(replies) >= count:
            break
        frames += await read_frames(page, lambda f: f[0] == "prepend")
    for reply in replies:
        if not any(finished(reply.pk)(f) for f in frames):
            frames += await read_frames(page, finished(reply.pk))
    return [m for m in await rows_after(since, room) if m.role == "assistant"], frames


def prepended_bot(frames, pk):
    """The data-bot of message pk as the page got it."""
    return next(attributes(html).get("data-bot") for action, target, _, html in frames
                if action == "prepend" and f'id="message_{pk}"' in html)


async def test_a_mention_calls_exactly_the_bots_named_in_order_else_the_room_s_own(upstream_server, upstream):
    upstream.will(text="Why, I do declare, how kind of you to ask.")
    upstream.will(text="Hello, I am the default assistant.")
    upstream.will(text="And a good day from the South.")
    upstream.will(text="Arr, that be me own room.")
    with daphne(provider_env(upstream)) as server:
        async with websockets.connect(f"{server.ws_url}/ws/rooms/PirateBot/", origin=server.url) as page:
            ana = await sync_to_async(Person)(server)

            before = await latest_id()
            await ana.say("@BelleBot how do you do?")
            replies, frames = await answered(page, before, 1)
            assert [(r.bot, r.status) for r in await rows_after(before) if r.role == "assistant"] == [("BelleBot", "complete")]
            assert prepended_bot(frames, replies[0].pk) == "BelleBot"
            prompt = upstream.exchanges[0].messages
            assert prompt[0] == {"role": "system", "content": registry.find_bot("BelleBot").persona}
            assert prompt[-1]["role"] == "user" and prompt[-1]["content"].endswith(": @BelleBot how do you do?")

            before = await latest_id()
            await ana.say("@ChatBot and @BelleBot, both of you")
            replies, frames = await answered(page, before, 2)
            assert [r.bot for r in replies] == ["ChatBot", "BelleBot"] and replies[0].pk < replies[1].pk
            assert [prepended_bot(frames, r.pk) for r in replies] == ["ChatBot", "BelleBot"]
            assert all(r.status == "complete" for r in await rows_after(before) if r.role == "assistant")
            chat, belle = upstream.exchanges[1].messages, upstream.exchanges[2].messages
            assert chat[0]["content"] == registry.find_bot("ChatBot").persona
            assert belle[0]["content"] == registry.find_bot("BelleBot").persona
            # Belle hears who said what: ChatBot's answer just before hers is a line of the room, not hers.
            assert belle[-1] == {"role": "user", "content": "ChatBot: Hello, I am the default assistant."}
            assert {"role": "assistant", "content": "Why, I do declare, how kind of you to ask."} in belle

            before = await latest_id()
            await ana.say("And what say the captain?")
            replies, frames = await answered(page, before, 1)
            assert [r.bot for r in replies] == ["PirateBot"] and prepended_bot(frames, replies[0].pk) == "PirateBot"
            assert upstream.exchanges[3].messages[0]["content"] == registry.find_bot("PirateBot").persona
            assert len(upstream.exchanges) == 4


async def test_the_lounge_stays_quiet_until_a_bot_is_mentioned(upstream_server, upstream):
    upstream.will(text="Ahoy, landlubbers of the Lounge!")
    with daphne(provider_env(upstream)) as server:
        async with websockets.connect(f"{server.ws_url}/ws/rooms/Lounge/", origin=server.url) as page:
            ana = await sync_to_async(Person)(server, room="Lounge")
            before = await latest_id()
            await ana.say("Hello everyone, nice to meet you")
            frames = await read_frames(page, lambda f: f[0] == "prepend")
            assert attributes(frames[0][3])["data-author"].startswith("Guest ")
            # Three seconds of the room's frames: nothing more comes, and nobody asked the model.
            with pytest.raises(TimeoutError):
                await read_frames(page, lambda f: True, timeout=3)
            assert upstream.exchanges == []
            assert [m.role for m in await rows_after(before, "Lounge")] == ["user"]

            before = await latest_id()
            await ana.say("@PirateBot, tell us a tale")
            replies, frames = await answered(page, before, 1, room="Lounge")
            assert [(r.bot, r.status) for r in replies] == [("PirateBot", "complete")]
            assert prepended_bot(frames, replies[0].pk) == "PirateBot"
            assert upstream.exchanges[0].messages[0]["content"] == registry.find_bot("PirateBot").persona


BAD_NAMES = [
    "", "    ", "x" * 41, "Ana\x00", "Ana\x07Bell", "two\nlines", "zero\u200bwidth",
    "PirateBot", "Pirate", "<b>Ana</b>",
]


async def test_a_chosen_name_is_every_page_s_author_and_bad_names_change_nothing(upstream_server, upstream):
    with daphne(provider_env(upstream)) as server:
        url = f"{server.ws_url}/ws/rooms/PirateBot/"
        async with websockets.connect(url, origin=server.url) as one, websockets.connect(url, origin=server.url) as two:
            ana = await sync_to_async(Person)(server)
            status, headers, _ = await sync_to_async(ana.post)("/profile", name="  Ana Lucía  ", next="/rooms/PirateBot/")
            assert status == 303 and headers["Location"] == "/rooms/PirateBot/"
            await ana.say("Ahoy from Ana")
            for page in (one, two):
                frames = await read_frames(page, lambda f: f[0] == "prepend" and 'class="message user"' in f[3])
                user = attributes(frames[-1][3])
                assert user["data-author"] == "Ana Lucía"

            for bad in BAD_NAMES:
                status, _, body = await sync_to_async(ana.post)("/profile", name=bad)
                assert status == 400, (bad, body)
                assert re.search(r"(characters?|name|contain)", body), (bad, body)
            _, _, room = await sync_to_async(ana.browser.get)("/rooms/PirateBot/")
            assert '<strong id="my_name">Ana Lucía</strong>' in room
            await ana.say("Still Ana")
            frames = await read_frames(one, lambda f: f[0] == "prepend" and 'class="message user"' in f[3])
            assert attributes(frames[-1][3])["data-author"] == "Ana Lucía"


def feedback_counts(frames, pk):
    """(up, down) from each frame of reply pk's feedback element; asserts no frame replaced the whole message."""
    assert not [f for f in frames if f[1] == f"message_{pk}"], "the whole message was sent again"
    counts = []
    for action, target, _, html in frames:
        if target == f"message_{pk}_feedback":
            assert action == "replace"
            element = attributes(html)
            counts.append((int(element["data-up"]), int(element["data-down"])))
    return counts


async def test_votes_reach_a_third_page_as_feedback_frames_step_by_step(upstream_server, upstream):
    reply = await sync_to_async(Message.objects.create)(
        room="PirateBot", bot="PirateBot", role="assistant", content="Arr, the treasure be buried.", status="complete"
    )
    action = f"/rooms/PirateBot/messages/{reply.pk}/feedback"
    with daphne(provider_env(upstream)) as server:
        async with websockets.connect(f"{server.ws_url}/ws/rooms/PirateBot/", origin=server.url) as third:
            ana, ben = await sync_to_async(Person)(server), await sync_to_async(Person)(server)
            seen = []
            steps = [(ana, "up", (1, 0)), (ben, "up", (2, 0)), (ana, "up", None), (ben, "down", (1, 1)), (ana, "none", (0, 1))]
            for person, value, expected in steps:
                status, _, _ = await sync_to_async(person.post)(action, value=value)
                assert status == 303
                if expected is not None:
                    seen += await read_frames(third, lambda f: f[1] == f"message_{reply.pk}_feedback")
                    assert feedback_counts(seen, reply.pk)[-1] == expected
            # The second "up" from Ana's session counted once and sent nothing: one frame per change.
            assert feedback_counts(seen, reply.pk) == [(1, 0), (2, 0), (1, 1), (0, 1)]
            await reply.arefresh_from_db()
            assert (reply.up_votes, reply.down_votes) == (0, 1)
            for bad in ("sideways", ""):
                status, _, _ = await sync_to_async(ana.post)(action, value=bad)
                assert status == 400


def moderator(user_model):
    """A staff user who may read the history and the mutes in the admin (not a superuser)."""
    from django.contrib.auth.models import Permission

    user = user_model.objects.create_user("mod", password="pw-mod-123", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=["view_message", "view_mute", "change_mute"]))
    return user


def signed_in_moderator(server, room="PirateBot"):
    """The moderator() on the room's page, signed in through the admin's login form."""
    mod = Person(server, room)
    status, _, body = mod.browser.post_form("/admin/login/", "/admin/login/?next=/admin/", {"username": "mod", "password": "pw-mod-123"})
    assert status == 302, body
    mod.token = mod.browser.form_token(mod.page)  # signing in gave the session a new CSRF token
    return mod


async def test_staff_remove_a_message_from_every_page_and_mute_its_author(upstream_server, upstream, django_user_model):
    await sync_to_async(moderator)(django_user_model)
    with daphne(provider_env(upstream)) as server:
        url = f"{server.ws_url}/ws/rooms/Lounge/"
        async with websockets.connect(url, origin=server.url) as one, websockets.connect(url, origin=server.url) as two:
            troll, other = await sync_to_async(Person)(server, "Lounge"), await sync_to_async(Person)(server, "Lounge")
            mod = await sync_to_async(signed_in_moderator)(server, "Lounge")

            await troll.say("something rude")
            (message,) = await rows_after(0, "Lounge")
            for page in (one, two):
                await read_frames(page, lambda f: f[0] == "prepend")
            # Nobody but staff may.
            status, _, _ = await sync_to_async(other.post)(f"/rooms/Lounge/messages/{message.pk}/remove")
            assert status == 403
            status, _, _ = await sync_to_async(mod.post)(f"/rooms/Lounge/messages/{message.pk}/remove")
            assert status == 303
            for page in (one, two):
                frames = await read_frames(page, lambda f: f[0] == "remove")
                assert frames[-1][1] == f"message_{message.pk}"
            _, _, room = await sync_to_async(other.browser.get)("/rooms/Lounge/")
            assert f'id="message_{message.pk}"' not in room
            _, _, change = await sync_to_async(mod.browser.get)(f"/admin/chat/message/{message.pk}/change/")
            assert "something rude" in change and "mod" in change  # removed_by
            _, _, listing = await sync_to_async(mod.browser.get)("/admin/chat/message/?removed_at__isempty=0")
            assert f"/admin/chat/message/{message.pk}/change/" in listing

            status, _, _ = await sync_to_async(mod.post)(f"/rooms/Lounge/messages/{message.pk}/mute")
            assert status == 303
            body = await troll.say("let me back in", expect=403)
            assert re.search(r"muted you until \d\d:\d\d", body)
            await other.say("I can still talk")
            assert [m.content for m in await rows_after(message.pk, "Lounge")] == ["I can still talk"]
            _, _, mutes = await sync_to_async(mod.browser.get)("/admin/chat/mute/")
            assert message.author in mutes


async def test_remove_stops_a_reply_mid_stream_on_every_open_page(upstream_server, upstream, django_user_model):
    tokens = [f"word{i} " for i in range(200)]
    upstream.will(tokens=tokens, rate=40)  # five seconds of reply, removed early on
    await sync_to_async(moderator)(django_user_model)
    with daphne(provider_env(upstream)) as server:
        url = f"{server.ws_url}/ws/rooms/PirateBot/"
        async with websockets.connect(url, origin=server.url) as one, websockets.connect(url, origin=server.url) as two:
            guest, mod = await sync_to_async(Person)(server), await sync_to_async(signed_in_moderator)(server)
            await guest.say("Tell me a long story")
            _, reply = await rows_after(0)
            for page in (one, two):
                await read_frames(page, grows(reply.pk))  # both pages show it growing
            status, _, _ = await sync_to_async(mod.post)(f"/rooms/PirateBot/messages/{reply.pk}/remove")
            assert status == 303
            for page in (one, two):
                frames = await read_frames(page, lambda f: f[1] == f"message_{reply.pk}")
                assert frames[-1] == ("remove", f"message_{reply.pk}", "", "")
            # The upstream request is closed: no more tokens are paid for.
            (exchange,) = upstream.exchanges
            async with asyncio.timeout(5):
                while exchange.closed_at is None:
                    await asyncio.sleep(0.02)
            assert len(exchange.sent) < len(tokens)
            await reply.arefresh_from_db()
            assert (reply.status, reply.removed_by, reply.removed_at is not None) == ("cancelled", "mod", True)
            # Nothing brings it back: the room's next reply streams and ends with no frame of it between.
            await guest.say("Another, then")
            _, _, _, following = await rows_after(0)
            for page in (one, two):
                after = await read_frames(page, finished(following.pk))
                assert not [f for f in after if f[1].startswith(f"message_{reply.pk}")]

async def test_presence_names_people_and_counts_guests(upstream_server, upstream):
    with daphne(provider_env(upstream)) as server:
        ana = await sync_to_async(Person)(server)
        await sync_to_async(ana.post)("/profile", name="Ana")
        cookie = "; ".join(f"{c.name}={c.value}" for c in ana.browser.cookies)
        url = f"{server.ws_url}/ws/rooms/PirateBot/"
        # Two guests who only look: each page view offers its own guest, whom its socket names.
        offers = []
        for _ in range(2):
            _, _, html = await sync_to_async(Browser(server.url).get)("/rooms/PirateBot/")
            offers.append(f"{url}?guest=" + re.search(r' guest="([^"]+)"', html).group(1))
        async with websockets.connect(url, origin=server.url, additional_headers={"Cookie": cookie}) as mine, \
                websockets.connect(offers[0], origin=server.url) as guest, websockets.connect(offers[1], origin=server.url):
            for page in (mine, guest):
                text = None
                async with asyncio.timeout(10):
                    while text != "Ana and 2 guests here":
                        for action, target, _, html in parse_frames(await page.recv(), presence=True):
                            if target == "presence":
                                text = html


def test_removing_a_question_stops_the_replies_it_started(client, staff):
    response = client.post("/rooms/Lounge/messages", {"content": "@ChatBot and @BelleBot, say something rude"})
    assert response.status_code == 303
    question, *replies = Message.objects.filter(room="Lounge").order_by("id")
    assert [(r.bot, r.status, r.reply_to_id) for r in replies] == [("ChatBot", "pending", question.pk), ("BelleBot", "pending", question.pk)]
    assert staff.post(f"/rooms/Lounge/messages/{question.pk}/remove").status_code == 303
    assert [m.status for m in Message.objects.filter(reply_to=question)] == ["cancelled", "cancelled"]
    # Each change has its own event number, in the order it was made.
    numbers = list(Message.objects.filter(room="Lounge").order_by("seq").values_list("seq", flat=True))
    assert numbers == sorted(set(numbers)) and Message.objects.last_event("Lounge") == numbers[-1]
