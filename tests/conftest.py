"""Shared fixtures: the scripted upstream, the openai provider pointed at it, real Daphne processes."""

import importlib
import os

import pytest

from tests.upstream import ScriptedUpstream


@pytest.fixture(scope="session")
def upstream_server():
    server = ScriptedUpstream().start()
    yield server
    server.stop()


@pytest.fixture
def upstream(upstream_server, settings):
    """The scripted OpenAI-compatible server, with the openai provider pointed at it."""
    upstream_server.reset()
    settings.LLM_PROVIDER = "openai"
    settings.OPENAI_API_KEY = "sk-scripted"
    settings.OPENAI_BASE_URL = upstream_server.base_url
    settings.OPENAI_MODEL = "scripted-model"
    settings.OPENAI_MAX_RETRIES = 0
    settings.OPENAI_TIMEOUT = 5
    yield upstream_server
    upstream_server.reset()


@pytest.fixture(autouse=True)
def _no_model_unless_chosen(settings):
    """In-process tests use the scripted upstream (the `upstream` fixture) or choose the local model
    themselves: by default the provider points at a closed port, so none loads the model by accident."""
    settings.LLM_PROVIDER = "openai"
    settings.OPENAI_API_KEY = "sk-none"
    settings.OPENAI_BASE_URL = "http://127.0.0.1:9/v1"


@pytest.fixture(autouse=True)
def _bots_and_rooms(request):
    """Each test starts from the seed's bots and rooms: a transactional test's flush empties every
    table (the data migration's rows too), and this process's copy of the rows is dropped."""
    from bots.registry import shelf

    shelf().forget()
    marker = request.node.get_closest_marker("django_db")
    if marker or {"db", "transactional_db"} & set(request.fixturenames):
        transactional = (marker and marker.kwargs.get("transaction")) or "transactional_db" in request.fixturenames
        request.getfixturevalue("transactional_db" if transactional else "db")
        from django.apps import apps

        from bots.models import Bot

        if not Bot.objects.exists():
            importlib.import_module("bots.migrations.0002_seed").seed(apps, None)
    yield
    shelf().forget()


@pytest.fixture(autouse=True)
def _fresh_channel_layer():
    """Each test its own channel layer: a channels-redis layer binds its locks to one event loop."""
    from channels.layers import channel_layers

    channel_layers.backends.clear()
    yield
    channel_layers.backends.clear()


@pytest.fixture(autouse=True)
def _generous_limits(settings):
    """Rate limits out of the way (tests of the limits set their own); short scripted replies
    still grow in several frames."""
    settings.RATE_LIMIT_PER_CLIENT = settings.RATE_LIMIT_PER_ROOM = 10_000
    # Every in-process client comes from one address: tests of the address budgets set their own.
    settings.RATE_LIMIT_PER_ADDRESS = settings.RATE_LIMIT_VOTES = settings.RATE_LIMIT_STATELESS_PER_BOT = 10_000
    settings.ROOM_CREATIONS_PER_HOUR = 10_000
    settings.REPLY_FLUSH_INTERVAL = 0.05


@pytest.fixture(autouse=True)
async def _drain_replies(settings):
    """Let every reply job a test started finish inside the test's own event loop, while the
    test's settings (its provider) still hold: this fixture is torn down before `settings`."""
    yield
    from asgiref.sync import sync_to_async
    from django.db import connections

    from chat import services
    from chat.replies import workers
    from tests.rooms import disconnect_all

    await disconnect_all()
    await workers.drain()
    await services.on_every_lane(connections.close_all)  # the lanes' threads keep connections too
    # The worker thread sync_to_async uses keeps its own connections: close them, or the test
    # database cannot be dropped at the end of the run.
    await sync_to_async(connections.close_all)()


def ci():
    """True under CI, where missing services fail tests instead of skipping them."""
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def pytest_collection_modifyitems(items):
    """Mark every test that drives Chromium `browser`: ./parley test's second pass leaves those out."""
    for item in items:
        if "browser" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.browser)


@pytest.fixture(autouse=True)
def _needs_services(request):
    """A test marked `services` runs on PostgreSQL and Redis: under CI it fails without them, elsewhere it skips."""
    if request.node.get_closest_marker("services") is None:
        return
    from django.conf import settings
    from django.db import connection

    if settings.REDIS_URL and connection.vendor == "postgresql":
        return
    missing = "needs DATABASE_URL=postgres://... and REDIS_URL=redis://..."
    if ci():
        pytest.fail(f"{missing}: under CI ./parley test runs this file in its PostgreSQL + Redis pass")
    pytest.skip(f"{missing}: start PostgreSQL and Redis and run ./parley test (its second pass runs this file)")


@pytest.fixture
async def browser():
    """A headless Debian Chromium under Playwright (its own browser download is not used); the test
    fails when any page broke the Content-Security-Policy (the console says so)."""
    from playwright.async_api import async_playwright

    from tests.browser import FLAGS, PolicyWatch, chromium_or_skip

    executable = chromium_or_skip()
    async with async_playwright() as playwright:
        chromium = PolicyWatch(await playwright.chromium.launch(executable_path=executable, args=FLAGS))
        yield chromium
        await chromium.close()
    assert chromium.violations == [], "pages broke the Content-Security-Policy"


@pytest.fixture
def staff(client, django_user_model):
    """The test client, signed in as a staff superuser."""
    user = django_user_model.objects.create_user("ops", password="pw-ops-123", is_staff=True, is_superuser=True)
    client.force_login(user)
    return client


@pytest.fixture
def history():
    """Four messages in two rooms: a person's and a complete reply, a person's and a failed reply."""
    from chat.models import Message

    rows = [
        Message.objects.create(room="PirateBot", role="user", content="Where be the rum?", author="Anne"),
        Message.objects.create(room="PirateBot", bot="PirateBot", role="assistant", content="In the hold, matey.", model="m",
                               prompt_tokens=12, completion_tokens=5),
        Message.objects.create(room="BelleBot", role="user", content="Sweet tea?", author="Bo"),
        Message.objects.create(room="BelleBot", bot="BelleBot", role="assistant", content="Partial", status="failed",
                               error="The model timed out."),
    ]
    return rows
