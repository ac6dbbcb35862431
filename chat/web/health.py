"""GET /healthz: whether this process can reach its database and its channel layer."""

import asyncio

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.db import connection
from django.http import JsonResponse


async def healthz(request):
    """200 when the database and the channel layer answer, 503 otherwise."""
    checks = {}
    try:
        await sync_to_async(_ping_database)()
        checks["database"] = "ok"
    except Exception as exc:  # noqa: BLE001 - any failure is a failed check
        checks["database"] = f"down: {type(exc).__name__}"
    try:
        async with asyncio.timeout(3):
            await _ping_channel_layer()
        checks["channel_layer"] = "ok"
    except Exception as exc:  # noqa: BLE001
        checks["channel_layer"] = f"down: {type(exc).__name__}"
    healthy = all(value == "ok" for value in checks.values())
    return JsonResponse({"status": "ok" if healthy else "unavailable", **checks}, status=200 if healthy else 503)


def _ping_database():
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


async def _ping_channel_layer():
    # A send to a group nobody joins reaches the layer's server and leaves nothing behind.
    await get_channel_layer().group_send("parley.healthz", {"type": "healthz.ping"})
