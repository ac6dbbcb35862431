"""The provider contract: one async method that streams a reply as chunks."""

from dataclasses import dataclass


def estimate_tokens(text):
    """A safe guess at a text's tokens for a tokenizer nobody here knows: three per four bytes.

    Tokenizers spend about four bytes of English a token, but small vocabularies do much worse:
    SmolLM2's spends one token per 1.4 bytes on short chat lines and on Chinese. Too high a guess
    only shortens the history; too low a one overflows the model's context.
    """
    return len(text.encode("utf-8", "replace")) * 3 // 4 + 1


@dataclass(frozen=True)
class Usage:
    """Tokens a reply cost, as the provider counted them."""

    prompt_tokens: int
    completion_tokens: int


@dataclass(frozen=True)
class Chunk:
    """One piece of a streamed reply: a text delta, or (last) the usage."""

    text: str = ""
    usage: Usage | None = None


# Parley's own secrets end in _KEY too: a bot's row must not be able to send them to its server.
SERVER_SECRETS = frozenset({"SECRET_KEY", "DJANGO_SECRET_KEY"})


def key_variable_problem(name):
    """Why a bot may not read its API key from the environment variable name, or "" when it may."""
    if not name.upper().endswith(("KEY", "TOKEN")) or name.upper() in SERVER_SECRETS:
        return (
            f"{name} cannot hold a bot's API key: name a variable that ends in KEY or TOKEN "
            "(such as HELPBOT_API_KEY), not one of Parley's own secrets."
        )
    return ""


@dataclass(frozen=True)
class Options:
    """What a bot's row asks of its provider; empty or None means the settings' default."""

    model: str = ""
    base_url: str = ""
    api_key_env: str = ""
    temperature: float | None = None
    context_tokens: int | None = None


class ProviderError(Exception):
    """An upstream failure; str() is a sentence a person in the room can read."""

    RATE_LIMITED = "rate_limited"
    UNREACHABLE = "unreachable"
    TIMED_OUT = "timed_out"
    BAD_RESPONSE = "bad_response"
    FAILED = "failed"

    def __init__(self, kind, message):
        super().__init__(message)
        self.kind = kind


class Provider:
    """Base class of LLM providers.

    Built with the ``Options`` of a bot (``Options()``: the settings' defaults), once per distinct
    configuration, and shared by every reply that asks for it.
    ``stream(messages, max_tokens=..., stop=...)`` is an async generator of ``Chunk``: text deltas in
    order, then at most one chunk carrying ``usage``. ``messages`` are OpenAI-style dicts with ``role``
    (``system``, ``user``, ``assistant``) and ``content``; ``stop``: at most ``max_stop`` strings
    where the model should end its reply (a provider that cannot stop there may ignore them).
    Closing the generator (``aclose()``) stops the upstream at once. Every upstream failure raises
    ``ProviderError``; a misconfiguration raises ``ImproperlyConfigured`` from ``__init__`` naming
    the setting to fix.
    """

    #: The model name recorded on each reply.
    model = ""
    #: The model's context window in tokens; prompts are built to fit it.
    context_tokens = 8192
    #: The most stop sequences a request may carry (OpenAI's API takes 4).
    max_stop = 4

    def __init__(self, options=Options()):
        self.options = options

    def start(self):
        """Start or load, on the event loop at the process's start, what the first reply would wait for
        (the local model's process, the SDK's parts imported at first use); nothing by default."""

    def count_tokens(self, text):
        """How many tokens text costs this model; a safe estimate unless the provider knows better."""
        return estimate_tokens(text)

    def stream(self, messages, *, max_tokens, stop=()):
        raise NotImplementedError("subclasses of Provider must provide a stream() method")
