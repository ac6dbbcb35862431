"""System checks: `manage.py check` reports a misconfigured LLM provider or a database too old for Parley."""

from django.core import checks
from django.core.exceptions import ImproperlyConfigured


@checks.register("parley")
def provider_configured(app_configs, **kwargs):
    """The provider in force can be built."""
    from bots.providers import get_provider

    try:
        get_provider()
    except ImproperlyConfigured as exc:
        return [checks.Error(str(exc), id="parley.E001")]
    return []


@checks.register("parley", checks.Tags.database)
def sqlite_new_enough(app_configs, databases=None, **kwargs):
    """Growth writes use UPDATE ... FROM ... RETURNING, which SQLite has since 3.35."""
    from django.db import connections

    found = []
    for alias in databases or []:
        database = connections[alias]
        if database.vendor == "sqlite" and database.Database.sqlite_version_info < (3, 35):
            found.append(checks.Error(
                f"SQLite {database.Database.sqlite_version} is too old for Parley (3.35 or newer is needed): "
                "use a Python built with a newer SQLite, or set DATABASE_URL to PostgreSQL.",
                id="parley.E002",
            ))
    return found


@checks.register("parley")
def choices_known(app_configs, **kwargs):
    """SIGNUP and ROOM_CREATION hold one of the values they take."""
    from django.conf import settings

    found = []
    for name, allowed, number in (("SIGNUP", ("open", "closed"), 3), ("ROOM_CREATION", ("signed_in", "staff", "off"), 4)):
        if getattr(settings, name) not in allowed:
            found.append(checks.Error(
                f"{name} is {getattr(settings, name)!r}; set it to one of: {', '.join(allowed)}.", id=f"parley.E00{number}",
            ))
    return found
