"""The one handle on Twisted that Daphne gives an application: the protocol object behind its send."""

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
