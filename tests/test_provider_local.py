"""The provider contract on the embedded local model (SmolLM2 through llama-cpp-python)."""

import pytest

from bots.providers import get_provider
from tests.provider_contract import ProviderContract


@pytest.mark.slow
class TestLocalProvider(ProviderContract):
    @pytest.fixture
    def provider(self, settings):
        settings.LLM_PROVIDER = ""
        settings.OPENAI_API_KEY = ""
        return get_provider()
