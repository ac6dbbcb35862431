"""Turn-taking in a room: one reply streams at a time, pending ones follow oldest first, across processes.

The row is the lock: a reply is claimed (pending → streaming) only while nothing in its room
streams. On PostgreSQL the check and the claim run under a transaction-scoped advisory lock on the
room, so two processes cannot both see an idle room and claim at once. SQLite serves one process,
whose room workers already take turns.
"""

import hashlib

from django.db import connection, transaction

from chat.models import Message

Status = Message.Status

#: claim_next's answer when another reply in the room is still streaming.
BUSY = "busy"


def room_lock_key(bot_key):
    """A stable signed 64-bit key for the room's advisory lock."""
    return int.from_bytes(hashlib.blake2b(f"parley.room.{bot_key}".encode(), digest_size=8).digest(), "big", signed=True)


def claim_next(bot_key, model):
    """Claim the room's oldest pending reply for this process: the Message, BUSY, or None if none waits."""
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [room_lock_key(bot_key)])
        room = Message.objects.filter(bot=bot_key)
        if room.filter(status=Status.STREAMING).exists():
            return BUSY
        pk = room.filter(role=Message.Role.ASSISTANT, status=Status.PENDING).order_by("id").values_list("id", flat=True).first()
        if pk is None:
            return None
        claimed = Message.objects.claim(pk, model)
        Message.objects.touch_queue(bot_key)
        # Lost to a Stop in between: the queue is not empty for that, so look again.
        return claimed or BUSY

