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

    def start(self):
        """Start what the provider needs before its first reply (the local model's process); nothing by default."""

    def count_tokens(self, text):
        """How many tokens text costs this model; a safe estimate unless the provider knows better."""
        return estimate_tokens(text)

    def stream(self, messages, *, max_tokens, stop=()):
        raise NotImplementedError("subclasses of Provider must provide a stream() method")
