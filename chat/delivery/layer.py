"""The channel layer Parley runs on with Redis: channels-redis's pub/sub layer, told when a
connection to a Redis host comes back after a drop (frames sent meanwhile may be lost).

Settings name it by its dotted path, as CHANNEL_LAYERS names any backend, so they import no app
code. The hook is redis-py's public ``redis_connect_func`` connection option: it runs the usual
handshake, and a connection it has seen connect before is one that reconnected. Connections in
redis-py's pool reconnect only after they failed, so a reconnect means that host had trouble.
"""

import weakref

from channels_redis.pubsub import RedisPubSubChannelLayer
from channels_redis.utils import decode_hosts

from chat.delivery import fanout


class RoomLayer(RedisPubSubChannelLayer):
    """RedisPubSubChannelLayer whose connections tell the room fan-out when they reconnect."""

    def __init__(self, *args, hosts=None, **kwargs):
        self.seen = weakref.WeakSet()  # connections that have connected before
        hosts = [{**host, "redis_connect_func": self.connected} for host in decode_hosts(hosts)]
        super().__init__(*args, hosts=hosts, **kwargs)

    async def connected(self, connection):
        """redis-py's connect hook: the usual handshake, then tell the fan-out if this connection reconnected."""
        await connection.on_connect()
        if connection in self.seen:
            fanout.layer_reconnected(f"{connection.host}:{connection.port}")
        self.seen.add(connection)
