"""Create an API key for a program and print it once."""

from django.core.management.base import BaseCommand, CommandError

from chat.models import ApiKey


class Command(BaseCommand):
    help = "Create a named API key and print it (it is stored only hashed: this is the one time it is shown)."

    def add_arguments(self, parser):
        parser.add_argument("name", help="whose program it is, e.g. 'Build bot'")

    def handle(self, *args, name, **options):
        name = name.strip()
        if not name or len(name) > 100:
            raise CommandError("Give the key a name of 1 to 100 characters.")
        key, secret = ApiKey.objects.issue(name)
        self.stderr.write(f"created key {key.prefix}… for {key.name}; send it as 'Authorization: Bearer <key>'")
        self.stdout.write(secret)
