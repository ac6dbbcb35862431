"""LLM providers, chosen by LLM_PROVIDER the way CHANNEL_LAYERS chooses its BACKEND."""

import functools
import sys

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.utils.module_loading import import_string

from .base import Chunk, Provider, ProviderError, Usage

__all__ = ["Chunk", "Provider", "ProviderError", "Usage", "get_provider", "provider_path", "require_provider"]

ALIASES = {
    "openai": "bots.providers.openai.OpenAIProvider",
    "local": "bots.providers.local.LocalProvider",
}


def provider_path():
    """The dotted path in force: LLM_PROVIDER wins; else openai with OPENAI_API_KEY, local without."""
    chosen = settings.LLM_PROVIDER or ("openai" if settings.OPENAI_API_KEY else "local")
    return ALIASES.get(chosen, chosen)


@functools.cache
def get_provider():
    """The one provider instance of this process, built on first use."""
    path = provider_path()
    try:
        provider_class = import_string(path)
    except ImportError as exc:
        raise ImproperlyConfigured(
            f"LLM_PROVIDER={path!r} cannot be imported ({exc}); set it to 'openai', 'local' "
            "or the dotted path of a Provider subclass."
        ) from exc
    if not (isinstance(provider_class, type) and issubclass(provider_class, Provider)):
        raise ImproperlyConfigured(f"LLM_PROVIDER={path!r} is not a subclass of bots.providers.Provider.")
    return provider_class()


def require_provider():
    """At start-up: build the provider, or print one line saying what to set and exit non-zero."""
    try:
        get_provider()
    except ImproperlyConfigured as exc:
        sys.stderr.write(f"parley: {exc}\n")
        raise SystemExit(1) from None


@receiver(setting_changed)
def _forget_provider(*, setting, **kwargs):
    """Rebuild the provider when a test overrides one of its settings."""
    if setting.startswith(("LLM_", "OPENAI_", "LOCAL_")):
        get_provider.cache_clear()
