"""The provider contract on a real OpenAI-compatible server nobody here wrote: llama-cpp-python's
own server serving the SmolLM2 GGUF on loopback, reached through the openai provider."""

import subprocess
import sys
import tempfile
import time
import urllib.request

import pytest

from bots.providers import get_provider
from bots.providers.local import default_model_path
from tests.provider_contract import ProviderContract
from tests.servers import free_port


@pytest.fixture(scope="module")
def llama_server():
    port = free_port()
    log = tempfile.TemporaryFile(mode="w+")  # a pipe nobody reads would fill and stall the server
    process = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(default_model_path()),
         "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048", "--model_alias", "smollm2",
         # By default it cuts a running stream short, silently, when another request arrives.
         "--interrupt_requests", "False"],
        stdout=log, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log.seek(0)
            pytest.fail(f"llama_cpp.server exited: {log.read()[-2000:]}")
        try:
            urllib.request.urlopen(f"{url}/models", timeout=1).read()
            break
        except OSError:
            time.sleep(0.2)
    else:
        process.kill()
        pytest.fail("llama_cpp.server did not answer within 60 s")
    yield url
    process.terminate()
    process.wait(10)


@pytest.mark.slow
class TestOpenAIProviderOnLlamaCppServer(ProviderContract):
    @pytest.fixture
    def provider(self, llama_server, settings):
        settings.LLM_PROVIDER = "openai"
        settings.OPENAI_API_KEY = "sk-local"
        settings.OPENAI_BASE_URL = llama_server
        settings.OPENAI_MODEL = "smollm2"
        settings.OPENAI_MAX_RETRIES = 0
        settings.OPENAI_TIMEOUT = 60
        settings.OPENAI_CONTEXT_TOKENS = 2048  # what the server was started with
        return get_provider()
