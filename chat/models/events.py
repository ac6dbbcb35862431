"""Rooms' event numbers: every visible change of a message takes its room's next one, in order."""

from django.db import models


def take_numbers(db, room_keys):
    """The next event number of each room in room_keys (a room listed twice gets two), taken in the
    current transaction from the room's counter (RoomClock), whose row then stays locked until commit:
    a room's numbers commit one at a time and in order, so "rows numbered above N" is exactly what
    happened after event N. Callers pass several rooms sorted, so no two transactions deadlock."""
    table = db.ops.quote_name(RoomClock._meta.db_table)
    numbers = []
    with db.cursor() as cursor:
        for key in room_keys:
            cursor.execute(
                f"INSERT INTO {table} (room, last) VALUES (%s, 1) "
                f"ON CONFLICT (room) DO UPDATE SET last = {table}.last + 1 RETURNING last",
                [key],
            )
            numbers.append(cursor.fetchone()[0])
    return numbers


class RoomClock(models.Model):
    """A room's last event number: what Message.seq is taken from. A counter of its own, not the
    highest seq in the room, so that deleting or pruning messages never hands a number out twice."""

    room = models.CharField(max_length=64, primary_key=True)
    last = models.PositiveBigIntegerField(default=0)

    def __str__(self):
        return f"{self.room} at event {self.last}"
