"""Bots and rooms are rows: the registry reads them and sees an edit, the admin refuses bad ones with a
sentence, an inactive bot cannot be called, each bot has its own model and key, and lookups cost no query."""

import json

import pytest
from asgiref.sync import sync_to_async
from django.core.cache import cache
from django.db import connection
from django.test import AsyncClient
from django.test.utils import CaptureQueriesContext

from bots import registry
from bots.models import Bot, Room
from bots.providers import get_provider
from chat.models import ApiKey, Message
from tests.rooms import finished, frames_until, subscribe
from tests.test_rooms import post, rows

pytestmark = pytest.mark.django_db(transaction=True)

MEMBERSHIPS = {"memberships-TOTAL_FORMS": "0", "memberships-INITIAL_FORMS": "0", "memberships-MIN_NUM_FORMS": "0",
               "memberships-MAX_NUM_FORMS": "1000"}


def bot_form(**fields):
    """The admin's bot form as a person fills it: the seed's PirateBot unless told otherwise."""
    pirate = Bot.objects.get(key="PirateBot")
    form = {name: getattr(pirate, name) for name in ["key", "name", "description", "persona", "provider", "model",
                                                      "base_url", "api_key_env"]}
    form.update(temperature="", max_tokens="", context_tokens="", active="on")
    form.update(fields)
    return {name: value for name, value in form.items() if value is not None}


def room_form(**fields):
    return {**MEMBERSHIPS, "key": "", "title": "A room", "topic": "", "bot": "", "visibility": "public", **fields}


def test_the_registry_reads_the_rows_and_sees_an_admin_edit(staff, settings):
    assert [bot.key for bot in registry.bots()] == ["ChatBot", "BelleBot", "PirateBot"]
    assert [(room.key, room.bot.key if room.bot else None) for room in registry.rooms()] == [
        ("ChatBot", "ChatBot"), ("BelleBot", "BelleBot"), ("PirateBot", "PirateBot"), ("Lounge", None),
    ]
    assert registry.get_room("Lounge").group == "Lounge.messages"
    # Another process's copy, read before the edit: it learns of the edit only through the shared cache.
    other = registry.Shelf()
    assert other.current().bots["PirateBot"].persona.startswith("You are a pirate.")
    version = cache.get(registry.VERSION_KEY)

    pirate = Bot.objects.get(key="PirateBot")
    response = staff.post(f"/admin/bots/bot/{pirate.pk}/change/",
                          bot_form(persona="You are a careful pirate.", model="bigger-model", name="Captain"))
    assert response.status_code == 302, response.content.decode()[:2000]

    assert registry.find_bot("PirateBot").persona == "You are a careful pirate."
    # The key names old replies and URLs: the change form keeps it as it was.
    assert staff.post(f"/admin/bots/bot/{pirate.pk}/change/", bot_form(key="Renamed")).status_code == 302
    assert registry.find_bot("Renamed") is None and Bot.objects.filter(key="PirateBot").exists()
    assert registry.get_room("PirateBot").bot.model == "bigger-model"
    assert cache.get(registry.VERSION_KEY) != version
    settings.REGISTRY_CHECK_INTERVAL = 0  # the other copy asks the shared cache at its next look
    assert other.current().bots["PirateBot"] == registry.find_bot("PirateBot")
    assert other.current().bots["PirateBot"].name == "Captain"


@pytest.mark.parametrize(
    ("kind", "form", "sentence"),
    [
        ("bot", {"key": "piratebot"}, "A bot with this key already exists (keys are compared without regard to case)."),
        ("bot", {"key": "PirateBot"}, "A bot with this key already exists (keys are compared without regard to case)."),
        ("bot", {"key": "9Lives"}, "A bot&#x27;s key is 2 to 32 letters, digits or underscores, starting with a letter"),
        ("bot", {"key": "Helpful", "api_key_env": "sk-live-1234"}, "Give the name of an environment variable"),
        ("bot", {"key": "Helpful", "api_key_env": "SECRET_KEY"}, "SECRET_KEY cannot hold a bot&#x27;s API key"),
        ("bot", {"key": "Helpful", "api_key_env": "DATABASE_URL"}, "DATABASE_URL cannot hold a bot&#x27;s API key"),
        ("bot", {"key": "Helpful", "provider": "no.such.Provider"}, "The provider &#x27;no.such.Provider&#x27; cannot be imported"),
        ("room", {"key": "LOUNGE"}, "A room with this key already exists (keys are compared without regard to case)."),
        ("room", {"key": "New"}, "&#x27;New&#x27; is a word Parley&#x27;s own URLs use; choose another key."),
        ("room", {"key": "two words"}, "A room&#x27;s key is 1 to 40 letters, digits, hyphens or underscores"),
        ("room", {"key": "quiet", "bot": "inactive"}, "Sleepy is inactive; choose an active bot or none."),
    ],
)
def test_bad_keys_reserved_keys_and_inactive_bots_get_a_sentence_and_save_nothing(staff, kind, form, sentence):
    sleepy = Bot.objects.create(key="Sleepy", name="Sleepy", persona="You are asleep.", active=False)
    before = (Bot.objects.count(), Room.objects.count())
    if kind == "bot":
        response = staff.post("/admin/bots/bot/add/", bot_form(**form))
    else:
        response = staff.post("/admin/bots/room/add/", room_form(**{**form, "bot": str(sleepy.pk) if form.get("bot") else ""}))
    page = response.content.decode()
    assert response.status_code == 200 and sentence in page, page[:3000]
    assert (Bot.objects.count(), Room.objects.count()) == before


def test_a_room_made_in_the_admin_is_served_with_its_bot_and_its_maker(staff):
    belle = Bot.objects.get(key="BelleBot")
    response = staff.post("/admin/bots/room/add/", room_form(key="tea-room", title="Tea", topic="Sweet tea", bot=str(belle.pk)))
    assert response.status_code == 302
    room = registry.get_room("tea-room")
    assert (room.title, room.topic, room.bot.key, room.group, room.public) == ("Tea", "Sweet tea", "BelleBot", "tea-room.messages", True)
    assert Room.objects.get(key="tea-room").created_by.username == "ops"
    page = staff.get("/rooms/tea-room/")
    assert page.status_code == 200 and "Message Southern Belle" in page.content.decode()


async def test_an_inactive_bot_cannot_be_called_and_keeps_its_name_on_old_replies(upstream):
    old = await Message.objects.acreate(room="PirateBot", bot="PirateBot", role="assistant", content="Arr, once.")
    pirate = await Bot.objects.aget(key="PirateBot")
    pirate.active = False
    await pirate.asave()

    assert registry.get_bot("PirateBot") is None and registry.find_bot("PirateBot").name == "Pirate"
    assert registry.mentioned("@PirateBot @BelleBot hello") == [registry.get_bot("BelleBot")]
    assert registry.get_room("PirateBot").bot is None and registry.get_room("PirateBot").answerers("Anyone?") == []
    lounge = await AsyncClient().get("/rooms/Lounge/")
    assert 'data-key="BelleBot"' in lounge.content.decode() and 'data-key="PirateBot"' not in lounge.content.decode()
    room = (await AsyncClient().get("/rooms/PirateBot/")).content.decode()
    assert f'id="message_{old.pk}"' in room and "Pirate <span class=\"key\">@PirateBot</span>" in room

    direct = await AsyncClient().post("/chat", {"bot": "PirateBot", "messages": [{"role": "user", "content": "Hi"}]},
                                      content_type="application/json")
    assert direct.status_code == 400 and "Unknown bot 'PirateBot'" in json.loads(direct.content)["error"]
    _, secret = await sync_to_async(ApiKey.objects.issue)("models")
    listed = await AsyncClient().get("/v1/models", headers={"Authorization": f"Bearer {secret}"})
    assert [model["id"] for model in json.loads(listed.content)["data"]] == ["ChatBot", "BelleBot"]

    # Mentioned in the Lounge, it does not answer; BelleBot, mentioned beside it, does.
    upstream.will(text="Why, hello, sugar.")
    page = await subscribe("Lounge")
    await post("@PirateBot @BelleBot hello", bot="Lounge")
    user, reply = await rows(room="Lounge")
    await frames_until(page, finished(reply.pk))
    assert reply.bot == "BelleBot" and len(upstream.exchanges) == 1


def lookups_of_a_reply():
    """The registry calls a post and its reply make: the room, its answerers, the bot, its name, the composer's bots."""
    room = registry.get_room("Lounge")
    answerers = room.answerers("@PirateBot and @bellebot, a word")
    return (room.group, [bot.key for bot in answerers], registry.find_bot("PirateBot").persona,
            registry.get_bot("BelleBot").name, len(registry.bots()), registry.get_room_or_404("PirateBot").bot.key)


def test_lookups_cost_no_query_once_cached(settings):
    expected = ("Lounge.messages", ["PirateBot", "BelleBot"], registry.find_bot("PirateBot").persona, "Southern Belle", 3, "PirateBot")
    with CaptureQueriesContext(connection) as warm:
        assert lookups_of_a_reply() == expected
    with CaptureQueriesContext(connection) as cached:
        for _ in range(200):
            assert lookups_of_a_reply() == expected
    assert cached.captured_queries == []
    # Asking the shared cache at every look costs no query either while nothing changed ...
    settings.REGISTRY_CHECK_INTERVAL = 0
    with CaptureQueriesContext(connection) as checked:
        for _ in range(50):
            lookups_of_a_reply()
    assert checked.captured_queries == []
    # ... and a change is read once, then cached again.
    Bot.objects.filter(key="BelleBot").update(name="Belle")  # a bulk update sends no signal:
    registry.changed()  # so it is announced as the admin's save would
    with CaptureQueriesContext(connection) as reread:
        lookups_of_a_reply()
        lookups_of_a_reply()
    assert len(reread.captured_queries) == 2 and len(warm.captured_queries) <= 2
    assert registry.get_bot("BelleBot").name == "Belle"


def test_one_provider_per_distinct_configuration(upstream):
    pirate, belle = registry.find_bot("PirateBot"), registry.find_bot("BelleBot")
    assert get_provider(pirate) is get_provider(belle) is get_provider()
    Bot.objects.filter(key="BelleBot").update(model="belle-model")
    registry.changed()
    belle = registry.find_bot("BelleBot")
    assert get_provider(belle) is not get_provider(pirate)
    assert (get_provider(belle).model, get_provider(pirate).model) == ("belle-model", "scripted-model")


async def test_a_bot_reaches_its_own_server_with_its_own_model_persona_and_key_from_the_environment(
    upstream, settings, monkeypatch
):
    # The settings' default server is a closed port with a wrong key: only the bot's own row can reach the upstream.
    settings.OPENAI_BASE_URL, settings.OPENAI_API_KEY = "http://127.0.0.1:9/v1", "sk-wrong"
    monkeypatch.setenv("PARLEY_SUPPORT_KEY", "sk-support-123")
    support = await Bot.objects.acreate(
        key="SupportBot", name="Support", persona="You answer questions about Parley, briefly.", provider="openai",
        model="support-large", base_url=upstream.base_url, api_key_env="PARLEY_SUPPORT_KEY", temperature=0.2,
        max_tokens=77,
    )
    await Room.objects.acreate(key="support", title="Support", bot=support)
    upstream.will(text="Press Stop to stop a reply.")
    page = await subscribe("support")
    await post("How do I stop a reply?", bot="support")
    user, reply = await rows(room="support")
    await frames_until(page, finished(reply.pk))

    (exchange,) = upstream.exchanges
    assert exchange.authorization == "Bearer sk-support-123"
    body = exchange.body
    assert (body["model"], body["temperature"], body["max_tokens"]) == ("support-large", 0.2, 77)
    assert body["messages"][0] == {"role": "system", "content": "You answer questions about Parley, briefly."}
    (saved,) = await rows(pk=reply.pk)
    assert (saved.status, saved.content, saved.model, saved.bot) == ("complete", "Press Stop to stop a reply.", "support-large", "SupportBot")


async def test_a_bot_whose_key_variable_is_unset_fails_its_reply_naming_the_variable(upstream, monkeypatch):
    monkeypatch.delenv("PARLEY_MISSING_KEY", raising=False)
    await Bot.objects.acreate(key="Keyless", name="Keyless", persona="You have no key.", provider="openai",
                              base_url=upstream.base_url, api_key_env="PARLEY_MISSING_KEY")
    page = await subscribe("Lounge")
    await post("@Keyless are you there?", bot="Lounge")
    _, reply = await rows(room="Lounge")
    await frames_until(page, finished(reply.pk, "failed"))
    (saved,) = await rows(pk=reply.pk)
    assert "Set PARLEY_MISSING_KEY" in saved.error and upstream.exchanges == []
