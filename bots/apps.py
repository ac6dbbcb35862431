"""App configuration: bots and rooms are rows; the registry reads them through a per-process cache."""

from django.apps import AppConfig


class BotsConfig(AppConfig):
    name = "bots"
    verbose_name = "Bots and rooms"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        # Imported for what importing it does: the receivers that tell every process a row changed.
        from bots import registry  # noqa: F401
