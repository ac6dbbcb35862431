"""WebSocket routes."""

from channels.generic.websocket import AsyncWebsocketConsumer
from django.urls import path, re_path

from chat.delivery.consumers import RoomConsumer


class NoSuchSocket(AsyncWebsocketConsumer):
    """Any other socket path: the handshake is refused (403), not an error."""

    async def connect(self):
        await self.close()


websocket_urlpatterns = [
    path("ws/rooms/<str:room>/", RoomConsumer.as_asgi()),
    re_path(r"", NoSuchSocket.as_asgi()),
]
