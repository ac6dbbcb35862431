"""Read positions: the room's event number a signed-in person (or a program's key) has seen there."""

from django.db import models
from django.utils import timezone


class ReadPositionQuerySet(models.QuerySet):
    def of(self, reader):
        """reader's (a sender tag) positions, as {room key: event number}: one query by its own index."""
        return dict(self.filter(reader=reader).values_list("room", "seen"))

    def mark(self, reader, room_key, seen):
        """reader has seen room_key up to event seen: one upsert, never moving a position back."""
        updated = self.filter(reader=reader, room=room_key, seen__lt=seen).update(seen=seen, updated_at=timezone.now())
        if not updated:
            # No row, or one already at seen or past it: insert, or leave the row as it is.
            self.bulk_create([ReadPosition(reader=reader, room=room_key, seen=seen)], ignore_conflicts=True)


class ReadPosition(models.Model):
    """Up to which event number reader (a sender tag: user:<id>, key:<id>) has read room; a guest's
    are kept in their session instead (chat.unread)."""

    reader = models.CharField(max_length=64)
    room = models.CharField(max_length=64)
    seen = models.PositiveBigIntegerField(default=0)
    updated_at = models.DateTimeField(default=timezone.now)

    objects = ReadPositionQuerySet.as_manager()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["reader", "room"], name="read_position_once")]

    def __str__(self):
        return f"{self.reader} read {self.room} to event {self.seen}"
