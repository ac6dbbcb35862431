"""The handles Daphne gives an application on its connection: the protocol behind its send, the queue behind its receive."""

import asyncio
import functools


def protocol_behind(send, kind):
    """The instance of kind that Daphne's send serves, or None under another server or shape.

    Daphne's send is ``functools.partial(server.handle_reply, protocol)``: the protocol is the Twisted
    request of an HTTP response, or the autobahn protocol of a WebSocket. The tests of flow control
    and of stalled sockets fail if that moves.
    """
    if isinstance(send, functools.partial) and send.args and isinstance(send.args[0], kind):
        return send.args[0]
    return None


def inbox_behind(receive):
    """The queue of a connection's incoming messages that Daphne's receive reads, or None elsewhere.

    Daphne's receive is ``input_queue.get`` of an ``asyncio.Queue`` (Parley's server: of an Inbox): a
    message put there reaches the application as if the client had sent it
    (tests/test_stalled_sockets.py fails if that moves).
    """
    from chat.server.inbox import Inbox  # here: importing Daphne's server installs its reactor

    queue = getattr(receive, "__self__", None)
    if isinstance(queue, Inbox):
        return queue
    return queue if isinstance(queue, asyncio.Queue) and receive.__func__ is asyncio.Queue.get else None
