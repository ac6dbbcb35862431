"""A connection's incoming messages in a few bytes: Daphne gives each an ``asyncio.Queue`` of about 3 KiB.

An idle room socket keeps its queue for as long as it is open, and an ``asyncio.Queue`` is four
deques (its items, getters, putters, and its ``join`` event's waiters), each a block of 64 slots.
The inbox holds what an application's ``receive`` needs: messages in order, and the futures of the
readers waiting for one, each made only while needed.

Daphne's server makes the queue in ``Server.create_application``; its command line builds the
server from ``CommandLineInterface.server_class`` after loading the application, so ``install``
(called by ``project/asgi.py``) is in time. tests/test_inbox.py fails if either moves.
"""

import asyncio
from collections import deque
from functools import partial

import daphne.cli
import daphne.server


class Inbox:
    """First in, first out, no bound: ``put_nowait`` from the server, ``await get()`` from the application."""

    __slots__ = ("_messages", "_readers")

    def __init__(self):
        self._messages = None  # a deque while messages wait, else None
        self._readers = None  # futures of the readers waiting, while any do

    def put_nowait(self, message):
        """Keep message for the next reader, and wake the readers waiting."""
        if self._messages is None:
            self._messages = deque()
        self._messages.append(message)
        readers, self._readers = self._readers, None
        for reader in readers or ():
            if not reader.done():
                reader.set_result(None)

    async def get(self):
        """The oldest message, once there is one."""
        while not self._messages:
            reader = asyncio.get_running_loop().create_future()
            if self._readers is None:
                self._readers = []
            self._readers.append(reader)
            try:
                await reader
            finally:
                if self._readers is not None and reader in self._readers:
                    self._readers.remove(reader)  # cancelled before any message came
                    if not self._readers:
                        self._readers = None
        message = self._messages.popleft()
        if not self._messages:
            self._messages = None
        return message

    def qsize(self):
        """How many messages wait (as asyncio.Queue says)."""
        return len(self._messages) if self._messages else 0


class LeanServer(daphne.server.Server):
    """Daphne's server, each connection's application fed through an Inbox."""

    def create_application(self, protocol, scope):
        """Daphne's own, with an Inbox for its queue."""
        assert "application_instance" not in self.connections[protocol]
        inbox = Inbox()
        scope.setdefault("asgi", {"version": "3.0"})
        instance = self.application(scope=scope, receive=inbox.get, send=partial(self.handle_reply, protocol))
        if protocol not in self.connections:
            return None
        self.connections[protocol]["application_instance"] = asyncio.ensure_future(instance, loop=asyncio.get_event_loop())
        return inbox


def install():
    """Have Daphne's command line (``daphne``, ``./parley run``) build the lean server."""
    daphne.cli.CommandLineInterface.server_class = LeanServer
