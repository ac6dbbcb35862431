"""The database away: a process that starts without it serves anyway, saying so (503 with
Retry-After: the app's page for a reader, JSON for a program; /healthz names the database), and
heals by itself once the database answers, without a restart."""

import json
import time
import urllib.error
import urllib.request

import pytest
from django.conf import settings

from tests.drops import DroppingProxy
from tests.servers import Browser, daphne, free_port
from tests.test_end_to_end import provider_env

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.services]

PAGE = {"Accept": "text/html"}


def test_a_process_started_while_the_database_is_away_says_503_then_heals(upstream):
    db = settings.DATABASES["default"]
    port = free_port()  # where the database will be: nothing listens there yet
    away = {"DATABASE_URL": f"postgres://{db['USER']}@127.0.0.1:{port}/{db['NAME']}"}
    with daphne(provider_env(upstream, **away), healthy=False) as server:
        reader, program = Browser(server.url), Browser(server.url)
        status, _, body = reader.get("/healthz")
        assert (status, json.loads(body)["database"]) == (503, "down: OperationalError")

        # Every way in the start-up used to fail with a 500 from then on; now each says what is wrong.
        status, headers, page = reader.request("GET", "/rooms/Lounge/", headers=PAGE)
        assert (status, headers["Retry-After"]) == (503, "5")
        assert "<h1>Back in a moment</h1>" in page and 'href="/rooms/Lounge/"' in page
        status, headers, page = reader.request("GET", "/rooms/Lounge/", headers={**PAGE, "Accept-Language": "es"})
        assert status == 503 and "Volvemos en un momento" in page
        for path in ("/v1/models", "/api/rooms"):
            status, headers, body = program.request("GET", path, headers={"Authorization": "Bearer pk_anything"})
            assert (status, headers["Retry-After"]) == (503, "5"), path
            assert json.loads(body) == {"error": "The database is not answering; try again in a few seconds."}
        asked = json.dumps({"messages": [{"role": "user", "content": "Ahoy"}]}).encode()
        request = urllib.request.Request(f"{server.url}/chat", asked, {"Content-Type": "application/json"})
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=10)
        assert refused.value.code == 503 and "database" in json.loads(refused.value.read())["error"]

        # The database comes back (a plain TCP forward to it): the same process serves, no restart.
        proxy = DroppingProxy(int(db["PORT"] or 5432), shortest=3600, longest=3600, port=port).start()
        try:
            deadline = time.monotonic() + 15
            while (status := reader.get("/healthz")[0]) != 200 and time.monotonic() < deadline:
                time.sleep(0.1)
            assert status == 200
            status, _, page = reader.request("GET", "/rooms/Lounge/", headers=PAGE)
            assert status == 200 and "The Lounge" in page
        finally:
            proxy.stop()
