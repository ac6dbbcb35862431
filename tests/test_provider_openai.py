"""The provider contract on the openai provider, against the scripted upstream."""

import asyncio
import time

import pytest

from bots.providers import get_provider
from tests.provider_contract import ProviderContract


class TestOpenAIProviderOnScriptedUpstream(ProviderContract):
    @pytest.fixture
    def provider(self, upstream):
        # 0.4 s a reply: still streaming when the contract closes a stream after its first chunk.
        upstream.default.text = " ".join(f"Ahoy{i}" for i in range(40))
        upstream.default.rate = 100
        self.upstream = upstream
        return get_provider()

    async def assert_upstream_closed(self, since):
        exchange = self.upstream.exchanges[0]
        while exchange.closed_at is None and time.monotonic() - since < 10:
            await asyncio.sleep(0.01)
        assert exchange.closed_at is not None, "the upstream connection stayed open after aclose()"
        # Closed by aclose(), not by the reply's end: the order of events, not a speed.
        assert exchange.closed_at >= since
        assert len(exchange.sent) < 40, "the upstream sent the whole reply anyway"


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
