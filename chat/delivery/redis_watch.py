"""Notices the subscription's Redis connection coming back after a drop, when frames may have been lost."""

import weakref

_seen = weakref.WeakSet()  # connections that have connected before


async def connected(connection):
    """redis-py's connect hook: the usual handshake, then tell the fan-out if the connection a
    subscription reads from reconnected (other pooled connections come and go harmlessly)."""
    await connection.on_connect()
    # redis-py's PubSub registers a connect callback (to subscribe again) on the connection it reads.
    if connection in _seen and getattr(connection, "_connect_callbacks", None):
        from chat.delivery import fanout

        fanout.redis_reconnected()
    _seen.add(connection)
