"""Parley's /v1 as OpenAI's own SDK sees it, against a real Daphne: each bot in its persona, streaming
or not, sync or async; OpenAI's errors for a wrong key, an unknown model and too many requests."""

import json

import openai
import pytest
from asgiref.sync import sync_to_async

from bots.registry import BOTS
from chat.models import ApiKey
from tests.servers import daphne
from tests.sse import open_stream
from tests.test_end_to_end import provider_env

pytestmark = pytest.mark.django_db(transaction=True)

ASK = [{"role": "user", "content": "Who are you?"}]


async def test_the_openai_sdk_talks_to_each_bot_in_its_persona(upstream):
    _, secret = await sync_to_async(ApiKey.objects.issue)("SDK test")
    with daphne(provider_env(upstream)) as server:
        sync = openai.OpenAI(base_url=f"{server.url}/v1", api_key=secret, max_retries=0)
        asynchronous = openai.AsyncOpenAI(base_url=f"{server.url}/v1", api_key=secret, max_retries=0)
        assert [m.id for m in await sync_to_async(sync.models.list)()] == list(BOTS)

        for index, bot in enumerate(BOTS.values()):
            upstream.will(text=f"Plain answer from {bot.name}.")
            upstream.will(text=f"Streamed answer from {bot.name}.")
            upstream.will(text=f"Async answer from {bot.name}.")
            upstream.will(text=f"Async stream from {bot.name}.")

            done = await sync_to_async(sync.chat.completions.create)(model=bot.key, messages=ASK)
            assert done.object == "chat.completion" and done.model == bot.key
            assert done.choices[0].message.content == f"Plain answer from {bot.name}."
            assert done.choices[0].finish_reason == "stop" and done.usage.completion_tokens > 0

            def stream_sync():
                chunks = list(sync.chat.completions.create(
                    model=bot.key, messages=ASK, stream=True, stream_options={"include_usage": True}
                ))
                return chunks

            chunks = await sync_to_async(stream_sync)()
            assert all(c.object == "chat.completion.chunk" for c in chunks)
            assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == f"Streamed answer from {bot.name}."
            assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) > 1  # it streamed
            assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens > 0

            done = await asynchronous.chat.completions.create(model=bot.key, messages=ASK)
            assert done.choices[0].message.content == f"Async answer from {bot.name}."
            text = ""
            async for chunk in await asynchronous.chat.completions.create(model=bot.key, messages=ASK, stream=True):
                assert chunk.usage is None  # not asked for
                text += chunk.choices[0].delta.content or ""
            assert text == f"Async stream from {bot.name}."

            # The bot's persona came first, then the caller's messages, every time.
            for exchange in upstream.exchanges[4 * index:]:
                assert exchange.messages == [{"role": "system", "content": bot.system_prompt}, *ASK]

        # The caller's own system message follows the persona; its tokens are counted on the key.
        upstream.will(text="Aye.")
        await asynchronous.chat.completions.create(
            model="PirateBot", messages=[{"role": "system", "content": "Answer in one word."}, *ASK]
        )
        assert upstream.exchanges[-1].messages[0]["content"] == BOTS["PirateBot"].system_prompt + "\n\nAnswer in one word."
        key = await ApiKey.objects.aget(name="SDK test")
        assert key.completion_tokens > 0 and key.prompt_tokens > 0


async def test_openai_errors_for_a_wrong_key_an_unknown_model_bad_bodies_and_too_many_requests(upstream):
    _, secret = await sync_to_async(ApiKey.objects.issue)("Errors test")
    with daphne(provider_env(upstream, RATE_LIMIT_PER_CLIENT="3")) as server:
        wrong = openai.AsyncOpenAI(base_url=f"{server.url}/v1", api_key="parley_wrong", max_retries=0)
        with pytest.raises(openai.AuthenticationError):
            await wrong.chat.completions.create(model="PirateBot", messages=ASK)
        with pytest.raises(openai.AuthenticationError):
            await wrong.models.list()
        client = openai.AsyncOpenAI(base_url=f"{server.url}/v1", api_key=secret, max_retries=0)
        with pytest.raises(openai.BadRequestError) as unknown:
            await client.chat.completions.create(model="gpt-4o", messages=ASK)
        assert unknown.value.body["param"] == "model" and "PirateBot" in unknown.value.body["message"]

        headers = {"Authorization": f"Bearer {secret}", "Content-Type": "application/json"}
        bad = [
            b"{oops", b"[]", b"\xff", b'{"model": "PirateBot"}', b'{"model": "PirateBot", "messages": []}',
            b'{"model": "PirateBot", "messages": "hi"}', b'{"model": "PirateBot", "messages": [1]}',
            b'{"model": "PirateBot", "messages": [{"role": "tool", "content": "x"}]}',
            b'{"model": "PirateBot", "messages": [{"role": "user", "content": ""}]}',
            b'{"model": "PirateBot", "messages": [{"role": "user", "content": 5}]}',
            b'{"model": "PirateBot", "messages": [{"role": "user", "content": [{"type": "image_url"}]}]}',
            b'{"model": "PirateBot", "messages": [{"role": "assistant", "content": "last"}]}',
            b'{"model": "PirateBot", "messages": [{"role": "user", "content": "hi"}], "stream": "yes"}',
            json.dumps({"model": "PirateBot", "messages": [{"role": "user", "content": "z" * 5000}]}).encode(),
            b'{"model": null, "messages": [{"role": "user", "content": "hi"}]}',
        ]
        for body in bad:
            _, response = await sync_to_async(open_stream)(server.url, "POST", "/v1/chat/completions", body, headers)
            assert 400 <= response.status < 500, body
            assert json.loads(response.read())["error"]["message"], body
        assert upstream.exchanges == []

        for _ in range(3):
            upstream.will(text="Arr.")
            await client.chat.completions.create(model="PirateBot", messages=ASK)
        with pytest.raises(openai.RateLimitError) as limited:
            await client.chat.completions.create(model="PirateBot", messages=ASK)
        assert int(limited.value.response.headers["Retry-After"]) > 0
