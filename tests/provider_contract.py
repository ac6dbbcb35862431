"""The provider contract, once: every provider's test file subclasses ProviderContract."""

import asyncio
import time

from bots.providers import Chunk, Provider, get_provider

PROMPT = [
    {"role": "system", "content": "You are a pirate. Speak like a pirate in all your responses."},
    {"role": "user", "content": "Tell me about your ship in two sentences."},
]


class ProviderContract:
    """Run against each provider: subclasses set up settings in a `provider` fixture."""

    max_tokens = 48

    async def collect(self, provider, **kwargs):
        chunks = []
        async for chunk in provider.stream(PROMPT, max_tokens=self.max_tokens, **kwargs):
            chunks.append(chunk)
        return chunks

    def test_is_a_provider_with_a_model_name(self, provider):
        assert isinstance(provider, Provider)
        assert provider is get_provider()
        assert provider.model and provider.context_tokens > self.max_tokens

    async def test_streams_text_deltas_then_at_most_one_usage(self, provider):
        chunks = await self.collect(provider)
        assert all(isinstance(chunk, Chunk) for chunk in chunks)
        texts = [chunk.text for chunk in chunks if chunk.text]
        assert len(texts) >= 2, "a reply must stream in more than one piece"
        assert "".join(texts).strip()
        usages = [chunk.usage for chunk in chunks if chunk.usage]
        assert len(usages) <= 1
        if usages:
            assert chunks[-1].usage is usages[0] and not chunks[-1].text
            assert usages[0].completion_tokens > 0

    async def test_closing_the_stream_stops_it_at_once(self, provider):
        stream = provider.stream(PROMPT, max_tokens=self.max_tokens)
        first = await anext(stream)
        assert first.text
        started = time.monotonic()
        await stream.aclose()
        await self.assert_upstream_closed(started)
        # The provider is usable again right away.
        assert "".join([c.text async for c in provider.stream(PROMPT, max_tokens=8)])

    async def assert_upstream_closed(self, since):
        """Hook: a suite that can watch the upstream asserts here that it saw the connection closed
        after `since` (a monotonic time) and before the reply's end; by default there is nothing to watch."""

    async def test_concurrent_streams_both_finish(self, provider):
        one, two = await asyncio.gather(self.collect(provider), self.collect(provider))
        assert "".join(c.text for c in one) and "".join(c.text for c in two)
