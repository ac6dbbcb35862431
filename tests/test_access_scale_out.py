"""Access across processes (PostgreSQL, Redis): a member removed through one Daphne process has
their page on another closed within a second; a room made members-only closes its outsiders' pages."""

import asyncio
import time

import pytest
import websockets
from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model
from websockets.exceptions import ConnectionClosed

from bots.models import Membership, Room
from tests.servers import Browser
from tests.test_scale_out import two_processes

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.services]

PASSWORD = "quiet-harbour-7731"


@sync_to_async
def public_room():
    users = {name: get_user_model().objects.create_user(name, password=PASSWORD) for name in ("olga", "mia", "bea")}
    room = Room.objects.create(key="den", title="The Den", visibility="public")
    for name, role in (("olga", "moderator"), ("mia", "member"), ("bea", "member")):
        Membership.objects.create(room=room, user=users[name], role=role)


@sync_to_async
def sign_in(server, username):
    browser = Browser(server.url)
    token = browser.form_token("/accounts/login/")
    status, _, _ = browser.submit("/accounts/login/", "/accounts/login/", token, {"username": username, "password": PASSWORD})
    assert status == 302
    return browser


def cookie_of(browser):
    return "; ".join(f"{c.name}={c.value}" for c in browser.cookies)


async def closed_within(socket, seconds):
    """The close code the socket gets within seconds (a timeout if it stays open)."""
    with pytest.raises(ConnectionClosed) as closed:
        async with asyncio.timeout(seconds):
            while True:
                await socket.recv()
    return closed.value.rcvd.code


async def still_open(socket, seconds):
    """True when the socket is still open after seconds."""
    try:
        async with asyncio.timeout(seconds):
            while True:
                await socket.recv()
    except TimeoutError:
        return True
    return False


@sync_to_async
def members_only():
    room = Room.objects.get(key="den")
    room.visibility = Room.Visibility.MEMBERS
    room.save()


async def test_removal_and_a_room_made_members_only_reach_pages_on_another_process(upstream):
    await public_room()
    one, two = two_processes(upstream).__next__()
    try:
        olga, mia, bea = await sign_in(one, "olga"), await sign_in(two, "mia"), await sign_in(two, "bea")
        url = f"{two.ws_url}/ws/rooms/den/"
        async with websockets.connect(url, origin=two.url, additional_headers={"Cookie": cookie_of(mia)}) as mias, \
                websockets.connect(url, origin=two.url, additional_headers={"Cookie": cookie_of(bea)}) as beas, \
                websockets.connect(url, origin=two.url) as guests:
            token = next(c.value for c in olga.cookies if c.name == "csrftoken")
            status, _, _ = await sync_to_async(olga.request)(
                "POST", "/rooms/den/members", {"csrfmiddlewaretoken": token, "action": "remove", "username": "mia"})
            assert status == 303
            started = time.monotonic()
            assert await closed_within(mias, 1.0) == 4403
            assert time.monotonic() - started < 1.0

            await members_only()
            started = time.monotonic()
            assert await closed_within(guests, 2.0) == 4403
            assert time.monotonic() - started < 1.0
            assert await still_open(beas, 1.0)  # a member stays
    finally:
        for server in (one, two):
            server.stop()
