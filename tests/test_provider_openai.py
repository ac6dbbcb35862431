"""The provider contract on the openai provider, against the scripted upstream."""

import pytest

from bots.providers import get_provider
from tests.provider_contract import ProviderContract


class TestOpenAIProviderOnScriptedUpstream(ProviderContract):
    @pytest.fixture
    def provider(self, upstream):
        upstream.default.rate = 200
        return get_provider()


async def test_a_server_that_refuses_stream_options_is_asked_again_without(upstream):
    upstream.will(reject_stream_options=True)
    upstream.will(text="Plain and simple.")
    provider = get_provider()
    chunks = [chunk async for chunk in provider.stream([{"role": "user", "content": "hi"}], max_tokens=16)]
    assert "".join(c.text for c in chunks) == "Plain and simple."
    assert [("stream_options" in e.body) for e in upstream.exchanges] == [True, False]
    # Remembered: the next reply goes straight to the plain request.
    upstream.will(text="Again.")
    assert [c.text async for c in provider.stream([{"role": "user", "content": "hi"}], max_tokens=16)] == ["Again."]
    assert "stream_options" not in upstream.exchanges[-1].body
