"""Rebuild the search index from the rows: after changing SEARCH_CONFIG, or to repair one found out of step."""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError, connection, transaction

from chat import search
from chat.models import Message


class Command(BaseCommand):
    help = "Rebuild the search index of every message from its row, in batches; reports what was out of step."

    def add_arguments(self, parser):
        parser.add_argument("--batch-size", type=int, default=1000)

    def handle(self, *args, batch_size, **options):
        drifted = len(search.drift(connection))
        try:
            search.configure(connection)  # what is written and searched from now on: with today's SEARCH_CONFIG
        except DatabaseError as problem:
            raise CommandError(f"SEARCH_CONFIG={settings.SEARCH_CONFIG!r}: {str(problem).splitlines()[0]}") from None
        last, done = 0, 0
        while batch := list(Message.objects.filter(id__gt=last).order_by("id").values_list("id", flat=True)[:batch_size]):
            with transaction.atomic():
                search.rebuild(connection, batch)
            last, done = batch[-1], done + len(batch)
        self.stdout.write(f"indexed {done} messages afresh ({drifted} were out of step)")
