"""Rooms' event numbers: every visible change of a message takes its room's next one, in order."""

from collections import Counter

from django.db import models


def take_numbers(db, room_keys):
    """The next event number of each room in room_keys (a room listed twice gets two, in turn), taken
    in the current transaction from the room's counter (RoomClock), whose row then stays locked until
    commit: a room's numbers commit one at a time and in order, so "rows numbered above N" is exactly
    what happened after event N.

    One statement for every room (a growth batch holds every streaming reply of the process), its
    rows in key order: two transactions lock the rooms they share in the same order, so neither
    waits for the other in a cycle.
    """
    if not room_keys:
        return []
    counts = Counter(room_keys)
    rooms = sorted(counts)
    table = db.ops.quote_name(RoomClock._meta.db_table)
    with db.cursor() as cursor:
        # A statement may change a row once: a room listed n times moves its counter by n at once.
        cursor.execute(
            f"INSERT INTO {table} (room, last) VALUES {', '.join(['(%s, %s)'] * len(rooms))} "
            f"ON CONFLICT (room) DO UPDATE SET last = {table}.last + excluded.last RETURNING room, last",
            [value for room in rooms for value in (room, counts[room])],
        )
        following = {room: last - counts[room] + 1 for room, last in cursor.fetchall()}
    numbers = []
    for key in room_keys:
        numbers.append(following[key])
        following[key] += 1
    return numbers


class RoomClock(models.Model):
    """A room's last event number: what Message.seq is taken from. A counter of its own, not the
    highest seq in the room, so that deleting or pruning messages never hands a number out twice."""

    room = models.CharField(max_length=64, primary_key=True)
    last = models.PositiveBigIntegerField(default=0)

    def __str__(self):
        return f"{self.room} at event {self.last}"
