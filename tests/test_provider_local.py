"""The provider contract on the embedded local model (SmolLM2 through llama-cpp-python)."""

import os
import subprocess
import sys

import pytest

from bots.providers import get_provider
from tests.provider_contract import ProviderContract
from tests.servers import ROOT


@pytest.mark.slow
class TestLocalProvider(ProviderContract):
    @pytest.fixture
    def provider(self, settings):
        settings.LLM_PROVIDER = ""
        settings.OPENAI_API_KEY = ""
        return get_provider()


FIRST_ANSWER = """
import asyncio, django
django.setup()
from bots.providers.local import LocalProvider
from tests.provider_contract import PROMPT

async def first():
    return "".join([chunk.text async for chunk in LocalProvider().stream(PROMPT, max_tokens=24)])

print(asyncio.run(first()))
"""


@pytest.mark.slow
def test_every_process_answers_afresh():
    """A restarted server, or another process, does not give the answer the last one gave first."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "project.settings", "LLM_PROVIDER": "local"}
    answers = [
        subprocess.run([sys.executable, "-c", FIRST_ANSWER], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60).stdout
        for _ in range(2)
    ]
    assert all(answer.strip() for answer in answers), answers
    assert answers[0] != answers[1]
