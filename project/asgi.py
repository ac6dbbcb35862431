"""ASGI entry point: HTTP through Django, room sockets through Channels."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402 - needs the app registry loaded

from bots.providers import require_provider  # noqa: E402
from chat.api.flow import FlowControl  # noqa: E402
from chat.delivery.origin import SameOriginValidator  # noqa: E402
from chat.delivery.routing import websocket_urlpatterns  # noqa: E402
from chat.delivery.socket_scope import SocketSession  # noqa: E402
from chat.lifecycle import ProcessServices  # noqa: E402
from chat.server import inbox, protocol, socket_protocol  # noqa: E402
from chat.server.sockets import BoundedSockets  # noqa: E402
from chat.server.threads import ViewsOnTheirLane  # noqa: E402
from chat.server.timing import ServerTiming  # noqa: E402
from chat.web.pages import load_pages  # noqa: E402

require_provider()  # a misconfigured provider stops the server here, with one line saying why
load_pages()  # the views imported and the templates compiled now, not by the first request
inbox.install()  # each connection's incoming messages in a few bytes, not an asyncio.Queue of 3 KiB
protocol.install()  # Daphne reads no body past MAX_BODY_BYTES, parses none, and times out trickles
socket_protocol.install()  # an open WebSocket keeps neither autobahn's options nor its handshake

application = ProcessServices(
    ProtocolTypeRouter(
        {
            # FlowControl finds Daphne's request through its send: nothing that wraps send goes outside it.
            "http": ViewsOnTheirLane(FlowControl(ServerTiming(django_asgi_app))),
            "websocket": BoundedSockets(SameOriginValidator(SocketSession(URLRouter(websocket_urlpatterns)))),
        }
    )
)
