"""Turn-taking: one reply at a time per room, claimed oldest first, and the heartbeats that keep
queued and streaming replies from being taken for a dead process's."""

import hashlib

from django.db import connections, models, transaction
from django.db.models.functions import Length
from django.utils import timezone

#: Message.objects.claim_next's answer when another reply in the room is still streaming.
ROOM_BUSY = "busy"


def room_lock_key(room_key):
    """A stable signed 64-bit key for the room's advisory lock (turn-taking across processes)."""
    return int.from_bytes(hashlib.blake2b(f"parley.room.{room_key}".encode(), digest_size=8).digest(), "big", signed=True)


class Turns(models.QuerySet):
    """The reply job's row work besides its transitions (mixed into MessageQuerySet)."""

    def streaming(self, pk, revision):
        """Row pk while it streams at revision: what a reply job may still write to."""
        return self.filter(pk=pk, status=self.model.Status.STREAMING, revision=revision)

    def claim_next(self, room_key, model_of):
        """Claim the room's oldest pending reply for this process: the fresh row, ROOM_BUSY while
        another reply of the room streams, or None if none waits. model_of(bot key) names the model
        recorded on the row.

        The row is the lock: on PostgreSQL the look and the claim run under a transaction-scoped
        advisory lock on the room, so two processes cannot both see an idle room and claim at once.
        SQLite serves one process, whose room workers already take turns.
        """
        Status = self.model.Status
        db = connections[self.db]
        with transaction.atomic(using=self.db):
            if db.vendor == "postgresql":
                with db.cursor() as cursor:
                    cursor.execute("SELECT pg_advisory_xact_lock(%s)", [room_lock_key(room_key)])
            room = self.filter(room=room_key)
            if room.filter(status=Status.STREAMING).exists():
                return ROOM_BUSY
            waiting = (room.filter(role=self.model.Role.ASSISTANT, status=Status.PENDING)
                       .order_by("id").values_list("id", "bot").first())
            if waiting is None:
                return None
            pk, bot_key = waiting
            claimed = self.claim(pk, model_of(bot_key))
            self.touch_queue(room_key)
            # Lost to a Stop in between: the queue is not empty for that, so look again.
            return claimed or ROOM_BUSY

    def touch_queue(self, room_key):
        """Heartbeat for the replies queued in a room (no broadcast: nothing a page shows changed)."""
        self.filter(room=room_key, status=self.model.Status.PENDING).update(updated_at=timezone.now())

    def touch_streaming(self, pk, revision, room_key):
        """Heartbeat for a streaming reply and the replies queued behind it; False when it is no longer the job's."""
        alive = self.streaming(pk, revision).update(updated_at=timezone.now())
        self.touch_queue(room_key)
        return bool(alive)

    def still_streaming(self, pk, revision):
        """Whether the job may still write to reply pk (False: stopped, swept or taken by a Retry)."""
        return self.streaming(pk, revision).exists()

    def landed(self, pk, revision, length):
        """Whether a write whose answer was lost (a dropped connection after COMMIT) did land."""
        return self.streaming(pk, revision).annotate(length=Length("content")).filter(length=length).exists()
