"""The server the streaming benchmark runs: Parley with benchmark rooms, in one of three designs.

BENCH_DESIGN picks what the run measures:
- `parley`: Parley as it ships.
- `demo`: the demo's reply design: a row save, a full partial render and a broadcast per chunk
  (REPLY_FLUSH_INTERVAL=0, growth by replacing the whole message). Fan-out as Parley's.
- `per-socket`: Parley with Channels' usual fan-out instead: one channel-layer channel per
  socket, every socket in its room's group, frames sent by a consumer handler as usual.
- `per-socket-tuned`: the same without the database hop Channels makes before every message
  (AsyncConsumer.dispatch awaits close_old_connections through one shared thread).
BENCH_ROOMS rooms named BenchRoom00, BenchRoom01, ... are made (as rows) beside the three bots.
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
get_asgi_application()

from channels.generic.websocket import AsyncWebsocketConsumer  # noqa: E402

from bots.models import Bot, Room  # noqa: E402
from bots.registry import get_room  # noqa: E402
from chat.delivery import frames  # noqa: E402
from chat.delivery.broadcast import broadcast, message_grew  # noqa: E402
from chat.delivery.consumers import RoomConsumer  # noqa: E402
from chat.models import Message, content_appended  # noqa: E402

DESIGN = os.environ.get("BENCH_DESIGN", "parley")


def room_key(index):
    return f"BenchRoom{index:02d}"


for index in range(int(os.environ.get("BENCH_ROOMS", "20"))):
    key = room_key(index)
    bot, _ = Bot.objects.get_or_create(key=key, defaults={"name": key, "description": "A benchmark room.", "persona": f"You are {key}."})
    Room.objects.get_or_create(key=key, defaults={"title": key, "topic": "A benchmark room.", "bot": bot})


def demo_grew(sender, message_id, room, **kwargs):
    """The demo's growth: the row read back and the whole message rendered and sent again."""
    broadcast(room, frames.replace(Message.objects.get(pk=message_id)))


class ChannelPerSocketConsumer(RoomConsumer):
    """Channels' usual fan-out: this socket's own channel in the room's group (no presence, no catch-up)."""

    channel_layer_alias = "default"

    async def connect(self):
        self.room = get_room(self.scope["url_route"]["kwargs"]["room"])
        await self.channel_layer.group_add(self.room.group, self.channel_name)
        await self.accept()

    async def disconnect(self, code):
        await self.channel_layer.group_discard(self.room.group, self.channel_name)

    async def dispatch(self, message):
        await AsyncWebsocketConsumer.dispatch(self, message)

    async def room_frame(self, event):
        await self.send(text_data=event["frame"])


class TunedChannelPerSocketConsumer(ChannelPerSocketConsumer):
    """One channel per socket, minus Channels' per-message close_old_connections hop."""

    async def dispatch(self, message):
        if message["type"] == "room.frame":
            await self.send(text_data=message["frame"])
        else:
            await AsyncWebsocketConsumer.dispatch(self, message)


if DESIGN == "demo":
    assert float(os.environ.get("REPLY_FLUSH_INTERVAL", "-1")) == 0, "the demo's design writes every chunk"
    content_appended.disconnect(message_grew, sender=Message)
    content_appended.connect(demo_grew, weak=False)

if DESIGN in {"per-socket", "per-socket-tuned"}:
    from django.urls import path

    from chat.delivery import routing

    consumer = ChannelPerSocketConsumer if DESIGN == "per-socket" else TunedChannelPerSocketConsumer
    routing.websocket_urlpatterns[0] = path("ws/rooms/<str:room>/", consumer.as_asgi())

from project.asgi import application  # noqa: E402, F401 - built after the routes are chosen
