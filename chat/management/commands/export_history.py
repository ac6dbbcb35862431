"""Export messages as JSON Lines or CSV, streamed row by row so memory stays flat on big tables."""

import csv
import json
from datetime import datetime, time

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from chat.models import Message

FIELDS = ["id", "room", "bot", "role", "status", "author", "content", "error", "model", "prompt_tokens",
          "completion_tokens", "up_votes", "down_votes", "removed_at", "created_at", "updated_at"]


def parse_day(text, end=False):
    """YYYY-MM-DD as the aware start (or end) of that day."""
    try:
        day = datetime.strptime(text, "%Y-%m-%d").date()
    except ValueError:
        raise CommandError(f"{text!r} is not a date: use YYYY-MM-DD.") from None
    return timezone.make_aware(datetime.combine(day, time.max if end else time.min))


class Command(BaseCommand):
    help = "Export chat history (all rooms, or one) as JSON Lines or CSV."

    def add_arguments(self, parser):
        parser.add_argument("--format", choices=["jsonl", "csv"], default="jsonl")
        parser.add_argument("--room", help="a room key, e.g. PirateBot or Lounge")
        parser.add_argument("--since", help="first day, YYYY-MM-DD")
        parser.add_argument("--until", help="last day, YYYY-MM-DD")
        parser.add_argument("--output", help="a file to write (default: standard output)")

    def handle(self, *args, format, room, since, until, output, **options):
        rows = Message.objects.order_by("id")
        if room:
            rows = rows.filter(room=room)
        if since:
            rows = rows.filter(created_at__gte=parse_day(since))
        if until:
            rows = rows.filter(created_at__lte=parse_day(until, end=True))
        stream = open(output, "w", newline="", encoding="utf-8") if output else self.stdout
        try:
            count = self.write(rows.values_list(*FIELDS).iterator(chunk_size=2000), format, stream)
        finally:
            if output:
                stream.close()
        self.stderr.write(f"exported {count} messages")

    @staticmethod
    def write(rows, format, stream):
        count = 0
        writer = csv.writer(stream, lineterminator="\n") if format == "csv" else None
        if writer:
            writer.writerow(FIELDS)
        for row in rows:
            values = [value.isoformat() if isinstance(value, datetime) else value for value in row]
            if writer:
                writer.writerow(values)
            else:
                stream.write(json.dumps(dict(zip(FIELDS, values)), ensure_ascii=False) + "\n")  # one line each
            count += 1
        return count
