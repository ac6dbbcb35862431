"""The room fan-out: one subscription per room per process, every frame to every page of the room once, in order."""

import asyncio

import pytest
from channels.layers import InMemoryChannelLayer, get_channel_layer

from chat.delivery import fanout, frames
from chat.delivery.broadcast import abroadcast, outbox
from tests.rooms import GROW, parse_frames, subscribe

pytestmark = pytest.mark.django_db(transaction=True)


def members(group):
    """How many channels the layer delivers the group's messages to."""
    layer = get_channel_layer()
    if isinstance(layer, InMemoryChannelLayer):
        return len(layer.groups.get(group, {}))
    loop_layer = layer._get_layer()  # channels-redis pub/sub: its groups, by their Redis channel
    return len(loop_layer.groups.get(loop_layer._get_group_channel_name(group), ()))


async def page_in(room):
    """A page of the room, once its socket has joined this process's fan-out (it accepts, then joins)."""
    group = f"{room}.messages"
    before = len(fanout.rooms().rooms.get(group, ()))
    page = await subscribe(room)
    async with asyncio.timeout(10):
        while len(fanout.rooms().rooms.get(group, ())) <= before or group not in fanout.rooms().joined:
            await asyncio.sleep(0.01)
    return page


async def growth(page, count):
    """The growth texts a page receives until it has count of them (other frames skipped)."""
    texts = []
    while len(texts) < count:
        texts += [body for action, _, _, body in parse_frames(await page.receive_from(timeout=10)) if action == GROW]
    return texts


async def test_a_process_joins_each_room_once_and_every_page_gets_every_frame_in_order():
    pirates = [await page_in("PirateBot") for _ in range(30)]
    belles = [await page_in("BelleBot") for _ in range(3)]
    assert members("PirateBot.messages") == 1 and members("BelleBot.messages") == 1

    sent = [f"word{i} " for i in range(200)]
    offset = 0
    for text in sent:
        await abroadcast("PirateBot", frames.grow(7, offset, text))
        offset += len(text)
    for page in pirates:
        assert await growth(page, len(sent)) == sent
    for page in belles:
        while not await page.receive_nothing(timeout=0.2):
            assert not [f for f in parse_frames(await page.receive_from()) if f[0] == GROW]


async def test_a_room_nobody_here_has_open_is_left():
    page = await page_in("ChatBot")
    assert members("ChatBot.messages") == 1
    await page.disconnect()
    await fanout.rooms().maintain()
    assert members("ChatBot.messages") == 0
    again = await page_in("ChatBot")
    assert members("ChatBot.messages") == 1
    await abroadcast("ChatBot", frames.grow(9, 0, "back"))
    assert await growth(again, 1) == ["back"]


async def test_frames_that_wait_together_go_as_one_layer_message_a_room_in_order():
    """The outbox sends what queued while it was busy as one message a room, the rooms at once:
    every frame reaches every page, in order, and the layer carried one message, not fifty."""
    pirate, belle = await page_in("PirateBot"), await page_in("BelleBot")
    layer = get_channel_layer()
    listener = await layer.new_channel()
    await layer.group_add("PirateBot.messages", listener)
    sent = {room: [f"{room}-{i} " for i in range(50)] for room in ("PirateBot", "BelleBot")}
    offsets = dict.fromkeys(sent, 0)
    for i in range(50):  # no await between: the outbox's sender runs only once all of them wait
        for room, texts in sent.items():
            outbox().put(room, frames.grow(7, offsets[room], texts[i]))
            offsets[room] += len(texts[i])
    assert await growth(pirate, 50) == sent["PirateBot"]
    assert await growth(belle, 50) == sent["BelleBot"]
    # The first message the layer carried for the room holds all fifty frames, in order.
    carried = await layer.receive(listener)
    assert [body for _, _, _, body in parse_frames(carried["frame"])] == sent["PirateBot"]
