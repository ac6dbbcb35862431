"""Mark replies left pending or streaming by a dead process as interrupted (the sweep, by hand)."""

from django.core.management.base import BaseCommand

from chat.replies.sweep import sweep_stale_replies


class Command(BaseCommand):
    help = "Mark pending or streaming replies untouched for REPLY_STALE_AFTER seconds as interrupted."

    def add_arguments(self, parser):
        parser.add_argument("--older-than", type=float, help="seconds of silence (default REPLY_STALE_AFTER)")

    def handle(self, *args, older_than, **options):
        self.stdout.write(f"marked {sweep_stale_replies(older_than=older_than)} replies interrupted")
