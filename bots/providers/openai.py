"""The openai provider: any OpenAI-compatible server through the official SDK's AsyncOpenAI.

The SDK makes the request (authentication, retries, timeouts, status errors); the streamed body
is read as raw server-sent events and each chunk parsed as plain JSON: building the SDK's typed
chunk objects more than doubled the CPU per token (measured against the scripted upstream: about
0.17 ms against 0.07 ms per chunk), on the one event loop every room shares.
"""

import contextlib
import json
import logging
import os

import anyio
import httpx2
import openai
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_noop

from .base import Chunk, Options, Provider, ProviderError, Usage, key_variable_problem

logger = logging.getLogger(__name__)


# Sentences with a part of their own, stored in English and translated as shown (chat.wording).
ANSWERED_WITH_ERROR = gettext_noop("The model answered with an error (HTTP %(status)s).")
REPORTED_ERROR = gettext_noop("The model reported an error: %(message)s")


def explain(exc):
    """Turn anything the SDK or its stream raises into a ProviderError a person can read."""
    if isinstance(exc, ProviderError):
        return exc
    if isinstance(exc, openai.RateLimitError):
        return ProviderError(ProviderError.RATE_LIMITED, gettext_noop("The model is rate-limited right now; try again in a moment."))
    if isinstance(exc, openai.APITimeoutError):
        return ProviderError(ProviderError.TIMED_OUT, gettext_noop("The model took too long to answer and timed out."))
    if isinstance(exc, openai.APIConnectionError):
        return ProviderError(ProviderError.UNREACHABLE, gettext_noop("The model could not be reached or dropped the connection."))
    if isinstance(exc, openai.AuthenticationError):
        return ProviderError(ProviderError.FAILED, gettext_noop("The model refused Parley's API key (check OPENAI_API_KEY)."))
    if isinstance(exc, openai.APIStatusError):
        return ProviderError(ProviderError.FAILED, ANSWERED_WITH_ERROR % {"status": exc.status_code})
    if isinstance(exc, openai.APIError):
        return reported(exc.message)
    if isinstance(exc, httpx2.TimeoutException):
        return ProviderError(ProviderError.TIMED_OUT, gettext_noop("The model took too long to answer and timed out."))
    if isinstance(exc, httpx2.TransportError):
        return ProviderError(ProviderError.UNREACHABLE, gettext_noop("The model could not be reached or dropped the connection."))
    # A malformed chunk: a JSONDecodeError (a ValueError), or JSON of the wrong shape.
    return ProviderError(ProviderError.BAD_RESPONSE, gettext_noop("The model sent a response Parley could not read."))


def reported(message):
    """An error the model's server put in words."""
    return ProviderError(ProviderError.FAILED, REPORTED_ERROR % {"message": message})


DONE = object()  # the stream's `data: [DONE]`


def parse_event(line):
    """One line of the event stream: the chunk's JSON, DONE, or None (blank lines, comments, other fields).

    OpenAI-compatible servers put each chunk on one `data:` line; multi-line data is not joined.
    """
    if not line.startswith("data:"):
        return None
    data = line[5:].strip()
    return DONE if data == "[DONE]" else json.loads(data)


class OpenAIProvider(Provider):
    """Streams chat completions from OpenAI, Ollama, vLLM, llama.cpp's server, LM Studio and the like."""

    def __init__(self, options=Options()):
        super().__init__(options)
        variable = options.api_key_env or "OPENAI_API_KEY"
        if problem := key_variable_problem(variable):
            raise ImproperlyConfigured(problem)
        # A bot's own variable is read from the environment at use, never stored: rows name it only.
        api_key = os.environ.get(options.api_key_env, "") if options.api_key_env else settings.OPENAI_API_KEY
        if not api_key:
            raise ImproperlyConfigured(
                f"Set {variable} to use the openai provider (any non-empty value for a local server "
                "such as Ollama), or unset LLM_PROVIDER to run on the embedded local model."
            )
        self.connect(
            api_key=api_key, base_url=options.base_url or settings.OPENAI_BASE_URL or None,
            model=options.model or settings.OPENAI_MODEL,
            context_tokens=options.context_tokens or settings.OPENAI_CONTEXT_TOKENS, timeout=settings.OPENAI_TIMEOUT,
            max_retries=settings.OPENAI_MAX_RETRIES,
        )

    def connect(self, *, api_key, base_url, model, context_tokens, timeout, max_retries):
        """Point the provider at a server: the one client every reply of this process shares."""
        self.model = model
        self.context_tokens = context_tokens
        self.client = openai.AsyncOpenAI(api_key=api_key, base_url=base_url, timeout=timeout, max_retries=max_retries)
        # The SDK imports its chat resources at their first access: here, not on the loop at the first reply.
        self.client.chat.completions  # noqa: B018
        # Some servers reject stream_options; after the first refusal, ask without it.
        self.usage_supported = True

    def start(self):
        """Load anyio's parts, which the SDK's transport imports at first use: at the first reply they
        held the event loop, and every socket of the process, for about 10 ms."""
        for name in dir(anyio):  # each part of its API is imported at its first use,
            getattr(anyio, name)
        anyio.get_cancelled_exc_class()  # and its asyncio backend at the first call on a loop

    def request_options(self):
        """Extra fields of each completion request (sampling settings): the bot's temperature, if it set one."""
        return {} if self.options.temperature is None else {"temperature": self.options.temperature}

    async def _open(self, stack, messages, max_tokens, stop):
        """Start the streamed completion on stack, falling back once if the server refuses stream_options."""
        create = self.client.chat.completions.with_streaming_response.create
        request = {
            "model": self.model, "messages": messages, "stream": True, "max_tokens": max_tokens, **self.request_options()
        }
        if stop:
            request["stop"] = list(stop[:self.max_stop])
        if self.usage_supported:
            try:
                return await stack.enter_async_context(create(**request, stream_options={"include_usage": True}))
            except openai.BadRequestError as exc:
                if "stream_options" not in str(exc):
                    raise
                logger.info("%s refuses stream_options; streaming without usage", self.client.base_url)
                self.usage_supported = False
        return await stack.enter_async_context(create(**request))

    async def stream(self, messages, *, max_tokens, stop=()):
        usage = None
        # Leaving the stack closes the response: on the end, on an error, and when the generator
        # is closed (Stop, shutdown), so no tokens are paid for that nobody reads.
        async with contextlib.AsyncExitStack() as stack:
            try:
                response = await self._open(stack, messages, max_tokens, stop)
                async for line in response.iter_lines():
                    event = parse_event(line)
                    if event is None:
                        continue
                    if event is DONE:
                        break
                    if error := event.get("error"):
                        message = error.get("message") if isinstance(error, dict) else error
                        raise reported(message if isinstance(message, str) and message else "no details given")
                    if counts := event.get("usage"):
                        usage = Usage(counts.get("prompt_tokens") or 0, counts.get("completion_tokens") or 0)
                    text = ((event.get("choices") or [{}])[0].get("delta") or {}).get("content")
                    if text:
                        yield Chunk(text=text)
            except Exception as exc:
                raise explain(exc) from exc
        if usage:
            yield Chunk(usage=usage)
