"""/api/docs in a real browser with no network beyond loopback: the API's operations are listed
from django-ninja's own Swagger UI files, and the page asks no other origin for anything."""

from urllib.parse import urlsplit

import pytest

from tests.servers import daphne

pytestmark = pytest.mark.django_db(transaction=True)

OPERATIONS = [
    ("GET", "/api/rooms"),
    ("GET", "/api/rooms/{room}/messages"),
    ("POST", "/api/rooms/{room}/messages"),
    ("POST", "/api/rooms/{room}/messages/{message_id}/stop"),
    ("POST", "/api/rooms/{room}/messages/{message_id}/retry"),
    ("GET", "/api/rooms/{room}/events"),
    ("POST", "/api/rooms/{room}/catch-up"),
    ("GET", "/api/search"),
]


async def test_the_api_docs_list_every_operation_offline(browser):
    with daphne() as server:
        page = await (await browser.new_context()).new_page()
        elsewhere = []  # requests for anything not on this server

        async def loopback_only(route):
            if urlsplit(route.request.url).netloc == f"127.0.0.1:{server.port}":
                await route.continue_()
            else:
                elsewhere.append(route.request.url)
                await route.abort()

        await page.route("**/*", loopback_only)
        response = await page.goto(f"{server.url}/api/docs")
        assert response.status == 200
        await page.wait_for_selector(".opblock", timeout=15000)
        listed = await page.eval_on_selector_all(
            ".opblock-summary",
            "blocks => blocks.map(b => [b.querySelector('.opblock-summary-method').textContent.trim(),"
            " b.querySelector('.opblock-summary-path').dataset.path])",
        )
        assert sorted(map(tuple, listed)) == sorted(OPERATIONS)
        assert elsewhere == []
