"""App configuration: wires the broadcaster to Message's signals, registers the checks and the admin."""

from django.apps import AppConfig


class ChatConfig(AppConfig):
    name = "chat"
    verbose_name = "Chat history"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        # Imported for what importing them does: signal receivers, system checks, the admin's
        # registration (the admin lives in chat/history/, where autodiscovery does not look).
        from chat import checks  # noqa: F401
        from chat.delivery import broadcast, removals  # noqa: F401
        from chat.history import admin  # noqa: F401

        from django.contrib.auth.signals import user_login_failed

        from chat.web.accounts import count_failure

        user_login_failed.connect(count_failure, dispatch_uid="parley-login-failures")
