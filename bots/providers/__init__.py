"""LLM providers, chosen per bot (its row) or by LLM_PROVIDER the way CHANNEL_LAYERS chooses its BACKEND."""

import functools
import sys

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.utils.module_loading import import_string

from .base import Chunk, Options, Provider, ProviderError, Usage

__all__ = [
    "Chunk", "Options", "Provider", "ProviderError", "Usage", "get_provider", "provider_class", "provider_path", "require_provider",
]

ALIASES = {
    "openai": "bots.providers.openai.OpenAIProvider",
    "local": "bots.providers.local.LocalProvider",
}


def provider_path(bot=None):
    """The dotted path in force for bot (None: the default): its provider wins, then a key variable of
    its own means openai; else LLM_PROVIDER, else openai with OPENAI_API_KEY, local without."""
    chosen = (bot.provider or ("openai" if bot.api_key_env else "")) if bot is not None else ""
    chosen = chosen or settings.LLM_PROVIDER or ("openai" if settings.OPENAI_API_KEY else "local")
    return ALIASES.get(chosen, chosen)


def get_provider(bot=None):
    """The provider that voices bot (None: the settings' default): one instance per distinct configuration, shared."""
    if bot is None:
        return _build(provider_path(), Options())
    options = Options(
        model=bot.model, base_url=bot.base_url, api_key_env=bot.api_key_env, temperature=bot.temperature,
        context_tokens=bot.context_tokens,
    )
    return _build(provider_path(bot), options)


@functools.cache
def _build(path, options):
    """Build the provider class at path with options, on first use of that pair."""
    return provider_class(path)(options)


def provider_class(choice):
    """The Provider subclass a choice names ('openai', 'local' or a dotted path), or ImproperlyConfigured saying what to set."""
    path = ALIASES.get(choice, choice)
    try:
        found = import_string(path)
    except ImportError as exc:
        raise ImproperlyConfigured(
            f"The provider {path!r} cannot be imported ({exc}); set LLM_PROVIDER (or the bot's provider) to "
            "'openai', 'local' or the dotted path of a Provider subclass."
        ) from exc
    if not (isinstance(found, type) and issubclass(found, Provider)):
        raise ImproperlyConfigured(f"The provider {path!r} (LLM_PROVIDER or a bot's) is not a subclass of bots.providers.Provider.")
    return found


def require_provider():
    """At start-up: build the default provider, or print one line saying what to set and exit non-zero."""
    try:
        get_provider()
    except ImproperlyConfigured as exc:
        sys.stderr.write(f"parley: {exc}\n")
        raise SystemExit(1) from None


@receiver(setting_changed)
def _forget_provider(*, setting, **kwargs):
    """Rebuild the providers when a test overrides one of their settings."""
    if setting.startswith(("LLM_", "OPENAI_", "LOCAL_")):
        _build.cache_clear()
