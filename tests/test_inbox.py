"""What a connection keeps in the server: its Inbox in place of Daphne's asyncio.Queue, and the lean
WebSocket protocol, with the third-party hooks both rely on."""

import asyncio
import inspect

import pytest
import websockets
from autobahn.websocket.protocol import WebSocketProtocol as AutobahnProtocol
from daphne import cli as daphne_cli
from daphne import server as daphne_server

from chat.server.inbox import Inbox, LeanServer
from chat.server.socket_protocol import HANDSHAKE, LeanWebSocketFactory
from tests.servers import daphne
from tests.test_end_to_end import provider_env
from tests.waiting import until


def test_the_hooks_these_rely_on_are_where_they_were():
    """Daphne's command line builds its server from `server_class` after loading the application, its
    server makes each connection's queue in `create_application` and its WebSocket factory from the
    module name `WebSocketFactory`, and autobahn copies an option only when the protocol has none:
    if one moves, this fails before memory quietly grows back."""
    import project.asgi  # noqa: F401 - installs the lean server and protocol

    assert daphne_cli.CommandLineInterface.server_class is LeanServer
    run = inspect.getsource(daphne_cli.CommandLineInterface.run)
    assert run.index("self.load_asgi_app(") < run.index("self.server_class(")
    assert "input_queue = asyncio.Queue()" in inspect.getsource(daphne_server.Server.create_application)
    assert daphne_server.WebSocketFactory is LeanWebSocketFactory
    assert "WebSocketFactory" in daphne_server.Server.run.__code__.co_names
    assert "if not hasattr(self, configAttr):" in inspect.getsource(AutobahnProtocol._connectionMade)


async def test_an_inbox_hands_out_messages_in_order_to_a_waiting_reader():
    inbox = Inbox()
    inbox.put_nowait({"n": 1})
    reader = asyncio.create_task(inbox.get())
    assert await reader == {"n": 1}
    reader = asyncio.create_task(inbox.get())
    await asyncio.sleep(0)
    assert not reader.done()
    inbox.put_nowait({"n": 2})
    inbox.put_nowait({"n": 3})
    assert await reader == {"n": 2}
    assert await inbox.get() == {"n": 3}
    assert inbox.qsize() == 0 and inbox._messages is None and inbox._readers is None


async def test_a_reader_cancelled_while_waiting_loses_no_message():
    inbox = Inbox()
    first = asyncio.create_task(inbox.get())
    second = asyncio.create_task(inbox.get())
    await asyncio.sleep(0)
    first.cancel()
    inbox.put_nowait("only")
    assert await second == "only"
    assert first.cancelled()
    late = asyncio.create_task(inbox.get())
    await asyncio.sleep(0)
    late.cancel()
    await asyncio.sleep(0)
    inbox.put_nowait("next")
    assert await inbox.get() == "next"


def test_options_are_read_from_the_factory_unless_set_on_the_socket():
    factory = LeanWebSocketFactory(server_class=None)
    factory.setProtocolOptions(autoPingTimeout=7, openHandshakeTimeout=3)
    protocol = factory.buildProtocol(None)
    assert protocol.autoPingTimeout == 7 and protocol.openHandshakeTimeout == 3
    assert "autoPingTimeout" not in vars(protocol)
    protocol.closeHandshakeTimeout = 2  # as a socket closed for being slow sets its own
    assert protocol.closeHandshakeTimeout == 2 and factory.closeHandshakeTimeout != 2


def test_an_open_socket_keeps_no_handshake_but_its_path():
    class Server:
        def log_action(self, *args):
            self.logged = args

    class Request:
        path = "/ws/rooms/PirateBot/"
        headers = {"host": "127.0.0.1"}

    protocol = LeanWebSocketFactory(server_class=None).buildProtocol(None)
    protocol.server, protocol.client_addr, protocol.request = Server(), ["127.0.0.1", 5000], Request()
    for name in HANDSHAKE:
        setattr(protocol, name, "kept")
    protocol.onOpen()
    assert not set(HANDSHAKE) & set(vars(protocol))
    assert protocol.request.path == "/ws/rooms/PirateBot/" and not hasattr(protocol.request, "headers")
    assert protocol.server.logged[:2] == ("websocket", "connected")


@pytest.mark.django_db(transaction=True)
async def test_a_room_socket_opens_and_closes_on_the_lean_server(upstream):
    """On a real Daphne: a room socket opens and closes cleanly, logged by its path, without a traceback."""
    with daphne(provider_env(upstream)) as server:
        async with websockets.connect(f"{server.ws_url}/ws/rooms/PirateBot/", origin=server.url) as socket:
            await socket.ping()
        await until(lambda: "WSDISCONNECT /ws/rooms/PirateBot/" in server.output())
        output = server.stop()
    assert "WSCONNECT /ws/rooms/PirateBot/" in output and "WSDISCONNECT /ws/rooms/PirateBot/" in output, output
    assert "Traceback" not in output, output
