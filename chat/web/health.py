"""GET /healthz: whether this process can reach its database and its channel layer (every Redis host of it)."""

import asyncio

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.db import connection
from django.http import JsonResponse


async def healthz(request):
    """200 when the database and the channel layer answer, 503 otherwise (naming the Redis hosts away)."""
    checks = {}
    try:
        await sync_to_async(_ping_database)()
        checks["database"] = "ok"
    except Exception as exc:  # noqa: BLE001 - any failure is a failed check
        checks["database"] = f"down: {type(exc).__name__}"
    away = await _channel_layer_away()
    checks["channel_layer"] = f"down: {'; '.join(away)}" if away else "ok"
    healthy = all(value == "ok" for value in checks.values())
    return JsonResponse({"status": "ok" if healthy else "unavailable", **checks}, status=200 if healthy else 503)


def _ping_database():
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


async def _channel_layer_away():
    """What failed, one entry per Redis host that did not answer ("ConnectionError at redis-b:6379")."""
    layer = get_channel_layer()
    # A send to a group nobody joins reaches the server that carries it and leaves nothing behind:
    # one such group per Redis host of a sharded layer.
    probes = getattr(layer, "probes", {None: "parley.healthz"})
    failures = await asyncio.gather(*(_ping(layer, group) for group in probes.values()))
    return [
        f"{failure} at {host}" if host else failure
        for host, failure in zip(probes, failures) if failure
    ]


async def _ping(layer, group):
    try:
        async with asyncio.timeout(3):
            await layer.group_send(group, {"type": "healthz.ping"})
    except Exception as exc:  # noqa: BLE001 - any failure is a failed check
        return type(exc).__name__
    return None
