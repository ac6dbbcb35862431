"""System checks: `manage.py check` reports a misconfigured LLM provider."""

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
