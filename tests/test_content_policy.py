"""The Content-Security-Policy: on every route of the URLconf, with every inline block of every page
allowed by its hash and nothing else inline, and no script from another origin."""

import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.contrib.contenttypes.models import ContentType
from django.urls import URLResolver, get_resolver, reverse
from django.utils import timezone

from bots.models import Bot, Room
from chat.models import ApiKey, Message, Mute
from chat.web.csp import HEADER, source_hash

pytestmark = pytest.mark.django_db

INLINE = re.compile(r"<(script|style)\b([^>]*)>(.*?)</\1>", re.DOTALL | re.IGNORECASE)
# Blocks a browser never runs (data for a script), which the policy need not name.
DATA_TYPES = ("application/json", "application/ld+json")


def named_routes(patterns=None, namespace=""):
    """(name, parameter names) of every named route; the unnamed ones are the admin's redirects."""
    for pattern in get_resolver().url_patterns if patterns is None else patterns:
        if isinstance(pattern, URLResolver):
            yield from named_routes(pattern.url_patterns, namespace + (f"{pattern.namespace}:" if pattern.namespace else ""))
        elif pattern.name:
            yield namespace + pattern.name, list(pattern.pattern.regex.groupindex)


@pytest.fixture
def rows(staff, django_user_model):
    """One row of every model the admin shows, by the admin's name for its model."""
    message = Message.objects.create(room="PirateBot", role="user", content="Ahoy", author="Anne")
    _, _ = ApiKey.objects.issue("Nightly")
    return {
        "message": message,
        "chat_message": message.pk,
        "chat_mute": Mute.objects.create(sender="guest:x", until=timezone.now() + timedelta(hours=1)).pk,
        "chat_apikey": ApiKey.objects.get().pk,
        "auth_user": django_user_model.objects.get().pk,
        "auth_group": Group.objects.create(name="moderators").pk,
        "bots_bot": Bot.objects.get(key="PirateBot").pk,
        "bots_room": Room.objects.get(key="PirateBot").pk,
    }


def url_of(name, parameters, rows):
    """The route's URL with a real row or room for each parameter."""
    model = re.match(r"admin:(\w+?_\w+?)_(?:change|delete|history|password_change)$", name)
    samples = {
        "room": "PirateBot", "bot": "PirateBot", "pk": rows["message"].pk, "message_id": rows["message"].pk,
        "app_label": "chat", "object_id": rows[model.group(1)] if model else rows["message"].pk,
        "id": rows["auth_user"], "content_type_id": ContentType.objects.get_for_model(Message).pk,
    }
    missing = [parameter for parameter in parameters if parameter not in samples]
    assert not missing, f"{name}: give {missing} a sample value in {__name__}"
    return reverse(name, kwargs={parameter: samples[parameter] for parameter in parameters})


def test_every_route_answers_with_the_policy_and_every_page_s_inline_blocks_are_named(staff, rows):
    routes = list(named_routes())
    assert len(routes) > 50  # the admin's, the API's and the pages'
    pages = 0
    for name, parameters in routes:
        url = url_of(name, parameters, rows)
        response = staff.get(url)
        policy = response.get(HEADER, "")
        assert policy, f"{url} ({name}) answered {response.status_code} without {HEADER}"
        directives = dict(directive.strip().partition(" ")[::2] for directive in policy.split(";"))
        assert "'unsafe-inline'" not in policy and "'unsafe-eval'" not in policy
        assert directives["default-src"] == "'self'" and directives["object-src"] == "'none'"
        if not response.get("Content-Type", "").startswith("text/html") or response.status_code != 200:
            continue
        pages += 1
        html = response.content.decode()
        for kind, attributes, text in INLINE.findall(html):
            if "src=" in attributes:
                (source,) = re.findall(r'src="([^"]*)"', attributes)
                assert source.startswith("/") and not source.startswith("//"), f"{url} loads {source}"
            elif not any(data in attributes for data in DATA_TYPES):
                assert source_hash(text) in directives[f"{kind.lower()}-src"].split(), f"{url}: an inline {kind} the policy does not name"
        assert not re.search(r"<link\b[^>]*href=\"(https?:)?//", html), f"{url} links another origin"
        assert " style=" not in html, f"{url} has a style attribute, which the policy refuses"
    assert pages >= 15  # lobby, room, direct, profile, API docs, and the admin's


def test_a_block_the_template_does_not_name_is_not_allowed(client):
    response = client.get("/rooms/PirateBot/")
    (importmap,) = re.findall(r'<script type="importmap">(.*?)</script>', response.content.decode(), re.DOTALL)
    script_src = [d for d in response[HEADER].split(";") if d.strip().startswith("script-src")][0].split()
    assert script_src == ["script-src", "'self'", source_hash(importmap)]
    assert source_hash(importmap + " ") not in script_src


@pytest.mark.django_db(transaction=True)
async def test_pages_run_under_the_policy_in_chromium_and_a_stray_inline_style_is_caught(upstream, browser):
    from tests.browser import POLICY_VIOLATION, own_presence
    from tests.servers import daphne
    from tests.test_end_to_end import provider_env

    upstream.will(text="Arr, the sea.", rate=50)
    with daphne(provider_env(upstream, **own_presence())) as server:
        page = await (await browser.new_context()).new_page()
        await page.goto(f"{server.url}/")
        # Turbo Drive keeps this one document, under the lobby's policy, from here on.
        await page.click('a[href="/rooms/PirateBot/"]')
        await page.wait_for_selector("room-stream", state="attached")
        await page.fill("#content", "Where be the rum?")
        await page.keyboard.press("Enter")
        await page.wait_for_selector('.message.assistant[data-status="complete"]', timeout=15000)
        # The person's own message on the right: the rule parley.js makes, no inline style.
        mine = page.locator(".message.user").first
        assert await mine.evaluate("m => getComputedStyle(m).alignSelf") == "flex-end"
        await page.click('a[href="/rooms/BelleBot/"]')
        await page.wait_for_selector('room-stream[socket="/ws/rooms/BelleBot/"]', state="attached")
        await page.goto(f"{server.url}/direct/PirateBot/")
        await page.goto(f"{server.url}/api/docs")
        await page.wait_for_selector(".opblock", timeout=15000)
        assert browser.violations == []

        # The watch itself: a style the policy does not name is refused, and the console says so.
        async with page.expect_console_message(lambda message: POLICY_VIOLATION in message.text) as refused:
            await page.evaluate("document.head.append(Object.assign(document.createElement('style'), {textContent: 'body { color: red }'}))")
        assert "style-src" in (await refused.value).text
        assert await page.evaluate("getComputedStyle(document.body).color") != "rgb(255, 0, 0)"
        assert browser.violations
        browser.violations.clear()  # expected here; any other fails the test in the fixture
