"""API keys: created once and kept hashed, revoked at once, each with its own rate limit; on /chat over real HTTP."""

import io
import json
import re

import pytest
from asgiref.sync import sync_to_async
from django.core.management import call_command
from django.utils import timezone

from chat.models import ApiKey
from tests.servers import daphne
from tests.sse import events, open_stream
from tests.test_end_to_end import provider_env

pytestmark = pytest.mark.django_db(transaction=True)

BODY = json.dumps({"bot": "PirateBot", "messages": [{"role": "user", "content": "Ahoy"}]})


def test_create_api_key_prints_the_key_once_and_keeps_only_its_hash():
    out, err = io.StringIO(), io.StringIO()
    call_command("create_api_key", "Build bot", stdout=out, stderr=err)
    secret = out.getvalue().strip()
    key = ApiKey.objects.get()
    assert secret.startswith("parley_") and len(secret) > 40 and key.name == "Build bot"
    assert key.digest == ApiKey.digest_of(secret) and secret not in (key.digest, key.prefix)
    assert secret not in err.getvalue() and key.prefix in err.getvalue()
    assert ApiKey.objects.authenticate(secret) == key and ApiKey.objects.authenticate(secret + "x") is None


def test_staff_create_a_key_in_the_admin_see_it_once_and_revoke_it(staff):
    response = staff.post("/admin/chat/apikey/add/", {"name": "Nightly report"})
    assert response.status_code == 200 and "no-store" in response["Cache-Control"]
    (secret,) = re.findall(r'<code id="api-key">(parley_[^<]+)</code>', response.text)
    # Shown in this response's body alone: no cookie carries it (Django's messages would, signed but readable).
    assert not [cookie for cookie in response.cookies.values() if secret in cookie.value or "messages" == cookie.key]
    assert secret not in staff.get("/admin/chat/apikey/").text
    key = ApiKey.objects.get(name="Nightly report")
    assert key.last_used_at is None
    assert ApiKey.objects.authenticate(secret) == key
    key.refresh_from_db()
    assert key.last_used_at is not None
    assert secret not in staff.get(f"/admin/chat/apikey/{key.pk}/change/").text  # never again
    staff.post("/admin/chat/apikey/", {"action": "revoke", "_selected_action": [key.pk]})
    assert ApiKey.objects.authenticate(secret) is None


def chat(server, headers):
    _, response = open_stream(server.url, "POST", "/chat", BODY, {"Content-Type": "application/json", **headers})
    return response


async def test_keys_on_chat_wrong_revoked_and_their_own_rate_limit(upstream):
    (one, first), (two, second) = [await sync_to_async(ApiKey.objects.issue)(name) for name in ("One", "Two")]
    with daphne(provider_env(upstream, RATE_LIMIT_PER_CLIENT="2")) as server:
        for _ in range(2):
            response = await sync_to_async(chat)(server, {"Authorization": f"Bearer {first}"})
            assert response.status == 200 and [name for name, _, _ in events(response)][-1] == "done"
        # The key's own limit: a third request with it is refused; the other key's are not. (Requests
        # without a key count by client address, which every test on this machine shares.)
        response = await sync_to_async(chat)(server, {"Authorization": f"Bearer {first}"})
        assert response.status == 429 and int(response.getheader("Retry-After")) > 0
        assert "too fast" in json.loads(response.read())["error"]
        response = await sync_to_async(chat)(server, {"Authorization": f"Bearer {second}"})
        assert response.status == 200, response.read()
        response.read()
        # Wrong, malformed or revoked: 401 with a JSON error, at once.
        await ApiKey.objects.filter(pk=two.pk).aupdate(revoked_at=timezone.now())
        for header in (f"Bearer {second}", f"Bearer {first}x", "Bearer", "Bearer  ", "Bearer " + "x" * 500):
            response = await sync_to_async(chat)(server, {"Authorization": header})
            assert response.status == 401, header
            assert response.getheader("WWW-Authenticate").startswith("Bearer")
            assert "error" in json.loads(response.read())
    await one.arefresh_from_db()
    assert one.last_used_at is not None
    assert len(upstream.exchanges) == 3
