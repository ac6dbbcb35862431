"""Growth writes: streaming replies' new text appended to their rows, many replies in one statement."""

from django.db import connections, models, transaction
from django.utils import timezone

from chat.models.events import take_numbers
from chat.models.signals import content_appended


class Growth(models.QuerySet):
    """The batch append of streaming replies' text (mixed into MessageQuerySet)."""

    def append(self, growths):
        """Append text to streaming replies' rows, [(pk, revision, room, offset, text), ...], in one transaction.

        Returns one bool per growth: False where the reply is no longer the job's to write (stopped).
        One statement for the whole batch, in SQL both PostgreSQL and SQLite (3.35+) speak: at ten
        flushes a second per reply, building an ORM update per row cost the database thread more
        than the database did.
        """
        db = connections[self.db]
        grown = [False] * len(growths)
        with transaction.atomic(using=self.db):
            numbers = take_numbers(db, [room for _, _, room, _, _ in growths])  # one event number per growth
            with db.cursor() as cursor:
                if db.vendor == "postgresql":
                    # Growth is a checkpoint, not the record: the end status is written durably, so
                    # this commit need not wait for the disk (a crash loses at most the last flushes).
                    cursor.execute("SET LOCAL synchronous_commit TO OFF")
                for indexes in _rounds(growths):
                    landed = self._grow(cursor, db, [(*growths[index][:2], growths[index][4], numbers[index]) for index in indexes])
                    for index in indexes:
                        grown[index] = growths[index][0] in landed
            for (pk, _, room, offset, text), ok in zip(growths, grown):
                if ok:
                    content_appended.send(sender=self.model, message_id=pk, room=room, offset=offset, text=text)
        return grown

    def _grow(self, cursor, db, rows):
        """One UPDATE of [(pk, revision, text, seq), ...]: the ids of the rows it grew."""
        table = db.ops.quote_name(self.model._meta.db_table)
        params = [db.ops.adapt_datetimefield_value(timezone.now())]
        for row in rows:
            params += row
        values = ", ".join(["(%s, %s, %s, %s)"] * len(rows))  # VALUES: no 500-term limit, unlike UNION ALL on SQLite
        cursor.execute(
            f"UPDATE {table} SET content = {table}.content || grown.text, "
            f"revision = {table}.revision + 1, updated_at = %s, seq = grown.seq "
            f"FROM (SELECT column1 AS id, column2 AS revision, column3 AS text, column4 AS seq "
            f"FROM (VALUES {values}) AS v) AS grown "
            f"WHERE {table}.id = grown.id AND {table}.status = 'streaming' AND {table}.revision = grown.revision "
            f"RETURNING {table}.id",
            params,
        )
        return {pk for (pk,) in cursor.fetchall()}


def _rounds(growths):
    """Indexes of growths in rounds where each row appears once: a row takes one change per
    statement, so a reply's second growth in a batch (none today) goes in the next statement,
    where its revision is judged after the first's."""
    rounds, seen = [], {}
    for index, growth in enumerate(growths):
        number = seen[growth[0]] = seen.get(growth[0], -1) + 1
        if number == len(rounds):
            rounds.append([])
        rounds[number].append(index)
    return rounds
