"""Bots are rows across processes: an edit in the admin on one Daphne process voices the next reply on another."""

import re

import pytest
from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth import get_user_model

from bots.models import Bot
from tests.servers import Browser, daphne
from tests.test_end_to_end import provider_env
from tests.waiting import until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.services]


def signed_in_staff(server):
    """A browser signed in to the admin of server as a staff superuser."""
    get_user_model().objects.create_superuser("ops", password="pw-ops-123")
    browser = Browser(server.url)
    status, headers, _ = browser.post_form("/admin/login/", "/admin/login/?next=/admin/",
                                           {"username": "ops", "password": "pw-ops-123", "next": "/admin/"})
    assert (status, headers["Location"]) == (302, "/admin/")
    return browser


def change_bot(browser, key, **fields):
    """Edit a bot through the admin's change form over HTTP, as staff do."""
    bot = Bot.objects.get(key=key)
    page = f"/admin/bots/bot/{bot.pk}/change/"
    _, _, html = browser.get(page)
    form = {name: value for name, value in re.findall(r'<input type="(?:text|url|number)" name="(\w+)" value="([^"]*)"', html)}
    form["persona"] = re.search(r'<textarea name="persona"[^>]*>\n?(.*?)</textarea>', html, re.S)[1]
    form.update(active="on", **fields)
    status, headers, body = browser.post_form(page, page, form)
    assert status == 302, body[:3000]


async def test_a_persona_and_model_edited_on_one_process_voice_the_next_reply_on_the_other(upstream):
    env = provider_env(upstream, REDIS_URL=settings.REDIS_URL, PARLEY_PIRATE_KEY="sk-pirate-env")
    with daphne(env) as editing, daphne(env) as answering:
        # Before: the seed's persona and the settings' model, from the answering process.
        upstream.will(text="Arr.")
        status, _, _ = await sync_to_async(Browser(answering.url).post_form)(
            "/rooms/PirateBot/", "/rooms/PirateBot/messages", {"content": "Who be ye?"})
        assert status == 303
        await until(lambda: len(upstream.exchanges) == 1)
        assert upstream.exchanges[0].body["model"] == "scripted-model"
        assert upstream.exchanges[0].messages[0]["content"].startswith("You are a pirate.")

        staff = await sync_to_async(signed_in_staff)(editing)
        await sync_to_async(change_bot)(
            staff, "PirateBot", name="Captain Flint", persona="You are Captain Flint. Answer in one line.",
            model="flint-70b", provider="openai", base_url=upstream.base_url, api_key_env="PARLEY_PIRATE_KEY",
        )
        # The answering process shows the edit once its copy asks the shared cache (REGISTRY_CHECK_INTERVAL).
        await until(lambda: "Captain Flint" in Browser(answering.url).get("/rooms/Lounge/")[2])

        upstream.will(text="Aye, Flint it be.")
        status, _, _ = await sync_to_async(Browser(answering.url).post_form)(
            "/rooms/PirateBot/", "/rooms/PirateBot/messages", {"content": "And now?"})
        assert status == 303
        await until(lambda: len(upstream.exchanges) == 2)
        edited = upstream.exchanges[1]
        assert edited.body["model"] == "flint-70b"
        assert edited.messages[0] == {"role": "system", "content": "You are Captain Flint. Answer in one line."}
        assert edited.authorization == "Bearer sk-pirate-env"  # the key from the variable the row names
