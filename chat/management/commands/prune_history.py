"""Delete messages older than a given age, in batches, without telling open pages one by one."""

import re
from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from chat.delivery.broadcast import suppressing_broadcasts
from chat.models import Message

UNITS = {"d": "days", "h": "hours", "w": "weeks"}


def parse_age(text):
    """'30d', '12h', '2w' or a bare number of days, as a timedelta."""
    match = re.fullmatch(r"(\d+)([dhw]?)", text.strip())
    if not match:
        raise CommandError(f"{text!r} is not an age: use e.g. 30d, 12h or 2w.")
    return timedelta(**{UNITS[match[2] or "d"]: int(match[1])})


class Command(BaseCommand):
    help = "Delete messages older than --older-than (e.g. 90d), in batches."

    def add_arguments(self, parser):
        parser.add_argument("--older-than", required=True, help="an age: 90d, 12h, 2w")
        parser.add_argument("--batch-size", type=int, default=1000)
        parser.add_argument("--dry-run", action="store_true")

    def handle(self, *args, older_than, batch_size, dry_run, **options):
        cutoff = timezone.now() - parse_age(older_than)
        # Replies still being written are never pruned, however old they look.
        old = Message.objects.filter(created_at__lt=cutoff).exclude(status__in=Message.ACTIVE)
        if dry_run:
            self.stdout.write(f"would delete {old.count()} messages from before {cutoff:%Y-%m-%d %H:%M}")
            return
        deleted = 0
        with suppressing_broadcasts():
            while batch := list(old.order_by("id").values_list("id", flat=True)[:batch_size]):
                deleted += Message.objects.filter(id__in=batch).delete()[0]
        self.stdout.write(f"deleted {deleted} messages from before {cutoff:%Y-%m-%d %H:%M}")
