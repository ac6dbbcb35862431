"""Create an API key for a program and print it once."""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from chat.models import ApiKey


class Command(BaseCommand):
    help = "Create a named API key and print it (it is stored only hashed: this is the one time it is shown)."

    def add_arguments(self, parser):
        parser.add_argument("name", help="whose program it is, e.g. 'Build bot'")
        parser.add_argument("--user", help="the username the key acts as (its members-only rooms); "
                                           "without it the key reaches public rooms only")

    def handle(self, *args, name, user=None, **options):
        name = name.strip()
        if not name or len(name) > 100:
            raise CommandError("Give the key a name of 1 to 100 characters.")
        account = None
        if user is not None:
            account = get_user_model().objects.filter(username=user).first()
            if account is None:
                raise CommandError(f"There is no user called {user[:40]!r}: create the account first.")
        key, secret = ApiKey.objects.issue(name, user=account)
        acting = f" acting as {account.get_username()}" if account else " (public rooms only)"
        self.stderr.write(f"created key {key.prefix}… for {key.name}{acting}; send it as 'Authorization: Bearer <key>'")
        self.stdout.write(secret)
