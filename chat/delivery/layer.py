"""The channel layer Parley runs on with Redis: channels-redis's pub/sub layer over one or more Redis
hosts, told when a connection to a host comes back after a drop (frames sent meanwhile may be lost).

Settings name it by its dotted path, as CHANNEL_LAYERS names any backend, so they import no app
code. The hook is redis-py's public ``redis_connect_func`` connection option: it runs the usual
handshake, and a connection it has seen connect before is one that reconnected. Connections in
redis-py's pool reconnect only after they failed, so a reconnect means that host had trouble.

With several hosts channels-redis gives each group to one of them by its own stable hash of the
group's name: a host that drops costs the rooms it carries, and only those.
"""

import asyncio
import functools
import itertools
import uuid
import weakref
from urllib.parse import urlsplit

from channels_redis.pubsub import RedisPubSubChannelLayer, RedisPubSubLoopLayer
from channels_redis.utils import _consistent_hash, decode_hosts

from chat.delivery import fanout


def host_name(host):
    """host:port of a channels-redis host entry (a Sentinel's service name), never its password."""
    if "address" in host:
        parts = urlsplit(host["address"])
        return f"{parts.hostname or 'localhost'}:{parts.port or 6379}"
    if "master_name" in host:
        return host["master_name"]
    return f"{host.get('host', 'localhost')}:{host.get('port', 6379)}"


class RoomLayer(RedisPubSubChannelLayer):
    """RedisPubSubChannelLayer whose connections tell the room fan-out when they reconnect, and which
    says which of its hosts carries a group."""

    def __init__(self, *args, hosts=None, prefix="asgi", **kwargs):
        self.seen = weakref.WeakSet()  # connections that have connected before
        hosts = decode_hosts(hosts)
        self.hosts = [host_name(host) for host in hosts]
        self.prefix = prefix
        hosts = [
            {**host, "redis_connect_func": functools.partial(self.connected, name)}
            for host, name in zip(hosts, self.hosts)
        ]
        super().__init__(*args, hosts=hosts, prefix=prefix, **kwargs)

    async def connected(self, host, connection):
        """redis-py's connect hook: the usual handshake, then tell the fan-out if this connection reconnected."""
        await connection.on_connect()
        if connection in self.seen:
            fanout.layer_reconnected(host)
        self.seen.add(connection)

    def host_of(self, group):
        """The host (its name) that carries the group's messages: channels-redis's own choice."""
        # The pub/sub layer publishes and subscribes a group under this channel name, on this shard.
        channel = RedisPubSubLoopLayer._get_group_channel_name(self, group)
        return self.hosts[_consistent_hash(channel, len(self.hosts))]

    @functools.cached_property
    def probes(self):
        """{host name: a group that host carries}: a send to each group reaches every host once."""
        found = {}
        for number in itertools.count():
            found.setdefault(self.host_of(f"parley.healthz.{number}"), f"parley.healthz.{number}")
            if len(found) == len(set(self.hosts)):
                return found

    async def new_channel(self, prefix="specific."):
        """A channel for this process's fan-out, which only ever receives its groups' messages.

        Nobody sends to it by name, so it needs no subscription of its own on the host its name
        hashes to: with that host away the rooms on the others still open.
        """
        layer = self._get_layer()
        channel = f"{layer.prefix}{prefix}{uuid.uuid4().hex}"
        layer.channels[channel] = asyncio.Queue()
        return channel
