"""App configuration: wires the broadcaster to Message's signals."""

from django.apps import AppConfig


class ChatConfig(AppConfig):
    name = "chat"
    verbose_name = "Chat history"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from . import broadcast, checks  # noqa: F401 - connects the signal receivers, registers checks
