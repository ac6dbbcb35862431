"""Export messages as JSON Lines or CSV, streamed row by row so memory stays flat on big tables."""

import csv
import json
from datetime import datetime, time

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from chat.models import Message

# A spreadsheet runs a cell that starts with one of these as a formula (`=HYPERLINK(…)`, `=cmd|…`):
# OWASP's rule is to prefix such a cell with a single quote, which shows the text as it was typed.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

FIELDS = ["id", "room", "bot", "role", "status", "author", "content", "error", "model", "prompt_tokens",
          "completion_tokens", "up_votes", "down_votes", "removed_at", "created_at", "updated_at"]


def parse_day(text, end=False):
    """YYYY-MM-DD as the aware start (or end) of that day."""
    try:
        day = datetime.strptime(text, "%Y-%m-%d").date()
    except ValueError:
        raise CommandError(f"{text!r} is not a date: use YYYY-MM-DD.") from None
    return timezone.make_aware(datetime.combine(day, time.max if end else time.min))


def neutral_cell(value):
    """A CSV cell a spreadsheet shows as text: a string that would start a formula gets a leading quote."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


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
        # RFC 4180's CRLF between rows: the writer then quotes any cell holding a CR or an LF (with "\n"
        # alone, a bare CR in a message split its row in two for every reader).
        writer = csv.writer(stream, lineterminator="\r\n") if format == "csv" else None
        if writer:
            writer.writerow(FIELDS)
        for row in rows:
            values = [value.isoformat() if isinstance(value, datetime) else value for value in row]
            if writer:
                writer.writerow([neutral_cell(value) for value in values])
            else:
                stream.write(json.dumps(dict(zip(FIELDS, values)), ensure_ascii=False) + "\n")  # one line each
            count += 1
        return count
